"""Head-only grounding training on a frozen Qwen3.5 checkpoint: `vlagent train-grounding --base CHECKPOINT`.

The checkpoint's engine reads one chat prompt, the screenshot and then the instruction
(`grounding_inputs`); the hidden state of the prompt's last token is the pointer's query and the
screenshot's visual tokens are its keys (model/grounding_head.py). Only the head learns: the backbone
runs without gradients, so its weights never change and the result is one small file,
OUT/grounding_head.safetensors, that `local:CHECKPOINT,head=FILE` grounders use
(vlagent/grounding/grounders/checkpoint_head.py; a copy in the checkpoint folder is found without
`head=`).

For real checkpoints this is a GPU job: every example costs one prefill of the whole model. The
backbone's features of an example are computed once and kept for later visits while they fit in
`feature_cache_mb`. Checkpoints (OUT/head_checkpoint.pt, written atomically) carry the head, the
optimizer, the schedule and the random state; `resume=True` continues from one.
"""
from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from PIL import Image

from vlagent.grounding.dataset import GroundingRecord
from vlagent.grounding.train import KIND_OF_ACTION, load_checkpoint, save_checkpoint, warmup_cosine
from vlagent.model.grounding_head import (
    Candidates,
    GroundingHead,
    GroundingHeadConfig,
    decode_logits,
    grounding_loss,
    save_head,
    screen_features,
)

HEAD_FILE = "grounding_head.safetensors"
CHECKPOINT_FILE = "head_checkpoint.pt"
PROMPT = "Point at what this instruction means on the screenshot: {instruction}"


@dataclass
class HeadTrainConfig:
    steps: int = 500
    batch: int = 8  # examples per step
    lr: float = 1e-3
    warmup: int = 20
    weight_decay: float = 0.01
    proj_dim: int = 128
    sub_cells: int = 4  # GroundingHeadConfig.sub_cells: where inside a merged token the target lies
    seed: int = 0
    checkpoint_every: int = 100
    eval_every: int = 100
    feature_cache_mb: int = 2048
    device: str = "cpu"


def grounding_inputs(processor: Any, image: Image.Image, instruction: str) -> dict[str, torch.Tensor]:
    """The prompt both training and the grounder use: the screenshot, then the instruction, then the
    assistant's turn (its first position is the action token the pointer reads)."""
    messages = [{"role": "user", "content": [{"type": "image", "image": image},
                                             {"type": "text", "text": PROMPT.format(instruction=instruction)}]}]
    try:
        prompt, images, _ = processor.render_chat(messages, enable_thinking=False)
    except TypeError:  # a template without the thinking switch
        prompt, images, _ = processor.render_chat(messages)
    inputs = processor(prompt, images=images)
    return {k: inputs[k] for k in ("input_ids", "pixel_values", "image_grid_thw")}


class FeatureSource:
    """(action hidden [1,H], visual-token hiddens [1,N,H], Candidates) of an example, from the frozen
    engine, kept in memory while they fit the budget."""

    def __init__(self, model: Any, processor: Any, budget_mb: int):
        self.model, self.processor = model, processor
        self.budget = budget_mb * 2**20
        self.used = 0
        self.cache: dict[tuple[str, str], tuple[torch.Tensor, torch.Tensor, Candidates]] = {}
        self.images: dict[Path, Image.Image] = {}

    def image(self, path: Path) -> Image.Image:
        if path not in self.images:
            if len(self.images) > 64:  # screenshots are re-read rather than all kept
                self.images.clear()
            with Image.open(path) as im:
                self.images[path] = im.convert("RGB")
        return self.images[path]

    @torch.no_grad()
    def get(self, record: GroundingRecord) -> tuple[torch.Tensor, torch.Tensor, Candidates]:
        key = (str(record.image_path), record.instruction)
        if key in self.cache:
            return self.cache[key]
        inputs = grounding_inputs(self.processor, self.image(record.image_path), record.instruction)
        device, dtype = self.model.device, self.model.dtype
        action, visual, candidates = screen_features(
            self.model, inputs["input_ids"].to(device), inputs["pixel_values"].to(device, dtype),
            inputs["image_grid_thw"].to(device))
        found = (action.float(), visual.float(), candidates)
        size = (action.numel() + visual.numel()) * 4
        if self.used + size <= self.budget:
            self.cache[key] = found
            self.used += size
        return found


def _kind_index(head: GroundingHead, record: GroundingRecord) -> int:
    return head.config.action_kinds.index(KIND_OF_ACTION.get(record.action, "click"))


def train_head(base: str | Path, train_records: Sequence[GroundingRecord], val_records: Sequence[GroundingRecord],
               out: str | Path, cfg: HeadTrainConfig, *, resume: bool = False,
               log: Callable[[str], None] = print, progress: Callable[[int, dict], None] | None = None) -> Path:
    """Train a grounding head on the frozen checkpoint `base`; write OUT/grounding_head.safetensors (and
    OUT/head_info.json: the base, steps, seed, validation accuracy). Returns the head file."""
    from vlagent.model import load_model
    from vlagent.model.processor import Processor

    base, out = Path(base), Path(out)
    if not (base / "config.json").is_file():
        raise FileNotFoundError(f"no Qwen3.5 checkpoint at {base} (config.json missing)")
    if not train_records:
        raise ValueError("no training records")
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    model = load_model(base, device=cfg.device, dtype=torch.float32 if cfg.device == "cpu" else torch.bfloat16)
    for p in model.parameters():  # frozen: nothing of the backbone can change
        p.requires_grad_(False)
    features = FeatureSource(model, Processor.from_pretrained(base), cfg.feature_cache_mb)
    head = GroundingHead(GroundingHeadConfig(hidden_size=model.config.text.hidden_size, proj_dim=cfg.proj_dim,
                                             sub_cells=cfg.sub_cells))
    opt = torch.optim.AdamW(head.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: warmup_cosine(s, cfg.steps, cfg.warmup))
    step, ckpt = 0, out / CHECKPOINT_FILE
    if resume and ckpt.exists():
        state = load_checkpoint(ckpt, head, opt, sched, rng)
        if state.get("base") != str(base.resolve()):
            raise ValueError(f"{ckpt} was trained on {state.get('base')}, not {base.resolve()}")
        step = state["step"]
        log(f"resumed from {ckpt} at step {step}")
    history: list[dict] = []
    t0 = time.perf_counter()
    head.train()
    while step < cfg.steps:
        batch = [rng.choice(train_records) for _ in range(cfg.batch)]
        opt.zero_grad()
        total = 0.0
        for record in batch:
            action, visual, candidates = features.get(record)
            logits = head(action, visual)
            loss, _ = grounding_loss(logits, [torch.tensor(record.box)], [candidates],
                                     kinds=torch.tensor([_kind_index(head, record)]))
            (loss / len(batch)).backward()
            total += loss.item() / len(batch)
        torch.nn.utils.clip_grad_norm_(head.parameters(), 1.0)
        opt.step()
        sched.step()
        step += 1
        info = dict(step=step, loss=total, lr=sched.get_last_lr()[0], seconds=round(time.perf_counter() - t0, 1))
        if val_records and (step % cfg.eval_every == 0 or step == cfg.steps):
            info["val_accuracy"] = evaluate_head(head, features, val_records)
            head.train()
        history.append(info)
        if progress is not None:
            progress(step, info)
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            save_checkpoint(ckpt, head, opt, sched, rng, step, base=str(base.resolve()))
    path = save_head(head.eval(), out / HEAD_FILE)
    final = dict(history[-1]) if history else {}
    (out / "head_info.json").write_text(json.dumps(dict(base=str(base.resolve()), config=asdict(cfg),
                                                        train_records=len(train_records), final=final), indent=1))
    with open(out / "head_train_log.jsonl", "a" if resume else "w") as f:
        f.writelines(json.dumps(h) + "\n" for h in history)
    return path


@torch.no_grad()
def evaluate_head(head: GroundingHead, features: FeatureSource, records: Sequence[GroundingRecord],
                  limit: int = 200) -> float:
    """Share of records whose predicted point lies inside the target box."""
    head.eval()
    sample = list(records)[:limit]
    hits = 0
    for record in sample:
        action, visual, candidates = features.get(record)
        out = head(action, visual)
        hits += record.contains(decode_logits(out, candidates).point)
    return hits / max(1, len(sample))


__all__ = ["HEAD_FILE", "HeadTrainConfig", "grounding_inputs", "train_head", "evaluate_head"]
