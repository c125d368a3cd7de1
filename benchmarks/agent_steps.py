"""Consecutive agent steps on the local engine: what the screenshot -> act loop pays per step.

Each step's prompt has the agent's layout (vlagent/policy/prompts/): a system message with the tool
description (~1,000 tokens for computer_use), the task, the two previous screenshots each followed
by the reply given then, and the current screenshot (history_images=2, LocalPolicy's default), then
a few generated tokens. From step 4 on, the oldest screenshot leaves the window and becomes a
line of text in the first user message, as in the real loop. Screenshots are 1280x720 (880 image
tokens each, 3,520 vision patches).

Three sides, each in its own process, same random-weight Qwen3.5-0.8B-shaped checkpoint as
engine.py (built and cached there): transformers (every step from scratch), our engine without
and with the PromptCache (LocalPolicy's default: screenshots encoded once, prefill restarts from
the last message boundary shared with the previous step). Printed: per-step prefill seconds and
tokens actually prefilled, and the mean over steps 2.. (the steady state).

    python benchmarks/agent_steps.py              # 0.8B shape, several minutes on a 2-core CPU
    python benchmarks/agent_steps.py --smoke      # tiny shape, seconds
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine import FULL_IDS, SMOKE_IDS, build_checkpoint, cpu_name  # noqa: E402

MESSAGE_START = {"full": 248045, "smoke": 2036}  # a fixed id standing in for <|im_start|>


def conversation(step: int, smoke: bool) -> tuple[list[int], list[int]]:
    """(token ids, screenshot numbers in order) of the agent's prompt at `step` (1-based)."""
    ids_cfg = SMOKE_IDS if smoke else FULL_IDS
    start = MESSAGE_START["smoke" if smoke else "full"]
    n_img = 24 if smoke else 880
    system_len, vocab = (60, 2000) if smoke else (1000, 150_000)
    g = torch.Generator().manual_seed(0)
    system = torch.randint(100, vocab, (system_len,), generator=g).tolist()
    task = torch.randint(100, vocab, (25,), generator=g).tolist()

    def text(seed: int, n: int) -> list[int]:
        return torch.randint(100, vocab, (n,), generator=torch.Generator().manual_seed(seed)).tolist()

    def image() -> list[int]:
        return [ids_cfg["vision_start_token_id"]] + [ids_cfg["image_token_id"]] * n_img + [ids_cfg["vision_end_token_id"]]

    shots = list(range(max(1, step - 2), step + 1))  # two history screenshots + the current one
    summary = [tok for old in range(1, shots[0]) for tok in text(1000 + old, 30)]  # steps out of the window
    ids = [start] + system + [start] + task + summary
    for i, shot in enumerate(shots):
        if i:
            ids += [start]
        ids += text(2000 + shot, 6) + image()
        if shot != step:  # the reply the model gave at that step
            ids += [start] + text(3000 + shot, 40)
    ids += [start] + text(7, 3)  # "<|im_start|>assistant\n"
    return ids, shots


def screenshot_patches(shot: int, smoke: bool) -> tuple[torch.Tensor, list[int]]:
    grid = [1, 8, 12] if smoke else [1, 704 // 16, 1280 // 16]
    g = torch.Generator().manual_seed(10_000 + shot)
    return torch.randn(grid[1] * grid[2], 3 * 2 * 16 * 16, generator=g), grid


def step_inputs(step: int, smoke: bool) -> dict[str, torch.Tensor]:
    ids, shots = conversation(step, smoke)
    pixels, grids = zip(*(screenshot_patches(s, smoke) for s in shots))
    return dict(input_ids=torch.tensor([ids]), pixel_values=torch.cat(pixels), image_grid_thw=torch.tensor(grids))


def run_worker(side: str, folder: Path, dtype: torch.dtype, steps: int, new_tokens: int, smoke: bool) -> dict:
    config = json.loads((folder / "config.json").read_text())
    rows = []
    if side.startswith("engine"):
        from vlagent.model import PromptCache, load_model

        model = load_model(folder, dtype=dtype, with_mtp=False)
        pc = PromptCache([MESSAGE_START["smoke" if smoke else "full"]]) if side == "engine+cache" else None
        model.generate(input_ids=torch.tensor([[11, 12, 13]]), max_new_tokens=2, stop_token_ids=[])  # warm-up
        for step in range(1, steps + 1):
            inp = step_inputs(step, smoke)
            res = model.generate(**inp, max_new_tokens=new_tokens, stop_token_ids=[], prompt_cache=pc, return_dict=True)
            rows.append(dict(step=step, prompt=int(inp["input_ids"].shape[1]), prefill_s=res.stats["prefill_s"],
                             prefilled=res.stats.get("prefilled_tokens", int(inp["input_ids"].shape[1])),
                             images_encoded=res.stats.get("image_misses", int(inp["image_grid_thw"].shape[0]))))
    else:
        from transformers import Qwen3_5ForConditionalGeneration
        from transformers.generation.streamers import BaseStreamer

        model = Qwen3_5ForConditionalGeneration.from_pretrained(folder, dtype=dtype).eval()

        class FirstToken(BaseStreamer):
            def __init__(self):
                self.times = []

            def put(self, value):
                self.times.append(time.perf_counter())

            def end(self):
                pass

        for step in range(1, steps + 1):
            inp = step_inputs(step, smoke)
            clock = FirstToken()
            t0 = time.perf_counter()
            with torch.inference_mode():
                model.generate(**inp, mm_token_type_ids=(inp["input_ids"] == config["image_token_id"]).long(),
                               max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                               streamer=clock, eos_token_id=None, pad_token_id=0)
            rows.append(dict(step=step, prompt=int(inp["input_ids"].shape[1]), prefill_s=clock.times[1] - t0,
                             prefilled=int(inp["input_ids"].shape[1]), images_encoded=int(inp["image_grid_thw"].shape[0])))
    return dict(side=side, rows=rows, threads=torch.get_num_threads())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="tiny shape that runs in seconds")
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--new-tokens", type=int, default=8)
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--cache-dir", default=os.environ.get("VLAGENT_BENCH_CACHE", "/tmp/vlagent_bench"))
    ap.add_argument("--worker", choices=["engine", "engine+cache", "transformers"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    folder = Path(args.cache_dir) / ("qwen35_smoke" if args.smoke else "qwen35_0.8b_random")
    if args.worker:
        print(json.dumps(run_worker(args.worker, folder, getattr(torch, args.dtype), args.steps, args.new_tokens,
                                    args.smoke)))
        return

    build_checkpoint(folder, args.smoke)
    load_before = os.getloadavg()[0]
    results = {}
    for side in ("transformers", "engine", "engine+cache"):
        cmd = [sys.executable, __file__, "--worker", side, "--steps", str(args.steps), "--new-tokens",
               str(args.new_tokens), "--dtype", args.dtype, "--cache-dir", args.cache_dir]
        if args.smoke:
            cmd.append("--smoke")
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            sys.exit(f"{side} worker failed:\n{proc.stderr[-4000:]}")
        results[side] = json.loads(proc.stdout.strip().splitlines()[-1])["rows"]

    print(f"\nagent steps, Qwen3.5 {'smoke shape' if args.smoke else '0.8B shape (random weights)'}, {args.dtype}, "
          f"on {cpu_name()}, {os.cpu_count()} cores; load average {load_before:.2f} before, "
          f"{os.getloadavg()[0]:.2f} after")
    print(f"{'step':>4} {'prompt':>7} | {'transformers s':>14} | {'engine s':>9} | {'engine+cache s':>14} "
          f"{'prefilled':>9} {'encoded':>7}")
    for t, e, c in zip(results["transformers"], results["engine"], results["engine+cache"]):
        print(f"{t['step']:>4} {t['prompt']:>7} | {t['prefill_s']:>14.2f} | {e['prefill_s']:>9.2f} | "
              f"{c['prefill_s']:>14.2f} {c['prefilled']:>9} {c['images_encoded']:>7}")
    if args.steps >= 2:
        def mean(rows):
            return sum(r["prefill_s"] for r in rows[1:]) / (len(rows) - 1)

        t, e, c = (mean(results[s]) for s in ("transformers", "engine", "engine+cache"))
        print(f"steps 2-{args.steps} mean prefill: transformers {t:.2f} s, engine {e:.2f} s ({t / e:.2f}x), "
              f"engine+cache {c:.2f} s ({t / c:.2f}x transformers, {e / c:.2f}x engine)")


if __name__ == "__main__":
    main()
