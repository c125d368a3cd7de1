"""`vlagent train-grounding`: train a grounder folder from grounding datasets."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("train-grounding", help="train a grounder (backbone + line encoder + pointer head)",
                       description=__doc__)
    p.add_argument("--data", nargs="+", required=True, metavar="DATASET",
                   help="JSONL files or folders; records with split 'train' train, 'val' validate")
    p.add_argument("--val", nargs="*", default=None, metavar="DATASET", help="validation data (default: the val split of --data)")
    p.add_argument("--out", required=True, help="the grounder folder to write (checkpoints go there too)")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--eval-every", type=int, default=200)
    p.add_argument("--no-ocr-cache", action="store_true",
                   help="do not run OCR for records without cached text (they must all carry 'ocr' lines)")
    p.set_defaults(func=cmd_train)


def cmd_train(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from vlagent.grounding.dataset import read_dataset
    from vlagent.grounding.train import TrainConfig, train

    if not args.no_ocr_cache:  # OCR each screen once, into the dataset files, before training reads them
        from vlagent.grounding.text_cache import cache_screen_text

        for path in [*args.data, *(args.val or [])]:
            with Progress(TextColumn(f"[bold]OCR {Path(path).name}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                          TimeRemainingColumn()) as bar:
                task = bar.add_task("ocr", total=None)
                cache_screen_text(path, progress=lambda i, n: bar.update(task, completed=i, total=n))
    records = [r for path in args.data for r in read_dataset(path)]
    train_records = [r for r in records if r.split == "train"]
    val_records = ([r for path in args.val for r in read_dataset(path)] if args.val
                   else [r for r in records if r.split == "val"])
    if not train_records:
        print("error: no records with split 'train' in --data", file=sys.stderr)
        return 2
    cfg = TrainConfig(steps=args.steps, seed=args.seed, lr=args.lr, threads=args.threads, eval_every=args.eval_every)
    t0 = time.perf_counter()
    with Progress(TextColumn("[bold]training"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TextColumn("loss {task.fields[loss]:.3f}  val {task.fields[val]}"), TimeElapsedColumn(),
                  TimeRemainingColumn(), transient=False) as bar:
        task = bar.add_task("train", total=args.steps, loss=float("nan"), val="-")

        def progress(step: int, info: dict) -> None:
            val = f"{info['val_accuracy']:.1%}" if "val_accuracy" in info else bar.tasks[0].fields["val"]
            bar.update(task, completed=step, loss=info["loss"], val=val)
            if "val_accuracy" in info:  # a line that stays, also in a log file where the bar does not show
                bar.console.print(f"step {step}: loss {info['loss']:.3f}, validation {val}, {info['seconds']:.0f} s")

        out = train(train_records, val_records, Path(args.out), cfg, resume=args.resume,
                    log=lambda m: bar.console.print(m), progress=progress)
    print(f"grounder written to {out} ({len(train_records)} training targets, {time.perf_counter() - t0:.0f} s)")
    return 0
