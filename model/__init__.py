"""The Qwen3.5 engine: `load_model(path, device="cpu", dtype=torch.float32)`.

    from vlagent.model import load_model
    model = load_model("path/to/Qwen3.5-checkpoint", dtype=torch.bfloat16)
    out = model(input_ids=ids)                      # out.logits [batch, seq, vocab]
    seq = model.generate(input_ids=ids, max_new_tokens=32)   # prompt + new tokens

The engine's names below are imported on first use, not with the package: `vlagent.model.resize`
(the image-size rule the API policies share with the processor) needs no torch, and the base
install, which has no torch, imports it through this package.
"""

from __future__ import annotations

import importlib
from typing import Any

# public name -> the module that defines it
_ENGINE_EXPORTS = {
    "ConfigError": "config",
    "ModelConfig": "config",
    "TextConfig": "config",
    "VisionConfig": "config",
    "load_config": "config",
    "GenerationOptions": "generate",
    "GenerationResult": "generate",
    "MTPDrafter": "generate",
    "generate": "generate",
    "CheckpointError": "loader",
    "load_model": "loader",
    "PromptCache": "prompt_cache",
    "Cache": "qwen35",
    "ModelOutput": "qwen35",
    "Qwen35ForConditionalGeneration": "qwen35",
}


def __getattr__(name: str) -> Any:
    if name not in _ENGINE_EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    # All at once, and bound over the submodule attributes the imports set (`generate` is both
    # a submodule and a function: the package attribute must be the function).
    for export, module in _ENGINE_EXPORTS.items():
        globals()[export] = getattr(importlib.import_module(f".{module}", __name__), export)
    return globals()[name]


__all__ = sorted(_ENGINE_EXPORTS)
