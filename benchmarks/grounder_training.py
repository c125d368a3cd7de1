"""Grounder training steps in float32 and with the forward pass autocast to bfloat16, in one run.

    python benchmarks/grounder_training.py [--steps 40] [--screens 40] [--threads 2]

Both runs train the default grounder configuration (vlagent.grounding.train.TrainConfig) from the same
seed on the same freshly generated synthetic screens (seed 7, generator text as the OCR lines), one after
the other in this process. Printed per mode: median and p90 seconds per step (the first 5 steps,
warm-up, left out), the mean pointer loss of the last 10 steps, and bf16's speed as a ratio of float32's.
It answers whether `vlagent train-grounding --bf16` helps on this machine.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from engine import cpu_name  # benchmarks/ is first on sys.path

WARMUP_STEPS = 5


def _run(records, folder: Path, steps: int, threads: int, bf16: bool) -> tuple[list[float], float]:
    from vlagent.grounding.train import TrainConfig, train

    cfg = TrainConfig(steps=steps, seed=0, threads=threads, bf16=bf16, checkpoint_every=10**9, eval_every=10**9)
    stamps, losses = [], []

    def progress(step: int, info: dict) -> None:
        stamps.append(time.perf_counter())
        losses.append(info["loss"])

    train(records, [], folder, cfg, log=lambda message: None, progress=progress)
    seconds = [b - a for a, b in zip(stamps[WARMUP_STEPS:], stamps[WARMUP_STEPS + 1:])]
    return seconds, sum(losses[-10:]) / len(losses[-10:])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--screens", type=int, default=40)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    import torch

    from vlagent.grounding.dataset import read_dataset
    from vlagent.grounding.harvest import harvest

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        records = read_dataset(harvest("synthetic", tmp / "data", count=args.screens, seed=7, with_text=True,
                                       split="train"))
        print(f"{cpu_name()}, torch {torch.__version__}, {args.threads} threads; {len(records)} targets on "
              f"{args.screens} screens, {args.steps} steps per mode")
        results = {}
        for name, bf16 in (("float32", False), ("bf16 autocast", True)):
            seconds, loss = _run(records, tmp / name.split()[0], args.steps, args.threads, bf16)
            results[name] = statistics.median(seconds)
            p90 = sorted(seconds)[int(round(0.9 * (len(seconds) - 1)))]
            print(f"{name:14s} s/step median {results[name]:.3f}  p90 {p90:.3f}  loss (last 10 steps) {loss:.3f}")
        print(f"bf16 autocast speed vs float32: {results['float32'] / results['bf16 autocast']:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
