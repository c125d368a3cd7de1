"""Each grounder: centre, OCR match (real rapidocr), API (fake OpenAI server over HTTP),
local checkpoint (tiny random Qwen3.5), and the --grounder SPEC parser."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from fake_openai_server import FakeOpenAIServer, tool_call
from vlagent.grounding.dataset import GroundingRecord
from vlagent.grounding.evaluate import evaluate, summarize
from vlagent.grounding.grounders import (
    CenterGrounder,
    Grounder,
    GrounderSpecError,
    GroundingResult,
    OcrMatchGrounder,
    make_grounder,
    parse_spec,
)
from vlagent.grounding.grounders.ocr_match import query_of
from vlagent.grounding.synth_canvas import load_font

SIZE = (640, 360)


@pytest.fixture(scope="module")
def screen() -> tuple[Image.Image, dict[str, tuple[float, float, float, float]]]:
    """A small hand-drawn screen: a menu bar OCR reads as one line, two buttons, a gear icon."""
    img = Image.new("RGB", SIZE, "white")
    d = ImageDraw.Draw(img)
    font = load_font("sans", 15)
    boxes = {}
    x = 8
    for word in ("File", "Edit", "View", "Window", "Help"):
        b = d.textbbox((x, 8), word, font=font)
        d.text((x, 8), word, font=font, fill="black")
        boxes[word] = (b[0] - 4, 4, b[2] + 4, 30)
        x = b[2] + 14
    for label, bx in (("Save", 380), ("Cancel", 480)):
        box = (bx, 290, bx + 84, 322)
        d.rounded_rectangle(box, radius=4, fill="#e8e8ee", outline="#888")
        d.text(((box[0] + box[2]) // 2, (box[1] + box[3]) // 2), label, font=font, fill="black", anchor="mm")
        boxes[label] = box
    from vlagent.grounding.synth_icons import draw_icon

    draw_icon(d, "gear", (40, 150, 72, 182), (20, 20, 20))
    boxes["gear"] = (40, 150, 72, 182)
    w, h = SIZE
    return img, {k: (b[0] / w, b[1] / h, b[2] / w, b[3] / h) for k, b in boxes.items()}


def _inside(point, box) -> bool:
    return point is not None and box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3]


def test_center_is_the_floor(screen) -> None:
    g = CenterGrounder()
    assert isinstance(g, Grounder)
    r = g.ground(screen[0], "anything")
    assert r.found and r.point == (0.5, 0.5)


@pytest.mark.parametrize(("instruction", "query"), [
    ("click the 'Sign in' button", "Sign in"),
    ("type hello into the field under Email", "Email"),
    ("the checkbox next to Remember me", "Remember me"),
    ("click Next", "Next"),
    ("the Edit menu", "Edit"),
])  # fmt: skip
def test_query_of(instruction: str, query: str) -> None:
    assert query_of(instruction) == query


def test_ocr_match_clicks_words_not_line_centres(screen) -> None:
    img, boxes = screen
    g = OcrMatchGrounder()
    for instruction, target in (("click Save", "Save"), ("the 'Cancel' button", "Cancel"), ("open the Edit menu", "Edit"),
                                ("the Help menu", "Help")):  # fmt: skip
        r = g.ground(img, instruction)
        assert r.found and _inside(r.point, boxes[target]), (instruction, r)
        assert r.confidence >= 0.6 and r.candidates[0].point == r.point
    # An icon has no text: the baseline says so rather than guessing.
    r = g.ground(img, "the settings icon")
    assert not r.found and r.point is None and "no text matches" in r.error


def test_ocr_is_cached_per_screen(screen) -> None:
    from vlagent.grounding.ocr import read_page

    assert read_page(screen[0]) is read_page(screen[0].copy())


def test_api_grounder_reads_tool_call_coordinates(screen) -> None:
    img, boxes = screen
    x0, y0, x1, y1 = boxes["Save"]
    cx, cy = round((x0 + x1) / 2 * 1000), round((y0 + y1) / 2 * 1000)
    replies = [tool_call("left_click", coordinate=[cx, cy]), "I cannot see it.", tool_call("wait", time=1)]
    with FakeOpenAIServer(replies) as server:
        g = make_grounder(f"api:fake-model@{server.base_url},max_retries=0")
        assert g.name == "api:fake-model"
        hit = g.ground(img, "click Save", platform="web")
        assert hit.found and _inside(hit.point, boxes["Save"])
        assert "left_click" in hit.raw
        no_call = g.ground(img, "click Save")
        assert not no_call.found and no_call.point is None
        no_point = g.ground(img, "click Save", platform="android")
        assert not no_point.found and "no point" in no_point.error
        assert server.problems == []
        # The screenshot and instruction reached the server; android asks with the mobile tool.
        assert "click Save" in str(server.requests[0]["messages"])
        assert "mobile_use" in str(server.requests[2]["messages"][0])


def test_api_grounder_needs_a_model_and_a_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VLAGENT_API_BASE", raising=False)
    monkeypatch.delenv("VLAGENT_MODEL", raising=False)
    with pytest.raises(GrounderSpecError, match="needs a server"):
        make_grounder("api:some-model")
    with pytest.raises(GrounderSpecError, match="needs a model"):
        make_grounder("api")


def test_local_checkpoint_grounder_parses_and_scores(tmp_path: Path, screen) -> None:
    from tiny_checkpoints import tiny_checkpoint

    ckpt = tiny_checkpoint("dense")
    g = make_grounder(f"local:{ckpt},max_new_tokens=12,max_pixels={32 * 32 * 40},min_pixels={32 * 32 * 4}")
    img, boxes = screen
    img.save(tmp_path / "s.png")
    records = [
        GroundingRecord("s.png", "click Save", boxes["Save"], "desktop", "button", "test:hand", "test", base_dir=tmp_path),
        GroundingRecord("s.png", "the settings icon", boxes["gear"], "android", "icon", "test:hand", "test",
                        base_dir=tmp_path),
    ]  # fmt: skip
    evaluation = evaluate(records, [g])
    summary = summarize(evaluation)
    (name,) = summary["grounders"]
    assert name.startswith("local:")
    assert summary["grounders"][name]["overall"]["n"] == 2
    for outcome in evaluation.outcomes[name]:
        assert isinstance(outcome.result, GroundingResult) and isinstance(outcome.result.raw, (str, type(None)))
        assert outcome.hit == (outcome.result.found and outcome.record.contains(outcome.result.point))


def test_spec_parser_and_errors() -> None:
    assert parse_spec("api:m@http://h:1/v1,fmt=qwen,max_retries=0") == (
        "api", "m@http://h:1/v1", {"fmt": "qwen", "max_retries": 0}
    )  # fmt: skip
    assert parse_spec("ocr,threshold=0.5") == ("ocr", None, {"threshold": 0.5})
    assert make_grounder("ocr,threshold=0.5").threshold == 0.5
    with pytest.raises(GrounderSpecError, match="unknown grounder 'magic'"):
        make_grounder("magic")
    with pytest.raises(GrounderSpecError, match="bad options for 'ocr' in 'ocr,colour=red': 'ocr' has no option 'colour'"):
        make_grounder("ocr,colour=red")
    with pytest.raises(GrounderSpecError, match="bad options.*threshold"):
        make_grounder("ocr,threshold=7")
    with pytest.raises(GrounderSpecError, match=r"threshold must be a number in \[0, 1\], got 'abc'"):
        make_grounder("ocr,threshold=abc")  # not Python's "'<=' not supported between ..."
    with pytest.raises(GrounderSpecError, match="top_k must be a whole number"):
        make_grounder("ocr,top_k=0.5")
    with pytest.raises(GrounderSpecError, match="bad options.*reply format"):
        make_grounder("api:m@http://127.0.0.1:9/v1,fmt=klingon")
    with pytest.raises(GrounderSpecError, match="KEY=VALUE"):
        make_grounder("ocr,loose")
    with pytest.raises(GrounderSpecError, match="checkpoint folder"):
        make_grounder("local")
    with pytest.raises(ValueError, match="normalized"):
        GroundingResult(point=(3.0, 0.5), confidence=1.0)


def test_a_verb_that_is_the_label_is_kept():
    """"the Open button" looks for Open; a verb is dropped only where a command starts."""
    from vlagent.grounding.grounders.ocr_match import query_of

    assert query_of("the Open button") == "Open"
    assert query_of("click Select all") == "Select all"
    assert query_of("open the File menu") == "File"
    assert query_of("please double click Next") == "Next"
