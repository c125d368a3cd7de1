"""The grounding record format: round trip, and every bad input named by file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from vlagent.grounding.dataset import (
    DatasetError,
    GroundingRecord,
    OcrLine,
    append_dataset,
    read_dataset,
    summarize,
    write_dataset,
)


def _image(folder: Path, name: str = "images/a.png", size: tuple[int, int] = (40, 30)) -> str:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, "white").save(path)
    return name


def _record(image: str, **changes) -> GroundingRecord:
    fields = dict(
        image=image, instruction="the Save button", box=(0.1, 0.2, 0.4, 0.5), platform="desktop",
        element="button", source="synthetic:desktop", split="train",
    )  # fmt: skip
    fields.update(changes)
    return GroundingRecord(**fields)


def _line(image_name: str, **changes) -> str:
    data = {
        "image": image_name, "instruction": "the Save button", "box": [0.1, 0.2, 0.4, 0.5], "platform": "desktop",
        "element": "button", "source": "synthetic:desktop", "split": "train",
    }  # fmt: skip
    data.update(changes)
    return json.dumps(data)


def test_round_trip_keeps_every_field(tmp_path: Path) -> None:
    image = _image(tmp_path)
    records = [
        _record(image),
        _record(
            image, instruction="type your name", element="field", action="type", text="Zoë 佐藤",
            platform="web", split="test", source="web:django-admin",
            ocr=[OcrLine("Name", (0.0, 0.0, 0.2, 0.1), 0.97)], meta={"screen": 3},
        ),  # fmt: skip
    ]
    path = tmp_path / "data.jsonl"
    assert write_dataset(path, records) == 2
    back = read_dataset(path)
    assert back == records
    assert back[1].text == "Zoë 佐藤" and back[1].ocr[0].text == "Name"
    assert back[0].image_path == tmp_path / "images" / "a.png"
    # Non-ASCII text stays readable in the file itself.
    assert "佐藤" in path.read_text(encoding="utf-8")
    assert summarize(back)["split"] == {"test": 1, "train": 1}


def test_append_adds_lines_and_folder_reads_every_file(tmp_path: Path) -> None:
    image = _image(tmp_path)
    append_dataset(tmp_path / "a.jsonl", [_record(image)])
    append_dataset(tmp_path / "a.jsonl", [_record(image, instruction="Open")])
    write_dataset(tmp_path / "b.jsonl", [_record(image, instruction="Close")])
    assert [r.instruction for r in read_dataset(tmp_path)] == ["the Save button", "Open", "Close"]


def test_contains_counts_edges_and_rejects_none() -> None:
    r = _record("x.png", box=(0.1, 0.2, 0.4, 0.5))
    assert r.contains((0.1, 0.2)) and r.contains((0.4, 0.5)) and r.contains(r.center)
    assert not r.contains((0.41, 0.3)) and not r.contains(None)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"box": [0.1, 0.2, 1.4, 0.5]}, "outside [0, 1]"),
        ({"box": [10, 20, 200, 100]}, "outside [0, 1]"),
        ({"box": [0.4, 0.2, 0.4, 0.5]}, "empty"),
        ({"box": [0.5, 0.2, 0.4, 0.5]}, "empty"),
        ({"box": [0.1, 0.2, 0.4]}, "box must be"),
        ({"platform": "ios"}, "unknown platform 'ios'"),
        ({"element": "widget"}, "unknown element 'widget'"),
        ({"action": "hover"}, "unknown action 'hover'"),
        ({"split": "dev"}, "unknown split 'dev'"),
        ({"instruction": "  "}, "instruction must be"),
        ({"colour": "red"}, "unknown field(s) colour"),
        ({"image": "images/missing.png"}, "image 'images/missing.png' not found"),
    ],
)
def test_bad_line_names_file_and_line(tmp_path: Path, changes: dict, message: str) -> None:
    image = _image(tmp_path)
    path = tmp_path / "data.jsonl"
    path.write_text(_line(image) + "\n\n" + _line(image, **changes) + "\n", encoding="utf-8")
    with pytest.raises(DatasetError) as info:
        read_dataset(path)
    assert f"{path}:3:" in str(info.value)
    assert message in str(info.value)
    assert info.value.line == 3


def test_missing_field_and_bad_json_are_named(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    path.write_text('{"image": "a.png"}\n', encoding="utf-8")
    with pytest.raises(DatasetError, match=r"data.jsonl:1: missing field\(s\) instruction, box"):
        read_dataset(path)
    path.write_text("{not json\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"data.jsonl:1: not valid JSON"):
        read_dataset(path)


def test_empty_dataset_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text("\n\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="empty dataset is an error"):
        read_dataset(path)
    with pytest.raises(DatasetError, match="empty dataset is an error"):
        write_dataset(tmp_path / "out.jsonl", [])
    (tmp_path / "nothing-here").mkdir()
    with pytest.raises(DatasetError, match="no \\*.jsonl"):
        read_dataset(tmp_path / "nothing-here")


def test_writer_refuses_invalid_records(tmp_path: Path) -> None:
    image = _image(tmp_path)
    with pytest.raises(DatasetError, match="record 2 to write is invalid: unknown element 'knob'"):
        write_dataset(tmp_path / "d.jsonl", [_record(image), _record(image, element="knob")])
    with pytest.raises(DatasetError, match="not found"):
        write_dataset(tmp_path / "d.jsonl", [_record("images/none.png")])
    with pytest.raises(DatasetError, match="absolute path"):
        write_dataset(tmp_path / "d.jsonl", [_record(str(tmp_path / image))])
    assert not (tmp_path / "d.jsonl").exists()
