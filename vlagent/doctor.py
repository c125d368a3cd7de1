"""`vlagent doctor`: what is installed and reachable, each check ok / warn / fail.

Checks never change the machine: no adb server is started (devices are listed
only when one is already running), no X server is started, nothing is
installed.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from dataclasses import asdict, dataclass
from importlib import metadata
from typing import Any

OK, WARN, FAIL = "ok", "warn", "fail"

# (distribution, import purpose, required?)
PACKAGES: tuple[tuple[str, str, bool], ...] = (
    ("pillow", "images", True),
    ("numpy", "arrays", True),
    ("rich", "terminal output", True),
    ("openai", "OpenAI-compatible API policy", False),
    ("mss", "desktop screenshots", False),
    ("pyautogui", "desktop mouse and keyboard", False),
    ("adbutils", "Android devices", False),
    ("av", "video decoding", False),
    ("torch", "local model engine", False),
    ("transformers", "checkpoint reference / tokenizer", False),
    ("safetensors", "checkpoint loading", False),
    ("tokenizers", "tokenizer", False),
    ("triton", "GPU kernels", False),
)
BINARIES: tuple[tuple[str, str], ...] = (
    ("xdotool", "typing non-ASCII text on X11"),
    ("xclip", "clipboard fallback for typing"),
    ("Xvfb", "virtual display for `vlagent demo` and tests"),
    ("adb", "Android devices"),
)
ADB_PORT = 5037


@dataclass
class Check:
    group: str
    name: str
    status: str
    detail: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def check_packages() -> list[Check]:
    checks = [Check("python", "python", OK, sys.version.split()[0] + f" ({sys.executable})")]
    from vlagent import __version__

    checks.append(Check("python", "vlagent", OK, __version__))
    for dist, purpose, required in PACKAGES:
        version = _version(dist)
        if version is not None:
            checks.append(Check("packages", dist, OK, f"{version} — {purpose}"))
        else:
            status = FAIL if required else WARN
            checks.append(Check("packages", dist, status, f"not installed — needed for {purpose}"))
    return checks


def check_torch() -> list[Check]:
    if _version("torch") is None:
        return [Check("accelerators", "torch", WARN, "torch not installed: the local engine is unavailable")]
    try:
        import torch
    except Exception as exc:  # noqa: BLE001 - a broken install is what doctor reports
        return [Check("accelerators", "torch", FAIL, f"import failed: {type(exc).__name__}: {exc}")]
    checks = []
    if torch.cuda.is_available():
        names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        checks.append(Check("accelerators", "cuda", OK, f"{len(names)} device(s): {', '.join(names)}"))
    else:
        built = getattr(torch.version, "cuda", None)
        why = "torch is a CPU build" if not built else f"torch built for CUDA {built} but no GPU is visible"
        checks.append(Check("accelerators", "cuda", WARN, f"no CUDA device ({why}); the engine runs on CPU"))
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        checks.append(Check("accelerators", "mps", OK, "Apple GPU available"))
    checks.append(Check("accelerators", "cpu", OK, f"{os.cpu_count()} logical cores, {torch.get_num_threads()} torch threads"))
    if _version("triton") is None:
        checks.append(Check("accelerators", "triton", WARN, "not installed: GPU kernels fall back to PyTorch"))
    elif os.environ.get("TRITON_INTERPRET") == "1":
        checks.append(Check("accelerators", "triton", WARN, "TRITON_INTERPRET=1: kernels run in the (slow) interpreter"))
    elif torch.cuda.is_available():
        checks.append(Check("accelerators", "triton", OK, f"{_version('triton')}, GPU kernels enabled"))
    else:
        checks.append(Check("accelerators", "triton", WARN, "installed, but no GPU: kernels fall back to PyTorch"))
    checks.append(_check_cpu_attention())
    checks.append(_check_cpu_kernels())
    return checks


def _check_cpu_attention() -> Check:
    """Which fused bf16 CPU attention kernel the vision tower uses (built with the system C compiler)."""
    import torch

    from vlagent.kernels.attention import cpu as attn_cpu

    vision_heads = torch.empty(1, 1, 1, attn_cpu.AMX_HEAD_DIM)  # the shape of Qwen3.5's vision attention
    if attn_cpu.cpu_attention_available():
        if not attn_cpu.preferred(vision_heads):
            return Check("accelerators", "cpu attention", OK, "fused bf16 kernels built but off (AMX CPU without "
                         "the AMX kernel, or VLAGENT_CPU_ATTENTION=0): the vision tower uses PyTorch's attention")
        if attn_cpu.amx_attention_available():
            return Check("accelerators", "cpu attention", OK, "fused bf16 kernel on AMX tiles (head dim 64)")
        return Check("accelerators", "cpu attention", OK, "fused bf16 kernel built (AVX512-BF16)")
    return Check("accelerators", "cpu attention", WARN,
                 f"fused bf16 kernel unavailable ({attn_cpu.cpu_attention_unavailable_reason()}); "
                 "the vision tower uses PyTorch's SDPA on CPU")


def _check_cpu_kernels() -> Check:
    """Every C kernel of the CPU path (kernels/*/cpu*.c), built with the system C compiler on first use."""
    from vlagent.kernels import denormals, native
    from vlagent.kernels.attention import cpu as attention
    from vlagent.kernels.conv1d import cpu as conv1d
    from vlagent.kernels.gated_delta_rule import cpu as gated_delta
    from vlagent.kernels.linear import cpu as linear
    from vlagent.kernels.norm import cpu as norm
    from vlagent.kernels.rotary import cpu as rotary

    for kernel in (attention.KERNEL, attention.AMX_KERNEL, conv1d.KERNEL, gated_delta.KERNEL, linear.KERNEL,
                   norm.KERNEL, rotary.KERNEL, denormals.KERNEL):
        kernel.lib  # builds (or finds in the cache) and loads the kernel
    outcomes = native.kernel_outcomes()
    missing = {name: why for name, why in outcomes.items() if why is not None}
    if not missing:
        return Check("accelerators", "cpu kernels", OK, f"{len(outcomes)} C kernels in use: " + ", ".join(sorted(outcomes)))
    return Check("accelerators", "cpu kernels", WARN,
                 f"{len(outcomes) - len(missing)}/{len(outcomes)} C kernels in use; PyTorch paths (slower) for "
                 + "; ".join(f"{name}: {why}" for name, why in sorted(missing.items())))


def check_display() -> list[Check]:
    checks = []
    display = os.environ.get("DISPLAY")
    wayland = os.environ.get("WAYLAND_DISPLAY")
    if sys.platform.startswith("linux") and not display:
        detail = "DISPLAY is not set: the desktop environment needs an X server (`vlagent demo` starts Xvfb itself)"
        if wayland:
            detail += f"; Wayland ({wayland}) without XWayland is not supported"
        checks.append(Check("display", "DISPLAY", WARN, detail))
    else:
        checks.append(Check("display", "DISPLAY", OK, display or "native"))
        if _version("mss") is not None:
            try:
                import mss

                with mss.MSS() as grabber:
                    monitors = grabber.monitors[1:]
                shown = ", ".join(f"#{i}: {m['width']}x{m['height']}+{m['left']}+{m['top']}" for i, m in enumerate(monitors, 1))
                checks.append(Check("display", "monitors", OK if monitors else WARN, shown or "none"))
            except Exception as exc:  # noqa: BLE001
                checks.append(Check("display", "monitors", FAIL, f"cannot open the display: {type(exc).__name__}: {exc}"))
    for binary, purpose in BINARIES:
        path = shutil.which(binary)
        checks.append(Check("tools", binary, OK if path else WARN, path or f"not found — needed for {purpose}"))
    return checks


def _adb_server_running(port: int = ADB_PORT) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def check_adb() -> list[Check]:
    adb = shutil.which("adb")
    if adb is None:
        return [Check("android", "adb", WARN, "adb not found: Android devices unavailable (apt-get install adb)")]
    if not _adb_server_running():
        return [Check("android", "devices", WARN, "the adb server is not running (run `adb start-server` to list devices)")]
    try:
        out = subprocess.run([adb, "devices", "-l"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [Check("android", "devices", FAIL, f"adb devices failed: {exc}")]
    lines = [line for line in out.stdout.splitlines()[1:] if line.strip()]
    if not lines:
        return [Check("android", "devices", WARN, "no device attached")]
    checks = []
    for line in lines:
        serial, _, rest = line.partition(" ")
        state = rest.split()[0] if rest.split() else "?"
        checks.append(Check("android", serial, OK if state == "device" else WARN, rest.strip()))
    return checks


def check_api(base_url: str, model: str | None = None, api_key_env: str = "OPENAI_API_KEY") -> list[Check]:
    """GET {base_url}/models: reachable? serving `model`?"""
    if _version("openai") is None:
        return [Check("api", base_url, FAIL, "the 'openai' package is not installed: pip install 'vlagent[api]'")]
    from vlagent.policy.errors import PolicyError
    from vlagent.policy.openai_policy import OpenAIPolicy

    try:
        policy = OpenAIPolicy(model or "unused", base_url=base_url, api_key_env=api_key_env, timeout=5, max_retries=0)
        models = policy.list_models()
    except PolicyError as exc:
        return [Check("api", base_url, FAIL, str(exc))]
    checks = [Check("api", base_url, OK, f"reachable; serves {', '.join(models[:8]) or 'no models'}")]
    if model:
        served = model in models
        checks.append(
            Check("api", model, OK if served else WARN, "served" if served else f"not in the model list of {base_url}")
        )
    return checks


def run_checks(api_base: str | None = None, model: str | None = None, api_key_env: str = "OPENAI_API_KEY") -> list[Check]:
    checks = check_packages() + check_torch() + check_display() + check_adb()
    if api_base:
        checks += check_api(api_base, model, api_key_env)
    return checks


def summarize(checks: list[Check]) -> dict[str, Any]:
    counts = {s: sum(c.status == s for c in checks) for s in (OK, WARN, FAIL)}
    return {"ok": counts[FAIL] == 0, "counts": counts, "checks": [c.to_dict() for c in checks]}


__all__ = ["Check", "run_checks", "summarize", "check_api", "OK", "WARN", "FAIL"]
