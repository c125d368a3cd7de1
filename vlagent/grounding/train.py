"""Training the grounder: `vlagent train-grounding --data DATASET... --out DIR`.

The model is vlagent.model.grounder's: a small Qwen3.5 backbone (trained through transformers'
Qwen3.5 classes, which have autograd; inference then runs on the engine, which loads the same files),
a line encoder for OCR text lines, and the pointer head. One example = one (screen, instruction)
pair; the vision tower runs once per screen for all of that screen's instructions in a batch.

Text lines come from each record's cached `ocr` lines, else from an OCR function (results cached per
image for the whole run). Training adds OCR-like noise (run-together neighbours, look-alike characters,
jittered boxes, missed short labels) so a model that learned on clean text survives real OCR, and
negatives (an instruction naming something from another screen: the target is "nothing here").

Checkpoints (out/checkpoint.pt, written atomically) carry the models, optimizer, schedule position and
random state; --resume continues from one. The result is a grounder folder (load_grounder).
"""
from __future__ import annotations

import json
import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import torch
from PIL import Image

from vlagent.grounding.dataset import GroundingRecord
from vlagent.model.grounder import (
    GROUNDER_FILE,
    RELATION_MAPS,
    AnchorEncoder,
    GrounderSpec,
    LineEncoder,
    TextLine,
    backbone_config,
    build_layout,
    fuse_lines,
    pixel_input,
)
from vlagent.model.grounding_head import Candidates, GroundingHead, GroundingHeadConfig, decode_logits, grounding_loss

OcrFunction = Callable[[Image.Image], list[TextLine]]
KIND_OF_ACTION = {"click": "click", "double": "double_click", "right": "right_click", "type": "type",
                  "scroll": "scroll", "long-press": "long_press"}


@dataclass
class TrainConfig:
    steps: int = 2000
    screens_per_step: int = 2
    instructions_per_screen: int = 4
    lr: float = 2e-3
    warmup: int = 100
    weight_decay: float = 0.01
    negatives: float = 0.1  # share of instructions turned into "nothing here" examples
    ocr_noise: float = 1.0  # 0 = clean lines
    hidden_size: int = 128
    layers: int = 4
    vision_hidden: int = 96
    vision_depth: int = 2
    proj_dim: int = 64
    byte_dim: int = 64
    line_content_limit: float = 3.0  # GroundingHeadConfig.line_content_limit
    sub_cells: int = 4  # GroundingHeadConfig.sub_cells: a 4x4 choice inside each cell (16 px at 1280 px)
    spec: GrounderSpec = field(default_factory=GrounderSpec)
    checkpoint_every: int = 200
    eval_every: int = 200
    seed: int = 0
    threads: int | None = None
    bf16: bool = False  # autocast the forward pass to bfloat16 (weights, optimizer and loss stay float32)


# ---------------------------------------------------------------- OCR lines, clean and noisy

def record_lines(record: GroundingRecord, ocr: OcrFunction | None, cache: dict[str, list[TextLine]]) -> list[TextLine]:
    """The screen's text lines: cached in the record, else read once per image with `ocr`."""
    if record.ocr is not None:
        return [TextLine(line.text, tuple(line.box)) for line in record.ocr]
    key = str(record.image_path)
    if key not in cache:
        if ocr is None:
            raise ValueError(f"{record.image_path}: the record has no cached 'ocr' lines and no OCR engine was given")
        with Image.open(record.image_path) as im:
            cache[key] = ocr(im.convert("RGB"))
    return cache[key]


_LOOKALIKE = {"o": "0", "O": "0", "0": "O", "l": "1", "1": "l", "I": "l", "S": "5", "5": "S", "B": "8", "e": "c",
              "rn": "m", "m": "rn", "i": "l", "g": "q"}


def noisy_lines(lines: Sequence[TextLine], rng: random.Random, strength: float = 1.0) -> list[TextLine]:
    """OCR-like corruption of clean lines: neighbours on one row run together, look-alike characters,
    jittered boxes, short labels missed."""
    if strength <= 0:
        return list(lines)
    out: list[TextLine] = []
    ordered = sorted(lines, key=lambda ln: (round((ln.box[1] + ln.box[3]) / 2, 2), ln.box[0]))
    i = 0
    while i < len(ordered):
        line = ordered[i]
        nxt = ordered[i + 1] if i + 1 < len(ordered) else None
        if nxt is not None and _same_row(line, nxt) and nxt.box[0] - line.box[2] < 0.02 and rng.random() < 0.3 * strength:
            line = TextLine(f"{line.text} {nxt.text}" if rng.random() < 0.7 else line.text + nxt.text,
                            (min(line.box[0], nxt.box[0]), min(line.box[1], nxt.box[1]),
                             max(line.box[2], nxt.box[2]), max(line.box[3], nxt.box[3])))
            i += 1
        i += 1
        if len(line.text.strip()) <= 2 and rng.random() < 0.3 * strength or rng.random() < 0.02 * strength:
            continue
        out.append(TextLine(_lookalikes(line.text, rng, 0.03 * strength), _jitter(line.box, rng, strength)))
    return out


def _same_row(a: TextLine, b: TextLine) -> bool:
    ca, cb = (a.box[1] + a.box[3]) / 2, (b.box[1] + b.box[3]) / 2
    return abs(ca - cb) < 0.5 * max(a.box[3] - a.box[1], 1e-3)


def _lookalikes(text: str, rng: random.Random, p: float) -> str:
    out, i = [], 0
    while i < len(text):
        pair = text[i : i + 2]
        if pair in _LOOKALIKE and rng.random() < p:
            out.append(_LOOKALIKE[pair])
            i += 2
            continue
        ch = text[i]
        out.append(_LOOKALIKE[ch] if ch in _LOOKALIKE and rng.random() < p else ch)
        i += 1
    return "".join(out)


def _jitter(box, rng: random.Random, strength: float):
    x0, y0, x1, y1 = box
    h, w = y1 - y0, x1 - x0
    dx, dy = 0.03 * w * strength, 0.12 * h * strength
    x0, x1 = x0 + rng.uniform(-dx, dx), x1 + rng.uniform(-dx, dx)
    y0, y1 = y0 + rng.uniform(-dy, dy), y1 + rng.uniform(-dy, dy)
    x0, x1 = sorted((min(max(x0, 0.0), 1.0), min(max(x1, 0.0), 1.0)))
    y0, y1 = sorted((min(max(y0, 0.0), 1.0), min(max(y1, 0.0), 1.0)))
    return (x0, y0, max(x1, x0 + 1e-4), max(y1, y0 + 1e-4))


# ---------------------------------------------------------------- the model during training

class TrainableGrounder(torch.nn.Module):
    """Backbone (transformers' Qwen3.5, trainable) + line encoder + anchor map + head, computing what
    vlagent.model.grounder.Grounder computes on the engine."""

    def __init__(self, cfg: TrainConfig):
        super().__init__()
        from transformers import Qwen3_5Config, Qwen3_5ForConditionalGeneration

        self.spec = cfg.spec
        self.backbone = Qwen3_5ForConditionalGeneration(Qwen3_5Config(**backbone_config(
            cfg.hidden_size, cfg.layers, cfg.vision_hidden, cfg.vision_depth)))
        self.lines = LineEncoder(cfg.hidden_size, byte_dim=cfg.byte_dim)
        self.anchors = AnchorEncoder(cfg.hidden_size)
        self.head = GroundingHead(GroundingHeadConfig(hidden_size=cfg.hidden_size, proj_dim=cfg.proj_dim,
                                                      prior_maps=1 + RELATION_MAPS,
                                                      line_content_limit=cfg.line_content_limit,
                                                      sub_cells=cfg.sub_cells))
        self.byte_dim = cfg.byte_dim

    def screen_features(self, image: Image.Image) -> tuple[torch.Tensor, tuple[int, int]]:
        """The image tokens of a screenshot, and their grid (rows, cols)."""
        pixel_values, grid = pixel_input(image, self.spec)
        merge = self.spec.merge_size
        rows, cols = int(grid[0, 1]) // merge, int(grid[0, 2]) // merge
        return self.backbone.model.get_image_features(pixel_values, grid).pooler_output[0], (rows, cols)

    def forward_one(self, screen: tuple[torch.Tensor, tuple[int, int]], instruction: str, lines: list[TextLine]):
        logits, candidates = self.forward_batch(screen, [instruction], lines)
        return logits, candidates[0]

    def forward_batch(self, screen: tuple[torch.Tensor, tuple[int, int]], instructions: Sequence[str],
                      lines: list[TextLine]):
        """Several instructions on one screen in one batch. Shorter sequences are padded on the LEFT with
        masked zero embeddings: a zero input leaves a DeltaNet state at zero and attention skips it, so
        each row computes exactly what it computes alone (and what the engine computes at inference)."""
        image_features, grid = screen
        layouts = [build_layout(text, lines, self.spec, grid) for text in instructions]
        lm = self.backbone.model.language_model
        T = max(len(lay.input_ids) for lay in layouts)
        rows, positions, masks, offsets, priors = [], [], [], [], []
        for lay in layouts:
            x = lm.embed_tokens(lay.input_ids)
            x = x.index_copy(0, lay.image_slots, image_features.to(x.dtype))
            # line vectors and the anchor map differ per instruction: they carry the lines' match with it
            x, prior = fuse_lines(x, lay, self.lines, self.anchors)
            priors.append(prior)
            pad = T - len(lay.input_ids)
            rows.append(torch.cat([x.new_zeros(pad, x.shape[1]), x]))
            positions.append(torch.cat([lay.position_ids.new_zeros(3, pad), lay.position_ids], dim=1))
            masks.append(torch.cat([torch.zeros(pad, dtype=torch.long), torch.ones(len(lay.input_ids), dtype=torch.long)]))
            offsets.append(pad)
        mask = torch.stack(masks)
        hidden = lm(inputs_embeds=torch.stack(rows), position_ids=torch.stack(positions, dim=1),
                    attention_mask=None if bool(mask.all()) else mask, use_cache=False).last_hidden_state
        slots = torch.stack([torch.cat([lay.image_slots, lay.line_slots]) + off for lay, off in zip(layouts, offsets)])
        cands = hidden.gather(1, slots[..., None].expand(-1, -1, hidden.shape[-1]))
        logits = self.head(hidden[:, -1], cands, prior=torch.stack(priors), first_line=grid[0] * grid[1])
        candidates = [Candidates.patches(*grid).with_text_lines(lay.span_boxes) for lay in layouts]
        return logits, candidates


def save_grounder(model: TrainableGrounder, folder: str | Path, info: dict | None = None) -> Path:
    """Write a grounder folder: the backbone with transformers' save_pretrained (the engine loads it),
    and grounder.safetensors with the line encoder, the anchor map, the head and the spec."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.backbone.save_pretrained(folder)
    meta = dict(spec=model.spec.to_dict(), byte_dim=model.byte_dim, info=info or {},
                head=model.head.config.to_dict())
    tensors = {f"head.{k}": v.detach().contiguous() for k, v in model.head.state_dict().items()}
    tensors.update({f"lines.{k}": v.detach().contiguous() for k, v in model.lines.state_dict().items()})
    tensors.update({f"anchors.{k}": v.detach().contiguous() for k, v in model.anchors.state_dict().items()})
    save_file(tensors, str(folder / GROUNDER_FILE), metadata={"format": "pt", "vlagent_grounder": json.dumps(meta)})
    return folder


# ---------------------------------------------------------------- examples

@dataclass
class Screen:
    path: Path
    records: list[GroundingRecord]


class ScreenSampler:
    """Draws training screens so that a small real source is not drowned by thousands of synthetic
    screens: a kind of source (the part of `source` before ':' — synthetic, gtk, web, practice) is picked
    with probability proportional to the square root of its screen count, then a screen of it uniformly."""

    def __init__(self, screens: Sequence[Screen]):
        groups: dict[str, list[Screen]] = {}
        for screen in screens:
            groups.setdefault(screen.records[0].source.split(":")[0], []).append(screen)
        self.groups = [groups[k] for k in sorted(groups)]
        self.weights = [math.sqrt(len(g)) for g in self.groups]

    def draw(self, rng: random.Random) -> Screen:
        group = rng.choices(self.groups, weights=self.weights)[0]
        return rng.choice(group)


def group_screens(records: Iterable[GroundingRecord]) -> list[Screen]:
    by_path: dict[Path, list[GroundingRecord]] = {}
    for r in records:
        by_path.setdefault(r.image_path, []).append(r)
    return [Screen(p, rs) for p, rs in by_path.items()]


def _target(record: GroundingRecord) -> torch.Tensor:
    return torch.tensor(record.box, dtype=torch.float32)


class ImageCache:
    """Screens resized to the model input, kept as uint8 (a 640x352 screen is 0.7 MB)."""

    def __init__(self, spec: GrounderSpec):
        self.spec, self.images = spec, {}

    def get(self, path: Path) -> Image.Image:
        if path not in self.images:
            with Image.open(path) as im:
                h, w = self.spec.input_size(*im.size)
                self.images[path] = im.convert("RGB").resize((w, h), Image.Resampling.BILINEAR)
        return self.images[path]


# ---------------------------------------------------------------- the loop

def warmup_cosine(step: int, steps: int, warmup: int) -> float:
    """The learning-rate factor at `step`: linear warm-up, then cosine down to 5 %."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def train(train_records: Sequence[GroundingRecord], val_records: Sequence[GroundingRecord], out: str | Path,
          cfg: TrainConfig, *, ocr: OcrFunction | None = None, resume: bool = False,
          log: Callable[[str], None] = print, progress: Callable[[int, dict], None] | None = None) -> Path:
    """Train, checkpoint, evaluate on `val_records`, and write the grounder folder `out`; returns it."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    screens = group_screens(train_records)
    if not screens:
        raise ValueError("no training records")
    sampler = ScreenSampler(screens)
    model = TrainableGrounder(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: warmup_cosine(s, cfg.steps, cfg.warmup))
    step = 0
    ckpt = out / "checkpoint.pt"
    if resume and ckpt.exists():
        step = load_checkpoint(ckpt, model, opt, sched, rng)["step"]
        log(f"resumed from {ckpt} at step {step}")
    images, ocr_cache = ImageCache(cfg.spec), {}
    labels = [r.instruction for r in train_records]
    history: list[dict] = []
    t0 = time.perf_counter()
    model.train()
    while step < cfg.steps:
        losses = []
        opt.zero_grad()
        batch = [sampler.draw(rng) for _ in range(cfg.screens_per_step)]
        n = sum(min(len(s.records), cfg.instructions_per_screen) for s in batch)
        for screen in batch:
            picked = rng.sample(screen.records, min(len(screen.records), cfg.instructions_per_screen))
            lines = record_lines(picked[0], ocr, ocr_cache)
            noisy = noisy_lines(lines, rng, cfg.ocr_noise)
            negative = [rng.random() < cfg.negatives for _ in picked]
            instructions = [_absent_instruction(rng, labels, lines) if neg else r.instruction
                            for r, neg in zip(picked, negative)]
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
                features = model.screen_features(images.get(screen.path))
                logits, cands = model.forward_batch(features, instructions, noisy)  # the vision tower ran once
            kinds = torch.tensor([model.head.config.action_kinds.index(KIND_OF_ACTION.get(r.action, "click"))
                                  for r in picked])
            targets = [None if neg else _target(r) for r, neg in zip(picked, negative)]
            loss, parts = grounding_loss(logits, targets, cands, kinds=kinds)
            (loss * len(picked) / n).backward()
            losses.append(parts["pointer"])
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        step += 1
        info = dict(step=step, loss=sum(losses) / len(losses), lr=sched.get_last_lr()[0],
                    seconds=round(time.perf_counter() - t0, 1))
        if val_records and (step % cfg.eval_every == 0 or step == cfg.steps):
            info["val_accuracy"] = evaluate(model, val_records, ocr, ocr_cache, images)
            model.train()
        history.append(info)
        if progress is not None:
            progress(step, info)
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            save_checkpoint(ckpt, model, opt, sched, rng, step)
    final = dict(history[-1]) if history else {}
    save_grounder(model, out, info=dict(steps=cfg.steps, seed=cfg.seed, train_records=len(train_records),
                                        train_seconds=round(time.perf_counter() - t0, 1), final=final))
    with open(out / "train_log.jsonl", "a" if resume else "w") as f:  # a resumed run adds its part
        f.writelines(json.dumps(h) + "\n" for h in history)
    if val_records:
        from vlagent.grounding.calibrate import calibrate_threshold, calibration_records, write_threshold
        from vlagent.model.grounder import load_grounder

        with_text = calibration_records(val_records)
        if with_text:
            calibration = calibrate_threshold(load_grounder(out), with_text)
            write_threshold(out, calibration)
            log(f"match boost {calibration.match_boost:g} (validation accuracy {calibration.accuracy:.1%}); "
                f"not found below {calibration.threshold:.2f} or under {calibration.none_ratio:g} x nothing-here: "
                f"refuses {calibration.refused:.1%} of "
                f"{calibration.targets} validation targets, rejects {calibration.rejected:.1%} of "
                f"{calibration.negatives} negatives")
    return out


def _absent_instruction(rng: random.Random, labels: Sequence[str], lines: Sequence[TextLine]) -> str:
    """An instruction from another screen whose words appear in none of this screen's lines."""
    on_screen = " ".join(ln.text.lower() for ln in lines)
    for _ in range(20):
        candidate = rng.choice(labels)
        words = [w for w in candidate.lower().replace("'", " ").split() if len(w) > 3]
        if words and not any(w in on_screen for w in words):
            return candidate
    return "the " + "".join(rng.choice("bcdfghjklmnpqrstvwxz") for _ in range(7)) + " button"


@torch.no_grad()
def evaluate(model: TrainableGrounder, records: Sequence[GroundingRecord], ocr: OcrFunction | None,
             ocr_cache: dict, images: ImageCache, limit: int = 200) -> float:
    """Share of records whose predicted point lies inside the target box (clean OCR lines)."""
    model.eval()
    hits = 0
    sample = list(records)[:limit]
    features: dict[Path, tuple] = {}
    for record in sample:
        if record.image_path not in features:
            features[record.image_path] = model.screen_features(images.get(record.image_path))
        logits, cands = model.forward_one(features[record.image_path], record.instruction,
                                          record_lines(record, ocr, ocr_cache))
        pred = decode_logits(logits, cands)
        hits += record.contains(pred.point)
    return hits / max(1, len(sample))


def save_checkpoint(path: Path, model, opt, sched, rng: random.Random, step: int, **extra) -> None:
    """Everything a run needs to go on (weights, optimizer, schedule, random state, step, `extra`),
    written atomically."""
    tmp = path.with_suffix(".tmp")
    torch.save(dict(model=model.state_dict(), optimizer=opt.state_dict(), schedule=sched.state_dict(),
                    rng=rng.getstate(), torch_rng=torch.get_rng_state(), step=step, **extra), tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path, model, opt, sched, rng: random.Random) -> dict:
    """Restore what save_checkpoint wrote into the given objects; returns the whole state (step, extras)."""
    state = torch.load(path, weights_only=False)
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["schedule"])
    rng.setstate(state["rng"])
    torch.set_rng_state(state["torch_rng"])
    return state
