"""The benchmark scripts that compare against transformers still run (tiny shapes, seconds).

They live in benchmarks/, which is first on sys.path when they run: beside benchmarks/kernels.py,
whose name is the one transformers >= 5.25 imports for Hugging Face's `kernels` package.
"""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.parametrize("script,expect", [("engine.py", "decode tok/s"), ("agent_steps.py", "steps 2-")])
def test_smoke_run_against_transformers(script, expect, tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), "--smoke", "--cache-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert expect in proc.stdout, proc.stdout[-2000:]


def test_hub_kernels_name_is_handed_over_from_benchmarks_dir():
    code = "import kernels, transformers.models.qwen3_5.modeling_qwen3_5; print(kernels.__file__)"
    proc = subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {str(ROOT / 'benchmarks')!r}); {code}"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "benchmarks" not in proc.stdout and "site-packages" in proc.stdout
