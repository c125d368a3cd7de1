"""`vlagent train-grounding`: train a grounder folder from grounding datasets."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Callable


def register(sub: Any) -> None:
    p = sub.add_parser("train-grounding", help="train a grounder (backbone + line encoder + pointer head)",
                       description=__doc__)
    p.add_argument("--data", nargs="+", required=True, metavar="DATASET",
                   help="JSONL files or folders; records with split 'train' train, 'val' validate")
    p.add_argument("--val", nargs="*", default=None, metavar="DATASET", help="validation data (default: the val split of --data)")
    p.add_argument("--out", required=True, help="the grounder folder to write (checkpoints go there too)")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lr", type=float, default=None, help="learning rate (default 2e-3; 1e-3 with --base)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--eval-every", type=int, default=200)
    p.add_argument("--bf16", action="store_true",
                   help="run the forward pass in bfloat16 (autocast; weights and optimizer stay float32): "
                        "see benchmarks/README.md for where it helps")
    p.add_argument("--base", default=None, metavar="CHECKPOINT",
                   help="a Qwen3.5 checkpoint: train only a grounding head on it (frozen), written to "
                        "OUT/grounding_head.safetensors; a GPU job for real checkpoints")
    p.add_argument("--device", default="cpu", help="with --base: where the checkpoint runs (cpu, cuda)")
    p.add_argument("--final-eval", type=int, default=300, metavar="N",
                   help="after training, score the written grounder on N validation targets (real OCR, plus "
                        "one generated negative per screen) as eval-grounding does; 0: skip")
    p.add_argument("--no-ocr-cache", action="store_true",
                   help="do not run OCR for records without cached text (they must all carry 'ocr' lines)")
    p.set_defaults(func=cmd_train)
    q = sub.add_parser("train-icons", help="train the icon recognizer on the train split of synthetic screens",
                       description="Train the icon recognizer (vlagent/grounding/icon_recognizer.py) on the "
                                   "icon-sized blobs of a synthetic set's train-split screens, drawn again from "
                                   "their seed; see vlagent/grounding/icon_training.py.")
    q.add_argument("--out", required=True, help="the weights file to write (.safetensors)")
    q.add_argument("--synthetic-seed", type=int, default=1, help="the synthetic set whose train split is read")
    q.add_argument("--screens", type=int, default=3000, help="the set's first N screens (train split only)")
    q.add_argument("--sheets", type=int, default=1500,
                   help="also draw N icon sheets: every icon outlined, framed, on buttons, and web icons the "
                        "screens never show (icon_sheets.py); 0: none")
    q.add_argument("--sheet-seed", type=int, default=0, help="the icon sheets' seed")
    q.add_argument("--epochs", type=int, default=12)
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    q.set_defaults(func=_cmd_train_icons)
    x = sub.add_parser("train-lexicon", help="learn other words for labels from grounding data",
                       description="Count, in the train split of grounding datasets, the instructions that name "
                                   "their target's label in other words ('log in' for Sign in) and write the "
                                   "phrases kept as JSON; see vlagent/grounding/phrase_lexicon.py.")
    x.add_argument("--data", nargs="+", required=True, metavar="DATASET", help="JSONL files or folders")
    x.add_argument("--out", required=True, help="the lexicon file to write (.json)")
    x.set_defaults(func=_cmd_train_lexicon)


def _cmd_train_lexicon(args: argparse.Namespace) -> int:
    from vlagent.grounding.cli import _load
    from vlagent.grounding.dataset import DatasetError
    from vlagent.grounding.phrase_lexicon import learn_lexicon

    try:
        records = _load(args.data)
    except DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    lexicon = learn_lexicon(records)
    if not lexicon.phrases:
        print("error: no train-split instruction names its target's label in other words: nothing learnt",
              file=sys.stderr)
        return 2
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    lexicon.save(args.out)
    print(f"wrote {args.out}: {len(lexicon.phrases)} phrases from {len(records)} records")
    return 0


def _cmd_train_icons(args: argparse.Namespace) -> int:
    from vlagent.grounding.icon_training import cmd_train_icons

    return cmd_train_icons(args)


def cmd_train(args: argparse.Namespace) -> int:
    from vlagent.grounding.train import TrainConfig, train

    if args.base:
        return cmd_train_head(args)
    if not args.no_ocr_cache:  # OCR each screen once, into the dataset files, before training reads them
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        from vlagent.grounding.text_cache import cache_screen_text

        for path in [*args.data, *(args.val or [])]:
            with Progress(TextColumn(f"[bold]OCR {Path(path).name}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                          TimeRemainingColumn()) as bar:
                task = bar.add_task("ocr", total=None)
                cache_screen_text(path, progress=lambda i, n: bar.update(task, completed=i, total=n))
    train_records, val_records = _split(args)
    if not train_records:
        print("error: no records with split 'train' in --data", file=sys.stderr)
        return 2
    cfg = TrainConfig(steps=args.steps, seed=args.seed, lr=args.lr or TrainConfig.lr, threads=args.threads,
                      eval_every=args.eval_every, bf16=args.bf16)
    t0 = time.perf_counter()
    out = _with_progress("training", args.steps, lambda log, progress: train(
        train_records, val_records, Path(args.out), cfg, resume=args.resume, log=log, progress=progress))
    print(f"grounder written to {out} ({len(train_records)} training targets, {time.perf_counter() - t0:.0f} s)")
    if val_records and args.final_eval > 0:
        final_evaluation(Path(out), val_records, args.final_eval, seed=args.seed)
    return 0


def final_evaluation(folder: Path, val_records: list, limit: int, seed: int = 0) -> dict:
    """The written grounder on a seeded sample of `limit` validation targets, through eval-grounding's
    evaluation (real OCR, one generated negative per screen); the table is printed and the summary
    written to FOLDER/final_eval.json."""
    import json
    import random

    from rich.console import Console

    from vlagent.grounding.cli import print_summary
    from vlagent.grounding.evaluate import evaluate, summarize
    from vlagent.grounding.grounders.head import HeadGrounder
    from vlagent.grounding.negatives import absent_instructions

    sample = random.Random(seed).sample(list(val_records), min(limit, len(val_records)))
    negatives = absent_instructions(sample, 1)
    summary = summarize(evaluate(sample, [HeadGrounder(folder)], negatives=negatives))
    print_summary(summary, Console(highlight=False))
    (folder / "final_eval.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return summary


def cmd_train_head(args: argparse.Namespace) -> int:
    """--base CHECKPOINT: the checkpoint reads the screenshots itself (no OCR); only the head learns."""
    from vlagent.grounding.head_training import HeadTrainConfig, train_head

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    train_records, val_records = _split(args)
    if not train_records:
        print("error: no records with split 'train' in --data", file=sys.stderr)
        return 2
    cfg = HeadTrainConfig(steps=args.steps, seed=args.seed, lr=args.lr or HeadTrainConfig.lr, eval_every=args.eval_every,
                          device=args.device)
    t0 = time.perf_counter()
    try:
        path = _with_progress("training the head", args.steps, lambda log, progress: train_head(
            args.base, train_records, val_records, Path(args.out), cfg, resume=args.resume, log=log, progress=progress))
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"grounding head written to {path} ({len(train_records)} training targets, "
          f"{time.perf_counter() - t0:.0f} s); use it with --grounder local:{args.base},head={path}")
    return 0


def _split(args: argparse.Namespace) -> tuple[list, list]:
    """(train records of --data, validation records: --val, else the val split of --data)."""
    from vlagent.grounding.dataset import read_dataset

    records = [r for path in args.data for r in read_dataset(path)]
    val = ([r for path in args.val for r in read_dataset(path)] if args.val else [r for r in records if r.split == "val"])
    return [r for r in records if r.split == "train"], val


def _with_progress(title: str, steps: int, run: Callable[[Callable, Callable], Any]) -> Any:
    """run(log, progress) under a progress bar with the loss and the last validation accuracy; each
    validation also prints a line that stays (in a log file, where the bar does not show)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    with Progress(TextColumn(f"[bold]{title}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TextColumn("loss {task.fields[loss]:.3f}  val {task.fields[val]}"), TimeElapsedColumn(),
                  TimeRemainingColumn(), transient=False) as bar:
        task = bar.add_task("train", total=steps, loss=float("nan"), val="-")

        def progress(step: int, info: dict) -> None:
            val = f"{info['val_accuracy']:.1%}" if "val_accuracy" in info else bar.tasks[0].fields["val"]
            bar.update(task, completed=step, loss=info["loss"], val=val)
            if "val_accuracy" in info:
                bar.console.print(f"step {step}: loss {info['loss']:.3f}, validation {val}, {info['seconds']:.0f} s")

        return run(lambda message: bar.console.print(message), progress)
