"""kernels.linear_gelu: the fused oneDNN call (fused_linear.py) against the two PyTorch ops it replaces."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vlagent.kernels import fused_linear, linear_gelu


def _operands(seed: int, lead=(37,), k=96, n=160):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*lead, k, generator=g)
    w = torch.randn(n, k, generator=g) * k**-0.5 * 2
    b = torch.randn(n, generator=g)
    return x, w, b


@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("lead", [(1,), (37,), (3, 11)])
def test_bf16_fused_matches_the_reference_like_pytorch_does(approximate, lead):
    x, w, b = _operands(len(lead) * 7 + (approximate == "tanh"), lead)
    ref = F.gelu(F.linear(x, w, b), approximate=approximate)
    xb, wb, bb = x.bfloat16(), w.bfloat16(), b.bfloat16()
    fused = linear_gelu(xb, wb, bb, approximate)
    plain = F.gelu(F.linear(xb, wb, bb), approximate=approximate)
    assert fused.shape == plain.shape and fused.dtype == torch.bfloat16
    exact_ref = F.gelu(F.linear(xb.float(), wb.float(), bb.float()), approximate=approximate)
    plain_err = (plain.float() - exact_ref).abs().max().item()
    fused_err = (fused.float() - exact_ref).abs().max().item()
    assert fused_err <= 1.5 * plain_err + 1e-2, (fused_err, plain_err)
    assert (fused.float() - ref).abs().max().item() < 0.1


def test_fp32_and_unfused_paths_are_the_pytorch_ops():
    x, w, b = _operands(3)
    assert torch.equal(linear_gelu(x, w, b, "tanh"), F.gelu(F.linear(x, w, b), approximate="tanh"))
    xb, wb = x.bfloat16(), w.bfloat16()
    assert torch.equal(linear_gelu(xb, wb, None, backend="torch"), F.gelu(F.linear(xb, wb)))


def test_fused_is_used_for_bf16_cpu_when_available(monkeypatch):
    if not fused_linear.fused_available():
        pytest.skip("this torch build has no oneDNN linear with post-ops")
    calls = []
    real = torch.ops.mkldnn._linear_pointwise

    class Spy:
        def __call__(self, *a):
            calls.append(a[3:])
            return real(*a)

    monkeypatch.setattr(fused_linear.torch.ops.mkldnn, "_linear_pointwise", Spy(), raising=False)
    x, w, b = _operands(4)
    linear_gelu(x.bfloat16(), w.bfloat16(), b.bfloat16(), "tanh")
    assert calls and calls[0][0] == "gelu" and calls[0][2] == "tanh"


def test_bad_approximation_is_refused():
    x, w, b = _operands(5)
    with pytest.raises(ValueError, match="approximate"):
        linear_gelu(x, w, b, "sigmoid")
