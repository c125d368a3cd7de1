"""The benchmark scripts that compare against transformers still run (tiny shapes, seconds).

They live in benchmarks/, which is first on sys.path when they run: no file there may be named
kernels.py, the name transformers >= 5.25 imports for Hugging Face's `kernels` package.
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


@pytest.mark.slow
def test_gpu_check_cpu_smoke_runs_every_section(tmp_path):
    """The GPU proof (benchmarks/gpu_check.py) end to end on CPU: kernels in Triton's interpreter, the
    engine against transformers, kernel timings; both reports written, every check passing."""
    import json

    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--cpu-smoke", "--out", str(out)],
                          capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert proc.returncode == 0, (proc.stdout[-3000:], proc.stderr[-3000:])
    report = json.loads((out / "gpu_check.json").read_text())
    kernels = {c["kernel"] for c in report["correctness"]}
    assert {"gdn chunk", "gdn chunk varlen", "gdn recurrent", "gdn decode step", "causal conv1d", "conv1d update",
            "rms_norm", "gated_rms_norm", "rotary", "fused_moe"} <= kernels
    assert all(c["ok"] for c in report["correctness"]) and {c["dtype"] for c in report["correctness"]} == {
        "float32", "bfloat16"}
    assert [p["dtype"] for p in report["engine"]["parity"]] == ["float32", "bfloat16"]
    assert all(p["ok"] for p in report["engine"]["parity"])
    decode = report["engine"]["decode"]["rows"]
    assert set(decode) == {"engine eager", "engine CUDA graph", "engine MTP speculation", "transformers (eager)"}
    assert all(r["tokens_per_s"] > 0 for r in decode.values())
    assert report["engine"]["decode"]["same_tokens"] == {"graph_vs_eager": True, "mtp_vs_eager": True}
    assert report["kernels"] and not any(r["failures"] for r in report["kernels"])
    assert "## 1. Kernels" in (out / "gpu_check.md").read_text()
    # the interpreter has room for anything: the state pass takes its first option in both dtypes
    assert any(line.startswith("bfloat16 ") and line.endswith("fp32 operands, 2 stages")
               for line in report["state_pass_options"]), report["state_pass_options"]
    assert any(line.startswith("float32 ") and line.endswith("fp32 operands, 1 stage")
               for line in report["state_pass_options"]), report["state_pass_options"]


def test_gpu_check_catches_a_wrong_kernel(monkeypatch):
    """A correctness check must be able to fail: a kernel off by more than its tolerance is reported."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import gpu_check
    import torch

    def call(backend, x, w):
        out = torch.nn.functional.rms_norm(x.float(), (x.shape[-1],), eps=1e-6) * (1 + w.float())
        return (out * 1.01 if backend == "triton" else out).to(x.dtype)

    inputs = dict(x=torch.randn(8, 64), w=torch.randn(64) * 0.2)
    bad = gpu_check._check("rms_norm", "N=8 D=64", torch.float32, call, inputs)
    assert not bad.ok and bad.err > 5e-3
    good = gpu_check._check("rms_norm", "N=8 D=64", torch.float32, lambda backend, x, w: call("torch", x, w), inputs)
    assert good.ok and good.err == 0


def test_video_sampling_quick_run_covers_every_file_and_checks_frames(tmp_path):
    """benchmarks/video_sampling.py --quick: the three files' small stand-ins, every mode and strategy as a
    fraction of decode-all in one run, each sampled frame checked against its timestamp."""
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "video_sampling.py"), "--quick",
                           "--strategies", "auto,seek,straight", "--cache-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, (proc.stdout[-3000:], proc.stderr[-3000:])
    out = proc.stdout
    for name in ("720p:", "360p:", "1080p:"):
        assert name in out, out[-3000:]
    for row in ("decode all", "exact 64 ", "exact 64 seek", "exact 64 straight", "keyframe 64", "exact @2fps",
                "keyframe @2fps"):
        assert row in out, (row, out[-3000:])
    assert "failed" not in out and "ERROR" not in out
    # every sampler row reports its fraction of decode-all and 0 wrong frames
    rows = [line.split() for line in out.splitlines() if line.startswith(("exact", "keyframe"))]
    assert len(rows) == 2 * 2 * (3 + 1) + (3 + 1) and all(r[-1] == "0" for r in rows)  # files x counts x rows


@pytest.mark.slow
def test_video_qa_quick_run_asks_both_sides_on_the_same_frames(tmp_path):
    """benchmarks/video_qa.py --quick: the video question through our engine and through transformers (its
    processor and generate) on the same sampled frames, every stage timed, the same greedy tokens."""
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "video_qa.py"), "--quick", "--cache-dir",
                           str(tmp_path)], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, (proc.stdout[-3000:], proc.stderr[-3000:])
    out = proc.stdout
    assert "sampling" in out and "vision" in out and "1st token" in out and "tok/s" in out, out[-3000:]
    rows = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 11 and parts[0].isdigit() and parts[1] in ("engine", "transformers"):
            rows[parts[1], int(parts[0])] = parts
    assert set(rows) == {(s, n) for s in ("engine", "transformers") for n in (8, 16)}, out[-3000:]
    for n in (8, 16):
        # the same frames give the same prompt on both sides
        assert rows["engine", n][2:4] == rows["transformers", n][2:4]
        assert int(rows["engine", n][2]) > 0  # video tokens
    assert out.count("4/4 leading tokens agree") == 2, out[-3000:]
    assert "processor once more in the same process" in out and "engine 16 frames" in out


def test_grounder_training_benchmark_times_both_modes(tmp_path):
    """benchmarks/grounder_training.py: float32 and bf16-autocast training steps of the default grounder
    configuration on the same generated screens, and the ratio."""
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "grounder_training.py"), "--steps", "8",
                           "--screens", "3", "--threads", "1"], capture_output=True, text=True, timeout=600,
                          cwd=tmp_path)
    assert proc.returncode == 0, (proc.stdout[-3000:], proc.stderr[-3000:])
    lines = [ln for ln in proc.stdout.splitlines() if "s/step median" in ln]
    assert [ln.split()[0] for ln in lines] == ["float32", "bf16"], proc.stdout
    assert "bf16 autocast speed vs float32:" in proc.stdout
