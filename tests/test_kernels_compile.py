"""Every Triton kernel compiles for sm_90 (H100/H200) in compiled mode, without a GPU.

The interpreter tests check numerics but run the kernels as Python; this runs Triton's real compiler
(TTIR -> TTGIR -> PTX -> cubin through the ptxas shipped with triton) in a fresh process, so errors that
only compiled mode raises are caught here. The fp32 chunk variants (slow to compile) are left to
`python -m vlagent.kernels.compile_check`.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest

LABELS = ["fused_recurrent", "bf16", "conv1d", "norm", "rotary", "moe"]


@pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="triton is not installed")
def test_all_kernels_compile_for_sm90():
    if importlib.util.find_spec("triton.backends.nvidia") is None:
        pytest.skip("this triton build has no NVIDIA backend (ptxas)")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
    proc = subprocess.run([sys.executable, "-m", "vlagent.kernels.compile_check", *LABELS],
                          capture_output=True, text=True, env=env, timeout=600)
    lines = [line for line in proc.stdout.splitlines() if line.startswith(("ok", "FAIL"))]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert len(lines) >= 12, proc.stdout + proc.stderr  # every kernel family was built
    assert all(line.startswith("ok") for line in lines), proc.stdout


@pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="triton is not installed")
def test_chunk_kernels_pick_what_a_99kb_card_holds():
    """On sm_89 (RTX 40-series, L4: 99 KB of shared memory per block) the bf16 state pass fits only with
    its dot operands in bf16, and the fp32 prepare kernel fits in no way (the caller then runs the
    recurrent kernel); the shared memory figures are the compiler's own."""
    if importlib.util.find_spec("triton.backends.nvidia") is None:
        pytest.skip("this triton build has no NVIDIA backend (ptxas)")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
    proc = subprocess.run([sys.executable, "-m", "vlagent.kernels.compile_check", "--arch", "89",
                           "chunk state bf16", "chunk prepare fp32"], capture_output=True, text=True, env=env,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = {line.split("  ")[1].strip(): line for line in proc.stdout.splitlines() if line.startswith("ok")}
    assert "input-dtype operands, 2 stages" in lines["chunk state bf16"], proc.stdout
    assert "of 99 KB" in lines["chunk state bf16"], proc.stdout
    assert "no option fits sm_89" in lines["chunk prepare fp32"], proc.stdout
    assert "fused recurrent kernel" in lines["chunk prepare fp32"], proc.stdout


def test_compile_check_refuses_an_arch_without_a_known_limit(monkeypatch):
    from vlagent.kernels.compile_check import compile_all

    monkeypatch.setenv("TRITON_INTERPRET", os.environ.get("TRITON_INTERPRET", "0"))  # restored after the test
    with pytest.raises(ValueError, match="sm_75"):
        compile_all(75, ["rms_norm"])


NO_TRITON = r"""
import importlib.abc, sys

class HideTriton(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "triton" or name.startswith("triton."):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return None

sys.meta_path.insert(0, HideTriton())
import torch
from vlagent import kernels
assert not kernels.triton_available()
x = torch.randn(2, 5, 8)
y, state = kernels.causal_conv1d(x, torch.randn(8, 4))
assert y.shape == x.shape and state.shape == (2, 8, 3)
try:
    kernels.rms_norm(x, torch.zeros(8), backend="triton")
except RuntimeError as exc:
    assert "triton package" in str(exc)
else:
    raise AssertionError("backend='triton' without triton did not raise")
assert "triton" not in sys.modules
print("ok")
"""


def test_base_install_works_without_triton():
    proc = subprocess.run([sys.executable, "-c", NO_TRITON], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stdout + proc.stderr


def test_cuda_graph_helper_refuses_cpu_tensors():
    import torch

    from vlagent.kernels.cuda_graph import CapturedStep

    with pytest.raises(ValueError, match="CUDA"):
        CapturedStep(lambda x: x + 1, torch.zeros(2))
