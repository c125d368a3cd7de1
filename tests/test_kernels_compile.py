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
