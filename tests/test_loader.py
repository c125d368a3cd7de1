"""Checkpoint loading: clear errors for bad checkpoints, sharded files, dtypes, MTP, vision."""

from __future__ import annotations

import json
import mmap
import re
import shutil
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import load_file, save_file

from tiny_checkpoints import make_tiny_checkpoint, tiny_checkpoint
from vlagent.model import CheckpointError, ConfigError, load_config, load_model
from vlagent.model import loader
from vlagent.model.loader import read_safetensors_header

EMBED = "model.language_model.embed_tokens.weight"
QKV = "model.language_model.layers.0.linear_attn.in_proj_qkv.weight"


@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _copy(tmp_path, kind="dense"):
    dst = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoint(kind), dst)
    return dst


def _edit(folder, fn):
    tensors = load_file(folder / "model.safetensors")
    fn(tensors)
    save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})


def _ids():
    return torch.randint(11, 560, (1, 40), generator=torch.Generator().manual_seed(0))


def test_missing_tensor_is_named(tmp_path):
    folder = _copy(tmp_path)
    _edit(folder, lambda t: t.pop(QKV))
    with pytest.raises(CheckpointError, match="missing.*in_proj_qkv"):
        load_model(folder, with_vision=False)


def test_mis_shaped_tensor_is_named(tmp_path):
    folder = _copy(tmp_path)
    _edit(folder, lambda t: t.__setitem__(QKV, torch.zeros(5, 64)))
    with pytest.raises(CheckpointError, match=r"mis-shaped.*in_proj_qkv.weight: checkpoint \[5, 64\], model expects"):
        load_model(folder, with_vision=False)


def test_unexpected_tensor_is_named(tmp_path):
    folder = _copy(tmp_path)
    _edit(folder, lambda t: t.__setitem__("model.language_model.layers.0.surprise.weight", torch.zeros(3)))
    with pytest.raises(CheckpointError, match="unexpected.*layers.0.surprise.weight"):
        load_model(folder, with_vision=False)


def test_unknown_model_type_is_refused(tmp_path):
    folder = _copy(tmp_path)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["model_type"] = "llama"
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ConfigError, match="unsupported model_type 'llama'"):
        load_model(folder)
    with pytest.raises(ConfigError, match="no config.json"):
        load_config(tmp_path / "nowhere")


def test_sharded_checkpoint_loads_and_matches_single_file(tmp_path):
    sharded = make_tiny_checkpoint(tmp_path / "sharded", "moe", max_shard_size="60KB", with_tokenizer=False)
    index = json.loads((sharded / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) > 2
    a = load_model(sharded, with_vision=False)
    b = load_model(tiny_checkpoint("moe"), with_vision=False)
    assert a.mtp is not None
    assert torch.equal(a(input_ids=_ids()).logits, b(input_ids=_ids()).logits)


def test_missing_shard_file_is_named(tmp_path):
    folder = make_tiny_checkpoint(tmp_path / "sharded", "dense", max_shard_size="60KB", with_tokenizer=False)
    victim = sorted(folder.glob("model-0*.safetensors"))[0]
    victim.unlink()
    with pytest.raises(CheckpointError, match=victim.name):
        load_model(folder, with_vision=False)


def test_index_pointing_at_the_wrong_shard_is_named(tmp_path):
    folder = make_tiny_checkpoint(tmp_path / "sharded", "dense", max_shard_size="60KB", with_tokenizer=False)
    index_file = folder / "model.safetensors.index.json"
    index = json.loads(index_file.read_text())
    files = sorted(set(index["weight_map"].values()))
    name = next(n for n in index["weight_map"] if n.startswith("model.language_model."))
    wrong = next(f for f in files if f != index["weight_map"][name])
    index["weight_map"][name] = wrong
    index_file.write_text(json.dumps(index))
    with pytest.raises(CheckpointError, match=re.escape(f"{name} in {wrong}")):
        load_model(folder, with_vision=False)


def test_shards_are_memory_mapped_once_each_and_closed(tmp_path, monkeypatch):
    folder = make_tiny_checkpoint(tmp_path / "sharded", "dense", max_shard_size="60KB", with_tokenizer=False)
    shards = set(json.loads((folder / "model.safetensors.index.json").read_text())["weight_map"].values())
    maps, advice = [], []

    class CountingMap(mmap.mmap):
        def __new__(cls, *args, **kwargs):
            m = super().__new__(cls, *args, **kwargs)
            maps.append((m, kwargs.get("access")))
            return m

        def madvise(self, option, start, length):
            advice.append((option, start))
            return super().madvise(option, start, length)

    # only the loader's view of the mmap module is swapped
    monkeypatch.setattr(loader, "mmap", SimpleNamespace(**{**vars(mmap), "mmap": CountingMap}))
    model = load_model(folder)
    assert len(maps) == len(shards) > 2
    assert all(m.closed and access == mmap.ACCESS_READ for m, access in maps)
    if hasattr(mmap, "MADV_DONTNEED"):  # each copied tensor's pages are dropped, from a page-aligned start
        assert len(advice) >= len(loader.destinations(model, set()))
        assert all(opt == mmap.MADV_DONTNEED and start % mmap.PAGESIZE == 0 for opt, start in advice)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_chunked_copies_match_whole_tensor_copies(monkeypatch, dtype):
    whole = load_model(tiny_checkpoint("moe"), dtype=dtype, with_vision=False)
    monkeypatch.setattr(loader, "COPY_CHUNK_BYTES", 100)  # a row or a few per chunk
    chunked = load_model(tiny_checkpoint("moe"), dtype=dtype, with_vision=False)
    for (name, a), b in zip(whole.state_dict().items(), chunked.state_dict().values()):
        assert torch.equal(a, b), name


def test_truncated_shard_names_file_and_tensor(tmp_path):
    folder = make_tiny_checkpoint(tmp_path / "sharded", "dense", max_shard_size="60KB", with_tokenizer=False)
    for shard in sorted(folder.glob("model-0*.safetensors")):
        with open(shard, "rb") as fh:
            header, data_start = read_safetensors_header(fh)
        last = max(header, key=lambda n: header[n]["data_offsets"][1])
        if len(header) > 1 and last.startswith("model.language_model."):
            break
    begin, end = header[last]["data_offsets"]
    with open(shard, "r+b") as fh:  # cut the file in the middle of its last tensor's data
        fh.truncate(data_start + (begin + end) // 2)
    with pytest.raises(CheckpointError, match=f"{re.escape(shard.name)} is truncated: tensor {re.escape(last)}"):
        load_model(folder, with_vision=False)


def test_fused_expert_layout_loads_like_per_expert(tmp_path):
    """transformers' in-memory [E, 2I, H] / [E, H, I] expert tensors load like per-expert ones."""
    folder = _copy(tmp_path, "moe")

    def fuse(t):
        for layer in range(4):
            p = f"model.language_model.layers.{layer}.mlp.experts."
            e = 8
            gate_up = [torch.cat([t.pop(f"{p}{i}.gate_proj.weight"), t.pop(f"{p}{i}.up_proj.weight")]) for i in range(e)]
            t[p + "gate_up_proj"] = torch.stack(gate_up)
            t[p + "down_proj"] = torch.stack([t.pop(f"{p}{i}.down_proj.weight") for i in range(e)])

    _edit(folder, fuse)
    a = load_model(folder, with_vision=False)
    b = load_model(tiny_checkpoint("moe"), with_vision=False)
    assert torch.equal(a(input_ids=_ids()).logits, b(input_ids=_ids()).logits)


def test_bf16_load_has_bf16_params_and_close_logits():
    m16 = load_model(tiny_checkpoint("moe"), dtype=torch.bfloat16, with_vision=False)
    assert {p.dtype for p in m16.parameters()} == {torch.bfloat16}
    m32 = load_model(tiny_checkpoint("moe"), with_vision=False)
    l16, l32 = m16(input_ids=_ids()).logits.float(), m32(input_ids=_ids()).logits
    # tiny random models amplify bf16 rounding (transformers' own bf16 run differs as much); compare means
    assert (l16 - l32).abs().mean() < 0.03 * l32.abs().max()
    assert m16.generate(input_ids=_ids(), max_new_tokens=3).shape == (1, 43)


def test_mtp_is_kept_or_skipped():
    assert load_model(tiny_checkpoint("dense"), with_vision=False).mtp is not None
    assert load_model(tiny_checkpoint("dense"), with_vision=False, with_mtp=False).mtp is None
    no_mtp = load_model(tiny_checkpoint("dense", with_mtp=False), with_vision=False)
    assert no_mtp.mtp is None
    with pytest.raises(RuntimeError, match="mtp"):
        no_mtp.generate(input_ids=_ids(), max_new_tokens=2, speculative="mtp")


def test_vision_tower_weights_load_from_checkpoint():
    from safetensors import safe_open

    folder = tiny_checkpoint("dense")
    model = load_model(folder)
    assert model.visual is not None
    with safe_open(folder / "model.safetensors", framework="pt") as f:
        for name, p in model.visual.named_parameters():
            assert torch.equal(p, f.get_tensor("model.visual." + name)), name


def test_config_defaults_like_released_checkpoints(tmp_path):
    raw = {
        "model_type": "qwen3_5",
        "tie_word_embeddings": True,
        "image_token_id": 248056,
        "text_config": {
            "num_hidden_layers": 8, "full_attention_interval": 4, "head_dim": 256, "eos_token_id": 248044,
            "rope_parameters": {"rope_type": "default", "rope_theta": 10000000, "partial_rotary_factor": 0.25,
                                "mrope_section": [11, 11, 10], "mrope_interleaved": True},
            "mtp_num_hidden_layers": 1,
        },
        "vision_config": {"depth": 12, "hidden_size": 768, "patch_size": 16, "out_hidden_size": 1024},
    }
    (tmp_path / "config.json").write_text(json.dumps(raw))
    (tmp_path / "generation_config.json").write_text(json.dumps({"eos_token_id": [248046, 248044]}))
    cfg = load_config(tmp_path)
    assert cfg.text.layer_types == ["linear_attention"] * 3 + ["full_attention"] + ["linear_attention"] * 3 + ["full_attention"]
    assert cfg.text.rotary_dim == 64 and cfg.text.rope_theta == 1e7 and cfg.text.mtp_num_hidden_layers == 1
    assert cfg.eos_token_ids == [248046, 248044]  # generation_config.json wins
    assert cfg.tie_word_embeddings and cfg.vision.depth == 12 and cfg.vision.patch_dim == 3 * 2 * 16 * 16
    assert load_config(raw).eos_token_ids == [248044]
    bad = dict(raw, text_config=dict(raw["text_config"], layer_types=["linear_attention", "sliding"]))
    with pytest.raises(ConfigError, match="layer_types has 2 entries"):
        load_config(bad)
