"""The fused bf16 CPU attention kernels (kernels/attention/cpu_flash.c, cpu_amx.c) against an fp32 reference.

bf16 tolerance: the kernel rounds the probabilities to bf16 and the output once, like any bf16
flash attention; we require its error against the fp32 product to stay within 1.5x PyTorch's own
bf16 SDPA error on the same inputs (plus a small absolute slack) on awkward shapes.
"""
from __future__ import annotations

import ctypes
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from vlagent import kernels as K
from vlagent.kernels import native
from vlagent.kernels.attention import cpu as attn_cpu
from vlagent.kernels.attention.reference import attention_fp32

needs_kernel = pytest.mark.skipif(
    not attn_cpu.cpu_attention_available(),
    reason=f"fused CPU attention unavailable here: {attn_cpu.cpu_attention_unavailable_reason()}",
)


def _qkv(B: int, H: int, L: int, D: int, seed: int = 0, spread: float = 2.0):
    g = torch.Generator().manual_seed(seed)
    q = (torch.randn(B, H, L, D, generator=g) * spread).bfloat16()
    k = (torch.randn(B, H, L, D, generator=g) * spread).bfloat16()
    v = torch.randn(B, H, L, D, generator=g).bfloat16()
    return q, k, v


def _assert_close_to_reference(out: torch.Tensor, q, k, v, scale=None) -> None:
    ref = attention_fp32(q, k, v, scale)
    sdpa_err = (F.scaled_dot_product_attention(q, k, v, scale=scale).float() - ref).abs().max().item()
    err = (out.float() - ref).abs().max().item()
    assert err <= 1.5 * sdpa_err + 2e-3, f"max |err| {err:.3g} vs SDPA bf16 {sdpa_err:.3g}"


@needs_kernel
@pytest.mark.parametrize(
    "B,H,L,D",
    [
        (1, 1, 1, 64),      # one token
        (2, 3, 17, 64),     # below one register tile / key tile
        (1, 2, 49, 64),     # one past the 48-row query block
        (1, 2, 257, 64),    # one past the 256-key softmax block
        (1, 1, 600, 128),   # several key blocks, a ragged tail
        (1, 2, 300, 72),    # head dim not a multiple of 16 (Qwen3-VL-sized towers)
        (2, 2, 70, 16),     # smallest vector width
        (1, 1, 40, 256),    # largest head dim
    ],
)
def test_matches_reference_on_awkward_shapes(B, H, L, D):
    q, k, v = _qkv(B, H, L, D, seed=L + D)
    _assert_close_to_reference(attn_cpu.attention_cpu(q, k, v, kernel="avx512"), q, k, v)


needs_amx = pytest.mark.skipif(
    not attn_cpu.amx_attention_available(),
    reason=f"AMX attention unavailable here: {attn_cpu.amx_attention_unavailable_reason()}",
)


@needs_amx
@pytest.mark.parametrize("L", [1, 15, 16, 17, 31, 33, 100, 530])
def test_amx_matches_reference_on_awkward_lengths(L):
    """Partial 16-query blocks, key counts off the 16/32-key tiles, peaked scores."""
    q, k, v = _qkv(2, 3, L, 64, seed=L, spread=4.0)
    _assert_close_to_reference(attn_cpu.attention_cpu(q, k, v, kernel="amx"), q, k, v)
    _assert_close_to_reference(attn_cpu.attention_cpu(q, k, v, scale=0.3, kernel="amx"), q, k, v, scale=0.3)


@needs_amx
def test_amx_reads_and_writes_strided_views():
    L, H = 75, 4
    qkv = (torch.randn(L, 3, H, 64, generator=torch.Generator().manual_seed(3)) * 2).bfloat16()
    views = [qkv[:, i].transpose(0, 1)[None] for i in range(3)]  # [1, H, L, 64], token stride 3*H*64
    out = torch.full((L, H, 64), float("nan"), dtype=torch.bfloat16)
    attn_cpu.attention_cpu(*views, out=out.transpose(0, 1)[None], kernel="amx")
    q, k, v = (t.contiguous() for t in views)
    assert torch.equal(out.transpose(0, 1)[None], attn_cpu.attention_cpu(q, k, v, kernel="amx"))
    _assert_close_to_reference(out.transpose(0, 1)[None], q, k, v)


def test_amx_kernel_refuses_what_it_cannot_run():
    q, k, v = _qkv(1, 1, 8, 72)
    with pytest.raises(ValueError, match="head dim 64"):
        attn_cpu.attention_cpu(q, k, v, kernel="amx")
    with pytest.raises(ValueError, match="kernel must be"):
        attn_cpu.attention_cpu(q, k, v, kernel="tiles")


@needs_kernel
def test_custom_scale_and_peaked_scores():
    # large scores: the running max changes between key blocks, so the online rescaling is exercised
    q, k, v = _qkv(1, 2, 530, 64, seed=3, spread=6.0)
    _assert_close_to_reference(attn_cpu.attention_cpu(q, k, v, scale=0.3), q, k, v, scale=0.3)


@needs_kernel
def test_strided_views_in_and_out(monkeypatch):
    """q/k/v as views into one fused [L, 3, H, D] buffer and a token-major output: no copies needed."""
    monkeypatch.setenv("VLAGENT_CPU_ATTENTION", "1")  # on AMX CPUs "auto" keeps SDPA
    L, H, D = 211, 4, 64
    g = torch.Generator().manual_seed(7)
    qkv = (torch.randn(2 * L, 3, H, D, generator=g) * 2).bfloat16()

    def batch(t):  # [2L, H, D] -> [2, H, L, D] view
        return t.view(2, L, H, D).transpose(1, 2)

    out = torch.full((2 * L, H, D), float("nan"), dtype=torch.bfloat16)
    result = K.attention(batch(qkv[:, 0]), batch(qkv[:, 1]), batch(qkv[:, 2]), out=batch(out))
    assert result.data_ptr() == out.data_ptr()
    q, k, v = (batch(qkv[:, i]).contiguous() for i in range(3))
    _assert_close_to_reference(batch(out), q, k, v)
    assert torch.equal(batch(out), attn_cpu.attention_cpu(q, k, v))  # same bits as contiguous inputs


@needs_kernel
def test_dispatch_uses_the_kernel_for_bf16_cpu(monkeypatch):
    monkeypatch.setenv("VLAGENT_CPU_ATTENTION", "1")  # on AMX CPUs it is off by default
    calls = []
    real = attn_cpu.attention_cpu
    monkeypatch.setattr(attn_cpu, "attention_cpu", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    q, k, v = _qkv(1, 2, 33, 64)
    K.attention(q, k, v)
    assert calls == [1]
    K.attention(q.float(), k.float(), v.float())  # fp32: SDPA
    K.attention(q, k, v, backend="torch")
    monkeypatch.setenv("VLAGENT_CPU_ATTENTION", "0")
    K.attention(q, k, v)
    assert calls == [1]


def test_dispatch_falls_back_to_sdpa_and_checks_inputs():
    q, k, v = _qkv(1, 2, 20, 63)  # odd head dim: the kernel cannot take it
    assert not attn_cpu.supports(q, k, v)
    out = K.attention(q, k, v)
    assert torch.equal(out, F.scaled_dot_product_attention(q, k, v))
    with pytest.raises(ValueError, match="share one shape"):
        K.attention(q, k[:, :, :5], v)
    with pytest.raises(ValueError, match="no Triton kernel"):
        K.attention(q, k, v, backend="triton")


@needs_kernel
def test_kernel_rejects_unsupported_inputs_clearly():
    q, k, v = _qkv(1, 1, 8, 64)
    with pytest.raises(ValueError, match="bf16 CPU tensors"):
        attn_cpu.attention_cpu(q.float(), k.float(), v.float())
    with pytest.raises(ValueError, match="scale must be positive"):
        attn_cpu.attention_cpu(q, k, v, scale=-1.0)
    with pytest.raises(ValueError, match="out must be"):
        attn_cpu.attention_cpu(q, k, v, out=torch.empty(1, 1, 8, 32, dtype=torch.bfloat16))


def test_native_build_reports_compiler_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("VLAGENT_KERNEL_CACHE", str(tmp_path / "cache"))
    broken = tmp_path / "broken.c"
    broken.write_text("int f(void) { return missing_symbol; }\n")
    assert native.load(broken, ("-DX=1",)) is None
    assert "missing_symbol" in native.build_error(broken, ("-DX=1",))

    good = tmp_path / "good.c"
    good.write_text("int twice(int x) { return 2 * x; }\n")
    lib = native.load(good, ())
    assert isinstance(lib, ctypes.CDLL) and lib.twice(21) == 42
    built = list((tmp_path / "cache").glob("good-*.so"))
    assert len(built) == 1
    # an edited source builds a new library instead of loading the stale one
    good.write_text("int twice(int x) { return x + x + 1; }\n")
    native._loaded.pop((str(good), ()), None)
    assert native.load(good, ()).twice(21) == 43
    assert len(list((tmp_path / "cache").glob("good-*.so"))) == 2


def test_native_build_without_compiler(tmp_path, monkeypatch):
    monkeypatch.setenv("VLAGENT_KERNEL_CACHE", str(tmp_path))
    monkeypatch.setattr(native, "compiler", lambda: None)
    src = tmp_path / "x.c"
    src.write_text("int one(void) { return 1; }\n")
    assert native.load(src, ("-O1",)) is None
    assert "no C compiler" in native.build_error(src, ("-O1",))


def test_load_outcomes_are_recorded_for_doctor(tmp_path, monkeypatch):
    monkeypatch.setenv("VLAGENT_KERNEL_CACHE", str(tmp_path))
    src = tmp_path / "unsupported.c"
    src.write_text("int vl_cpu_supported(void) { return 0; }\n")
    lib, reason = native.load_x86_kernel(src, (), needs="a feature no CPU has")
    if lib is None and "x86-64" not in (reason or ""):
        assert reason == "this CPU lacks a feature no CPU has"
    assert native.kernel_outcomes()["unsupported.c"] == reason
    native._outcomes.pop("unsupported.c")


def test_kernel_source_is_packaged():
    assert attn_cpu.SOURCE.exists() and attn_cpu.SOURCE.suffix == ".c"
    assert Path(attn_cpu.SOURCE).read_text().count("vl_attention_bf16") >= 1


def test_preference_follows_env_and_amx(monkeypatch):
    vision, other = torch.empty(1, 1, 4, 64), torch.empty(1, 1, 4, 72)
    monkeypatch.setenv("VLAGENT_CPU_ATTENTION", "0")
    assert not attn_cpu.preferred(vision)
    monkeypatch.setenv("VLAGENT_CPU_ATTENTION", "1")
    assert attn_cpu.preferred(other)
    monkeypatch.delenv("VLAGENT_CPU_ATTENTION")
    monkeypatch.setattr(attn_cpu, "cpu_has_amx", lambda: True)  # AMX CPU: only where the AMX kernel fits
    monkeypatch.setattr(attn_cpu, "amx_attention_available", lambda: True)
    assert attn_cpu.preferred(vision) and not attn_cpu.preferred(other) and not attn_cpu.preferred()
    monkeypatch.setattr(attn_cpu, "amx_attention_available", lambda: False)
    assert not attn_cpu.preferred(vision)
    monkeypatch.setattr(attn_cpu, "cpu_has_amx", lambda: False)  # AVX512-BF16 without AMX: cpu_flash.c
    assert attn_cpu.preferred(vision) and attn_cpu.preferred(other)
