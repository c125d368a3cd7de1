"""Qwen3.5 configuration as plain dataclasses, read from a Hugging Face config.json.

`load_config(path_or_dict)` accepts a checkpoint folder, a config.json path, or the
already-parsed dict, and returns a `ModelConfig` (text decoder + vision tower + the
multimodal token ids). Only the Qwen3.5 families are accepted; anything else is refused
with a message naming the model type.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

SUPPORTED_MODEL_TYPES = ("qwen3_5", "qwen3_5_moe")


class ConfigError(ValueError):
    """The config cannot describe a model this engine runs."""


@dataclass
class TextConfig:
    vocab_size: int = 248320
    hidden_size: int = 4096
    intermediate_size: int = 12288  # dense MLP width (unused by MoE layers)
    num_hidden_layers: int = 32
    num_attention_heads: int = 16
    num_key_value_heads: int = 4
    head_dim: int = 256
    hidden_act: str = "silu"
    max_position_embeddings: int = 32768
    rms_norm_eps: float = 1e-6
    attention_bias: bool = False
    # rotary: partial (first rotary_dim dims of each head), 3 M-RoPE sections (t, h, w)
    rope_theta: float = 10000.0
    partial_rotary_factor: float = 0.25
    mrope_section: list[int] = field(default_factory=lambda: [11, 11, 10])
    mrope_interleaved: bool = True
    # Gated DeltaNet ("linear_attention") layers
    linear_conv_kernel_dim: int = 4
    linear_key_head_dim: int = 128
    linear_value_head_dim: int = 128
    linear_num_key_heads: int = 16
    linear_num_value_heads: int = 32
    layer_types: list[str] = field(default_factory=list)
    # MoE (num_experts == 0 means dense MLP everywhere)
    num_experts: int = 0
    num_experts_per_tok: int = 0
    moe_intermediate_size: int = 0
    shared_expert_intermediate_size: int = 0
    norm_topk_prob: bool = True
    # multi-token prediction head
    mtp_num_hidden_layers: int = 0
    tie_word_embeddings: bool = False
    eos_token_id: list[int] = field(default_factory=list)
    pad_token_id: int | None = None
    bos_token_id: int | None = None

    @property
    def is_moe(self) -> bool:
        return self.num_experts > 0

    @property
    def rotary_dim(self) -> int:
        return int(self.head_dim * self.partial_rotary_factor)

    @property
    def linear_key_dim(self) -> int:
        return self.linear_num_key_heads * self.linear_key_head_dim

    @property
    def linear_value_dim(self) -> int:
        return self.linear_num_value_heads * self.linear_value_head_dim

    def validate(self) -> None:
        if len(self.layer_types) != self.num_hidden_layers:
            raise ConfigError(
                f"layer_types has {len(self.layer_types)} entries but num_hidden_layers is {self.num_hidden_layers}"
            )
        bad = sorted({t for t in self.layer_types if t not in ("linear_attention", "full_attention")})
        if bad:
            raise ConfigError(f"unknown layer types {bad}; expected 'linear_attention' or 'full_attention'")
        if self.num_attention_heads % self.num_key_value_heads:
            raise ConfigError(
                f"num_attention_heads ({self.num_attention_heads}) is not a multiple of "
                f"num_key_value_heads ({self.num_key_value_heads})"
            )
        if self.linear_num_value_heads % self.linear_num_key_heads:
            raise ConfigError(
                f"linear_num_value_heads ({self.linear_num_value_heads}) is not a multiple of "
                f"linear_num_key_heads ({self.linear_num_key_heads})"
            )
        if len(self.mrope_section) != 3:
            raise ConfigError(f"mrope_section must have 3 entries (t, h, w), got {self.mrope_section}")
        if self.is_moe and not (0 < self.num_experts_per_tok <= self.num_experts):
            raise ConfigError(f"num_experts_per_tok={self.num_experts_per_tok} with num_experts={self.num_experts}")


@dataclass
class VisionConfig:
    depth: int = 27
    hidden_size: int = 1152
    hidden_act: str = "gelu_pytorch_tanh"
    intermediate_size: int = 4304
    num_heads: int = 16
    in_channels: int = 3
    patch_size: int = 16
    temporal_patch_size: int = 2
    spatial_merge_size: int = 2
    out_hidden_size: int = 3584
    num_position_embeddings: int = 2304
    rope_theta: float = 10000.0
    deepstack_visual_indexes: list[int] = field(default_factory=list)  # Qwen3-VL style; empty for Qwen3.5
    initializer_range: float = 0.02

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def patch_dim(self) -> int:
        """Length of one flattened patch in pixel_values: C * T * P * P."""
        return self.in_channels * self.temporal_patch_size * self.patch_size * self.patch_size


@dataclass
class ModelConfig:
    text: TextConfig
    vision: VisionConfig
    model_type: str = "qwen3_5"
    image_token_id: int = 248056
    video_token_id: int = 248057
    vision_start_token_id: int = 248053
    vision_end_token_id: int = 248054
    tie_word_embeddings: bool = False

    @property
    def eos_token_ids(self) -> list[int]:
        return list(self.text.eos_token_id)


def _pick(cls, d: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in d.items() if k in names}


def _as_int_list(value: Any) -> list[int]:
    if value is None:
        return []
    if isinstance(value, int):
        return [value]
    return [int(v) for v in value]


def _text_config(d: dict[str, Any], tie: bool) -> TextConfig:
    d = dict(d)
    rope = d.pop("rope_parameters", None) or d.pop("rope_scaling", None) or {}
    kw = _pick(TextConfig, d)
    kw["rope_theta"] = float(rope.get("rope_theta", d.get("rope_theta", 10000.0)))
    kw["partial_rotary_factor"] = float(rope.get("partial_rotary_factor", d.get("partial_rotary_factor", 0.25)))
    rope_type = rope.get("rope_type", rope.get("type", "default"))
    if rope_type not in ("default", "mrope", None):
        raise ConfigError(f"rope_type {rope_type!r} is not supported (only plain M-RoPE, 'default')")
    kw["mrope_section"] = list(rope.get("mrope_section", [11, 11, 10]))
    kw["mrope_interleaved"] = bool(rope.get("mrope_interleaved", True))
    if not kw.get("layer_types"):
        interval = int(d.get("full_attention_interval", 4))
        kw["layer_types"] = [
            "full_attention" if (i + 1) % interval == 0 else "linear_attention"
            for i in range(int(d.get("num_hidden_layers", TextConfig.num_hidden_layers)))
        ]
    kw["eos_token_id"] = _as_int_list(d.get("eos_token_id"))
    kw["tie_word_embeddings"] = tie
    # dense checkpoints carry no MoE keys; MoE ones always have num_experts
    cfg = TextConfig(**kw)
    cfg.validate()
    return cfg


def _vision_config(d: dict[str, Any]) -> VisionConfig:
    d = dict(d or {})
    rope = d.pop("rope_parameters", None) or {}
    kw = _pick(VisionConfig, d)
    for key in ("patch_size", "temporal_patch_size"):
        if isinstance(kw.get(key), (list, tuple)):
            kw[key] = int(kw[key][0])
    if "rope_theta" in rope:
        kw["rope_theta"] = float(rope["rope_theta"])
    kw["deepstack_visual_indexes"] = list(d.get("deepstack_visual_indexes") or [])
    return VisionConfig(**kw)


def load_config(path_or_dict: str | Path | dict[str, Any]) -> ModelConfig:
    """Read a Qwen3.5 (dense or MoE) config.json into a `ModelConfig`.

    `path_or_dict` may be a checkpoint folder, the path of its config.json, or the parsed
    dict. eos ids come from generation_config.json next to config.json when it exists
    (that is what generation stops on), else from the text config.
    """
    folder: Path | None = None
    if isinstance(path_or_dict, dict):
        raw = path_or_dict
    else:
        p = Path(path_or_dict)
        if p.is_dir():
            folder, p = p, p / "config.json"
        else:
            folder = p.parent
        if not p.exists():
            raise ConfigError(f"no config.json at {p}")
        raw = json.loads(p.read_text())

    model_type = raw.get("model_type")
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise ConfigError(
            f"unsupported model_type {model_type!r}: this engine runs only {', '.join(SUPPORTED_MODEL_TYPES)} "
            "(Qwen3.5 dense and MoE checkpoints)"
        )
    if "text_config" not in raw:
        raise ConfigError("config has no text_config: expected a Qwen3.5 multimodal (…ForConditionalGeneration) config")

    tie = bool(raw.get("tie_word_embeddings", raw["text_config"].get("tie_word_embeddings", False)))
    text = _text_config(raw["text_config"], tie)
    if folder is not None and (folder / "generation_config.json").exists():
        gen = json.loads((folder / "generation_config.json").read_text())
        if gen.get("eos_token_id") is not None:
            text.eos_token_id = _as_int_list(gen["eos_token_id"])
    if not text.eos_token_id and raw.get("eos_token_id") is not None:
        text.eos_token_id = _as_int_list(raw["eos_token_id"])

    kw = _pick(ModelConfig, raw)
    kw.pop("text", None)
    kw.pop("vision", None)
    kw["model_type"] = model_type
    kw["tie_word_embeddings"] = tie
    return ModelConfig(text=text, vision=_vision_config(raw.get("vision_config")), **kw)
