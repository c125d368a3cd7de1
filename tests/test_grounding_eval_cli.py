"""`vlagent grounding-data harvest` and `vlagent eval-grounding` end to end on 20 synthetic
screens: the table, the JSON summary (checked against the boxes themselves) and the HTML
report of misses; empty datasets and bad grounders are errors, never a 0 % score."""

from __future__ import annotations

import html
import json
from pathlib import Path

import pytest

from fake_openai_server import FakeOpenAIServer, tool_call
from vlagent.cli import main
from vlagent.grounding.dataset import read_dataset


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("grounding")
    code = main(["grounding-data", "harvest", "--source", "synthetic", "--out", str(out), "--count", "20",
                 "--seed", "4", "--option", "targets_per_screen=4"])  # fmt: skip
    assert code == 0
    return out / "synthetic.jsonl"


def test_harvest_writes_a_readable_dataset(dataset: Path, capsys: pytest.CaptureFixture) -> None:
    records = read_dataset(dataset)
    assert len({r.image for r in records}) == 20 and 40 <= len(records) <= 80
    assert main(["grounding-data", "info", str(dataset), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["targets"] == len(records) and info["screens"] == 20
    assert main(["grounding-data", "info", "--sources"]) == 0
    assert "synthetic" in capsys.readouterr().out.split()


def test_eval_scores_every_grounder_on_the_same_targets(dataset: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture) -> None:  # fmt: skip
    records = read_dataset(dataset)
    # The fake model answers each target (in dataset order, which is screen order) with the centre of
    # its box in Qwen's 0-1000 coordinates, except every third target, where it points at a corner.
    replies, expected_hits = [], 0
    for i, r in enumerate(records):
        if i % 3 == 0:
            x, y = 1, 1  # (0.001, 0.001): inside no target box here
        else:
            x, y = round((r.box[0] + r.box[2]) * 500), round((r.box[1] + r.box[3]) * 500)
        if r.platform == "android":  # phones are asked with the mobile_use tool, whose action is "click"
            replies.append(tool_call("click", tool="mobile_use", coordinate=[x, y]))
        else:
            replies.append(tool_call("left_click", coordinate=[x, y]))
        expected_hits += r.contains((x / 1000, y / 1000))
    center_hits = sum(r.contains((0.5, 0.5)) for r in records)
    summary_path, html_path = tmp_path / "summary.json", tmp_path / "misses.html"
    with FakeOpenAIServer(replies) as server:
        code = main(["eval-grounding", str(dataset), "--grounder", "center", "--grounder",
                     f"api:fake-model@{server.base_url},max_retries=0", "--json", str(summary_path),
                     "--html", str(html_path), "--no-progress"])  # fmt: skip
        assert server.problems == []
    assert code == 0
    table = capsys.readouterr().out
    for row in ("overall", "platform: android", "element: button", "source: synthetic:web", "latency median", "p90"):
        assert row in table
    assert "api:fake-model" in table and "center" in table

    summary = json.loads(summary_path.read_text())
    assert summary["targets"] == len(records) and summary["screens"] == 20
    api = summary["grounders"]["api:fake-model"]
    center = summary["grounders"]["center"]
    assert api["overall"]["hits"] == expected_hits and expected_hits >= len(records) * 0.6
    assert center["overall"]["hits"] == center_hits
    assert sum(v["n"] for v in api["element"].values()) == len(records)
    assert set(api["platform"]) == {r.platform for r in records}
    assert api["latency_ms"]["p90"] >= api["latency_ms"]["median"] > 0

    page = html_path.read_text()
    misses = len(records) - expected_hits + len(records) - center_hits
    assert page.count("class='miss'") == misses
    for r in records[::3]:  # the deliberate misses are shown with their instruction
        assert html.escape(r.instruction) in page
    assert "synthetic:" in page and "data:image/jpeg;base64," in page


def test_eval_json_to_stdout_is_one_document(dataset: Path, capsys: pytest.CaptureFixture) -> None:
    # With the progress bar on (the default): it draws on stderr, stdout stays one JSON document.
    assert main(["eval-grounding", str(dataset), "--grounder", "center", "--json", "--split", "train",
                 "--limit", "5"]) == 0  # fmt: skip
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["targets"] == 5
    assert "overall" in captured.err  # the table went to stderr


def test_empty_and_bad_inputs_are_errors(tmp_path: Path, dataset: Path, capsys: pytest.CaptureFixture) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert main(["eval-grounding", str(empty), "--grounder", "center", "--no-progress"]) == 2
    assert "empty dataset is an error" in capsys.readouterr().err
    assert main(["eval-grounding", str(dataset), "--source", "gtk:", "--grounder", "center"]) == 2
    assert "no targets left" in capsys.readouterr().err
    assert main(["eval-grounding", str(dataset), "--grounder", "telepathy"]) == 2
    assert "unknown grounder" in capsys.readouterr().err
    assert main(["eval-grounding", str(tmp_path / "nope.jsonl")]) == 2
    assert "dataset not found" in capsys.readouterr().err
    assert main(["grounding-data", "harvest", "--source", "nowhere", "--out", str(tmp_path)]) == 2
    assert main(["grounding-data", "harvest", "--source", "synthetic", "--out", str(tmp_path),
                 "--count", "1", "--option", "colour=red"]) == 2  # fmt: skip
    assert "bad option" in capsys.readouterr().err


def test_ocr_grounder_through_the_command(dataset: Path, capsys: pytest.CaptureFixture) -> None:
    """The OCR baseline through the CLI on one screen's targets (OCR is the slow part: ~1 s a screen)."""
    assert main(["eval-grounding", str(dataset), "--grounder", "ocr", "--limit", "4", "--json", "--no-progress"]) == 0
    summary = json.loads(capsys.readouterr().out)
    ocr = summary["grounders"]["ocr-match"]
    assert ocr["overall"]["n"] == 4 and 0 <= ocr["overall"]["hits"] <= 4
