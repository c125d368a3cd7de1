"""A Qwen3.5 checkpoint with a grounding head: `local:CHECKPOINT[,head=FILE]`.

The head file comes from `vlagent train-grounding --base CHECKPOINT` (head-only training on the frozen
checkpoint). The engine reads the screenshot and the instruction in the prompt the head was trained on
(head_training.grounding_inputs); the head points over the screenshot's visual tokens. Without a head
file, `local:` grounds through the model's own tool-call coordinates instead (policy_grounder.py).
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
from PIL import Image

from vlagent.grounding.grounders.base import GroundingResult
from vlagent.grounding.grounders.head import result_of


def head_file_for(checkpoint: str | Path, head: str | Path | None = None) -> Path | None:
    """The head file to use: `head` when given (it must exist), else CHECKPOINT/grounding_head.safetensors
    when there is one, else None (ground through tool calls)."""
    from vlagent.grounding.head_training import HEAD_FILE

    if head is not None:
        path = Path(head)
        if path.is_dir():
            path = path / HEAD_FILE
        if not path.is_file():
            raise FileNotFoundError(f"no grounding head file at {path}")
        return path
    path = Path(checkpoint) / HEAD_FILE
    return path if path.is_file() else None


class CheckpointHeadGrounder:
    """`ground(image, instruction)` with the engine on CHECKPOINT and a trained grounding head."""

    def __init__(self, checkpoint: str | Path, head: str | Path, *, device: str = "cpu", dtype=None,
                 threshold: float = 0.3):
        from vlagent.model import load_model
        from vlagent.model.cpu_tuning import preferred_dtype
        from vlagent.model.grounding_head import load_head
        from vlagent.model.processor import Processor

        self.checkpoint = Path(checkpoint)
        if not (self.checkpoint / "config.json").is_file():
            raise FileNotFoundError(f"no Qwen3.5 checkpoint at {self.checkpoint} (config.json missing)")
        dtype = preferred_dtype(device) if dtype is None else dtype
        self.model = load_model(self.checkpoint, device=device, dtype=dtype)
        self.processor = Processor.from_pretrained(self.checkpoint)
        self.head = load_head(head, device=device)
        if self.head.config.hidden_size != self.model.config.text.hidden_size:
            raise ValueError(f"{head} is a head for hidden size {self.head.config.hidden_size}; "
                             f"{self.checkpoint} has {self.model.config.text.hidden_size}")
        self.threshold = threshold
        self.name = f"local:{os.path.basename(os.path.normpath(str(checkpoint)))}+head"

    @torch.no_grad()
    def ground(self, image: Image.Image, instruction: str, *, platform: str | None = None) -> GroundingResult:
        from vlagent.grounding.head_training import grounding_inputs
        from vlagent.model.grounding_head import decode_logits, screen_features

        inputs = grounding_inputs(self.processor, image.convert("RGB"), instruction)
        device, dtype = self.model.device, self.model.dtype
        action, visual, candidates = screen_features(
            self.model, inputs["input_ids"].to(device), inputs["pixel_values"].to(device, dtype),
            inputs["image_grid_thw"].to(device))
        out = self.head(action.to(self.head.query.weight.dtype), visual.to(self.head.query.weight.dtype))
        pred = decode_logits(out, candidates, threshold=self.threshold)
        return result_of(pred, self.head.config.action_kinds[int(out.kind[0].argmax())])
