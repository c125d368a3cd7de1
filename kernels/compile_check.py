"""Compile every Triton kernel for a GPU target without a GPU: python -m vlagent.kernels.compile_check

Triton's NVIDIA backend ships ptxas, so the full pipeline (Python AST -> TTIR -> TTGIR -> PTX -> cubin)
runs on any machine. This catches what the CPU interpreter cannot: compiled-mode-only errors (types,
unsupported constructs, shapes the compiler rejects) and register spills, for the shapes the engine
uses (Qwen3.5 head dims 128, bf16). It does not check numerics (the interpreter tests do) or speed.
"""
from __future__ import annotations

import argparse
import itertools
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass


@dataclass
class Build:
    name: str
    ok: bool
    seconds: float
    detail: str


def _configs():
    """(label, module, kernel name, {arg: type string or constexpr value, num_warps}) for the shapes that
    matter; num_warps must match the launcher's."""
    import triton.language as tl

    bf16, f32, i32 = "*bf16", "*fp32", "*i32"
    gdn = dict(H=16, HV=64, K=128, V=128, BK=128)
    out = []
    for gate in (False, True):
        out.append((f"fused_recurrent gate_from_params={gate}", "gated_delta_rule.fused_recurrent",
                    "_fused_recurrent_kernel",
                    dict(q=bf16, k=bf16, v=bf16, g=bf16 if gate else f32, beta=bf16, A_log=f32, dt_bias=f32, o=bf16,
                         h0=f32, ht=f32, cu_seqlens=i32, scale="fp32", **gdn, BV=32, USE_L2NORM=True, HAS_H0=True,
                         STORE_HT=True, GATE_FROM_PARAMS=gate)))
    for dtype, prec in (("bf16", "tf32"), ("fp32", "tf32x3")):
        p = "*" + dtype
        out.append((f"chunk prepare {dtype}", "gated_delta_rule.chunk", "_chunk_prepare_kernel",
                     dict(k=p, v=p, g=f32, beta=p, w=f32, u=f32, gc=f32, chunk_seq=i32, chunk_start=i32,
                          cu_seqlens=i32, H=16, HV=64, K=128, V=128, BK=128, BVF=128, C=64, USE_L2NORM=True,
                          PREC=prec, SUB=16, num_warps=4)))
        out.append((f"chunk state {dtype}", "gated_delta_rule.chunk", "_chunk_state_kernel",
                     dict(q=p, k=p, w=f32, u=f32, gc=f32, o=p, h0=f32, ht=f32, cu_seqlens=i32, scale="fp32",
                          **gdn, BV=64, C=64, USE_L2NORM=True, HAS_H0=True, STORE_HT=True, PREC=prec,
                          num_warps=8)))
    out.append(("causal_conv1d", "conv1d.triton", "_causal_conv1d_kernel",
                dict(x=bf16, weight=bf16, bias=bf16, h0=bf16, y=bf16, T="i32", D="i32", W=4, BT=16, BD=64,
                     HAS_BIAS=True, HAS_H0=True, SILU=True, num_warps=8)))
    out.append(("causal_conv1d_update", "conv1d.triton", "_causal_conv1d_update_kernel",
                dict(x=bf16, state=bf16, weight=bf16, bias=bf16, y=bf16, D="i32", W=4, BW=4, BD=128,
                     HAS_BIAS=True, SILU=True)))
    out.append(("rms_norm", "norm.triton", "_rms_norm_kernel",
                dict(x=bf16, weight=bf16, y=bf16, M="i32", D="i32", eps="fp32", BM=1, BD=4096, ZERO_CENTERED=True)))
    out.append(("gated_rms_norm", "norm.triton", "_gated_rms_norm_kernel",
                dict(x=bf16, z=bf16, weight=f32, y=bf16, M="i32", D="i32", eps="fp32", BM=16, BD=128,
                     IN_DTYPE=tl.bfloat16, PRODUCT_DTYPE=tl.float32)))
    out.append(("rotary", "rotary.triton", "_rotary_kernel",
                dict(x=bf16, cos=bf16, sin=bf16, y=bf16, H="i32", D="i32", R="i32", BH=16, BHALF=32, BP=256,
                     DT=tl.bfloat16)))
    for (dtype, p, dt, prec), bm in itertools.product(
            (("bf16", bf16, tl.bfloat16, "tf32"), ("fp32", f32, tl.float32, "tf32x3")), (16, 64)):
        out.append((f"moe gate_up {dtype} BM={bm}", "moe.triton", "_expert_gate_up_kernel",
                    dict(x=p, w_gate_up=p, h=p, sorted_slots=i32, block_expert=i32, num_slots="i32",
                         D="i32", I="i32", TOP_K=10, BM=bm, BN=64, BK=64, DT=dt, DOT_DT=dt,
                         PREC=prec, num_warps=8 if bm >= 32 else 4)))
        out.append((f"moe down {dtype} BM={bm}", "moe.triton", "_expert_down_kernel",
                    dict(h=p, w_down=p, routing_weights=p, y_slots=p, sorted_slots=i32,
                         block_expert=i32, num_slots="i32", D="i32", I="i32", BM=bm, BN=64, BK=64,
                         DT=dt, DOT_DT=dt, PREC=prec, num_warps=8 if bm >= 32 else 4)))
    out.append(("moe combine", "moe.triton", "_combine_kernel",
                dict(y_slots=bf16, slot_order=i32, shared=bf16, shared_gate=bf16, out=bf16, D="i32", TOP_K=10,
                     BD=512, HAS_SHARED=True, HAS_SHARED_GATE=True, DT=tl.bfloat16)))
    return out


def _is_type(value) -> bool:
    return isinstance(value, str) and (value.startswith("*") or value in ("i32", "i64", "fp32"))


def _ptxas_usage(ptx: str, arch: int) -> str:
    """Registers / spills reported by `ptxas -v` for the generated PTX."""
    from triton.backends.nvidia.compiler import get_ptxas

    ptxas = get_ptxas(arch).path
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "k.ptx")
        with open(src, "w") as f:
            f.write(ptx)
        gpu = f"sm_{arch}a" if arch >= 90 else f"sm_{arch}"  # the "a" (arch-specific) targets start at sm_90
        res = subprocess.run([ptxas, "-v", f"--gpu-name={gpu}", src, "-o", os.path.join(tmp, "k.o")],
                             capture_output=True, text=True)
    text = res.stdout + res.stderr
    regs = re.search(r"Used (\d+) registers", text)
    spill = re.search(r"(\d+) bytes spill stores, (\d+) bytes spill loads", text)
    return (f"{regs.group(1) if regs else '?'} regs"
            + (f", spills {spill.group(1)}/{spill.group(2)} B st/ld" if spill else ""))


# Shared memory one block may use (the opt-in maximum), in bytes, by SM version: the CUDA C++
# Programming Guide's table of compute capabilities (sm_90's figure is also the one the H100 reported).
SHARED_MEMORY_PER_BLOCK = {80: 166_912, 86: 101_376, 87: 166_912, 89: 101_376, 90: 232_448,
                           100: 232_448, 120: 101_376}
# Kernels whose callers take another path when no launch option fits (kernels/dispatch.py)
FALLBACKS = {"_chunk_prepare_kernel": "the fused recurrent kernel", "_chunk_state_kernel": "the fused recurrent kernel"}


def _alternatives(kernel_name: str, args: dict) -> list[tuple[str, dict]]:
    """(description, extra arguments) of each launch option the launcher may try, in its order."""
    if kernel_name != "_chunk_state_kernel":
        return [("", {})]
    import torch
    import triton.language as tl

    from .gated_delta_rule.chunk import state_pass_options
    from .triton_utils import tl_dtype

    dtype = torch.float32 if args["q"] == "*fp32" else torch.bfloat16
    out = []
    for option in state_pass_options(dtype):
        dot = tl_dtype(dtype) if option.operands_in_input_dtype else tl.float32
        out.append((str(option), dict(ROUND_DT=dot, DOT_DT=dot, num_stages=option.num_stages)))
    return out


def _compile(kernel, label: str, args: dict, arch: int):
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    args = dict(args)
    options = {"num_warps": args.pop("num_warps", 4)}
    if "num_stages" in args:
        options["num_stages"] = args.pop("num_stages")
    missing = set(kernel.arg_names) - set(args)
    if missing:
        raise RuntimeError(f"{label}: compile_check config lacks arguments {sorted(missing)}")
    signature, constexprs = {}, {}
    for i, name in enumerate(kernel.arg_names):
        value = args[name]
        if _is_type(value):
            signature[name] = value
        else:
            signature[name] = "constexpr"
            constexprs[(i,)] = value
    return triton.compile(ASTSource(fn=kernel, signature=signature, constexprs=constexprs),
                          target=GPUTarget("cuda", arch, 32), options=options)


def compile_all(arch: int = 90, names: list[str] | None = None, usage: bool = True) -> list[Build]:
    """Compile each kernel's launch options in the launcher's order until one fits the arch's shared
    memory; a kernel fails when it does not compile, or when nothing fits and its caller has no other path."""
    if arch not in SHARED_MEMORY_PER_BLOCK:
        raise ValueError(f"no shared-memory limit known for sm_{arch}; known: "
                         + ", ".join(f"sm_{a}" for a in sorted(SHARED_MEMORY_PER_BLOCK)))
    limit = SHARED_MEMORY_PER_BLOCK[arch]
    os.environ.pop("TRITON_INTERPRET", None)  # compiled kernels; must happen before the modules are imported
    import importlib
    results = []
    for label, module, kernel_name, args in _configs():
        if names and not any(n in label for n in names):
            continue
        kernel = getattr(importlib.import_module(f"vlagent.kernels.{module}"), kernel_name)
        if type(kernel).__name__ == "InterpretedFunction":
            raise RuntimeError("kernels were imported under TRITON_INTERPRET=1; run compile_check in a fresh process")
        start = time.perf_counter()
        tried = []
        try:
            for description, extra in _alternatives(kernel_name, args):
                compiled = _compile(kernel, label, {**args, **extra}, arch)
                shared = compiled.metadata.shared
                where = f" with {description}" if description else ""
                tried.append(f"{shared / 1024:.0f} KB{where}")
                if shared <= limit:
                    usage_text = _ptxas_usage(compiled.asm["ptx"], arch) if usage else "ok"
                    room = f" of {limit / 1024:.0f}"
                    results.append(Build(label, True, time.perf_counter() - start,
                                         f"{usage_text}; shared {shared / 1024:.0f}{room} KB{where}"))
                    break
            else:
                fallback = FALLBACKS.get(kernel_name)
                detail = f"no option fits sm_{arch}'s {limit / 1024:.0f} KB of shared memory ({', '.join(tried)})"
                results.append(Build(label, fallback is not None, time.perf_counter() - start,
                                     detail + (f"; the caller runs {fallback}" if fallback else "")))
        except Exception as exc:  # report every kernel, not just the first failure
            results.append(Build(label, False, time.perf_counter() - start, f"{type(exc).__name__}: {exc}"[:2000]))
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="compile the Triton kernels for a GPU arch (no GPU needed)")
    parser.add_argument("--arch", type=int, default=90,
                        help="SM version: 90 = H100/H200, 80 = A100, 89 = RTX 40-series/L4, 86 = RTX 30-series/A10")
    parser.add_argument("names", nargs="*", help="substrings of kernel labels to compile (default: all)")
    args = parser.parse_args(argv)
    results = compile_all(args.arch, args.names)
    for r in results:
        print(f"{'ok  ' if r.ok else 'FAIL'} {r.name:<36} {r.seconds:6.1f} s  {r.detail}")
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
