"""Load a Hugging Face Qwen3.5 checkpoint (single or sharded safetensors) into the engine.

Each safetensors file (the single `model.safetensors`, or every shard listed in
`model.safetensors.index.json`) is memory-mapped read-only, one map at a time, and each
tensor is copied from the mapped bytes straight into its (already allocated, uninitialised)
engine parameter, converting to the requested dtype and device on the copy, so a bf16 load
never holds an fp32 copy of the model. Mapped file pages count in the process's resident
memory once touched, so after each chunk of a tensor is copied its pages are dropped from the
resident set again (`madvise(MADV_DONTNEED)`, where the platform has it): a load peaks at
about the model's size plus one chunk, not the model plus the file. HF names map onto engine
parameters (or row slices of fused ones, e.g. q_proj/k_proj/v_proj -> qkv_proj); every
checkpoint tensor must have a destination and every destination must be written, else
`CheckpointError` names the missing, unexpected or mis-shaped tensors (a truncated file: the file
and a tensor whose data runs past its end).
"""

from __future__ import annotations

import json
import mmap
import os
import re
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

from .config import ModelConfig, load_config
from .qwen35 import Attention, DecoderLayer, GatedDeltaNet, MLP, MoE, MTP, Qwen35ForConditionalGeneration


class CheckpointError(ValueError):
    """The checkpoint's tensors do not match the model its config describes."""


TEXT_PREFIX = "model.language_model."
VISION_PREFIX = "model.visual."

# A destination: the engine tensor (or a view of it) a checkpoint tensor is copied into,
# and an optional reshape of the source (e.g. conv1d [D,1,W] -> [D,W]).
Dest = tuple[Tensor, Callable[[Tensor], Tensor] | None]


def checkpoint_files(folder: Path) -> dict[str, Path]:
    """Map each tensor name to the safetensors file that holds it."""
    index = folder / "model.safetensors.index.json"
    if index.exists():
        weight_map = json.loads(index.read_text())["weight_map"]
        files = {name: folder / f for name, f in weight_map.items()}
        for f in set(files.values()):
            if not f.exists():
                raise CheckpointError(f"index lists shard {f.name}, which is not in {folder}")
        return files
    single = folder / "model.safetensors"
    if single.exists():
        with open(single, "rb") as fh:
            return {name: single for name in read_safetensors_header(fh)[0]}
    raise CheckpointError(f"no model.safetensors or model.safetensors.index.json in {folder}")


_SAFETENSORS_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
    "BOOL": torch.bool,
}


def read_safetensors_header(fh) -> tuple[dict, int]:
    """(tensor name -> {dtype, shape, data_offsets}, byte offset where tensor data starts).

    Every entry is checked for its form (a dtype name, a shape of sizes, two ordered offsets), so a
    corrupt header is a CheckpointError here, not a KeyError or a huge allocation later."""
    size_bytes = fh.read(8)
    if len(size_bytes) != 8:
        raise CheckpointError(f"{fh.name} is too short to be a safetensors file")
    size = int.from_bytes(size_bytes, "little")
    try:
        file_size = os.fstat(fh.fileno()).st_size
    except (AttributeError, OSError, ValueError):
        file_size = None
    if file_size is not None and size > file_size - 8:  # a flipped high byte asks for petabytes
        raise CheckpointError(f"{fh.name} is truncated or corrupt: its safetensors header claims {size} bytes, "
                              f"but the file has {file_size}")
    try:
        header = json.loads(fh.read(size))
    except ValueError as e:
        raise CheckpointError(f"{fh.name} has an unreadable safetensors header: {e}") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{fh.name} has an unreadable safetensors header: a JSON {type(header).__name__}, "
                              "not an object")
    header.pop("__metadata__", None)
    for name, entry in header.items():
        problem = _entry_problem(entry)
        if problem:
            raise CheckpointError(f"{fh.name} has a corrupt safetensors header: tensor {name!r} {problem}")
    return header, 8 + size


def _entry_problem(entry: object) -> str | None:
    """What is wrong with the form of one safetensors header entry, or None."""
    if not isinstance(entry, dict):
        return f"is described by a JSON {type(entry).__name__}, not an object"
    if not isinstance(entry.get("dtype"), str):
        return f"has no dtype name (dtype {entry.get('dtype')!r})"
    shape, offsets = entry.get("shape"), entry.get("data_offsets")
    if not isinstance(shape, list) or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape):
        return f"has a shape that is not a list of sizes ({shape!r})"
    if (not isinstance(offsets, list) or len(offsets) != 2
            or not all(isinstance(n, int) and not isinstance(n, bool) for n in offsets)
            or not 0 <= offsets[0] <= offsets[1]):
        return f"has data_offsets that are not two ordered byte offsets ({offsets!r})"
    return None


# Source bytes copied (and then dropped from the resident set) per step of a large tensor:
# bounds the load's peak RSS at model size + this, even for a multi-GB embedding.
COPY_CHUNK_BYTES = 64 << 20


def _drop_pages(mm: mmap.mmap, start: int, length: int) -> None:
    """Drop the mapped pages of [start, start+length) from this process's resident set.

    The map is read-only and file-backed, so the pages stay in the page cache and a later
    access just faults them back in; only our RSS shrinks."""
    if length <= 0 or not hasattr(mmap, "MADV_DONTNEED"):
        return
    aligned = start - start % mmap.PAGESIZE  # madvise needs a page-aligned start
    mm.madvise(mmap.MADV_DONTNEED, aligned, length + (start - aligned))


def _copy_rows(mm: mmap.mmap, offset: int, dtype: torch.dtype, shape: tuple[int, ...],
               dst: Tensor, reshape) -> None:
    """Copy a tensor of `shape`/`dtype` at byte `offset` of the map into `dst`, in row chunks."""
    row_bytes = max(1, dtype.itemsize * (torch.Size(shape[1:]).numel() if shape else 1))
    n_rows = shape[0] if shape else 1
    # A reshape (conv1d squeeze) is defined on the whole source tensor; those are tiny.
    step = n_rows if reshape is not None or not shape else max(1, COPY_CHUNK_BYTES // row_bytes)
    for row in range(0, n_rows, step):
        rows = min(step, n_rows - row)
        start, length = offset + row * row_bytes, rows * row_bytes
        src = None
        try:
            src = torch.frombuffer(mm, dtype=torch.uint8, count=length, offset=start).view(dtype)
            if not shape:
                dst.copy_(src.reshape(()))
            elif reshape is not None:
                dst.copy_(reshape(src.reshape(shape)))
            else:
                dst.narrow(0, row, rows).copy_(src.reshape(rows, *shape[1:]))
        finally:
            src = None  # release the map's exported buffer, even on error, so the map can close
        _drop_pages(mm, start, length)


def _read_tensor(mm: mmap.mmap, file: Path, data_start: int, name: str, entry: dict, dst: Tensor, reshape) -> None:
    """Copy one tensor from the shard's memory map into `dst` (dtype/device converted on the copy)."""
    dtype = _SAFETENSORS_DTYPES.get(entry["dtype"])
    if dtype is None:
        raise CheckpointError(f"{name}: unsupported safetensors dtype {entry['dtype']}")
    begin, end = entry["data_offsets"]
    shape = tuple(entry["shape"])
    n_bytes = end - begin
    if torch.Size(shape).numel() * dtype.itemsize != n_bytes:
        raise CheckpointError(f"{name}: {n_bytes} bytes in the file for shape {list(shape)} {entry['dtype']}")
    if begin < 0 or data_start + end > len(mm):
        raise CheckpointError(
            f"{file.name} is truncated: tensor {name} needs bytes {data_start + begin}..{data_start + end} "
            f"but the file has {len(mm)} bytes"
        )
    if n_bytes:
        _copy_rows(mm, data_start + begin, dtype, shape, dst, reshape)


def _rows(t: Tensor, start: int, length: int) -> Tensor:
    return t.narrow(0, start, length)


def _layer_dests(layer: DecoderLayer, prefix: str, names: set[str], out: dict[str, Dest]) -> None:
    """Destinations for one decoder layer's HF tensors under `prefix` (ends with '.')."""
    out[prefix + "input_layernorm.weight"] = (layer.input_norm.weight, None)
    out[prefix + "post_attention_layernorm.weight"] = (layer.post_norm.weight, None)
    mixer = layer.mixer
    if isinstance(mixer, GatedDeltaNet):
        p = prefix + "linear_attn."
        c, v, n = mixer.conv_dim, mixer.value_dim, mixer.nv
        out[p + "in_proj_qkv.weight"] = (_rows(mixer.in_proj, 0, c), None)
        out[p + "in_proj_z.weight"] = (_rows(mixer.in_proj, c, v), None)
        out[p + "in_proj_b.weight"] = (_rows(mixer.in_proj, c + v, n), None)
        out[p + "in_proj_a.weight"] = (_rows(mixer.in_proj, c + v + n, n), None)
        out[p + "conv1d.weight"] = (mixer.conv_weight, lambda t: t.squeeze(1) if t.dim() == 3 else t)
        out[p + "A_log"] = (mixer.A_log, None)
        out[p + "dt_bias"] = (mixer.dt_bias, None)
        out[p + "norm.weight"] = (mixer.norm_weight, None)
        out[p + "out_proj.weight"] = (mixer.out_proj, None)
    else:
        assert isinstance(mixer, Attention)
        p = prefix + "self_attn."
        qs, kvs = mixer.q_size, mixer.kv_size
        out[p + "q_proj.weight"] = (_rows(mixer.qkv_proj, 0, qs), None)
        out[p + "k_proj.weight"] = (_rows(mixer.qkv_proj, qs, kvs), None)
        out[p + "v_proj.weight"] = (_rows(mixer.qkv_proj, qs + kvs, kvs), None)
        if mixer.qkv_bias is not None:
            out[p + "q_proj.bias"] = (_rows(mixer.qkv_bias, 0, qs), None)
            out[p + "k_proj.bias"] = (_rows(mixer.qkv_bias, qs, kvs), None)
            out[p + "v_proj.bias"] = (_rows(mixer.qkv_bias, qs + kvs, kvs), None)
            out[p + "o_proj.bias"] = (mixer.o_bias, None)
        out[p + "o_proj.weight"] = (mixer.o_proj, None)
        out[p + "q_norm.weight"] = (mixer.q_norm, None)
        out[p + "k_norm.weight"] = (mixer.k_norm, None)
    mlp = layer.mlp
    p = prefix + "mlp."
    if isinstance(mlp, MLP):
        out[p + "gate_proj.weight"] = (_rows(mlp.gate_up, 0, mlp.inter), None)
        out[p + "up_proj.weight"] = (_rows(mlp.gate_up, mlp.inter, mlp.inter), None)
        out[p + "down_proj.weight"] = (mlp.down, None)
    else:
        assert isinstance(mlp, MoE)
        out[p + "gate.weight"] = (mlp.router, None)
        if p + "experts.gate_up_proj" in names or p + "experts.down_proj" in names:
            # transformers' fused in-memory layout [E, 2I, H] / [E, H, I]
            out[p + "experts.gate_up_proj"] = (mlp.w_gate_up, None)
            out[p + "experts.down_proj"] = (mlp.w_down, None)
        else:  # released checkpoints: one Linear per expert
            inter = mlp.w_down.shape[2]
            for e in range(mlp.w_gate_up.shape[0]):
                out[p + f"experts.{e}.gate_proj.weight"] = (mlp.w_gate_up[e, :inter], None)
                out[p + f"experts.{e}.up_proj.weight"] = (mlp.w_gate_up[e, inter:], None)
                out[p + f"experts.{e}.down_proj.weight"] = (mlp.w_down[e], None)
        if mlp.has_shared:
            s = mlp.shared_down.shape[1]
            out[p + "shared_expert.gate_proj.weight"] = (_rows(mlp.shared_gate_up, 0, s), None)
            out[p + "shared_expert.up_proj.weight"] = (_rows(mlp.shared_gate_up, s, s), None)
            out[p + "shared_expert.down_proj.weight"] = (mlp.shared_down, None)
            out[p + "shared_expert_gate.weight"] = (mlp.shared_gate, None)


def destinations(model: Qwen35ForConditionalGeneration, names: set[str]) -> dict[str, Dest]:
    """Every HF tensor name the model expects, mapped to where it goes."""
    out: dict[str, Dest] = {TEXT_PREFIX + "embed_tokens.weight": (model.embed_tokens, None),
                            TEXT_PREFIX + "norm.weight": (model.norm.weight, None)}
    if model.lm_head is not None:
        out["lm_head.weight"] = (model.lm_head, None)
    for i, layer in enumerate(model.layers):
        _layer_dests(layer, f"{TEXT_PREFIX}layers.{i}.", names, out)
    if model.mtp is not None:
        mtp: MTP = model.mtp
        out["mtp.fc.weight"] = (mtp.fc, None)
        out["mtp.pre_fc_norm_embedding.weight"] = (mtp.pre_fc_norm_embedding.weight, None)
        out["mtp.pre_fc_norm_hidden.weight"] = (mtp.pre_fc_norm_hidden.weight, None)
        out["mtp.norm.weight"] = (mtp.norm.weight, None)
        for j, layer in enumerate(mtp.layers):
            _layer_dests(layer, f"mtp.layers.{j}.", names, out)
    if model.visual is not None:
        for name, p in model.visual.named_parameters():
            out[VISION_PREFIX + name] = (p, None)
        for name, b in model.visual.named_buffers():
            if VISION_PREFIX + name in names:  # persistent buffers saved by HF, if any
                out[VISION_PREFIX + name] = (b, None)
    return out


def _mtp_layer_count(names: set[str]) -> int:
    idx = {int(m.group(1)) for n in names if (m := re.match(r"mtp\.layers\.(\d+)\.", n))}
    return max(idx) + 1 if idx else 0


def _short_list(items: list[str], limit: int = 8) -> str:
    items = sorted(items)
    more = f" … and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def _load_shard(file: Path, tensor_names: list[str], dests: dict[str, Dest]) -> list[str]:
    """Copy `tensor_names` from one safetensors file into their destinations; return mis-shaped ones."""
    mis_shaped = []
    with open(file, "rb") as fh:
        header, data_start = read_safetensors_header(fh)
        # ACCESS_READ (shared, read-only) rather than ACCESS_COPY: the pages we touch can only
        # ever be the page cache's own, which MADV_DONTNEED drops from our RSS (a stray write to
        # a copy-on-write map would pin a private copy), and a private writable map of the whole
        # file is charged against the commit limit under strict overcommit.
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm, warnings.catch_warnings():
            # torch.frombuffer warns that the read-only buffer gives a non-writable tensor;
            # those tensors are only ever copied from.
            warnings.filterwarnings("ignore", message="The given buffer is not writable")
            for name in tensor_names:
                dst, reshape = dests[name]
                entry = header.get(name)
                if entry is None:
                    raise CheckpointError(f"the index puts {name} in {file.name}, but that file does not hold it")
                shape = tuple(entry["shape"])
                src_shape = shape
                if reshape is not None and len(shape) == 3 and shape[1] == 1:
                    src_shape = (shape[0], shape[2])
                if tuple(src_shape) != tuple(dst.shape):
                    mis_shaped.append(f"{name}: checkpoint {list(shape)}, model expects {list(dst.shape)}")
                    continue
                _read_tensor(mm, file, data_start, name, entry, dst, reshape)
    return mis_shaped


def _ignored_tensors(config: ModelConfig, names: set[str], with_mtp: bool | None, no_vision: bool) -> set[str]:
    """Checkpoint tensors the engine does not load on purpose."""
    ignored = set()
    if config.tie_word_embeddings:
        ignored.add("lm_head.weight")  # tied: the embedding is the head; an explicit copy is redundant
    if with_mtp is False:
        ignored |= {n for n in names if n.startswith("mtp.")}
    if no_vision:
        ignored |= {n for n in names if n.startswith(VISION_PREFIX)}
    return ignored


def _check_tensor_names(folder: Path, dests: dict[str, Dest], names: set[str], ignored: set[str]) -> None:
    """CheckpointError naming the missing and the unexpected tensors, if any."""
    missing = [n for n in dests if n not in names]
    unexpected = [n for n in names if n not in dests and n not in ignored]
    problems = []
    if missing:
        problems.append(f"missing tensors ({len(missing)}): {_short_list(missing)}")
    if unexpected:
        problems.append(f"unexpected tensors ({len(unexpected)}): {_short_list(unexpected)}")
    if problems:
        raise CheckpointError(f"checkpoint {folder} does not match its config: " + "; ".join(problems))


def load_model(
    path: str | Path,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    *,
    backend: str = "auto",
    with_mtp: bool | None = None,
    with_vision: bool = True,
) -> Qwen35ForConditionalGeneration:
    """Load a Qwen3.5 checkpoint folder (config.json + safetensors) into the engine.

    with_mtp: None = load the MTP head when the checkpoint has `mtp.*` tensors; False = skip them.
    with_vision: False skips the vision tower (text-only use; `model.visual.*` tensors ignored).
    Raises ConfigError for an unsupported config and CheckpointError for tensor mismatches.

    Process-wide settings (they outlive this call and affect the whole process, other threads
    included):
    - on CPU, glibc's malloc thresholds are raised so that large activations come from the heap
      and freed ones stay there (cpu_tuning.keep_freed_memory_in_heap): faster prefill, but the
      process keeps its peak heap instead of returning it to the system. There is no scope to undo
      it in, since the blocks allocated meanwhile stay; set VLAGENT_MALLOC_TUNING=0 to skip it.
    - while the model decodes one token on a CPU without the few-row C kernel, oneDNN is switched
      off for the whole process (kernels.matvec_mode; back on when the last such step, in any
      thread, ends); a thread computing on the CPU meanwhile runs without it too.
    """
    if torch.device(device).type == "cpu":
        from .cpu_tuning import keep_freed_memory_in_heap

        keep_freed_memory_in_heap()
    folder = Path(path)
    config: ModelConfig = load_config(folder)
    files = checkpoint_files(folder)
    names = set(files)

    n_mtp = _mtp_layer_count(names)
    if with_mtp is False or n_mtp == 0:
        config.text.mtp_num_hidden_layers = 0
    else:
        config.text.mtp_num_hidden_layers = n_mtp
    model = Qwen35ForConditionalGeneration(config, dtype=dtype, device=device, backend=backend,
                                           with_mtp=config.text.mtp_num_hidden_layers > 0, with_vision=with_vision)
    dests = destinations(model, names)

    _check_tensor_names(folder, dests, names, _ignored_tensors(config, names, with_mtp, model.visual is None))
    by_file: dict[Path, list[str]] = {}
    for name in dests:
        by_file.setdefault(files[name], []).append(name)
    mis_shaped = []
    with torch.no_grad():
        for file, tensor_names in by_file.items():
            mis_shaped += _load_shard(file, tensor_names, dests)
    if mis_shaped:
        raise CheckpointError(
            f"checkpoint {folder} has mis-shaped tensors ({len(mis_shaped)}): " + "; ".join(mis_shaped[:8])
        )
    model.path = folder
    return model.eval()
