"""Capture a decode step into a CUDA graph and replay it (CUDA only; not exercised by the CPU tests).

The decode-path ops here launch without host synchronisation (gated_delta_decode_step,
causal_conv1d_update, rms_norm, gated_rms_norm, apply_rotary, fused_moe), so a whole decode step built
from them can be captured. Prefill paths with cu_seqlens read the boundaries on the host and cannot.

    step = CapturedStep(decode_fn, token_ids, positions, cache_state)   # tensors the step reads
    token_ids.copy_(next_ids); positions.copy_(next_pos)                 # write new inputs in place
    logits = step()                                                      # replay; same output tensor each time

The arguments are the graph's static buffers: update them in place between replays, never rebind them.
The engine's decode step is captured this way by vlagent.model.cuda_decode.CudaGraphDecoder.
"""
from __future__ import annotations

from typing import Any, Callable

import torch


class CapturedStep:
    """fn(*args) captured once; calling the object replays it and returns fn's (static) outputs.

    Warm-up calls (which also compile the Triton kernels) run on a side stream before capture; since
    they execute fn for real, every tensor argument is snapshotted first and restored afterwards, so
    in-place state (recurrent states, conv states, KV caches) is left as it was given.
    """

    def __init__(self, fn: Callable[..., Any], *args: Any, warmup: int = 2,
                 pool: Any | None = None, preserve_inputs: bool = True) -> None:
        tensors = [a for a in args if isinstance(a, torch.Tensor)]
        if not tensors or not all(t.is_cuda for t in tensors):
            raise ValueError("CapturedStep needs CUDA tensor arguments (CUDA graphs are CUDA-only)")
        snapshots = [t.clone() for t in tensors] if preserve_inputs else []
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(warmup):
                fn(*args)
        torch.cuda.current_stream().wait_stream(side)
        for t, saved in zip(tensors, snapshots):
            t.copy_(saved)
        del snapshots
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph, pool=pool):
            self.outputs = fn(*args)
        self.args = args

    def __call__(self) -> Any:
        self.graph.replay()
        return self.outputs
