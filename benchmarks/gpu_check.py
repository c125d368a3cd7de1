"""The GPU proof in one command: are the Triton kernels right on a real GPU, how fast are they, and how
fast does the engine decode?

    python benchmarks/gpu_check.py                  # one NVIDIA GPU, <= 8 min including Triton compilation
    python benchmarks/gpu_check.py --cpu-smoke      # the same script end to end on CPU, tiny shapes, < 1 min

Sections (run in this order, so that a run cut short keeps what matters most):
  1. correctness  every Triton kernel against its PyTorch reference on awkward shapes, fp32 and bf16. The
                  truth is the PyTorch path on fp32 copies of the same inputs; `err` is max|ours - truth| /
                  max|truth|. A kernel passes when err <= its stated tolerance, or (bf16) when it is no worse
                  than twice the PyTorch path's own error in that dtype. Any failure: exit status 1.
  2. engine       a random Qwen3.5-0.8B-shaped checkpoint (vision tower and MTP head included) built with
                  transformers' own classes: logits parity with transformers on the GPU (fp32 and bf16, an
                  image + text prompt), then batch-1 greedy decode tokens/s: transformers, the engine's eager
                  loop, the CUDA-graph decoder, and MTP speculation; the fraction of the GPU's memory
                  bandwidth that decode reaches (bytes of weights read per token x tokens/s / peak). The
                  9B shape's decode step (random weights, no checkpoint) gives the bandwidth figure there.
  3. kernels      each kernel timed against its PyTorch reference and flash-linear-attention (where it
                  imports; --fla-path adds a folder to sys.path for it *after* section 2, so transformers'
                  reference there runs its own PyTorch paths) on the shapes of Qwen3.5-0.8B, 2B, 9B and
                  35B-A3B (benchmarks/kernel_speed.py: MODELS, with where each shape came from).

Everything lands in OUT/gpu_check.json and OUT/gpu_check.md (OUT: --out, default ./gpu_check_out); the
folder is printed at the end. The JSON is rewritten after each section.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

if "--cpu-smoke" in sys.argv:  # before the first import of a Triton kernel
    os.environ["TRITON_INTERPRET"] = "1"
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import kernel_speed  # noqa: E402  (benchmarks/ is first on sys.path)
from vlagent import kernels as K  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- 1. correctness

@dataclass
class Check:
    kernel: str
    shape: str
    dtype: str
    err: float  # max |ours - truth| / max |truth|
    torch_err: float  # the same for the PyTorch path in this dtype
    tol: float
    ok: bool
    note: str = ""


# Relative tolerances (of max |truth|). fp32: the chunked delta rule and MoE multiply on tensor cores in
# "tf32x3" (about fp32 accuracy); recurrences sum in another order. bf16: the output is rounded to bf16
# after fp32 math (one ulp is 2^-8 relative; elementwise kernels may be off by two of the largest output's
# ulps, 1.6e-2); the delta rule and MoE also round intermediate activations.
TOLERANCES = {
    "gdn chunk": (2e-4, 2e-2), "gdn chunk varlen": (2e-4, 2e-2), "gdn recurrent": (1e-4, 2e-2),
    "gdn recurrent varlen": (1e-4, 2e-2), "gdn decode step": (1e-4, 2e-2), "causal conv1d": (1e-5, 1e-2),
    "conv1d update": (1e-5, 1.6e-2), "rms_norm": (1e-5, 1.6e-2), "gated_rms_norm": (1e-5, 1.6e-2),
    "rotary": (1e-5, 1.6e-2), "fused_moe": (2e-4, 3e-2),
}


def _floats_to(value, dtype):
    if isinstance(value, torch.Tensor) and value.is_floating_point() and value.dtype != torch.float32 or (
            isinstance(value, torch.Tensor) and value.is_floating_point() and dtype == torch.float32):
        return value.to(dtype)
    return value


def _rel_err(ours, truth) -> float:
    if isinstance(ours, (tuple, list)):
        return max(_rel_err(a, b) for a, b in zip(ours, truth) if a is not None and b is not None)
    scale = truth.float().abs().max().item()
    return (ours.float() - truth.float()).abs().max().item() / max(scale, 1e-6)


def _check(kernel: str, shape: str, dtype: torch.dtype, call: Callable, inputs: dict) -> Check:
    """call(backend, **inputs) -> result. Inputs are cloned per call (some kernels update state in place);
    the truth is the torch backend on fp32 copies (fp32 state tensors stay fp32)."""
    def run(backend, convert=None):
        args = {k: (v.clone() if isinstance(v, torch.Tensor) else v) for k, v in inputs.items()}
        if convert is not None:
            args = {k: (v.float() if isinstance(v, torch.Tensor) and v.is_floating_point() else v)
                    for k, v in args.items()}
        out = call(backend, **args)
        return out

    fp32_tol, bf16_tol = TOLERANCES[kernel]
    tol = fp32_tol if dtype == torch.float32 else bf16_tol
    try:
        ours = run("triton")
    except Exception as exc:  # a compile or launch error is a failed check, with its message
        return Check(kernel, shape, _dtype_name(dtype), float("nan"), float("nan"), tol, False,
                     f"{type(exc).__name__}: {str(exc)[:300]}")
    same = run("torch")
    truth = run("torch", convert=True)
    err, torch_err = _rel_err(ours, truth), _rel_err(same, truth)
    finite = all(torch.isfinite(t.float()).all().item() for t in (ours if isinstance(ours, (tuple, list)) else (ours,))
                 if t is not None)
    ok = finite and (err <= tol or (dtype != torch.float32 and err <= 2 * torch_err))
    return Check(kernel, shape, _dtype_name(dtype), err, torch_err, tol, ok, "" if finite else "non-finite output")


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def correctness_cases(device: torch.device, smoke: bool):
    """(kernel, shape label, call, inputs builder(dtype)) over awkward shapes: lengths that are not multiples
    of the 64-token chunk, grouped value heads, packed variable-length sequences, non-power-of-two widths."""
    gen = torch.Generator(device="cpu").manual_seed(0)

    def rnd(*shape, scale=1.0):
        return (torch.randn(*shape, generator=gen) * scale).to(device)

    HK, V = (16, 16) if smoke else (128, 128)
    H, HV = 2, 4
    T = 70 if smoke else 200
    D_conv = 40 if smoke else 1000
    D_norm = 48 if smoke else 1000
    head_dim, rot = (32, 16) if smoke else (256, 64)
    E, D_moe, I_moe, k_moe = (8, 32, 24, 2) if smoke else (16, 256, 96, 4)

    def gdn_inputs(B, T, N=None):
        q, k = rnd(B, T, H, HK), rnd(B, T, H, HK)
        v = rnd(B, T, HV, V)
        g = F.logsigmoid(rnd(B, T, HV) + 2.0)
        beta = torch.rand(B, T, HV, generator=gen).to(device)
        h0 = rnd(N or B, HV, HK, V, scale=0.1)
        return dict(q=q, k=k, v=v, g=g, beta=beta, initial_state=h0)

    def gdn_call(op):
        def call(backend, q, k, v, g, beta, initial_state, cu_seqlens=None):
            return op(q, k, v, g, beta, initial_state=initial_state, output_final_state=True,
                      use_qk_l2norm_in_kernel=True, cu_seqlens=cu_seqlens, backend=backend)
        return call

    bounds = [0, 1, 65, 130, 197]
    cu = torch.tensor(bounds, dtype=torch.int32 if not smoke else torch.long, device=device)
    cases = []
    for name, op in (("gdn chunk", K.chunk_gated_delta_rule), ("gdn recurrent", K.fused_recurrent_gated_delta_rule)):
        base = gdn_inputs(2, T)
        cases.append((name, f"B=2 T={T} H={H} HV={HV} K=V={HK}", gdn_call(op), base))
        packed = dict(gdn_inputs(1, bounds[-1], N=len(bounds) - 1), cu_seqlens=cu)
        cases.append((name + " varlen", f"cu_seqlens={bounds} HV={HV} K=V={HK}", gdn_call(op), packed))

    def decode_call(backend, q, k, v, a, b, A_log, dt_bias, state):
        out = K.gated_delta_decode_step(q, k, v, a, b, A_log, dt_bias, state, backend=backend)
        return out, state
    cases.append(("gdn decode step", f"B=3 H={H} HV={HV} K=V={HK}", decode_call,
                  dict(q=rnd(3, H, HK), k=rnd(3, H, HK), v=rnd(3, HV, V), a=rnd(3, HV), b=rnd(3, HV),
                       A_log=rnd(HV), dt_bias=rnd(HV), state=rnd(3, HV, HK, V, scale=0.1))))

    def conv_call(backend, x, weight, bias, initial_state):
        return K.causal_conv1d(x, weight, bias, "silu", initial_state, backend=backend)
    cases.append(("causal conv1d", f"B=2 T={T + 3} D={D_conv} W=4", conv_call,
                  dict(x=rnd(2, T + 3, D_conv), weight=rnd(D_conv, 4, scale=0.5), bias=rnd(D_conv),
                       initial_state=rnd(2, D_conv, 3))))

    def conv_update_call(backend, x, conv_state, weight, bias):
        return K.causal_conv1d_update(x, conv_state, weight, bias, "silu", backend=backend), conv_state
    cases.append(("conv1d update", f"B=3 D={D_conv} W=4", conv_update_call,
                  dict(x=rnd(3, D_conv), conv_state=rnd(3, D_conv, 3), weight=rnd(D_conv, 4, scale=0.5),
                       bias=rnd(D_conv))))

    cases.append(("rms_norm", f"N=257 D={D_norm}", lambda backend, x, w: K.rms_norm(x, w, backend=backend),
                  dict(x=rnd(257, D_norm), w=rnd(D_norm, scale=0.2))))
    cases.append(("gated_rms_norm", f"N=257x{HV} D={V}",
                  lambda backend, x, z, w: K.gated_rms_norm(x, z, w, backend=backend),
                  dict(x=rnd(257 * HV, V), z=rnd(257 * HV, V), w=rnd(V, scale=0.2))))

    inv_freq = 1.0 / (10_000_000 ** (torch.arange(0, rot, 2).float() / rot))
    pos = torch.arange(77).expand(3, 2, 77)
    cos, sin = K.mrope_cos_sin(pos, inv_freq, [rot // 2 - 2 * (rot // 6), rot // 6, rot // 6], dtype=torch.float32)
    cases.append(("rotary", f"B=2 T=77 Hq=8 Hk=2 D={head_dim} R={rot}",
                  lambda backend, q, k, cos, sin: K.apply_rotary(q, k, cos, sin, backend=backend),
                  dict(q=rnd(2, 77, 8, head_dim), k=rnd(2, 77, 2, head_dim), cos=cos.to(device), sin=sin.to(device))))

    def moe_call(backend, x, router, w_gate_up, w_down, shared_gate_up, shared_down, shared_gate_weight):
        return K.fused_moe(x, router, w_gate_up, w_down, k_moe, shared_gate_up=shared_gate_up,
                           shared_down=shared_down, shared_gate_weight=shared_gate_weight, backend=backend)
    for n in (1, 37):
        s = D_moe ** -0.5
        cases.append(("fused_moe", f"N={n} D={D_moe} E={E} top{k_moe} I={I_moe} +shared", moe_call,
                      dict(x=rnd(n, D_moe), router=rnd(E, D_moe, scale=s), w_gate_up=rnd(E, 2 * I_moe, D_moe, scale=s),
                           w_down=rnd(E, D_moe, I_moe, scale=I_moe ** -0.5), shared_gate_up=rnd(2 * 40, D_moe, scale=s),
                           shared_down=rnd(D_moe, 40, scale=40 ** -0.5), shared_gate_weight=rnd(1, D_moe, scale=s))))
    return cases


def check_kernels(device: torch.device, smoke: bool, log) -> list[Check]:
    checks = []
    for kernel, shape, call, inputs in correctness_cases(device, smoke):
        for dtype in (torch.float32, torch.bfloat16):
            # activations in `dtype`; fp32 stays fp32 for recurrent states, decay logs, rotary tables
            keep_fp32 = {"initial_state", "state", "g", "A_log", "dt_bias", "cos", "sin"}
            cast = {k: (v.to(dtype) if isinstance(v, torch.Tensor) and v.is_floating_point() and k not in keep_fp32
                        else v) for k, v in inputs.items()}
            if kernel == "rotary":
                cast["cos"], cast["sin"] = cast["cos"].to(dtype), cast["sin"].to(dtype)
            c = _check(kernel, shape, dtype, call, cast)
            checks.append(c)
            log(f"  {'ok  ' if c.ok else 'FAIL'} {kernel:<20} {c.dtype:<8} err {c.err:.2e} (torch {c.torch_err:.2e},"
                f" tol {c.tol:.0e}) {shape} {c.note}")
    return checks


# ---------------------------------------------------------------- 2. engine

ENGINE_TEXT = dict(  # Qwen3.5-0.8B (see kernel_speed.MODELS for the source)
    vocab_size=248320, hidden_size=1024, intermediate_size=3584, num_hidden_layers=24, num_attention_heads=8,
    num_key_value_heads=2, head_dim=256, linear_num_key_heads=16, linear_num_value_heads=16,
    linear_key_head_dim=128, linear_value_head_dim=128, max_position_embeddings=262144, initializer_range=0.02,
    layer_types=(["linear_attention"] * 3 + ["full_attention"]) * 6,
    rope_parameters=dict(rope_type="default", rope_theta=10_000_000.0, partial_rotary_factor=0.25,
                         mrope_section=[11, 11, 10], mrope_interleaved=True),
)
ENGINE_VISION = dict(depth=12, hidden_size=768, intermediate_size=3072, num_heads=12, out_hidden_size=1024,
                     num_position_embeddings=2304, initializer_range=0.02)


def build_checkpoint(folder: Path, smoke: bool) -> Path:
    """Random checkpoint with transformers' classes (tests/tiny_checkpoints.py), MTP head added."""
    sys.path.insert(0, str(ROOT / "tests"))
    from tiny_checkpoints import make_tiny_checkpoint

    if smoke:
        return make_tiny_checkpoint(folder, "dense", with_tokenizer=False)
    return make_tiny_checkpoint(folder, "dense", text_overrides=ENGINE_TEXT, vision_overrides=ENGINE_VISION,
                                max_shard_size="2GB", with_tokenizer=False)


def engine_inputs(config, device, smoke: bool, grid=(16, 16), text_len=(40, 60), seed=0) -> dict:
    """An image (grid h x w patches of 16 px) between two runs of random text tokens."""
    gh, gw = (4, 6) if smoke else grid
    g = torch.Generator().manual_seed(seed)
    hi = min(config.text.vocab_size, 150_000) - 20 if not smoke else 500
    before = torch.randint(20, hi, (text_len[0],), generator=g).tolist()
    after = torch.randint(20, hi, (text_len[1],), generator=g).tolist()
    n_img = gh * gw // 4
    ids = before + [config.vision_start_token_id] + [config.image_token_id] * n_img + [config.vision_end_token_id] + after
    input_ids = torch.tensor([ids], device=device)
    return dict(input_ids=input_ids, pixel_values=torch.randn(gh * gw, 3 * 2 * 16 * 16, generator=g).to(device),
                image_grid_thw=torch.tensor([[1, gh, gw]], device=device))


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def engine_parity(folder: Path, device, dtype, smoke: bool, log, truth: torch.Tensor | None = None) -> dict:
    """Logits of one image + text prompt, the engine against transformers in `dtype`.

    fp32: the relative logits error must be <= 5e-4 (both sides in true fp32: TF32 is off) and the argmax
    agree at >= 99 % of positions. bf16: both sides round differently, so each is compared with
    transformers' fp32 logits (`truth`): the engine's error must be no more than twice transformers' own
    bf16 error (+ 1e-3). Greedy continuations (24 tokens) are reported, not judged: random weights give
    near-ties that either side may break differently."""
    from transformers import Qwen3_5ForConditionalGeneration

    from vlagent.model import load_model

    ours = load_model(folder, device=device, dtype=dtype)
    ref = Qwen3_5ForConditionalGeneration.from_pretrained(str(folder), dtype=dtype).to(device).eval()
    inputs = engine_inputs(ours.config, device, smoke)
    mm_types = (inputs["input_ids"] == ours.config.image_token_id).long()
    with torch.no_grad():
        got = ours(**inputs).logits.float()
        want = ref(**inputs, mm_token_type_ids=mm_types).logits.float()
    err = _rel_err(got, want)
    argmax_agree = (got.argmax(-1) == want.argmax(-1)).float().mean().item()
    with torch.no_grad():
        ours_ids = ours.generate(inputs["input_ids"], pixel_values=inputs["pixel_values"],
                                 image_grid_thw=inputs["image_grid_thw"], max_new_tokens=24)[0, -24:].tolist()
        hf_ids = ref.generate(**inputs, mm_token_type_ids=mm_types, max_new_tokens=24, min_new_tokens=24,
                              do_sample=False)[0, -24:].tolist()
    same_prefix = next((i for i, (a, b) in enumerate(zip(ours_ids, hf_ids)) if a != b), len(ours_ids))
    result = dict(dtype=_dtype_name(dtype), tokens=int(inputs["input_ids"].shape[1]), logits_err=err,
                  argmax_agreement=argmax_agree, greedy_same_prefix=same_prefix, greedy_tokens=len(ours_ids))
    if truth is None:
        result.update(tol=5e-4, ok=err <= 5e-4 and argmax_agree >= 0.99)
        log(f"  {'ok  ' if result['ok'] else 'FAIL'} parity {result['dtype']}: logits err {err:.2e} (tol 5e-4), "
            f"argmax agree {argmax_agree:.3f}, greedy same for {same_prefix}/{len(ours_ids)} tokens")
    else:
        ours_vs_fp32, hf_vs_fp32 = _rel_err(got, truth), _rel_err(want, truth)
        tol = 2 * hf_vs_fp32 + 1e-3
        result.update(ours_vs_fp32=ours_vs_fp32, transformers_vs_fp32=hf_vs_fp32, tol=tol, ok=ours_vs_fp32 <= tol)
        log(f"  {'ok  ' if result['ok'] else 'FAIL'} parity {result['dtype']}: vs transformers fp32 logits: engine "
            f"{ours_vs_fp32:.2e}, transformers {hf_vs_fp32:.2e} (tol {tol:.2e}); engine vs transformers {err:.2e}, "
            f"argmax agree {argmax_agree:.3f}, greedy same for {same_prefix}/{len(ours_ids)} tokens")
    result["logits"] = want if truth is None else None  # the fp32 reference for the bf16 pass (not saved)
    del ours, ref
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return result


def decode_bytes_per_token(model) -> int:
    """Bytes a batch-1 decode step must read: every decoder and LM-head weight once (the embedding
    table only for the LM head when tied; an input embedding lookup reads one row). No vision, no MTP."""
    skip = ("visual.", "mtp.")
    total = sum(p.numel() * p.element_size() for n, p in model.named_parameters() if not n.startswith(skip))
    return total


def engine_decode(folder: Path, device, smoke: bool, peak_bw, log, new_tokens: int) -> dict:
    """Batch-1 greedy decode tokens/s in bf16 (fp32 on the CPU smoke): transformers, eager, CUDA graph, MTP."""
    from transformers import Qwen3_5ForConditionalGeneration

    from vlagent.model import load_model

    dtype = torch.float32 if smoke else torch.bfloat16
    ours = load_model(folder, device=device, dtype=dtype)
    g = torch.Generator().manual_seed(1)
    prompt = torch.randint(20, 500 if smoke else 150_000, (1, 128), generator=g).to(device)
    rows = {}

    def run_ours(label, **kw):
        ours.generate(prompt, max_new_tokens=8, **kw)  # warm-up (compiles kernels, captures graphs)
        _sync(device)
        t0 = time.perf_counter()
        res = ours.generate(prompt, max_new_tokens=new_tokens, return_dict=True, **kw)
        _sync(device)
        stats = res.stats
        rows[label] = dict(tokens_per_s=stats["decode_tokens_per_s"], new_tokens=len(res.new_tokens[0]),
                           wall_s=time.perf_counter() - t0, prefill_s=stats["prefill_s"],
                           cuda_graph=bool(stats.get("cuda_graph", False)),
                           graph_capture_s=stats.get("graph_capture_s"),  # not counted in tokens_per_s
                           cuda_graph_reused=stats.get("cuda_graph_reused"),  # the warm-up call's graph
                           acceptance_rate=stats.get("acceptance_rate"))
        log(f"  decode {label}: {rows[label]['tokens_per_s']:.1f} tokens/s"
            + (f" (MTP acceptance {stats['acceptance_rate']:.2f})" if "acceptance_rate" in stats else ""))
        return res.sequences[0, -new_tokens:].tolist()

    eager_ids = run_ours("engine eager", cuda_graph=False)
    graph_ids = run_ours("engine CUDA graph", cuda_graph=True)
    mtp_ids = run_ours("engine MTP speculation", speculative="mtp")
    agree = dict(graph_vs_eager=graph_ids == eager_ids, mtp_vs_eager=mtp_ids == eager_ids)

    ref = Qwen3_5ForConditionalGeneration.from_pretrained(str(folder), dtype=dtype).to(device).eval()
    with torch.no_grad():
        ref.generate(prompt, max_new_tokens=8, min_new_tokens=8, do_sample=False)
        _sync(device)
        t0 = time.perf_counter()
        ref.generate(prompt, max_new_tokens=1, min_new_tokens=1, do_sample=False)
        _sync(device)
        t_first = time.perf_counter() - t0
        t0 = time.perf_counter()
        ref.generate(prompt, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False)
        _sync(device)
        t_all = time.perf_counter() - t0
    rows["transformers (eager)"] = dict(tokens_per_s=(new_tokens - 1) / max(t_all - t_first, 1e-9),
                                        new_tokens=new_tokens, wall_s=t_all)
    log(f"  decode transformers: {rows['transformers (eager)']['tokens_per_s']:.1f} tokens/s")
    del ref

    nbytes = decode_bytes_per_token(ours)
    for row in rows.values():
        row["bandwidth_fraction"] = (nbytes * row["tokens_per_s"] / peak_bw) if peak_bw else None
    del ours
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return dict(dtype=_dtype_name(dtype), prompt_tokens=128, bytes_per_token=nbytes, rows=rows, same_tokens=agree)


def decode_step_9b(device, smoke: bool, peak_bw, log) -> dict | None:
    """One batch-1 decode token of the 9B shape (random weights, the CUDA-graph step vs the eager loop)."""
    shapes = kernel_speed.ENGINE_SMOKE if smoke else {"9B": kernel_speed.ENGINE_SHAPES["9B"]}
    dtype = torch.float32 if smoke else torch.bfloat16
    (name, text), = shapes.items()
    case = next(kernel_speed.engine_decode_cases(name, text, device, dtype, (1,),
                                                 kernel_speed.ENGINE_SMOKE_PROMPT if smoke else kernel_speed.ENGINE_PROMPT))
    out = dict(shape=name, bytes_per_token=case.bytes)
    for impl, label in (("triton", "CUDA graph"), ("torch", "eager")):
        # each call takes a cache slot: the warm-up and the timed calls must fit the cache's decode room
        t = kernel_speed._timer(device, case.run[impl], 1.0, kernel_speed.ENGINE_STEPS - 2)
        out[label] = dict(ms_per_token=t * 1e3, tokens_per_s=1 / t,
                          bandwidth_fraction=(case.bytes / t / peak_bw) if peak_bw else None)
        log(f"  {name} decode step ({label}): {t * 1e3:.2f} ms/token"
            + (f", {case.bytes / t / peak_bw * 100:.0f}% of peak bandwidth" if peak_bw else ""))
    return out


# ---------------------------------------------------------------- 3. kernel timings

def time_kernels(device, smoke: bool, peak_bw, peak_flops, deadline: float, log, rows: list[dict], save) -> None:
    """Append one row per timed case to `rows` and save after each: a third-party kernel that breaks the
    CUDA context (flash-linear-attention did once) then still leaves every earlier figure on disk."""
    dtype = torch.float32 if smoke else torch.bfloat16
    only = [k for k in kernel_speed.BUILDERS if k != "decode"]  # the engine section already timed decode
    lengths = None if smoke else ((16384,), (1, 32))  # one prefill length, two decode batches: fits the time
    for case in kernel_speed.measure(only, device, dtype, smoke=smoke, budget=0.05 if smoke else 0.2,
                                     lengths=lengths, deadline=deadline, log=log):
        row = dict(zip(kernel_speed.HEADER, kernel_speed._row(case, peak_bw, peak_flops)))
        row.update(times_s=dict(case.timings), failures=dict(case.failures), skipped=case.skipped)
        rows.append(row)
        save()


# ---------------------------------------------------------------- report

def state_pass_options_taken() -> list[str]:
    """Which launch option (kernels/gated_delta_rule/chunk.py) the chunked delta rule's state pass took on
    this GPU, per dtype and shape: the first its shared memory held."""
    from vlagent.kernels.gated_delta_rule import chunk

    options = {}
    for (_, dtype, K, V, BV, *_), index in sorted(chunk._FITTING_OPTION.items(), key=str):
        options[f"{_dtype_name(dtype)} K={K} V={V} BV={BV}: {chunk.state_pass_options(dtype)[index]}"] = None
    return list(options)


def markdown(report: dict) -> str:
    out = [f"# GPU check — {report['device']}", "",
           f"{report['started']}; torch {report['torch']}, triton {report['triton']}, transformers "
           f"{report['transformers']}, flash-linear-attention {report.get('fla') or 'not installed'}; "
           f"peak bandwidth {_fmt(report['peak_bw'], 1e-12, 'TB/s')}; total {report.get('total_s', 0):.0f} s.", ""]
    out += ["## 1. Kernels against their PyTorch references", "",
            "err = max|ours − truth| / max|truth|; truth = PyTorch path on fp32 copies of the inputs.", "",
            "| kernel | shape | dtype | err | PyTorch path's err | tol | ok |", "|---|---|---|---|---|---|---|"]
    for c in report.get("correctness", []):
        out.append(f"| {c['kernel']} | {c['shape']} | {c['dtype']} | {c['err']:.2e} | {c['torch_err']:.2e} | "
                   f"{c['tol']:.0e} | {'✓' if c['ok'] else '✗ ' + c['note']} |")
    if report.get("state_pass_options"):
        out += ["", "Chunked delta rule, state pass launch options taken (the first that fit): "
                + "; ".join(report["state_pass_options"]) + "."]
    engine = report.get("engine", {})
    if engine:
        out += ["", "## 2. Engine on a random Qwen3.5-0.8B-shaped checkpoint", "",
                "Logits of an image + text prompt. fp32: relative error engine vs transformers. bf16: each "
                "side's error against transformers' fp32 logits (the engine may be off by twice transformers' "
                "own bf16 error + 1e-3).", "",
                "| dtype | prompt tokens | engine vs transformers | engine vs fp32 | transformers vs fp32 | tol "
                "| argmax agreement | greedy tokens equal | ok |",
                "|---|---|---|---|---|---|---|---|---|"]
        for p in engine.get("parity", []):
            vs = (f"{p['ours_vs_fp32']:.2e} | {p['transformers_vs_fp32']:.2e}" if "ours_vs_fp32" in p else "- | -")
            out.append(f"| {p['dtype']} | {p['tokens']} | {p['logits_err']:.2e} | {vs} | {p['tol']:.1e} | "
                       f"{p['argmax_agreement']:.3f} | {p['greedy_same_prefix']}/{p['greedy_tokens']} | "
                       f"{'✓' if p['ok'] else '✗'} |")
        dec = engine.get("decode")
        if dec:
            out += ["", f"Batch-1 greedy decode, {dec['dtype']}, {dec['prompt_tokens']}-token prompt; "
                    f"{dec['bytes_per_token'] / 1e9:.2f} GB of weights read per token.", "",
                    "| decoder | tokens/s | fraction of peak bandwidth | note |", "|---|---|---|---|"]
            for label, r in dec["rows"].items():
                note = f"MTP acceptance {r['acceptance_rate']:.2f}" if r.get("acceptance_rate") is not None else ""
                out.append(f"| {label} | {r['tokens_per_s']:.1f} | {_pct(r.get('bandwidth_fraction'))} | {note} |")
            out.append(f"\nSame tokens as the eager loop: CUDA graph {dec['same_tokens']['graph_vs_eager']}, "
                       f"MTP {dec['same_tokens']['mtp_vs_eager']}.")
        big = engine.get("decode_9b")
        if big:
            out += ["", f"{big['shape']} decode step (random weights, batch 1): "
                    + "; ".join(f"{k} {v['ms_per_token']:.2f} ms/token = {v['tokens_per_s']:.0f} tokens/s, "
                                f"{_pct(v['bandwidth_fraction'])} of peak bandwidth"
                                for k, v in big.items() if isinstance(v, dict))]
        for err in engine.get("errors", []):
            out += ["", f"Engine section error: `{err}`"]
    rows = report.get("kernels", [])
    if rows:
        out += ["", "## 3. Kernel timings (bf16)", "", "| " + " | ".join(kernel_speed.HEADER) + " |",
                "|" + "---|" * len(kernel_speed.HEADER)]
        for r in rows:
            out.append("| " + " | ".join(str(r[h]) for h in kernel_speed.HEADER) + " |")
        failures = [(r["kernel"], r["shape"], f) for r in rows for f in r["failures"].items()]
        for kernel, shape, (impl, msg) in failures:
            out.append(f"\n{kernel} {shape} [{impl}] failed: `{msg}`")
    return "\n".join(out) + "\n"


def _fmt(value, scale, unit):
    return "unknown" if value is None else f"{value * scale:.2f} {unit}"


def _pct(fraction):
    return "-" if fraction is None else f"{fraction * 100:.0f}%"


def _versions() -> dict:
    import transformers
    try:
        import triton
        triton_version = triton.__version__
    except ImportError:
        triton_version = None
    return dict(torch=torch.__version__, triton=triton_version, transformers=transformers.__version__)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu-smoke", action="store_true", help="tiny shapes on CPU, Triton interpreter (< 1 min)")
    parser.add_argument("--out", type=Path, default=Path("gpu_check_out"), help="folder for gpu_check.json/.md")
    parser.add_argument("--time-limit", type=float, default=420.0,
                        help="seconds after which no new kernel timing starts (the run then reports what it has)")
    parser.add_argument("--fla-path", default=os.environ.get("VLAGENT_FLA_PATH"),
                        help="folder with flash-linear-attention, put on sys.path before section 3 only")
    parser.add_argument("--skip", default="", help="comma-separated sections to leave out: correctness,engine,kernels")
    parser.add_argument("--new-tokens", type=int, default=256, help="decoded tokens per decode measurement")
    args = parser.parse_args(argv)
    smoke = args.cpu_smoke
    skip = {s for s in args.skip.split(",") if s}
    started = time.perf_counter()
    deadline = started + args.time_limit

    if smoke:
        device = torch.device("cpu")
        device_name = f"CPU smoke ({platform.processor() or platform.machine()}, Triton interpreter)"
        new_tokens = min(args.new_tokens, 12)
    else:
        if not torch.cuda.is_available():
            print("no CUDA device here: run with --cpu-smoke for the CPU check", file=sys.stderr)
            return 2
        device = torch.device("cuda")
        device_name = torch.cuda.get_device_name()
        # fp32 means fp32 here: cuDNN convolutions (transformers' conv paths) would otherwise use TF32
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        new_tokens = args.new_tokens
    peak_bw, peak_flops = kernel_speed.device_peaks(device_name)
    args.out.mkdir(parents=True, exist_ok=True)
    report = dict(device=device_name, started=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
                  peak_bw=peak_bw, peak_flops=peak_flops, smoke=smoke, **_versions())

    def log(msg):
        print(f"[{time.perf_counter() - started:6.1f} s] {msg}", flush=True)

    def save():
        report["total_s"] = time.perf_counter() - started
        (args.out / "gpu_check.json").write_text(json.dumps(report, indent=1, default=str))
        (args.out / "gpu_check.md").write_text(markdown(report))

    failed = False
    log(f"device {device_name}; torch {report['torch']}, triton {report['triton']}, "
        f"transformers {report['transformers']}")
    if "correctness" not in skip:
        log("1. kernels against their references")
        checks = check_kernels(device, smoke, log)
        report["correctness"] = [asdict(c) for c in checks]
        report["state_pass_options"] = state_pass_options_taken()
        for line in report["state_pass_options"]:
            log(f"   chunk state pass launched with {line}")
        failed |= not all(c.ok for c in checks)
        save()

    if "engine" not in skip:
        log("2. engine")
        engine = report["engine"] = dict(parity=[], errors=[])
        try:
            with tempfile.TemporaryDirectory(prefix="vlagent_gpu_check_") as tmp:
                t0 = time.perf_counter()
                folder = build_checkpoint(Path(tmp) / "ckpt", smoke)
                log(f"  random checkpoint built in {time.perf_counter() - t0:.1f} s")
                truth = None
                for dtype in (torch.float32, torch.bfloat16):
                    result = engine_parity(folder, device, dtype, smoke, log, truth)
                    truth = result.pop("logits")
                    engine["parity"].append(result)
                    failed |= not result["ok"]
                    save()
                del truth
                engine["decode"] = engine_decode(folder, device, smoke, peak_bw, log, new_tokens)
                save()
            engine["decode_9b"] = decode_step_9b(device, smoke, peak_bw, log)
        except Exception as exc:  # keep going to the kernel timings, and say what broke
            failed = True
            engine["errors"].append(f"{type(exc).__name__}: {exc}")
            traceback.print_exc()
        save()

    if "kernels" not in skip:
        log("3. kernel timings")
        if args.fla_path:
            sys.path.insert(0, args.fla_path)
        try:
            import fla
            report["fla"] = getattr(fla, "__version__", "installed")
        except Exception as exc:
            report["fla"] = None
            log(f"  flash-linear-attention not available ({type(exc).__name__}: {exc})")
        report["kernels"] = []
        time_kernels(device, smoke, peak_bw, peak_flops, deadline, log, report["kernels"], save)
        failed |= any(r["failures"].get("triton") for r in report["kernels"])
        save()

    save()
    print(markdown(report))
    print(f"results: {args.out.resolve()}/gpu_check.json and gpu_check.md ({'FAILED' if failed else 'all checks passed'})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
