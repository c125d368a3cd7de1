"""Generated negatives (`eval-grounding --negatives K`): instructions that name nothing on the screen,
borrowed from other screens or made up; each grounder's rejections of them and refusals of real targets."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from PIL import Image

import vlagent.grounding.evaluate as evaluate_module
from vlagent.cli import main
from vlagent.grounding.dataset import GroundingRecord, OcrLine, read_dataset
from vlagent.grounding.evaluate import evaluate, summarize, summary_rows
from vlagent.grounding.grounders import CenterGrounder, GroundingResult
from vlagent.grounding.grounders.ocr_match import query_of
from vlagent.grounding.html_report import render_html
from vlagent.grounding.negatives import GENERIC_WORDS, absent_instructions, significant_words


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("negatives")
    code = main(["grounding-data", "harvest", "--source", "synthetic", "--out", str(out), "--count", "8",
                 "--seed", "4", "--option", "targets_per_screen=4"])  # fmt: skip
    assert code == 0
    return out / "synthetic.jsonl"


def _words(text: str) -> set[str]:
    """The brief's words: letters only, lower case, more than 3 letters."""
    return {w for w in re.findall(r"[^\W\d_]+", text.casefold()) if len(w) > 3}


def _record(tmp_path: Path, image: str, instruction: str, ocr: list[str] | None = None, width: int = 64,
            **kw: object) -> GroundingRecord:  # fmt: skip
    path = tmp_path / image
    if not path.exists():
        Image.new("RGB", (width, 48), "white").save(path)
    lines = None if ocr is None else [OcrLine(t, (0.1, 0.1, 0.5, 0.2)) for t in ocr]
    fields: dict = dict(box=(0.1, 0.1, 0.5, 0.2), platform="desktop", element="button", source="test", split="test")
    fields.update(kw)
    return GroundingRecord(image=image, instruction=instruction, ocr=lines, base_dir=tmp_path, **fields)


def test_negatives_never_name_what_the_screen_shows(dataset: Path) -> None:
    records = read_dataset(dataset)
    negatives = absent_instructions(records, 3)
    screens: dict[str, list[GroundingRecord]] = {}
    for r in records:
        screens.setdefault(str(r.image_path), []).append(r)
    assert [str(p) for p, _ in negatives] == [s for s in screens for _ in range(3)]
    assert absent_instructions(records, 3) == negatives  # deterministic
    assert absent_instructions(records, 0) == []
    borrowed = 0
    for path, instruction in negatives:
        own = screens[str(path)]
        on_screen = set().union(*(_words(r.instruction) | _words(r.text or "") for r in own))
        asked = {w for w in _words(query_of(instruction)) if w not in GENERIC_WORDS}
        assert asked and not asked & on_screen, (path.name, instruction)
        assert instruction not in {r.instruction for r in own}
        borrowed += instruction in {r.instruction for r in records}
    assert borrowed >= len(negatives) // 2  # mostly real labels of other screens, not made-up names
    for s in screens:  # nothing asked twice about one screen
        asked_here = [frozenset(significant_words(query_of(i))) for p, i in negatives if str(p) == s]
        assert len(set(asked_here)) == len(asked_here)


def test_cached_ocr_text_and_lone_screens(tmp_path: Path) -> None:
    records = [
        _record(tmp_path, "a.png", "click Save", ocr=["File Edit", "Preferences…", "Save"]),
        _record(tmp_path, "b.png", "open the Preferences dialog"),
        _record(tmp_path, "b.png", "the 'Export as PDF' button"),
        _record(tmp_path, "c.png", "the settings icon", element="icon"),  # icons are never borrowed
        _record(tmp_path, "c.png", "the third row"),  # nor descriptions without a label
    ]
    negatives = absent_instructions(records, 4)
    on_a = [i for p, i in negatives if p.name == "a.png"]
    # Preferences is in a.png's OCR text: never asked there; the PDF export is.
    assert "the 'Export as PDF' button" in on_a and "open the Preferences dialog" not in on_a
    assert all("settings" not in i and "third" not in i for _, i in negatives)
    assert len(on_a) == 4 and len(set(on_a)) == 4
    # b.png can borrow only "click Save" (not the icon, not the row): then made-up names.
    on_b = [i for p, i in negatives if p.name == "b.png"]
    assert on_b[0] == "click Save"
    assert len(on_b) == 4 and all(re.fullmatch(r"the [A-Z][a-z]+ (button|menu|link|tab)", i) for i in on_b[1:])
    # One screen alone: only made-up names, none of them on it.
    alone = absent_instructions([_record(tmp_path, "z.png", "the Zorblax button", ocr=["Quindle"])], 3)
    assert len(alone) == 3
    assert all("Zorblax" not in i and "Quindle" not in i for _, i in alone)


class _Knows:
    """Finds exactly the instructions it was told are on the screen (screens told apart by their width)."""

    name = "knows"

    def __init__(self, known: dict[int, set[str]]) -> None:
        self.known = known

    def ground(self, image: Image.Image, instruction: str, *, platform: str | None = None) -> GroundingResult:
        if instruction in self.known[image.width]:
            return GroundingResult(point=(0.3, 0.15), confidence=1.0)
        return GroundingResult.not_found("not here")


def test_evaluate_asks_negatives_on_the_same_decoded_screen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    records = [
        _record(tmp_path, "a.png", "click Save"),
        _record(tmp_path, "a.png", "the Cancel button"),
        _record(tmp_path, "b.png", "open Preferences", width=80),
        _record(tmp_path, "b.png", "the Sharing tab", platform="web", width=80),
    ]
    negatives = absent_instructions(records, 3)
    opened: list[str] = []
    real_open = Image.open

    def counting_open(path: object, *args: object, **kwargs: object) -> Image.Image:
        opened.append(str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(evaluate_module.Image, "open", counting_open)
    known = {64: {"click Save"}, 80: {"open Preferences"}}  # refuses the other two real targets
    ev = evaluate(records, [_Knows(known), CenterGrounder()], negatives=negatives)
    assert sorted(opened) == sorted({str(r.image_path) for r in records})  # one decode per screen
    assert [o.instruction for o in ev.negatives["knows"]] == [i for _, i in negatives]
    summary = summarize(ev)
    assert summary["negatives"] == 6
    knows, center = summary["grounders"]["knows"], summary["grounders"]["center"]
    assert knows["negatives"]["n"] == 6 and knows["negatives"]["rejected"] == 6
    assert knows["negatives"]["rejection_rate"] == 1.0
    assert knows["refused_targets"] == {"n": 4, "refused": 2, "rate": 0.5}
    assert center["negatives"]["rejected"] == 0 and center["negatives"]["rejection_rate"] == 0.0
    assert center["refused_targets"] == {"n": 4, "refused": 0, "rate": 0.0}
    assert knows["overall"]["n"] == 4  # the negatives stay out of accuracy and its latency
    _, rows = summary_rows(summary)
    by_label = {r[0]: r for r in rows}
    assert by_label["negatives rejected"] == ["negatives rejected", "6", "100.0 %", "0.0 %"]
    assert by_label["real targets refused"] == ["real targets refused", "4", "50.0 %", "0.0 %"]
    page = render_html(ev)
    assert "negatives — 6 accepted" in page  # the centre grounder's, as misses
    # Without negatives: no new keys, no new rows.
    plain = summarize(evaluate(records, [CenterGrounder()]))
    assert "negatives" not in plain and "negatives" not in plain["grounders"]["center"]
    assert "refused_targets" not in plain["grounders"]["center"]
    assert "negatives rejected" not in {r[0] for r in summary_rows(plain)[1]}


def _stable(summary: dict) -> dict:
    for entry in summary["grounders"].values():
        entry.pop("latency_ms"), entry.pop("ms_per_screen")
    return summary


def test_eval_command_with_negatives(dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    records = read_dataset(dataset)
    assert main(["eval-grounding", str(dataset), "--grounder", "center", "--json", "--no-progress",
                 "--negatives", "2", "--html", str(tmp_path / "m.html")]) == 0  # fmt: skip
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["negatives"] == 16 and summary["screens"] == 8
    center = summary["grounders"]["center"]
    assert center["negatives"] | {"latency_ms_median": 0} == {"n": 16, "rejected": 0, "rejection_rate": 0.0,
                                                              "latency_ms_median": 0}  # fmt: skip
    assert center["refused_targets"] == {"n": len(records), "refused": 0, "rate": 0.0}
    assert "negatives rejected" in captured.err and "real targets refused" in captured.err
    assert "negatives — 16 accepted" in (tmp_path / "m.html").read_text()

    # --negatives 0 (the default) changes nothing.
    assert main(["eval-grounding", str(dataset), "--grounder", "center", "--json", "--no-progress"]) == 0
    default = capsys.readouterr()
    assert main(["eval-grounding", str(dataset), "--grounder", "center", "--json", "--no-progress",
                 "--negatives", "0"]) == 0  # fmt: skip
    off = capsys.readouterr()
    assert _stable(json.loads(off.out)) == _stable(json.loads(default.out))
    assert "negatives" not in off.out and "negatives" not in off.err and "refused" not in off.err

    assert main(["eval-grounding", str(dataset), "--grounder", "center", "--negatives", "-1"]) == 2
    assert "--negatives" in capsys.readouterr().err


def test_ocr_grounder_rejects_some_negatives(dataset: Path, capsys: pytest.CaptureFixture) -> None:
    """OCR on two screens (~1 s each); a strict threshold turns unmatched names into "not found"."""
    assert main(["eval-grounding", str(dataset), "--grounder", "ocr,threshold=0.9", "--limit", "8",
                 "--negatives", "3", "--json", "--no-progress"]) == 0  # fmt: skip
    summary = json.loads(capsys.readouterr().out)
    ocr = summary["grounders"]["ocr-match"]
    screens = summary["screens"]
    assert ocr["negatives"]["n"] == 3 * screens and ocr["negatives"]["rejected"] > 0
    assert ocr["negatives"]["rejection_rate"] == ocr["negatives"]["rejected"] / (3 * screens)
    assert ocr["refused_targets"]["n"] == 8 and ocr["refused_targets"]["refused"] == ocr["not_found"]
