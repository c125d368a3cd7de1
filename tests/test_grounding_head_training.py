"""Head-only training on a frozen Qwen3.5 checkpoint (`vlagent train-grounding --base`) and the
`local:CHECKPOINT` grounder that uses the head it writes (and falls back to tool calls without one)."""
from __future__ import annotations

import json
import random

import pytest
import torch
from PIL import Image, ImageDraw

from tiny_checkpoints import tiny_checkpoint
from vlagent.cli import main
from vlagent.grounding.dataset import GroundingRecord, read_dataset, write_dataset
from vlagent.grounding.grounders import make_grounder
from vlagent.grounding.grounders.checkpoint_head import CheckpointHeadGrounder
from vlagent.grounding.grounders.policy_grounder import PolicyGrounder
from vlagent.grounding.head_training import HEAD_FILE, HeadTrainConfig, train_head
from vlagent.model import load_model


def _dataset(folder, screens: int = 3) -> list[GroundingRecord]:
    """Small screens, each with one dark square to point at."""
    rng = random.Random(0)
    records = []
    (folder / "img").mkdir(parents=True, exist_ok=True)
    for i in range(screens):
        image = Image.new("RGB", (192, 128), "white")
        x, y = rng.randrange(0, 160), rng.randrange(0, 96)
        ImageDraw.Draw(image).rectangle([x, y, x + 31, y + 31], fill="black")
        image.save(folder / f"img/{i}.png")
        box = (x / 192, y / 128, (x + 32) / 192, (y + 32) / 128)
        for split in ("train", "val"):
            records.append(GroundingRecord(image=f"img/{i}.png", instruction="the black square", box=box,
                                           platform="desktop", element="icon", source="test:squares", split=split))
    write_dataset(folder / "data.jsonl", records)
    return read_dataset(folder / "data.jsonl")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("head")
    records = _dataset(folder)
    base = tiny_checkpoint("dense")
    before = {k: v.clone() for k, v in load_model(base, dtype=torch.float32).state_dict().items()}
    cfg = HeadTrainConfig(steps=60, batch=3, lr=2e-2, warmup=5, proj_dim=32, eval_every=30, checkpoint_every=30)
    path = train_head(base, [r for r in records if r.split == "train"], [r for r in records if r.split == "val"],
                      folder / "out", cfg, log=lambda m: None)
    return dict(folder=folder, base=base, records=records, path=path, before=before, cfg=cfg)


def test_head_training_learns_and_never_touches_the_checkpoint(trained):
    log = [json.loads(line) for line in (trained["folder"] / "out" / "head_train_log.jsonl").read_text().splitlines()]
    assert len(log) == 60 and log[-1]["loss"] < 0.5 * log[0]["loss"]  # the floor: a target spread over several cells
    assert log[-1]["val_accuracy"] == 1.0  # the val records are the train screens: memorized
    assert trained["path"].name == HEAD_FILE and trained["path"].stat().st_size < 2**20
    after = load_model(trained["base"], dtype=torch.float32).state_dict()
    assert all(torch.equal(after[k], v) for k, v in trained["before"].items())


def test_the_local_grounder_points_with_the_head_it_was_given(trained):
    grounder = make_grounder(f"local:{trained['base']},head={trained['path']},threshold=0")
    assert isinstance(grounder, CheckpointHeadGrounder) and grounder.name.endswith("+head")
    for r in trained["records"]:  # the prompt at inference is the prompt of training
        with Image.open(r.image_path) as im:
            result = grounder.ground(im.convert("RGB"), r.instruction)
        assert result.found and r.contains(result.point), (r.box, result.point)


def test_without_a_head_file_the_local_grounder_uses_tool_calls(trained, tmp_path):
    assert isinstance(make_grounder(f"local:{trained['base']}"), PolicyGrounder)
    with pytest.raises(FileNotFoundError, match="no grounding head file"):
        make_grounder(f"local:{trained['base']},head={tmp_path / 'missing.safetensors'}")


def test_resume_continues_and_the_command_line_trains_a_head(trained, tmp_path, capsys):
    data = trained["folder"] / "data.jsonl"
    args = ["train-grounding", "--base", str(trained["base"]), "--data", str(data), "--out", str(tmp_path / "h"),
            "--eval-every", "5"]
    assert main([*args, "--steps", "5"]) == 0
    assert main([*args, "--steps", "8", "--resume"]) == 0
    steps = [json.loads(line)["step"] for line in (tmp_path / "h" / "head_train_log.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 9))  # the resumed run went on from step 5
    assert f"local:{trained['base']},head=" in capsys.readouterr().out
    assert main(["train-grounding", "--base", str(tmp_path), "--data", str(data), "--out", str(tmp_path / "x")]) == 2
    assert "no Qwen3.5 checkpoint" in capsys.readouterr().err
