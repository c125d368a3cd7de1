"""The one dispatch door and its one rule for native CPU kernels (kernels/dispatch.py)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

from vlagent import kernels as K
from vlagent.kernels import dispatch

ROOT = Path(__file__).resolve().parents[1]

# (module in dispatch, function): every native CPU entry point the dispatcher may call
NATIVE_ENTRIES = [
    ("conv1d_cpu", "causal_conv1d_native"),
    ("conv1d_cpu", "causal_conv1d_update_native"),
    ("gated_delta_cpu", "gated_delta_decode_step_native"),
    ("norm_cpu", "rms_norm_cpu"),
    ("norm_cpu", "gated_rms_norm_cpu"),
    ("linear_cpu", "linear_few_rows"),
    ("attention_cpu", "attention_native"),
    ("rotary_cpu", "rotate_half_native"),
    ("fused_linear", "linear_gelu_fused"),
]


def test_the_engine_imports_the_kernels_package_only():
    reached_around = []
    for path in (ROOT / "model").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("vlagent.kernels."):
                reached_around.append(f"{path.name}: from {node.module} import ...")
            if isinstance(node, ast.Import):
                reached_around += [f"{path.name}: import {a.name}" for a in node.names
                                   if a.name.startswith("vlagent.kernels.")]
    assert not reached_around, reached_around


def _bf16(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)).bfloat16()


def _call_every_op(backend: str) -> None:
    """Each op with a native CPU path, on bf16 CPU inputs its kernel covers."""
    x, w = _bf16(2, 5, 64, seed=1), _bf16(64, 4, seed=2)
    K.causal_conv1d(x, w, backend=backend)
    K.causal_conv1d_update(x[:, 0], _bf16(2, 64, 3, seed=3), w, backend=backend)
    q, k = _bf16(1, 2, 32, seed=4), _bf16(1, 2, 32, seed=5)
    v, ab = _bf16(1, 2, 32, seed=6), _bf16(1, 2, seed=7)
    K.gated_delta_decode_step(q, k, v, ab, ab, _bf16(2, seed=8), _bf16(2, seed=9), torch.zeros(1, 2, 32, 32),
                              backend=backend)
    K.rms_norm(x, _bf16(64, seed=10), backend=backend)
    K.gated_rms_norm(x, x, _bf16(64, seed=10), backend=backend)
    K.linear(x[:, :1], _bf16(48, 64, seed=11), backend=backend)
    K.linear_gelu(x, _bf16(48, 64, seed=11), backend=backend)
    qkv = _bf16(1, 2, 33, 64, seed=12)
    K.attention(qkv, qkv, qkv, backend=backend)
    angles = torch.rand(6, 32, generator=torch.Generator().manual_seed(13))
    K.rotate_half_(_bf16(6, 2, 64, seed=14), angles.cos(), angles.sin(), backend=backend)


def test_torch_backend_never_takes_a_native_kernel(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a native kernel was called under backend='torch'")

    for module, name in NATIVE_ENTRIES:
        monkeypatch.setattr(getattr(dispatch, module), name, refuse)
    _call_every_op("torch")


def test_auto_backend_asks_every_native_kernel_first(monkeypatch):
    asked = set()
    for module, name in NATIVE_ENTRIES:
        real = getattr(getattr(dispatch, module), name)

        def record(*args, _name=name, _real=real, **kwargs):
            asked.add(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(getattr(dispatch, module), name, record)
    _call_every_op("auto")
    assert asked == {name for _, name in NATIVE_ENTRIES}


def test_a_declining_native_kernel_leaves_the_pytorch_path_to_run(monkeypatch):
    for module, name in NATIVE_ENTRIES:
        monkeypatch.setattr(getattr(dispatch, module), name, lambda *a, **kw: None)
    x, w = _bf16(2, 5, 64, seed=1), _bf16(64, 4, seed=2)
    assert torch.equal(K.causal_conv1d(x, w)[0], K.causal_conv1d(x, w, backend="torch")[0])
    qkv = _bf16(1, 2, 33, 64, seed=12)
    assert torch.equal(K.attention(qkv, qkv, qkv), K.attention(qkv, qkv, qkv, backend="torch"))
    weight = _bf16(48, 64, seed=11)
    assert torch.equal(K.linear_gelu(x, weight), K.linear_gelu(x, weight, backend="torch"))


@pytest.mark.parametrize("op", ["linear_gelu", "attention", "rotate_half_"])
def test_ops_without_a_triton_kernel_refuse_it(op):
    x = _bf16(1, 2, 8, 64, seed=1)
    angles = torch.rand(1, 32)
    calls = {
        "linear_gelu": lambda: K.linear_gelu(x, _bf16(16, 64, seed=2), backend="triton"),
        "attention": lambda: K.attention(x, x, x, backend="triton"),
        "rotate_half_": lambda: K.rotate_half_(x[0], angles.cos(), angles.sin(), backend="triton"),
    }
    with pytest.raises(ValueError, match="no Triton kernel"):
        calls[op]()
