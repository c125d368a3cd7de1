"""Compile a C kernel source once per machine and load it with ctypes.

CPU fast paths that PyTorch has no fast op for are small C files next to their reference (e.g.
attention/cpu_flash.c). They are built on first use with the system C compiler into a cache folder
($VLAGENT_KERNEL_CACHE, else ~/.cache/vlagent/kernels), keyed by a hash of the source, the flags
and the compiler, so an edit or a new compiler rebuilds and concurrent processes never load a
half-written file. When there is no compiler, the flags are not supported or the build fails,
`load` returns None and `build_error` says why: callers then fall back to PyTorch.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

_lock = threading.Lock()
_loaded: dict[tuple[str, tuple[str, ...]], ctypes.CDLL | None] = {}
_errors: dict[tuple[str, tuple[str, ...]], str] = {}

BASE_FLAGS = ("-O3", "-std=c11", "-shared", "-fPIC", "-fno-math-errno")


def cache_dir() -> Path:
    return Path(os.environ.get("VLAGENT_KERNEL_CACHE") or Path.home() / ".cache" / "vlagent" / "kernels")


def compiler() -> str | None:
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def _compiler_id(cc: str) -> str:
    try:
        return subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return cc


def load(source: Path, flags: tuple[str, ...]) -> ctypes.CDLL | None:
    """The shared library built from `source` with `flags` (cached), or None when it cannot be built."""
    key = (str(source), flags)
    with _lock:
        if key in _loaded:
            return _loaded[key]
        lib = None
        try:
            lib = _build_and_load(source, flags)
        except (OSError, RuntimeError, subprocess.SubprocessError) as e:
            _errors[key] = str(e)
        _loaded[key] = lib
        return lib


def build_error(source: Path, flags: tuple[str, ...]) -> str | None:
    """Why `load(source, flags)` returned None (None when it loaded or was not tried)."""
    return _errors.get((str(source), flags))


def _build_and_load(source: Path, flags: tuple[str, ...]) -> ctypes.CDLL:
    cc = compiler()
    if cc is None:
        raise RuntimeError("no C compiler found (install gcc, or set CC)")
    text = source.read_bytes()
    digest = hashlib.sha256(text + repr(flags).encode() + _compiler_id(cc).encode()).hexdigest()[:16]
    target = cache_dir() / f"{source.stem}-{digest}.so"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
        os.close(fd)
        cmd = [cc, *BASE_FLAGS, *flags, str(source), "-o", tmp]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            os.unlink(tmp)
            raise RuntimeError(f"building {source.name} failed ({' '.join(cmd)}):\n{done.stderr.strip()[-2000:]}")
        os.replace(tmp, target)  # atomic: another process sees the whole file or none
    return ctypes.CDLL(str(target))


def load_x86_kernel(source: Path, flags: tuple[str, ...], needs: str) -> tuple[ctypes.CDLL | None, str | None]:
    """(library, None) when `source` builds and this CPU runs it, else (None, why not).

    The source must export `int vl_cpu_supported(void)` (1 when the CPU has what the code needs);
    `needs` names those features for the message.
    """
    if platform.machine().lower() not in ("x86_64", "amd64"):
        lib, reason = None, f"{source.name} needs an x86-64 CPU (this is {platform.machine()})"
    else:
        lib = load(source, flags)
        if lib is None:
            reason = build_error(source, flags)
        elif not lib.vl_cpu_supported():
            lib, reason = None, f"this CPU lacks {needs}"
        else:
            reason = None
    _outcomes[source.name] = reason
    return lib, reason


_outcomes: dict[str, str | None] = {}


def kernel_outcomes() -> dict[str, str | None]:
    """Every C kernel this process tried to load: source file name -> None (in use) or why not."""
    return dict(_outcomes)


class NativeKernel:
    """One C kernel source of a CPU fast path, built and loaded on first use of `lib`.

    `signatures` maps each exported function to (argtypes, restype) for ctypes. `lib` is None where
    the kernel cannot run (not x86, no compiler, failed build, CPU lacks `needs`); `reason` says why.
    """

    def __init__(self, source: Path, flags: tuple[str, ...], needs: str,
                 signatures: dict[str, tuple[list, object]]) -> None:
        self.source, self.flags, self.needs, self.signatures = source, flags, needs, signatures
        self._loaded = False
        self._lib: ctypes.CDLL | None = None
        self._reason: str | None = None

    @property
    def lib(self) -> ctypes.CDLL | None:
        if not self._loaded:
            lib, reason = load_x86_kernel(self.source, self.flags, self.needs)
            if lib is not None:
                for name, (argtypes, restype) in self.signatures.items():
                    fn = getattr(lib, name)
                    fn.argtypes, fn.restype = argtypes, restype
            self._lib, self._reason, self._loaded = lib, reason, True
        return self._lib

    @property
    def reason(self) -> str | None:
        """None when `lib` is usable, else why not (loads the kernel first)."""
        _ = self.lib
        return self._reason
