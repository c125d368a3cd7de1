"""The Qwen3.5 engine: `load_model(path, device="cpu", dtype=torch.float32)`.

    from vlagent.model import load_model
    model = load_model("path/to/Qwen3.5-checkpoint", dtype=torch.bfloat16)
    out = model(input_ids=ids)                      # out.logits [batch, seq, vocab]
    seq = model.generate(input_ids=ids, max_new_tokens=32)   # prompt + new tokens
"""

from .config import ConfigError, ModelConfig, TextConfig, VisionConfig, load_config
from .generate import GenerationResult, MTPDrafter, generate
from .loader import CheckpointError, load_model
from .prompt_cache import PromptCache
from .qwen35 import Cache, ModelOutput, Qwen35ForConditionalGeneration

__all__ = [
    "Cache",
    "CheckpointError",
    "ConfigError",
    "GenerationResult",
    "MTPDrafter",
    "ModelConfig",
    "ModelOutput",
    "PromptCache",
    "Qwen35ForConditionalGeneration",
    "TextConfig",
    "VisionConfig",
    "generate",
    "load_config",
    "load_model",
]
