"""Score grounders on the same targets: accuracy (the point lies inside the box) and latency.

`evaluate(records, grounders)` asks every grounder about every target, one
screenshot loaded once for all its targets and grounders, and keeps each
answer as an `Outcome`. `summarize` turns the outcomes into accuracy overall
and by platform, element kind and source, and latency per target (median,
p90). A "not found" answer is a miss: a grounder that abstains does not
click, and the target was on the screen.

With `negatives` (screenshot, instruction) pairs naming something that is
not on that screen (`vlagent.grounding.negatives.absent_instructions`),
every grounder is asked those too, on the same decoded screenshot, after the
screen's real targets; their answers are kept apart (`Evaluation.negatives`,
their own latency), and the summary adds how many it rejected ("not found",
the right answer) and how many real targets it refused.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from os import PathLike
from typing import Any, Callable, Sequence

from PIL import Image

from vlagent.grounding.dataset import DatasetError, GroundingRecord
from vlagent.grounding.grounders.base import Grounder, GroundingResult

BREAKDOWNS = ("platform", "element", "source")
# Record meta keys also broken down when the records carry them (synthetic data does):
# how the instruction is phrased, and the language of the screen's labels.
META_BREAKDOWNS = ("style", "lang")


@dataclass
class Outcome:
    record: GroundingRecord
    grounder: str
    result: GroundingResult
    hit: bool
    latency_s: float


@dataclass
class NegativeOutcome:
    """A grounder's answer to an instruction naming something not on the screen: right when not found."""

    image_path: str
    instruction: str
    platform: str
    grounder: str
    result: GroundingResult
    latency_s: float

    @property
    def rejected(self) -> bool:
        return not self.result.found


@dataclass
class Evaluation:
    records: list[GroundingRecord]
    grounders: list[str]
    outcomes: dict[str, list[Outcome]]  # grounder name -> one outcome per record, in record order
    # grounder name -> one outcome per negative, in the order given; empty when none were asked
    negatives: dict[str, list[NegativeOutcome]] = field(default_factory=dict)


def _unique_names(grounders: Sequence[Grounder]) -> list[str]:
    names: list[str] = []
    for g in grounders:
        name, n = g.name, 2
        while name in names:
            name, n = f"{g.name}#{n}", n + 1
        names.append(name)
    return names


def evaluate(
    records: Sequence[GroundingRecord],
    grounders: Sequence[Grounder],
    progress: Callable[[int], None] | None = None,
    negatives: Sequence[tuple[str | PathLike[str], str]] = (),
) -> Evaluation:
    """Run every grounder on every record, then on every negative. `progress(n)` is called after each answer.

    `negatives` are (screenshot path, instruction) pairs that name nothing on
    that screenshot; each is asked with the platform of the screen's first
    record (a screenshot no record names is decoded for them alone).
    Raises DatasetError on an empty record list (never a 0 % score).
    """
    if not records:
        raise DatasetError("no targets to evaluate: an empty dataset is an error, not a 0 % score")
    if not grounders:
        raise ValueError("no grounder to evaluate")
    names = _unique_names(grounders)
    outcomes: dict[str, list[Outcome | None]] = {n: [None] * len(records) for n in names}
    # Group targets by screenshot so each image is decoded once.
    by_image: dict[str, list[int]] = {}
    for i, r in enumerate(records):
        by_image.setdefault(str(r.image_path), []).append(i)
    platforms = {path: records[indices[0]].platform for path, indices in by_image.items()}
    negatives_by_image: dict[str, list[int]] = {}
    for j, (path, _) in enumerate(negatives):
        negatives_by_image.setdefault(str(path), []).append(j)
        by_image.setdefault(str(path), [])
    negative_outcomes: dict[str, list[NegativeOutcome | None]] = {n: [None] * len(negatives) for n in names}
    for path, indices in by_image.items():
        try:
            with Image.open(path) as im:
                image = im.convert("RGB")
        except OSError as exc:
            raise DatasetError(f"cannot read screenshot: {exc}", path) from None
        for grounder, name in zip(grounders, names):
            for i in indices:
                r = records[i]
                t0 = time.perf_counter()
                result = grounder.ground(image, r.instruction, platform=r.platform)
                dt = time.perf_counter() - t0
                hit = bool(result.found and r.contains(result.point))
                outcomes[name][i] = Outcome(r, name, result, hit, dt)
                if progress:
                    progress(1)
            for j in negatives_by_image.get(path, ()):
                instruction = negatives[j][1]
                platform = platforms.get(path, records[0].platform)
                t0 = time.perf_counter()
                result = grounder.ground(image, instruction, platform=platform)
                dt = time.perf_counter() - t0
                negative_outcomes[name][j] = NegativeOutcome(path, instruction, platform, name, result, dt)
                if progress:
                    progress(1)
    return Evaluation(
        list(records), names, {n: [o for o in v if o is not None] for n, v in outcomes.items()},
        {n: [o for o in v if o is not None] for n, v in negative_outcomes.items()} if negatives else {},
    )


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    pos = q * (len(ordered) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _acc(outs: Sequence[Outcome]) -> dict[str, Any]:
    hits = sum(o.hit for o in outs)
    return {"n": len(outs), "hits": hits, "accuracy": hits / len(outs)}


def summarize(evaluation: Evaluation) -> dict[str, Any]:
    """JSON-ready summary: per grounder, overall and per-breakdown accuracy, latency, not-found count.

    When negatives were asked: the top-level "negatives" count, and per grounder
    "negatives" {n, rejected, rejection_rate, latency_ms_median} and
    "refused_targets" {n, refused, rate} (real targets answered "not found").
    """
    out: dict[str, Any] = {"targets": len(evaluation.records), "screens": len({str(r.image_path) for r in evaluation.records}),
                           "grounders": {}}  # fmt: skip
    if evaluation.negatives:
        out["negatives"] = len(next(iter(evaluation.negatives.values())))
    for name in evaluation.grounders:
        outs = evaluation.outcomes[name]
        lat = [o.latency_s * 1000 for o in outs]
        entry: dict[str, Any] = {
            "overall": _acc(outs),
            "not_found": sum(not o.result.found for o in outs),
            "latency_ms": {"median": statistics.median(lat), "p90": _percentile(lat, 0.9), "mean": statistics.fmean(lat)},
            # Per screen as well: a grounder that caches its work per screenshot (OCR) pays once per screen.
            "ms_per_screen": sum(lat) / out["screens"],
        }
        for key in BREAKDOWNS:
            groups: dict[str, list[Outcome]] = {}
            for o in outs:
                groups.setdefault(getattr(o.record, key), []).append(o)
            entry[key] = {k: _acc(v) for k, v in sorted(groups.items())}
        for key in META_BREAKDOWNS:
            if any(key in o.record.meta for o in outs):
                groups = {}
                for o in outs:
                    groups.setdefault(str(o.record.meta.get(key, "-")), []).append(o)
                entry[key] = {k: _acc(v) for k, v in sorted(groups.items())}
        if evaluation.negatives:
            negs = evaluation.negatives[name]
            rejected = sum(o.rejected for o in negs)
            refused = entry["not_found"]
            entry["negatives"] = {
                "n": len(negs), "rejected": rejected, "rejection_rate": rejected / len(negs) if negs else 0.0,
                # Kept apart from the real targets' latency: a negative is asked after its screen's targets.
                "latency_ms_median": statistics.median(o.latency_s * 1000 for o in negs) if negs else 0.0,
            }  # fmt: skip
            entry["refused_targets"] = {"n": len(outs), "refused": refused, "rate": refused / len(outs)}
        out["grounders"][name] = entry
    return out


def summary_rows(summary: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """The one table: header and rows (overall, each platform/element/source, not found, latency).

    With negatives: "negatives rejected" and "real targets refused" rows, in percent.
    """
    names = list(summary["grounders"])
    first = summary["grounders"][names[0]]
    header = ["", "targets", *names]
    rows: list[list[str]] = []

    def acc_row(label: str, pick: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        n = pick(first)["n"]
        cells = [f"{100 * pick(summary['grounders'][g])['accuracy']:.1f} %" for g in names]
        rows.append([label, str(n), *cells])

    acc_row("overall", lambda e: e["overall"])
    for key in (*BREAKDOWNS, *(k for k in META_BREAKDOWNS if k in first)):
        for value in first[key]:
            acc_row(f"{key}: {value}", lambda e, k=key, v=value: e[k][v])
    rows.append(["not found", "", *[str(summary["grounders"][g]["not_found"]) for g in names]])
    if "negatives" in first:  # asked about things not on the screen: "not found" is right there
        for label, key, rate in (("negatives rejected", "negatives", "rejection_rate"),
                                 ("real targets refused", "refused_targets", "rate")):  # fmt: skip
            grounders = summary["grounders"]
            rows.append([label, str(first[key]["n"]), *[f"{100 * grounders[g][key][rate]:.1f} %" for g in names]])
    for stat in ("median", "p90"):
        rows.append([f"latency {stat} (ms/target)", "",
                     *[f"{summary['grounders'][g]['latency_ms'][stat]:.1f}" for g in names]])  # fmt: skip
    rows.append(["time per screen (ms, mean)", str(summary["screens"]),
                 *[f"{summary['grounders'][g]['ms_per_screen']:.1f}" for g in names]])  # fmt: skip
    return header, rows


__all__ = [
    "BREAKDOWNS", "META_BREAKDOWNS", "Evaluation", "NegativeOutcome", "Outcome", "evaluate", "summarize",
    "summary_rows",
]  # fmt: skip
