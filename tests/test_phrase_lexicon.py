"""Other words for labels, learnt from grounding data (vlagent.grounding.phrase_lexicon), and the shipped
grounder answering with them."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from PIL import Image, ImageDraw, ImageFont

from vlagent.grounding.dataset import GroundingRecord, write_dataset
from vlagent.grounding.phrase_lexicon import Lexicon, learn_lexicon, load_lexicon
from vlagent.model.grounder import TextLine


def _record(instruction: str, label: str | None, split: str = "train") -> GroundingRecord:
    return GroundingRecord(image="s.png", instruction=instruction, box=(0.1, 0.1, 0.2, 0.2), platform="desktop",
                           element="button", source="synthetic:dialog", split=split,
                           meta={"label": label} if label else {})


def test_phrases_are_learnt_from_train_instructions_that_name_a_label_in_other_words():
    records = [
        *[_record(text, "Close") for text in ("dismiss", "the button to dismiss", "dismiss")],
        *[_record("proceed", label) for label in ("Continue", "Continue", "Next", "Continue", "Next")],
        *[_record("the third one", label) for label in ("Music", "Tools", "Inbox", "Spam")],  # many labels
        *[_record("shut this", "Close") for _ in range(2)],  # seen too rarely
        *[_record("the Save button", "Save") for _ in range(5)],  # names its label: nothing to learn
        *[_record("make a paper copy", "Print", split="val") for _ in range(5)],  # not the train split
        *[_record("go back", None) for _ in range(5)],  # no label known
    ]
    lexicon = learn_lexicon(records)
    assert lexicon.phrases == {"dismiss": ("Close",), "proceed": ("Continue", "Next")}
    assert lexicon.labels_for("the button to dismiss") == ("Close",)
    assert lexicon.labels_for("Dismiss") == ("Close",)
    assert lexicon.labels_for("make a paper copy") == ()


def test_a_lexicon_round_trips_and_a_wrong_file_is_refused(tmp_path):
    lexicon = Lexicon({"log in": ["Sign in"], "proceed": ["Continue", "Next"]})
    lexicon.save(tmp_path / "lexicon.json")
    assert Lexicon.load(tmp_path / "lexicon.json").phrases == lexicon.phrases
    (tmp_path / "other.json").write_text(json.dumps({"classes": []}))
    with pytest.raises(ValueError, match="not a phrase lexicon"):
        Lexicon.load(tmp_path / "other.json")
    assert load_lexicon(str(tmp_path / "absent.json")) is None


def test_the_train_lexicon_command_writes_what_it_learnt(tmp_path):
    Image.new("RGB", (64, 48), "white").save(tmp_path / "s.png")
    write_dataset(tmp_path / "data.jsonl", [_record("log in", "Sign in") for _ in range(3)])
    done = subprocess.run([sys.executable, "-m", "vlagent", "train-lexicon", "--data", str(tmp_path / "data.jsonl"),
                           "--out", str(tmp_path / "lexicon.json")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert Lexicon.load(tmp_path / "lexicon.json").phrases == {"log in": ("Sign in",)}
    write_dataset(tmp_path / "plain.jsonl", [_record("the OK button", "OK")])
    done = subprocess.run([sys.executable, "-m", "vlagent", "train-lexicon", "--data", str(tmp_path / "plain.jsonl"),
                           "--out", str(tmp_path / "none.json")], capture_output=True, text=True)
    assert done.returncode == 2 and "nothing learnt" in done.stderr and not (tmp_path / "none.json").exists()


def _dialog() -> tuple[Image.Image, list[TextLine], dict]:
    """A dialog's text and its buttons Cancel, Print and Close along the bottom."""
    image = Image.new("RGB", (640, 360), (246, 245, 244))
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=15)
    lines, boxes = [], {}
    for text, (x, y) in (("Print the document?", (40, 40)), ("Cancel", (300, 300)), ("Print", (400, 300)),
                         ("Close", (500, 300))):
        draw.text((x, y), text, fill=(30, 30, 30), font=font)
        x0, y0, x1, y1 = draw.textbbox((x, y), text, font=font)
        if text != "Print the document?":
            draw.rectangle((x0 - 10, y0 - 6, x1 + 10, y1 + 6), outline=(150, 150, 150))
        lines.append(TextLine(text, (x0 / 640, y0 / 360, x1 / 640, y1 / 360)))
        boxes[text] = (x0 / 640, y0 / 360, x1 / 640, y1 / 360)
    return image, lines, boxes


def test_the_shipped_grounder_answers_a_phrase_with_the_label_it_means():
    from vlagent.grounding.grounders.head import default_grounder

    grounder = default_grounder()
    assert grounder.lexicon is not None and grounder.lexicon.labels_for("dismiss") == ("Close",)
    image, lines, boxes = _dialog()
    result = grounder.ground(image, "dismiss", lines=lines)
    x0, y0, x1, y1 = boxes["Close"]
    assert result.found and x0 <= result.point[0] <= x1 and y0 <= result.point[1] <= y1
    assert result.raw == "label in other words"
    # where the label is written as asked, the text itself answers, not the lexicon
    assert grounder.ground(image, "the Cancel button", lines=lines).raw == "exact text"
    # a phrase the lexicon means a label by that is not on this screen: the model answers
    assert grounder.ground(image, "log in", lines=lines).raw != "label in other words"
    # "the find icon" asks for a magnifier, not for a Search label
    assert grounder.ground(image, "the find icon", lines=lines).raw != "label in other words"
