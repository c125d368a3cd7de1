"""Fault injection, files: damaged videos, checkpoints and run folders handed to the code that reads them.

- Videos made with PyAV (video_fixtures.py: every frame shows its own index), in four containers, cut
  at seeded random offsets and with random bytes overwritten, given to `sample_frames` (exact and
  keyframe modes) and a few to `vlagent video-qa`: a VideoError (exit 3, "bad video") or frames; a
  truncated file's frames must each be the frame on screen at its timestamp. Never another exception
  and never a hang (each call runs under a deadline). Overwritten bytes inside the container's index
  can shift timestamps undetectably (formats hold no checksums): those frames are counted, not failed.
- Checkpoints (a tiny Qwen3.5 in HF format): model.safetensors cut short anywhere and with bytes of its
  header flipped, given to `load_model`: CheckpointError naming the file, never a MemoryError from a
  header length gone huge; through `vlagent ground --model` exit 4 with the message.
- Run folders: a recorded run's trajectory cut short, lines replaced by garbage or by records of the
  wrong shape, screenshots damaged, given to `vlagent report` and `vlagent replay`: exit 0 with a report
  that shows every readable step, or exit 2 naming the problem; nothing replayed from a folder whose
  steps cannot be read.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import video_fixtures as vf
from fake_openai_server import FakeOpenAIServer
from fault_checks import SECRET, check_run_folder, leaks, record_fault
from vlagent.actions import Action
from vlagent.agent import Agent
from vlagent.cli import EXIT_OK, EXIT_POLICY, EXIT_USAGE, main
from vlagent.environments.base import BaseEnvironment, Observation
from vlagent.policy.scripted import ScriptedPolicy
from vlagent.video.sampling import VideoDecodeWarning, VideoError, sample_frames

SEED = int(os.environ.get("VLAGENT_FAULT_SEED", "1234"))
# Per container; benchmarks/reliability.py tries more through these variables.
VIDEO_CUTS = int(os.environ.get("VLAGENT_FAULT_VIDEO_CUTS", "25"))
VIDEO_CORRUPTIONS = int(os.environ.get("VLAGENT_FAULT_VIDEO_CORRUPTIONS", "15"))


@contextlib.contextmanager
def deadline(seconds: float, what: str):
    """Fail (instead of hanging the suite) when the block runs past `seconds` (main thread, Unix)."""

    def expired(signum, frame):
        raise TimeoutError(f"{what} did not finish within {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# --------------------------------------------------------------------------- videos


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, vf.MadeVideo]:
    d = tmp_path_factory.mktemp("videos")
    return {
        "mp4": vf.make_h264_mp4(str(d / "h264.mp4")),
        "webm": vf.make_vp9_webm(str(d / "vp9.webm")),
        "ts": vf.make_h264_ts(str(d / "h264.ts")),
        "avi": vf.make_mjpeg_avi(str(d / "mjpeg.avi")),
    }


def damaged_videos(video: vf.MadeVideo, folder: Path, rng: random.Random, cuts: int, corruptions: int):
    """(kind, path) of copies of `video` cut short at random offsets, or with random bytes overwritten."""
    data = Path(video.path).read_bytes()
    suffix = Path(video.path).suffix
    for i in range(cuts):
        path = folder / f"cut{i}{suffix}"
        path.write_bytes(data[: rng.randrange(1, len(data))])
        yield "truncated", path
    for i in range(corruptions):
        blob = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            start, size = rng.randrange(len(blob)), rng.choice((1, 4, 64, 512))
            blob[start : start + size] = bytes(rng.randrange(256) for _ in range(len(blob[start : start + size])))
        path = folder / f"bad{i}{suffix}"
        path.write_bytes(bytes(blob))
        yield "corrupted", path


def sample_damaged(video: vf.MadeVideo, path: Path, mode: str) -> dict:
    """sample_frames on a damaged copy: 'error' (VideoError, with its message) or the frames' verdicts."""
    try:
        with deadline(20, f"sample_frames({path.name}, mode={mode})"), warnings.catch_warnings():
            warnings.simplefilter("ignore", VideoDecodeWarning)
            sample = sample_frames(path, num_frames=8, mode=mode)
    except VideoError as exc:
        return {"outcome": "error", "message": str(exc)}
    assert sample.frames.dtype == np.uint8 and sample.frames.ndim == 4 and sample.frames.shape[-1] == 3
    assert len(sample.frames) == len(sample.timestamps) > 0
    assert sample.timestamps == sorted(sample.timestamps)
    right = wrong = 0
    for frame, t in zip(sample.frames, sample.timestamps):
        try:
            ok = vf.read_index(frame) == video.index_at(t)
        except ValueError:  # not even a frame of the video (concealed garbage)
            ok = False
        right, wrong = right + ok, wrong + (not ok)
    return {"outcome": "frames", "right": right, "wrong": wrong}


@pytest.mark.parametrize("container", ["mp4", "webm", "ts", "avi"])
def test_damaged_videos_give_a_clear_error_or_correct_frames(container, videos, tmp_path, record_property):
    video = videos[container]
    rng = random.Random(f"{SEED}-{container}")
    tally = {"truncated": {"error": 0, "frames": 0, "wrong": 0}, "corrupted": {"error": 0, "frames": 0, "wrong": 0}}
    for kind, path in damaged_videos(video, tmp_path, rng, VIDEO_CUTS, VIDEO_CORRUPTIONS):
        for mode in ("exact", "keyframe"):
            got = sample_damaged(video, path, mode)  # any exception but VideoError fails here
            if got["outcome"] == "error":
                assert str(path) in got["message"] or path.name in got["message"], got["message"]
                tally[kind]["error"] += 1
                continue
            tally[kind]["frames"] += 1
            tally[kind]["wrong"] += got["wrong"] > 0
            if kind == "truncated":  # what a cut file gives is what the whole file holds there
                assert got["wrong"] == 0, f"{path.name} ({mode}): {got}"
    for kind, n in (("truncated", VIDEO_CUTS), ("corrupted", VIDEO_CORRUPTIONS)):
        record_fault(record_property, "files", f"video {container} {kind}", transient=False, survived=True,
                     tried=2 * n, clear_errors=tally[kind]["error"], sampled=tally[kind]["frames"],
                     sampled_with_wrong_frames=tally[kind]["wrong"])


def test_a_corrupt_metadata_tag_does_not_hide_the_frames(videos, tmp_path):
    # It did: PyAV decodes tags as strict UTF-8 when opening, so av.open raised UnicodeDecodeError.
    video = videos["mp4"]
    data = Path(video.path).read_bytes()
    at = data.index(b"Lavf")  # the muxer's "encoder" tag
    path = tmp_path / "tag.mp4"
    path.write_bytes(data[:at] + b"\xc0\xc1" + data[at + 2 :])
    for mode in ("exact", "keyframe"):
        got = sample_damaged(video, path, mode)
        assert got["outcome"] == "frames" and got["wrong"] == 0 and got["right"] > 0, got


def test_a_frame_cut_short_is_not_returned_concealed(videos, tmp_path):
    # It was: the demuxer flags the last packet of a cut file corrupt, but its frame, decoded with the
    # missing part concealed, is not flagged, and came back as the frame at its time (keyframe mode).
    import av

    video = videos["avi"]
    with av.open(video.path) as container:
        packets = [(p.pts, p.pos, p.size) for p in container.demux(video=0) if p.size]
    pts, pos, size = packets[len(packets) // 2]
    seen_cut_frame = 0
    for share in (0.1, 0.5, 0.8, 0.95):
        path = tmp_path / f"cut{share}.avi"
        path.write_bytes(Path(video.path).read_bytes()[: pos + int(size * share)])
        for mode in ("exact", "keyframe"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", VideoDecodeWarning)
                sample = sample_frames(path, fps=10, mode=mode)  # every frame the probe found
            assert [video.index_at(t) for t in sample.timestamps] == [vf.read_index(f) for f in sample.frames]
            assert video.index_at(sample.timestamps[-1]) < pts
            seen_cut_frame += sample.stats["corrupt_frames"]
    assert seen_cut_frame > 0  # the cut frame was probed, decoded and refused


def test_video_qa_on_damaged_videos_exits_3_or_answers(videos, tmp_path, capsys, monkeypatch, record_property):
    for name in ("VLAGENT_API_BASE", "VLAGENT_MODEL"):
        monkeypatch.delenv(name, raising=False)
    rng = random.Random(SEED)
    codes = []
    with FakeOpenAIServer(["It shows numbered frames."] * 8, require_tools=False) as server:
        for kind, path in damaged_videos(videos["mp4"], tmp_path, rng, 2, 2):
            code = main(["video-qa", str(path), "what is shown?", "--num-frames", "4", "--api-base", server.base_url,
                         "--model", "fake-model", "--no-progress"])
            out, err = capsys.readouterr()
            assert code in (EXIT_OK, 3), (code, out, err)
            assert "Traceback" not in err
            if code == 3:
                assert "bad video:" in err and path.name in "".join(err.split())
            else:
                assert "numbered frames" in out
            codes.append(code)
    assert server.problems == []
    record_fault(record_property, "files", "video-qa on damaged videos", transient=False, survived=True, tried=len(codes),
                 exit_codes=codes)


# --------------------------------------------------------------------------- checkpoints


@pytest.fixture(scope="module")
def checkpoint():
    from tiny_checkpoints import tiny_checkpoint

    return tiny_checkpoint("dense")


def _copy(folder: Path, to: Path) -> Path:
    to.mkdir()
    for f in folder.iterdir():
        if f.is_file():
            shutil.copy(f, to / f.name)
    return to


def damaged_checkpoints(data: bytes, rng: random.Random):
    """(what, bytes) of model.safetensors cut short and with header bytes flipped."""
    header_len = int.from_bytes(data[:8], "little")
    cuts = [0, 4, 8, 9, header_len // 2, 8 + header_len - 1, 8 + header_len, 8 + header_len + 1, len(data) - 1]
    cuts += [rng.randrange(len(data)) for _ in range(8)]
    for cut in cuts:
        yield f"cut at byte {cut}", data[:cut]
    for i in range(8):  # each byte of the header length, including the high ones (petabytes)
        blob = bytearray(data)
        blob[i] ^= 0xFF
        yield f"length byte {i} flipped", bytes(blob)
    for _ in range(20):  # bytes of the JSON header
        blob = bytearray(data)
        pos = rng.randrange(8, 8 + header_len)
        blob[pos] = rng.choice([b for b in range(256) if b != blob[pos]])
        yield f"header byte {pos} changed", bytes(blob)


def test_damaged_checkpoints_are_a_checkpoint_error(checkpoint, tmp_path, record_property):
    from vlagent.model.loader import CheckpointError, load_model

    folder = _copy(checkpoint, tmp_path / "ckpt")
    data = (checkpoint / "model.safetensors").read_bytes()
    loaded = refused = 0
    tried = 0
    for what, blob in damaged_checkpoints(data, random.Random(SEED)):
        (folder / "model.safetensors").write_bytes(blob)
        tried += 1
        try:
            with deadline(30, f"load_model ({what})"):
                load_model(folder)
            loaded += 1  # a changed byte that still makes a consistent header (e.g. a digit of a float)
        except CheckpointError as exc:
            assert "model.safetensors" in str(exc) or str(folder) in str(exc), (what, exc)
            refused += 1
    assert refused >= tried - 5
    record_fault(record_property, "files", "checkpoint truncated / header bytes flipped", transient=False,
                 survived=True, tried=tried, clear_errors=refused, loaded=loaded)


def test_a_damaged_checkpoint_through_the_cli_exits_4(checkpoint, tmp_path, capsys, record_property):
    folder = _copy(checkpoint, tmp_path / "ckpt")
    data = (checkpoint / "model.safetensors").read_bytes()
    blob = bytearray(data)
    blob[6] ^= 0xFF  # the header claims 2^48 bytes more
    (folder / "model.safetensors").write_bytes(bytes(blob))
    image = tmp_path / "screen.png"
    Image.new("RGB", (64, 48), "white").save(image)
    code = main(["ground", str(image), "the Save button", "--model", str(folder)])
    out, err = capsys.readouterr()
    assert code == EXIT_POLICY, err
    squashed = "".join(err.split())
    assert "cannotloadthelocalmodel" in squashed and "CheckpointError" in squashed and "truncatedorcorrupt" in squashed
    record_fault(record_property, "files", "checkpoint through vlagent ground", transient=False, survived=True,
                 exit_code=code)


# --------------------------------------------------------------------------- run folders


class Screen(BaseEnvironment):
    name = "screen"

    def __init__(self) -> None:
        self.executed: list[Action] = []

    def observe(self) -> Observation:
        img = Image.new("RGB", (160, 100), (230, 235, 240 - 20 * len(self.executed)))
        return Observation(image=img, screen_size=(160, 100))

    def execute(self, action: Action) -> None:
        self.executed.append(action)


@pytest.fixture(scope="module")
def recorded_run(tmp_path_factory) -> Path:
    """A finished run of four steps (click, type the secret, scroll, answer) with a report."""
    run_dir = tmp_path_factory.mktemp("recorded") / "run"
    script = [Action("click", point=(0.2, 0.3)), Action("type", text="{{password}}"),
              Action("scroll", point=(0.5, 0.5), direction="down", amount=2), Action("answer", text="ok")]
    result = Agent(ScriptedPolicy(script), Screen(), secrets={"password": SECRET}, run_dir=run_dir).run("fill in")
    assert result.status == "answered" and result.report
    return run_dir


def _lines(run_dir: Path) -> list[str]:
    return (run_dir / "trajectory.jsonl").read_text(encoding="utf-8").splitlines()


def _with_line(n: int, text: str):
    def apply(run_dir: Path) -> None:
        lines = _lines(run_dir)
        lines[n] = text
        (run_dir / "trajectory.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return apply


def _with_step_field(n: int, **fields):
    def apply(run_dir: Path) -> None:
        lines = _lines(run_dir)
        record = json.loads(lines[n])
        record.update(fields)
        lines[n] = json.dumps(record)
        (run_dir / "trajectory.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return apply


def _write(name: str, data: bytes):
    def apply(run_dir: Path) -> None:
        (run_dir / name).write_bytes(data)
    return apply


def _replace_with_folder(name: str):
    def apply(run_dir: Path) -> None:
        (run_dir / name).unlink(missing_ok=True)
        (run_dir / name).mkdir()
    return apply


FOLDER_FAULTS = {
    "garbage line in the middle": _with_line(2, "}{ not json"),
    "a JSON list as a line": _with_line(2, "[1, 2, 3]"),
    "a JSON string as a line": _with_line(2, '"step"'),
    "a record without a type": _with_line(2, '{"index": 1}'),
    "an unknown record type": _with_line(2, '{"type": "launch-missiles"}'),
    "a step with only a type": _with_line(2, '{"type": "step"}'),
    "actions as a string": _with_step_field(2, actions="click"),
    "actions of the wrong shape": _with_step_field(2, actions=[{"kind": "click", "point": "middle"}, 7, None]),
    "outcomes as a dict": _with_step_field(2, outcomes={"status": "executed"}),
    "outcomes of the wrong shape": _with_step_field(2, outcomes=["executed", None]),
    "index as text": _with_step_field(2, index="two"),
    "screen size as text": _with_step_field(2, screen_size="big", image_size="small"),
    "image size of zero": _with_step_field(2, image_size=[0, 0]),
    "timings as a list": _with_step_field(2, timings=[1, 2], policy_timings="fast", usage=[1]),
    "grounding of the wrong shape": _with_step_field(2, grounding=[{"found": True, "point": "here"}, 3]),
    "a screenshot path outside the folder": _with_step_field(2, screenshot="../../../../../../etc/hostname"),
    "a screenshot name that is a number": _with_step_field(2, screenshot=7),
    "header of the wrong shape": _with_line(0, '{"type": "run", "task": 42, "settings": "none"}'),
    "result of the wrong shape": _with_line(-1, '{"type": "result", "status": null, "steps": "four", "elapsed_s": "x"}'),
    "invalid UTF-8": lambda d: (d / "trajectory.jsonl").write_bytes(b"\xff\xfe" + (d / "trajectory.jsonl").read_bytes()),
    "empty trajectory": _write("trajectory.jsonl", b""),
    "screenshot cut short": lambda d: _write("step-001.png", (d / "step-001.png").read_bytes()[:100])(d),
    "screenshot of garbage": _write("step-001.png", b"\x89PNG garbage" * 10),
    "screenshot of zero bytes": _write("step-000.png", b""),
    "screenshot is a folder": _replace_with_folder("step-002.png"),
    "screenshot missing": lambda d: (d / "step-003.png").unlink(),
    "report.html is a folder": _replace_with_folder("report.html"),
}


def _damaged_copy(recorded_run: Path, to: Path, apply) -> Path:
    shutil.copytree(recorded_run, to)
    apply(to)
    return to


def _report(capsys, run_dir: Path) -> tuple[int, str]:
    code = main(["report", str(run_dir), "--json"])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, err


def _check_reported(run_dir: Path) -> None:
    import base64

    run = check_run_folder(run_dir, result=False, intact=False)
    assert run.report_readable
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    outside = Path("/etc/hostname")
    if outside.is_file() and outside.read_bytes():
        assert base64.b64encode(outside.read_bytes()).decode() not in page, "a file outside the run folder was read"


@pytest.mark.parametrize("fault", list(FOLDER_FAULTS))
def test_vlagent_report_on_a_damaged_run_folder(fault, recorded_run, tmp_path, capsys, record_property):
    run_dir = _damaged_copy(recorded_run, tmp_path / "run", FOLDER_FAULTS[fault])
    with deadline(30, f"vlagent report ({fault})"):
        code, err = _report(capsys, run_dir)
    assert code in (EXIT_OK, EXIT_USAGE), err
    if code == EXIT_OK:
        _check_reported(run_dir)
    else:
        squashed = "".join(err.split())
        assert "error:" in err and "".join(str(run_dir).split()) in squashed, err
        assert any(w in squashed for w in ("unreadabletrajectory", "cannotwritethereport", "notarunfolder")), err
    assert not leaks(run_dir)
    record_fault(record_property, "files", f"report: {fault}", transient=False, survived=True, exit_code=code,
                 run=check_run_folder(run_dir, result=False, intact=False) if code == EXIT_OK else None)


def test_vlagent_report_on_trajectories_cut_at_random_offsets(recorded_run, tmp_path, capsys, record_property):
    data = (recorded_run / "trajectory.jsonl").read_bytes()
    rng = random.Random(SEED)
    cuts = sorted(rng.sample(range(1, len(data)), 15))
    for n, cut in enumerate(cuts):
        run_dir = _damaged_copy(recorded_run, tmp_path / f"cut{n}", _write("trajectory.jsonl", data[:cut]))
        code, err = _report(capsys, run_dir)
        assert code == EXIT_OK, (cut, err)  # a last line cut short is what a crash leaves: still readable
        _check_reported(run_dir)
    record_fault(record_property, "files", "report: trajectory cut at random offsets", transient=False, survived=True,
                 tried=len(cuts))


@pytest.fixture
def display_env(monkeypatch):
    from display_fixtures import _skip_without_binaries
    from vlagent.environments.xserver import start_virtual_display

    _skip_without_binaries()
    with start_virtual_display(320, 200) as d:
        monkeypatch.setenv("DISPLAY", d.name)
        monkeypatch.setenv("XAUTHORITY", d.env["XAUTHORITY"])
        yield d


REPLAY_FAULTS = ["garbage line in the middle", "actions of the wrong shape", "outcomes as a dict",
                 "a step with only a type", "invalid UTF-8", "empty trajectory", "screenshot of garbage",
                 "screenshot is a folder", "header of the wrong shape"]


@pytest.mark.display
def test_vlagent_replay_on_damaged_run_folders(display_env, recorded_run, tmp_path, capsys, record_property):
    codes = {}
    for n, fault in enumerate(REPLAY_FAULTS):
        run_dir = _damaged_copy(recorded_run, tmp_path / f"run{n}", FOLDER_FAULTS[fault])
        before = set(tmp_path.iterdir())
        with deadline(60, f"vlagent replay ({fault})"):
            code = main(["replay", str(run_dir), "--json", "--max-screen-diff", "off"])
        out, err = capsys.readouterr()
        assert "Traceback" not in err
        assert code in (EXIT_OK, 1, EXIT_USAGE, 6), (fault, code, err)
        new = set(tmp_path.iterdir()) - before
        if code == EXIT_USAGE:  # refused before anything ran: no replay folder
            assert new == set(), (fault, new)
            assert "error:" in err and "".join(str(run_dir).split()) in "".join(err.split())
        else:
            result = json.loads(out)
            check_run_folder(Path(result["run_dir"]))
        codes[fault] = code
        assert not leaks(tmp_path)
    record_fault(record_property, "files", "replay of damaged run folders", transient=False, survived=True,
                 tried=len(codes), exit_codes=codes)
