"""Kernel benchmark: our Triton kernels against their PyTorch references (and flash-linear-attention).

    python benchmarks/kernel_speed.py                 # on one H100/H200: every kernel, realistic shapes (< 8 min)
    python benchmarks/kernel_speed.py --only gdn,moe  # a subset (gdn, conv, norm, rotary, moe, decode)
    python benchmarks/kernel_speed.py --cpu-smoke     # tiny shapes on CPU: reference vs Triton interpreter, seconds

Columns:
  triton / torch / fla   median time per call (CUDA events on GPU, perf_counter on CPU); fla is
                         flash-linear-attention's kernel where it can be imported (gated delta rule rows)
  vs torch, vs fla       time of that implementation / time of ours (> 1: ours is faster)
  GB/s, TFLOP/s          of our kernel, counting the bytes it must read and write and the useful FLOPs
  roofline               time the device's peak bandwidth / FLOP rate would need, over ours (H100/H200
                         peaks by device name; "-" when unknown, e.g. on CPU)
  max|err|               largest difference between ours and the reference on the same inputs (the GPU
                         check of the compiled kernels; the tests check them in the interpreter)

"engine decode" rows time one whole decode token of the engine (random weights, 128-token prefill):
"triton" = the step captured in a CUDA graph (model/cuda_decode.py), "torch" = the eager loop; the
tokens/s lines after the table are batch / time (target for 0.8B at B=1 on an H100/H200: >= 800).

Kernel shapes are one layer of Qwen3.5-0.8B, 2B, 9B and 35B-A3B (MODELS, with where each came from).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

if "--cpu-smoke" in sys.argv:  # must precede the first import of a Triton kernel
    os.environ["TRITON_INTERPRET"] = "1"

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from vlagent import kernels  # noqa: E402

# One layer of each model, from its published config.json (text_config). Sources, read 2026-12-06:
# 0.8B: huggingface.co/Qwen/Qwen3.5-0.8B/resolve/main/config.json (the file itself);
# 2B: the official file's first 50 lines, the rest from mlx-community/Qwen3.5-2B-mxfp4 (a converted copy);
# 9B: the official file's first 50 lines, the rest from a fine-tune of unsloth/Qwen3.5-9B (a re-upload);
# 35B-A3B: a transformers Qwen3_5MoeConfig printout of the released checkpoint, matching tables that cite
# huggingface.co/Qwen/Qwen3.5-35B-A3B at revision 59d61f3. All four: key/value head dims 128, conv width 4,
# attention head dim 256 with partial rotary 0.25 (64 dims), vocabulary 248,320.
MODELS = {
    "0.8B": dict(hidden=1024, h_k=16, h_v=16, d_k=128, d_v=128, conv_w=4, attn_q=8, attn_kv=2, head_dim=256,
                 rotary=64, experts=0, top_k=0, moe_i=0, shared_i=0),
    "2B": dict(hidden=2048, h_k=16, h_v=16, d_k=128, d_v=128, conv_w=4, attn_q=8, attn_kv=2, head_dim=256,
               rotary=64, experts=0, top_k=0, moe_i=0, shared_i=0),
    "9B": dict(hidden=4096, h_k=16, h_v=32, d_k=128, d_v=128, conv_w=4, attn_q=16, attn_kv=4, head_dim=256,
               rotary=64, experts=0, top_k=0, moe_i=0, shared_i=0),
    "35B-A3B": dict(hidden=2048, h_k=16, h_v=32, d_k=128, d_v=128, conv_w=4, attn_q=16, attn_kv=2, head_dim=256,
                    rotary=64, experts=256, top_k=8, moe_i=512, shared_i=512),
}
PREFILL = (4096, 32768)
DECODE = (1, 64)

# (peak bytes/s, peak dense bf16 FLOP/s) by a substring of torch.cuda.get_device_name()
PEAKS = (("H200", 4.8e12, 989e12), ("H100 PCIe", 2.0e12, 756e12), ("H100", 3.35e12, 989e12))


def device_peaks(device_name: str) -> tuple[float | None, float | None]:
    """(peak bytes/s, peak dense bf16 FLOP/s) from the vendor's data sheet, or (None, None) if unknown."""
    for key, bw, flops in PEAKS:
        if key in device_name:
            return bw, flops
    return None, None


@dataclass
class Case:
    kernel: str
    shape: str
    run: dict[str, Callable[[], object]]  # "triton" / "torch" / "fla" -> a call
    bytes: float
    flops: float
    compare: Callable[[object, object], float] | None = None  # (triton result, torch result) -> max |err|
    timings: dict[str, float] = field(default_factory=dict)
    error: float | None = None
    tokens: int = 0  # tokens produced per call (engine decode rows)
    failures: dict[str, str] = field(default_factory=dict)  # implementation -> error message
    skipped: bool = False  # not measured (out of time)


def _max_err(a, b) -> float:
    if isinstance(a, (tuple, list)):
        return max(_max_err(x, y) for x, y in zip(a, b) if x is not None and y is not None)
    return (a.float() - b.float()).abs().max().item()


def _timer(device: torch.device, fn: Callable[[], object], budget_s: float, max_reps: int) -> float:
    """Median seconds per call after a warm-up (which also triggers Triton's compilation)."""
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
        times = []
        deadline = time.perf_counter() + budget_s
        while len(times) < max_reps and (len(times) < 3 or time.perf_counter() < deadline):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / 1e3)
        return statistics.median(times)
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# ---------------------------------------------------------------- cases

def _fla():
    try:
        from fla.ops.gated_delta_rule import chunk_gated_delta_rule, fused_recurrent_gated_delta_rule
        return chunk_gated_delta_rule, fused_recurrent_gated_delta_rule
    except Exception:  # not installed, or no GPU build
        return None


def gdn_cases(name, m, device, dtype, prefill, decode):
    H, HV, K, V = m["h_k"], m["h_v"], m["d_k"], m["d_v"]
    groups = HV // H
    fla = _fla() if device.type == "cuda" else None
    for T in prefill:
        q, k = (torch.randn(1, T, H, K, device=device, dtype=dtype) for _ in range(2))
        v = torch.randn(1, T, HV, V, device=device, dtype=dtype)
        g = F.logsigmoid(torch.randn(1, T, HV, device=device) + 2)
        beta = torch.rand(1, T, HV, device=device, dtype=dtype)
        h0 = torch.randn(1, HV, K, V, device=device) * 0.1
        kw = dict(initial_state=h0, output_final_state=True, use_qk_l2norm_in_kernel=True)
        run = {
            "triton": lambda: kernels.chunk_gated_delta_rule(q, k, v, g, beta, backend="triton", **kw),
            "torch": lambda: kernels.chunk_gated_delta_rule(q, k, v, g, beta, backend="torch", **kw),
        }
        if fla is not None:
            qe, ke = q.repeat_interleave(groups, 2), k.repeat_interleave(groups, 2)  # portable across fla versions
            run["fla"] = lambda: fla[0](qe, ke, v, g, beta, **kw)
        C = 64
        flops = T * HV * (4 * C * K + 2 * C * (K + V) + 2 * C * V + 6 * K * V)
        nbytes = (2 * T * H * K + 2 * T * HV * V) * q.element_size() + T * HV * 8 + 2 * HV * K * V * 4
        yield Case("gdn chunk", f"{name} T={T}", run, nbytes, flops, _max_err)
    for B in decode:
        q, k = (torch.randn(B, H, K, device=device, dtype=dtype) for _ in range(2))
        v = torch.randn(B, HV, V, device=device, dtype=dtype)
        a, b = (torch.randn(B, HV, device=device, dtype=dtype) for _ in range(2))
        A_log, dt_bias = torch.randn(HV, device=device), torch.randn(HV, device=device)
        state = torch.randn(B, HV, K, V, device=device) * 0.1
        s_triton, s_torch = state.clone(), state.clone()
        run = {
            "triton": lambda: kernels.gated_delta_decode_step(q, k, v, a, b, A_log, dt_bias, s_triton, backend="triton"),
            "torch": lambda: kernels.gated_delta_decode_step(q, k, v, a, b, A_log, dt_bias, s_torch, backend="torch"),
        }
        if fla is not None and B == 1:  # fla 0.6.0's fused_recurrent hit an illegal memory access at B=32 (H100)
            g = -A_log.exp() * F.softplus(a.float() + dt_bias)
            beta = b.float().sigmoid().to(dtype)
            qe, ke = q.repeat_interleave(groups, 1)[:, None], k.repeat_interleave(groups, 1)[:, None]
            s_fla = state.clone()
            run["fla"] = lambda: fla[1](qe, ke, v[:, None], g[:, None], beta[:, None], initial_state=s_fla,
                                        output_final_state=True, use_qk_l2norm_in_kernel=True)
        nbytes = 2 * B * HV * K * V * 4 + (2 * B * H * K + 2 * B * HV * V) * q.element_size()
        flops = B * HV * 8 * K * V
        # states drift apart as both are stepped repeatedly; compare the outputs of one fresh step instead
        def compare(_a, _b, q=q, k=k, v=v, a=a, b=b, A_log=A_log, dt_bias=dt_bias, state=state):
            s1, s2 = state.clone(), state.clone()
            o1 = kernels.gated_delta_decode_step(q, k, v, a, b, A_log, dt_bias, s1, backend="triton")
            o2 = kernels.gated_delta_decode_step(q, k, v, a, b, A_log, dt_bias, s2, backend="torch")
            return max(_max_err(o1, o2), _max_err(s1, s2))
        yield Case("gdn decode step", f"{name} B={B}", run, nbytes, flops, compare)


def conv_cases(name, m, device, dtype, prefill, decode):
    D = 2 * m["h_k"] * m["d_k"] + m["h_v"] * m["d_v"]  # the q|k|v channels of in_proj_qkv
    W = m["conv_w"]
    w = torch.randn(D, W, device=device, dtype=dtype)
    for T in prefill:
        x = torch.randn(1, T, D, device=device, dtype=dtype)
        run = {b: (lambda b=b: kernels.causal_conv1d(x, w, backend=b)) for b in ("triton", "torch")}
        yield Case("causal conv1d", f"{name} T={T} D={D}", run, 2 * T * D * x.element_size(),
                          2 * T * D * W, _max_err)
    for B in decode:
        x = torch.randn(B, D, device=device, dtype=dtype)
        states = {b: torch.randn(B, D, W - 1, device=device, dtype=dtype) for b in ("triton", "torch")}
        states["torch"].copy_(states["triton"])
        run = {b: (lambda b=b: kernels.causal_conv1d_update(x, states[b], w, backend=b)) for b in ("triton", "torch")}
        nbytes = (2 * B * D * (W - 1) + 2 * B * D) * x.element_size()
        yield Case("conv1d update", f"{name} B={B}", run, nbytes, 2 * B * D * W, None)


def norm_cases(name, m, device, dtype, prefill, decode):
    for T in tuple(prefill) + tuple(decode):
        x = torch.randn(T, m["hidden"], device=device, dtype=dtype)
        w = torch.randn(m["hidden"], device=device, dtype=dtype)
        run = {b: (lambda b=b: kernels.rms_norm(x, w, backend=b)) for b in ("triton", "torch")}
        yield Case("rms_norm", f"{name} N={T}", run, 2 * x.numel() * x.element_size(), 4 * x.numel(), _max_err)
        xv = torch.randn(T * m["h_v"], m["d_v"], device=device, dtype=dtype)
        z = torch.randn_like(xv)
        wv = torch.randn(m["d_v"], device=device, dtype=dtype)
        run = {b: (lambda b=b: kernels.gated_rms_norm(xv, z, wv, backend=b)) for b in ("triton", "torch")}
        yield Case("gated_rms_norm", f"{name} N={T}x{m['h_v']}", run, 3 * xv.numel() * xv.element_size(),
                          8 * xv.numel(), _max_err)


def rotary_cases(name, m, device, dtype, prefill, decode):
    R = m["rotary"]
    inv_freq = 1.0 / (10_000_000 ** (torch.arange(0, R, 2, device=device).float() / R))
    for T in tuple(prefill) + tuple(decode):
        B, L = (1, T) if T in prefill else (T, 1)
        q = torch.randn(B, L, m["attn_q"], m["head_dim"], device=device, dtype=dtype)
        k = torch.randn(B, L, m["attn_kv"], m["head_dim"], device=device, dtype=dtype)
        pos = torch.arange(L, device=device).expand(3, B, L)
        cos, sin = kernels.mrope_cos_sin(pos, inv_freq, [R // 2 - 2 * (R // 6), R // 6, R // 6], dtype=dtype)
        run = {b: (lambda b=b: kernels.apply_rotary(q, k, cos, sin, backend=b)) for b in ("triton", "torch")}
        nbytes = 2 * (q.numel() + k.numel()) * q.element_size() + 2 * cos.numel() * cos.element_size()
        yield Case("rotary", f"{name} {'T' if L > 1 else 'B'}={T}", run, nbytes,
                          3 * (q.numel() + k.numel()) * R // m["head_dim"], _max_err)


def moe_cases(name, m, device, dtype, prefill, decode):
    if not m["experts"]:
        return
    E, D, I, Is, top_k = m["experts"], m["hidden"], m["moe_i"], m["shared_i"], m["top_k"]
    std = D**-0.5
    router = torch.randn(E, D, device=device, dtype=dtype) * std
    w_gate_up = torch.randn(E, 2 * I, D, device=device, dtype=dtype) * std
    w_down = torch.randn(E, D, I, device=device, dtype=dtype) * I**-0.5
    shared = dict(shared_gate_up=torch.randn(2 * Is, D, device=device, dtype=dtype) * std,
                  shared_down=torch.randn(D, Is, device=device, dtype=dtype) * Is**-0.5,
                  shared_gate_weight=torch.randn(1, D, device=device, dtype=dtype) * std)
    for N in tuple(prefill) + tuple(decode):
        x = torch.randn(N, D, device=device, dtype=dtype)
        run = {b: (lambda b=b: kernels.fused_moe(x, router, w_gate_up, w_down, top_k, backend=b, **shared))
               for b in ("triton", "torch")}
        experts_touched = min(E, N * top_k)
        nbytes = (experts_touched * 3 * I * D + 3 * Is * D + E * D + 2 * N * D) * x.element_size()
        flops = N * (top_k * 6 * D * I + 6 * D * Is + 2 * E * D)
        yield Case("fused_moe", f"{name} N={N}", run, nbytes, flops, _max_err)


# end-to-end decode: the engine's layer stack with random weights (no checkpoint needed)
ENGINE_SHAPES = {
    "0.8B": dict(vocab_size=248320, hidden_size=1024, intermediate_size=3584, num_hidden_layers=24,
                 num_attention_heads=8, num_key_value_heads=2, head_dim=256, linear_num_key_heads=16,
                 linear_num_value_heads=16, linear_key_head_dim=128, linear_value_head_dim=128),
    "9B": dict(vocab_size=248320, hidden_size=4096, intermediate_size=12288, num_hidden_layers=32,
               num_attention_heads=16, num_key_value_heads=4, head_dim=256, linear_num_key_heads=16,
               linear_num_value_heads=32, linear_key_head_dim=128, linear_value_head_dim=128,
               tie_word_embeddings=False),
}
ENGINE_SMOKE = {
    "tiny": dict(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=4, num_attention_heads=4,
                 num_key_value_heads=2, head_dim=32, linear_num_key_heads=2, linear_num_value_heads=4,
                 linear_key_head_dim=16, linear_value_head_dim=16),
}
ENGINE_PROMPT, ENGINE_STEPS = 128, 160  # prefill length; cache room for the timed decode steps
ENGINE_SMOKE_PROMPT = 8


def random_engine(text: dict, device, dtype, backend: str):
    """The engine (model/qwen35.py) with random weights of the given text-config shape."""
    from vlagent.model.config import load_config
    from vlagent.model.qwen35 import Qwen35ForConditionalGeneration

    text = dict(text)
    raw = {"model_type": "qwen3_5", "tie_word_embeddings": text.pop("tie_word_embeddings", True),
           "text_config": dict(text, full_attention_interval=4, rope_parameters={"rope_type": "default",
                               "rope_theta": 1e7, "partial_rotary_factor": 0.25, "mrope_section": [11, 11, 10]}),
           "vision_config": {}}
    model = Qwen35ForConditionalGeneration(load_config(raw), dtype=dtype, device=device, backend=backend,
                                           with_mtp=False, with_vision=False)
    gen = torch.Generator(device=device).manual_seed(0)
    for name, p in model.named_parameters():
        if name.endswith(("norm.weight", "norm_weight", "q_norm", "k_norm")):
            p.data.zero_()  # zero-centred norms: scale 1
        else:
            p.data.normal_(0.0, 0.02, generator=gen)
    return model.eval()


def engine_decode_cases(name, text, device, dtype, decode, prompt=ENGINE_PROMPT):
    """One decode token of the whole model at batch B: the CUDA-graph replay ("triton" column: Triton
    kernels, graph-captured; eagerly on CPU) against the eager loop ("torch" column: the same kernels
    launched one by one on GPU, the PyTorch paths on CPU)."""
    from vlagent.model.cuda_decode import CudaGraphDecoder

    on_gpu = device.type == "cuda"
    model = random_engine(text, device, dtype, "auto" if on_gpu else "triton")
    eager_model = model if on_gpu else random_engine(text, device, dtype, "torch")
    # bytes read per token: every weight once, except an untied input embedding (one row is looked up)
    weight_bytes = sum(p.numel() * p.element_size() for n, p in model.named_parameters()
                       if not (n == "embed_tokens" and model.lm_head is not None))
    for B in decode:
        ids = torch.randint(0, text["vocab_size"], (B, prompt), device=device)

        def prefilled(m):
            cache = m.new_cache(B, prompt + ENGINE_STEPS)
            m.decode_hidden(m.embed(ids), m.position_ids(ids, None), cache)
            return cache

        with torch.inference_mode():
            graph_cache, eager_cache = prefilled(model), prefilled(eager_model)
        decoder = CudaGraphDecoder(model, graph_cache, capture=on_gpu)
        token = torch.zeros(B, dtype=torch.long, device=device)

        @torch.inference_mode()
        def graph_step():
            return decoder(token).argmax(-1)

        @torch.inference_mode()
        def eager_step(m=eager_model, cache=eager_cache):
            x = F.embedding(token[:, None], m.embed_tokens)
            hidden = m.decode_hidden(x, cache.next_pos.view(1, B, 1).expand(3, B, 1), cache)
            return m.logits(hidden[:, -1]).argmax(-1)

        state_bytes = sum(t.numel() * t.element_size() for t in (*graph_cache.rec.values(), *graph_cache.conv.values()))
        kv_bytes = sum(k.numel() * k.element_size() * 2 for k, _ in graph_cache.kv.values()) * prompt / graph_cache.max_len
        flops = 2 * B * sum(p.numel() for p in model.parameters())
        yield Case("engine decode", f"{name} B={B}", {"triton": graph_step, "torch": eager_step},
                   weight_bytes + 2 * state_bytes + kv_bytes, flops, tokens=B)


BUILDERS = {"gdn": gdn_cases, "conv": conv_cases, "norm": norm_cases, "rotary": rotary_cases, "moe": moe_cases,
            "decode": engine_decode_cases}


def smoke_models():
    """Tiny shapes with the same structure (grouped value heads, MoE with a shared expert)."""
    return {
        "tiny": dict(hidden=64, h_k=2, h_v=4, d_k=16, d_v=16, conv_w=4, attn_q=4, attn_kv=2, head_dim=32,
                     rotary=16, experts=8, top_k=2, moe_i=32, shared_i=32),
    }


HEADER = ("kernel", "shape", "triton", "torch", "vs torch", "fla", "vs fla", "GB/s", "TFLOP/s", "roofline", "max|err|")


def measure(only, device, dtype, *, smoke: bool, budget: float = 1.0, models: dict | None = None,
            engine_shapes: dict | None = None, lengths: tuple[tuple, tuple] | None = None,
            deadline: float | None = None, log=print):
    """Time every case of the `only` builders (lengths: (prefill token counts, decode batch sizes)); yields each Case once timed (a failing implementation is
    reported and left out of its row). Cases not started before `deadline` (a perf_counter value) are
    yielded untimed with `skipped` set, so a caller short of time still lists what it did not measure."""
    if models is None:
        models = smoke_models() if smoke else MODELS
    if engine_shapes is None:
        engine_shapes = ENGINE_SMOKE if smoke else ENGINE_SHAPES
    prefill, decode = lengths or (((70,), (1, 3)) if smoke else (PREFILL, DECODE))
    torch.manual_seed(0)
    started = time.perf_counter()
    for key in only:
        shapes = engine_shapes if key == "decode" else models
        for name, m in shapes.items():
            if deadline is not None and time.perf_counter() > deadline:
                yield Case(key, f"{name} (not run: out of time)", {}, 0.0, 0.0, skipped=True)
                continue
            cases = (engine_decode_cases(name, m, device, dtype, decode,
                                         ENGINE_SMOKE_PROMPT if smoke else ENGINE_PROMPT) if key == "decode"
                     else BUILDERS[key](name, m, device, dtype, prefill, decode))
            for case in cases:
                results = {}
                for impl, fn in case.run.items():
                    try:
                        case.timings[impl] = _timer(device, fn, budget, 50)
                        results[impl] = fn()
                    except Exception as exc:  # report and keep going: one failing kernel must not hide the rest
                        case.failures[impl] = f"{type(exc).__name__}: {exc}"
                        log(f"  {case.kernel} {case.shape} [{impl}] failed: {type(exc).__name__}: {exc}")
                if case.compare and "triton" in results and "torch" in results:
                    case.error = case.compare(results["triton"], results["torch"])
                log(f"  timed: {case.kernel} {case.shape} ({time.perf_counter() - started:.0f} s)")
                del results
                if device.type == "cuda":
                    torch.cuda.empty_cache()
                yield case


def _fmt_time(s):
    return "-" if s is None else (f"{s * 1e3:.3f} ms" if s < 1 else f"{s:.2f} s")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu-smoke", action="store_true", help="tiny shapes on CPU (Triton interpreter)")
    parser.add_argument("--only", default="", help="comma-separated subset of " + ",".join(BUILDERS))
    parser.add_argument("--budget", type=float, default=1.0, help="seconds of timing per implementation and case")
    args = parser.parse_args(argv)

    if args.cpu_smoke:
        device, dtype = torch.device("cpu"), torch.float32
        peak_bw = peak_flops = None
        device_name = "CPU (Triton interpreter)"
    else:
        if not torch.cuda.is_available():
            print("no CUDA device: run with --cpu-smoke for the CPU check", file=sys.stderr)
            return 2
        device, dtype = torch.device("cuda"), torch.bfloat16
        device_name = torch.cuda.get_device_name()
        peak_bw, peak_flops = device_peaks(device_name)
    only = [s for s in args.only.split(",") if s] or list(BUILDERS)
    unknown = set(only) - set(BUILDERS)
    if unknown:
        parser.error(f"unknown kernels {sorted(unknown)}; choose from {sorted(BUILDERS)}")

    print(f"device: {device_name}; dtype {str(dtype).replace('torch.', '')}"
          + (f"; peaks {peak_bw / 1e12:.2f} TB/s, {peak_flops / 1e12:.0f} TFLOP/s" if peak_bw else ""))
    rows, decode_rows = [], []
    started = time.perf_counter()
    for case in measure(only, device, dtype, smoke=args.cpu_smoke, budget=args.budget):
        rows.append(_row(case, peak_bw, peak_flops))
        if case.kernel == "engine decode":
            decode_rows.append(case)
    header = HEADER
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)))
    for case in decode_rows:
        rate = {k: f"{case.tokens / t:.0f}" if t else "-" for k, t in case.timings.items()}
        where = " (the static step run eagerly on CPU)" if device.type != "cuda" else ""
        print(f"engine decode {case.shape}: {rate.get('triton', '-')} tokens/s with the CUDA graph{where}, "
              f"{rate.get('torch', '-')} tokens/s eager")
    print(f"total {time.perf_counter() - started:.1f} s")
    return 0


def _row(case: Case, peak_bw, peak_flops):
    t = case.timings
    ours = t.get("triton")
    ratio = lambda other: "-" if ours is None or other is None else f"{other / ours:.2f}x"  # noqa: E731
    gbs = tfs = roof = "-"
    if ours:
        gbs = f"{case.bytes / ours / 1e9:.1f}"
        tfs = f"{case.flops / ours / 1e12:.2f}"
        if peak_bw:
            roof = f"{max(case.bytes / peak_bw, case.flops / peak_flops) / ours * 100:.0f}%"
    err = "-" if case.error is None else f"{case.error:.2e}"
    return (case.kernel, case.shape, _fmt_time(ours), _fmt_time(t.get("torch")), ratio(t.get("torch")),
            _fmt_time(t.get("fla")), ratio(t.get("fla")), gbs, tfs, roof, err)


if __name__ == "__main__":
    sys.exit(main())
