"""`vlagent eval-grounding` and `vlagent grounding-data`.

    vlagent eval-grounding DATASET... [--grounder SPEC]... [--split val,test]
                           [--json [PATH]] [--html PATH] [--limit N] [--negatives K]
    vlagent grounding-data harvest --source synthetic --out DIR [--count N] [--seed S] [--option K=V]...
    vlagent grounding-data info DATASET...

The main CLI calls `register(subparsers)`; handlers return the exit code:
0 done, 2 usage or dataset error (bad file, empty dataset, unknown
grounder), 3 a part the command needs is missing here (OCR engine, a
harvest source's programs), 4 a model backend failed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

from rich.console import Console
from rich.markup import escape
from rich.table import Table

EXIT_OK, EXIT_USAGE, EXIT_ENV, EXIT_BACKEND = 0, 2, 3, 4
DEFAULT_GROUNDERS = ("ocr", "center")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval-grounding",
        help="score grounders on grounding datasets (accuracy by platform, element, source; latency)",
        description="Score each grounder on the same targets: the point must lie inside the target box. "
        "DATASET is a JSONL file or folder in vlagent's record format, or a ScreenSpot / ScreenSpot-v2 / "
        "ScreenSpot-Pro file or folder.",
        epilog="grounder SPECs: center | ocr[,threshold=0.6] | api:MODEL[@BASE_URL][,KEY=VALUE...] | "
        "local:CHECKPOINT[,device=cpu,...]   (default: --grounder ocr --grounder center)",
    )
    p.add_argument("datasets", nargs="+", metavar="DATASET")
    p.add_argument("--grounder", action="append", metavar="SPEC", help="a grounder to score (repeatable)")
    p.add_argument("--split", default=None, help="only these splits, comma-separated (e.g. val,test)")
    p.add_argument("--source", default=None, help="only sources starting with this prefix (e.g. synthetic:)")
    p.add_argument("--limit", type=int, default=None, help="score only the first N targets (after filters)")
    p.add_argument("--json", nargs="?", const="-", default=None, metavar="PATH",
                   help="write the summary as JSON to PATH (stdout when no PATH is given)")  # fmt: skip
    p.add_argument("--html", default=None, metavar="PATH", help="write an HTML report of every miss")
    p.add_argument("--negatives", type=int, default=0, metavar="K",
                   help="also ask K instructions per screen that name something not on it (borrowed from other "
                        "screens): reports how often each grounder rightly answers 'not found' and how often it "
                        "refuses real targets (default 0: off)")  # fmt: skip
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_eval_grounding)

    p = subparsers.add_parser("grounding-data", help="build and inspect grounding datasets")
    sub = p.add_subparsers(dest="grounding_command", metavar="ACTION", required=True)
    h = sub.add_parser("harvest", help="write a dataset from one source of screens")
    h.add_argument("--source", required=True, help="where the screens come from (see `info --sources`)")
    h.add_argument("--out", required=True, metavar="DIR", help="dataset folder (DIR/<source>.jsonl + images)")
    h.add_argument("--count", type=int, default=None, help="how many screens (source-specific default)")
    h.add_argument("--seed", type=int, default=None, help="random seed (synthetic: same seed, same data)")
    h.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="a source-specific option")
    h.set_defaults(func=cmd_harvest)
    i = sub.add_parser("info", help="count a dataset's targets by source, split, platform and element")
    i.add_argument("datasets", nargs="*", metavar="DATASET")
    i.add_argument("--sources", action="store_true", help="list the harvest sources")
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=cmd_info)


def _err(message: str, code: int) -> int:
    Console(stderr=True, highlight=False).print(f"[bold red]error:[/] {escape(message)}")
    return code


def _load(paths: Sequence[str]) -> list[Any]:
    from vlagent.grounding.readers import load_records

    records = []
    for path in paths:
        records.extend(load_records(path))
    return records


def _filter(records: list[Any], split: str | None, source: str | None, limit: int | None) -> list[Any]:
    from vlagent.grounding.dataset import SPLITS, DatasetError

    if split:
        wanted = {s.strip() for s in split.split(",") if s.strip()}
        bad = wanted - set(SPLITS)
        if bad:
            raise DatasetError(f"unknown split(s) {', '.join(sorted(bad))} (one of: {', '.join(SPLITS)})")
        records = [r for r in records if r.split in wanted]
    if source:
        records = [r for r in records if r.source.startswith(source)]
    if limit is not None:
        records = records[: max(0, limit)]
    if not records:
        raise DatasetError("no targets left after --split/--source/--limit: an empty dataset is an error")
    return records


def print_summary(summary: dict[str, Any], console: Console) -> None:
    """The accuracy table of `summarize`'s result (one column per grounder)."""
    from vlagent.grounding.evaluate import summary_rows

    header, rows = summary_rows(summary)
    title = f"grounding accuracy: {summary['targets']} targets on {summary['screens']} screens"
    if summary.get("negatives"):
        title += f", {summary['negatives']} negatives"
    table = Table(title=title)
    for i, h in enumerate(header):
        table.add_column(h, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*row)
    console.print(table)


def cmd_eval_grounding(args: argparse.Namespace) -> int:
    from vlagent.grounding.dataset import DatasetError
    from vlagent.grounding.evaluate import evaluate, summarize
    from vlagent.grounding.grounders import GrounderSpecError, make_grounder
    from vlagent.grounding.negatives import absent_instructions
    from vlagent.grounding.ocr import OcrUnavailable
    from vlagent.policy.errors import PolicyError

    err = Console(stderr=True, highlight=False)
    if args.negatives < 0:
        return _err(f"--negatives must be 0 or more, got {args.negatives}", EXIT_USAGE)
    try:
        records = _filter(_load(args.datasets), args.split, args.source, args.limit)
        grounders = [make_grounder(spec) for spec in (args.grounder or DEFAULT_GROUNDERS)]
    except (DatasetError, GrounderSpecError) as exc:
        return _err(str(exc), EXIT_USAGE)
    except PolicyError as exc:
        return _err(str(exc), EXIT_BACKEND)

    negatives = absent_instructions(records, args.negatives)
    total = (len(records) + len(negatives)) * len(grounders)
    try:
        if args.no_progress:
            evaluation = evaluate(records, grounders, negatives=negatives)
        else:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            with Progress(TextColumn("grounding"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                          console=err, transient=True) as bar:  # fmt: skip
                task = bar.add_task("eval", total=total)
                evaluation = evaluate(records, grounders, progress=lambda n: bar.advance(task, n), negatives=negatives)
    except OcrUnavailable as exc:
        return _err(str(exc), EXIT_ENV)
    except PolicyError as exc:
        return _err(str(exc), EXIT_BACKEND)
    except DatasetError as exc:
        return _err(str(exc), EXIT_USAGE)

    summary = summarize(evaluation)
    # With --json to stdout, the table goes to stderr so stdout holds exactly one JSON document.
    print_summary(summary, err if args.json == "-" else Console(highlight=False))
    if args.html:
        from vlagent.grounding.html_report import write_html

        out = write_html(evaluation, args.html)
        err.print(f"misses report: {out}")
    if args.json == "-":
        print(json.dumps(summary, indent=2, ensure_ascii=False))
    elif args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        err.print(f"summary: {args.json}")
    return EXIT_OK


def cmd_harvest(args: argparse.Namespace) -> int:
    from vlagent.grounding.dataset import DatasetError, read_dataset, summarize
    from vlagent.grounding.harvest import HARVESTERS, HarvestError, harvest

    if args.source not in HARVESTERS:
        return _err(f"unknown source {args.source!r} (one of: {', '.join(sorted(HARVESTERS))})", EXIT_USAGE)
    options: dict[str, Any] = {}
    for item in args.option:
        key, eq, value = item.partition("=")
        if not eq or not key:
            return _err(f"--option {item!r} is not KEY=VALUE", EXIT_USAGE)
        options[key.strip().replace("-", "_")] = value
    if args.count is not None:
        options["count"] = args.count
    if args.seed is not None:
        options["seed"] = args.seed
    try:
        path = harvest(args.source, args.out, **options)
    except HarvestError as exc:
        return _err(f"{args.source}: {exc}", EXIT_ENV)
    except (TypeError, ValueError) as exc:  # unknown or bad option; DatasetError is a ValueError
        if isinstance(exc, DatasetError):
            return _err(str(exc), EXIT_USAGE)
        return _err(f"{args.source}: bad option: {exc}", EXIT_USAGE)
    counts = summarize(read_dataset(path))
    print(path)
    Console(stderr=True, highlight=False).print(f"{sum(counts['split'].values())} targets; splits {counts['split']}")
    return EXIT_OK


def cmd_info(args: argparse.Namespace) -> int:
    from vlagent.grounding.dataset import DatasetError, summarize
    from vlagent.grounding.harvest import HARVESTERS

    if args.sources:
        print("\n".join(sorted(HARVESTERS)))
        if not args.datasets:
            return EXIT_OK
    if not args.datasets:
        return _err("give a DATASET (or --sources)", EXIT_USAGE)
    try:
        records = _load(args.datasets)
    except DatasetError as exc:
        return _err(str(exc), EXIT_USAGE)
    counts = summarize(records)
    counts["screens"] = len({str(r.image_path) for r in records})  # type: ignore[assignment]
    counts["targets"] = len(records)  # type: ignore[assignment]
    by_source_split: dict[str, dict[str, int]] = {}
    for r in records:
        by_source_split.setdefault(r.source, {}).setdefault(r.split, 0)
        by_source_split[r.source][r.split] += 1
    counts["source_split"] = by_source_split
    if args.json:
        print(json.dumps(counts, indent=2, ensure_ascii=False))
        return EXIT_OK
    console = Console(highlight=False)
    console.print(f"{len(records)} targets on {counts['screens']} screens")
    for key in ("source", "split", "platform", "element"):
        console.print(f"{key}: " + ", ".join(f"{k} {v}" for k, v in counts[key].items()))
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vlagent")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["register", "main"]
