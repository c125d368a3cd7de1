"""Video Q&A: the prompt each backend receives, the `ask` API and the `video-qa` CLI."""

from __future__ import annotations

import base64
import io
import json
import math
import re

import av
import numpy as np
import pytest
from PIL import Image

import video_fixtures as vf
from fake_openai_server import FakeOpenAIServer
from vlagent.policy.errors import BackendAuthError
from vlagent.video import sample_frames
from vlagent.video.cli import main as cli_main
from vlagent.video.qa import (
    LocalVideoBackend,
    OpenAIVideoBackend,
    VideoBackendError,
    ask,
    build_local_messages,
    format_timestamp,
)

SMALL = dict(max_pixels=160 * 128)
TIME = re.compile(r"^<(\d+\.\d) seconds>$")


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> vf.MadeVideo:
    # 10 fps, keyframe every 10 frames: irregular frame times make wrong timestamps visible.
    return vf.make_vfr_mp4(str(tmp_path_factory.mktemp("qa") / "clip.mp4"), width=96, height=64)


def jpeg_index(url: str) -> int:
    header, _, payload = url.partition(",")
    assert header == "data:image/jpeg;base64"
    image = Image.open(io.BytesIO(base64.b64decode(payload)))
    assert image.format == "JPEG"
    return vf.read_index(np.asarray(image.convert("RGB")))


def test_format_timestamp_is_qwen_style():
    assert format_timestamp(12.46) == "<12.5 seconds>"
    assert format_timestamp(0) == "<0.0 seconds>"
    assert format_timestamp(3600.04) == "<3600.0 seconds>"


def test_api_request_has_each_timestamp_before_its_frame(video):
    question = "What number is shown in the middle of the clip?"
    with FakeOpenAIServer(["It shows 42."], require_tools=False) as server:
        backend = OpenAIVideoBackend("fake-model", base_url=server.base_url, max_retries=0)
        result = ask(video.path, question, backend=backend, num_frames=7, **SMALL)
    assert not server.problems
    assert result.answer == "It shows 42."
    assert result.frames_used == 7 and len(result.timestamps) == 7
    assert set(result.timings) == {"sample_s", "answer_s", "total_s"}
    (request,) = server.requests
    (message,) = request["messages"]
    assert message["role"] == "user"
    parts = message["content"]
    assert len(parts) == 2 * 7 + 1
    assert parts[-1] == {"type": "text", "text": question}
    times = []
    for i in range(7):
        text, image = parts[2 * i], parts[2 * i + 1]
        assert text["type"] == "text" and TIME.match(text["text"]), text
        assert image["type"] == "image_url"
        t = float(TIME.match(text["text"]).group(1))
        times.append(t)
        assert t == pytest.approx(result.timestamps[i], abs=0.051)
        # The image after each time marker is the frame on screen at that time.
        assert jpeg_index(image["image_url"]["url"]) == video.index_at(result.timestamps[i])
    assert times == sorted(times) and len(set(times)) == 7


def test_api_errors_become_backend_errors(video):
    with FakeOpenAIServer([], status=401, require_tools=False) as server:
        backend = OpenAIVideoBackend("fake-model", base_url=server.base_url, api_key_env="VLAGENT_TEST_KEY", max_retries=0)
        with pytest.raises(VideoBackendError, match="VLAGENT_TEST_KEY"):
            ask(video.path, "anything?", backend=backend, num_frames=2, **SMALL)
    with FakeOpenAIServer([], fail_first=5, fail_status=500, require_tools=False) as server:
        backend = OpenAIVideoBackend("fake-model", base_url=server.base_url, max_retries=0)
        with pytest.raises(VideoBackendError, match="failed"):
            ask(video.path, "anything?", backend=backend, num_frames=2, **SMALL)


def test_api_backend_shares_the_agent_transport(video):
    """Retries and error messages are ChatClient's: a 500 is retried, a 401 is not and says so clearly."""
    waits: list[float] = []
    with FakeOpenAIServer(["After one retry."], fail_first=1, fail_status=500, require_tools=False) as server:
        backend = OpenAIVideoBackend("fake-model", base_url=server.base_url, sleep=waits.append)
        result = ask(video.path, "anything?", backend=backend, num_frames=2, **SMALL)
    assert result.answer == "After one retry."
    assert server.chat_calls == 2 and len(waits) == 1 and waits[0] > 0  # backoff before the retry
    assert not server.problems

    with FakeOpenAIServer([], api_key="right-key", require_tools=False) as server:
        backend = OpenAIVideoBackend("fake-model", base_url=server.base_url, api_key="wrong-key", sleep=waits.append)
        with pytest.raises(VideoBackendError) as info:
            ask(video.path, "anything?", backend=backend, num_frames=2, **SMALL)
    message = str(info.value)
    assert server.base_url in message and "fake-model" in message and "401" in message and "credentials" in message
    assert server.chat_calls == 1  # never retried
    assert isinstance(info.value.__cause__, BackendAuthError)


def test_api_key_rules_follow_the_agent_policy(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("VLAGENT_API_KEY", raising=False)
    with pytest.raises(VideoBackendError, match="no API key: set OPENAI_API_KEY"):
        OpenAIVideoBackend("m")  # the official API needs a key
    assert OpenAIVideoBackend("m", base_url="http://127.0.0.1:9/v1").client.api_key == "EMPTY"  # a local server does not
    monkeypatch.setenv("VLAGENT_API_KEY", "sk-fallback")
    assert OpenAIVideoBackend("m").client.api_key == "sk-fallback"


def test_ask_rejects_an_empty_question(video):
    with pytest.raises(ValueError, match="question"):
        ask(video.path, "  ", backend=OpenAIVideoBackend("m", base_url="http://127.0.0.1:9/v1"))


def test_ask_takes_the_answering_model_as_policy(video):
    """`vlagent.video.ask(path, question, policy=...)`, as documented; exactly one of backend/policy."""
    from vlagent import video as video_api

    class Recorder:
        def answer(self, sample, question):
            self.seen = (len(sample), question)
            return f"{len(sample)} frames", {}

    policy = Recorder()
    result = video_api.ask(video.path, "How many?", policy=policy, num_frames=4, **SMALL)
    assert result.answer == "4 frames" and policy.seen == (4, "How many?")
    with pytest.raises(ValueError, match="exactly once"):
        ask(video.path, "Q?", backend=policy, policy=policy)
    with pytest.raises(ValueError, match="exactly once"):
        ask(video.path, "Q?")
    with pytest.raises(ValueError, match="cannot answer"):
        ask(video.path, "Q?", policy=object())


# ---------------------------------------------------------------------------- CLI


def test_cli_json_output(video, capsys):
    with FakeOpenAIServer(["A counter."], require_tools=False) as server:
        rc = cli_main([
            "video-qa", video.path, "What is shown?", "--api-base", server.base_url, "--model", "fake-model",
            "--num-frames", "4", "--max-pixels", str(160 * 128), "--json", "--start", "1", "--end", "5",
        ])
    out = capsys.readouterr().out
    assert rc == 0, out
    data = json.loads(out)
    assert data["answer"] == "A counter."
    assert data["frames_used"] == 4 and len(data["timestamps"]) == 4
    assert all(0.9 <= t < 5 for t in data["timestamps"])
    assert {"sample_s", "answer_s", "total_s"} <= set(data["timings"])
    parts = server.requests[0]["messages"][0]["content"]
    assert [p["text"] for p in parts[:-1:2]] == [format_timestamp(t) for t in data["timestamps"]]


def test_main_cli_video_qa_with_the_documented_flags(video, capsys):
    """`vlagent video-qa VIDEO "Q" --fps --max-frames --start --end --mode --api-base --model --json` via vlagent.cli.main."""
    from vlagent.cli import main as vlagent_main

    duration = video.times[-1]
    start, end = 1.0, duration - 1.0
    with av.open(video.path) as container:  # keyframe times, read independently of the sampler
        stream = container.streams.video[0]
        keys = [float((p.pts - (stream.start_time or 0)) * stream.time_base)
                for p in container.demux(stream) if p.pts is not None and p.is_keyframe]
    for mode in ("exact", "keyframe"):
        with FakeOpenAIServer([f"answer in {mode} mode"], require_tools=False) as server:
            rc = vlagent_main([
                "video-qa", video.path, "What is shown?", "--fps", "1", "--max-frames", "6",
                "--start", str(start), "--end", str(end), "--mode", mode,
                "--api-base", server.base_url, "--model", "fake-model", "--json",
            ])
        out = capsys.readouterr().out
        assert rc == 0, out
        assert not server.problems
        data = json.loads(out)
        assert data["answer"] == f"answer in {mode} mode"
        assert {"sample_s", "answer_s", "total_s"} <= set(data["timings"])
        times = data["timestamps"]
        assert len(times) == data["frames_used"] and times == sorted(times)
        # --fps 1 over the range gives more than 6 frames: --max-frames caps it.
        assert data["plan"]["num_frames"] == data["frames_used"]
        if mode == "exact":
            assert data["frames_used"] == 6
            assert all(start - 0.2 <= t < end for t in times)  # the frame on screen at `start` may begin before it
        else:
            assert 1 <= data["frames_used"] <= 6
            assert all(start <= t < end and min(abs(t - k) for k in keys) < 1e-6 for t in times)
        # Each image sent is the frame shown at the timestamp written before it.
        parts = server.requests[0]["messages"][0]["content"]
        assert [p["text"] for p in parts[:-1:2]] == [format_timestamp(t) for t in times]
        assert [jpeg_index(p["image_url"]["url"]) for p in parts[1:-1:2]] == [video.index_at(t) for t in times]


def test_cli_exit_codes(video, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("VLAGENT_MODEL", raising=False)
    monkeypatch.delenv("VLAGENT_API_BASE", raising=False)
    assert cli_main(["video-qa", video.path, "Q?"]) == 2  # no model
    assert cli_main(["video-qa", video.path, "Q?", "--model", "m", "--fps", "1", "--num-frames", "3"]) == 2
    served = ["--api-base", "http://127.0.0.1:9/v1", "--model", "m"]
    assert cli_main(["video-qa", video.path, "Q?", *served, "--start", "2", "--end", "1"]) == 2  # not a bad video
    assert cli_main(["video-qa", video.path, "Q?", *served, "--start", "-1"]) == 2
    assert cli_main(["video-qa", video.path, "Q?", "--model", str(tmp_path / "no-such-folder")]) == 2  # not the backend
    assert "no such checkpoint folder" in capsys.readouterr().err
    missing = str(tmp_path / "missing.mp4")
    assert cli_main(["video-qa", missing, "Q?", "--api-base", "http://127.0.0.1:9/v1", "--model", "m"]) == 3
    assert cli_main(["video-qa", video.path, "Q?", "--api-base", "http://127.0.0.1:9/v1", "--model", "m", "--start", "999"]) == 3
    with FakeOpenAIServer([], status=404, require_tools=False) as server:
        rc = cli_main(["video-qa", video.path, "Q?", "--api-base", server.base_url, "--model", "fake-model", "--num-frames", "2"])
    assert rc == 4
    err = capsys.readouterr().err
    assert "not found" in err and "backend error" in err


def test_a_still_image_is_a_bad_video_said_once(tmp_path):
    """A PNG given as the video: exit 3 with one line saying no frame decodes, not a Python warning (with its
    source line) before it. A subprocess: pytest would catch the warning itself."""
    import subprocess
    import sys

    still = tmp_path / "screen.png"
    Image.new("RGB", (64, 48), "white").save(still)
    done = subprocess.run([sys.executable, "-m", "vlagent.cli", "video-qa", str(still), "Q?", "--api-base",
                           "http://127.0.0.1:9/v1", "--model", "m"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 3 and "could be decoded" in done.stderr
    assert "Warning" not in done.stderr and "sample_frames(" not in done.stderr, done.stderr


def test_cli_reads_server_and_model_from_the_environment(video, capsys, monkeypatch):
    with FakeOpenAIServer(["From the environment."], require_tools=False, api_key="sk-video") as server:
        monkeypatch.setenv("VLAGENT_API_BASE", server.base_url)
        monkeypatch.setenv("VLAGENT_MODEL", "fake-model")
        monkeypatch.delenv("OPENAI_API_KEY", raising=False)
        monkeypatch.setenv("VLAGENT_API_KEY", "sk-video")
        rc = cli_main(["video-qa", video.path, "Q?", "--num-frames", "2", "--max-pixels", str(64 * 64)])
    assert rc == 0
    assert capsys.readouterr().out.strip() == "From the environment."


def test_register_adds_the_subcommand():
    import argparse

    from vlagent.video.cli import register, run_video_qa

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    register(sub)
    args = parser.parse_args(["video-qa", "v.mp4", "what?", "--mode", "keyframe", "--max-frames", "64", "--json"])
    assert args.func is run_video_qa and args.mode == "keyframe" and args.max_frames == 64 and args.json


# ---------------------------------------------------------------------------- local engine


def _tiny_processor():
    from tiny_checkpoints import tiny_checkpoint

    from vlagent.model.processor import Processor

    return Processor.from_pretrained(tiny_checkpoint("dense")), tiny_checkpoint("dense")


def test_local_prompt_puts_each_temporal_patch_after_its_timestamp(video):
    processor, path = _tiny_processor()
    sample = sample_frames(video.path, num_frames=7, **SMALL)
    backend = LocalVideoBackend(path, processor=processor)
    inputs = processor.apply_chat_template(backend.build_messages(sample, "What happens?"))
    text = processor.decode(inputs["input_ids"][0], skip_special_tokens=False)
    found = re.findall(r"<(\d+\.\d) seconds><\|vision_start\|>((?:<\|video_pad\|>)+)<\|vision_end\|>", text)
    patches = math.ceil(len(sample) / 2)
    assert len(found) == patches
    ts = list(sample.timestamps) + [sample.timestamps[-1]]  # odd count: last frame repeated
    expected = [f"{(ts[2 * i] + ts[2 * i + 1]) / 2:.1f}" for i in range(patches)]
    assert [t for t, _ in found] == expected
    grid = inputs["video_grid_thw"][0].tolist()
    assert grid[0] == patches
    assert all(len(pads) // len("<|video_pad|>") == grid[1] * grid[2] // 4 for _, pads in found)
    assert text.index("What happens?") > text.rindex("<|vision_end|>")
    messages = build_local_messages(sample, "What happens?")
    assert messages[0]["content"][0]["timestamps"] == sample.timestamps


def test_local_backend_answers_with_the_tiny_engine(video):
    processor, path = _tiny_processor()
    backend = LocalVideoBackend(path, processor=processor, max_new_tokens=3)
    result = ask(video.path, "What happens?", backend=backend, num_frames=4, max_pixels=64 * 64)
    assert isinstance(result.answer, str)
    assert result.frames_used == 4
    # 2 temporal patches of the processor's grid, all in the prompt.
    small = sample_frames(video.path, num_frames=4, max_pixels=64 * 64)
    inputs = backend.processor.apply_chat_template(backend.build_messages(small, "What happens?"))
    t, h, w = inputs["video_grid_thw"][0].tolist()
    assert t == 2 and result.usage["video_tokens"] == t * h * w // 4
    assert 0 <= result.usage["completion_tokens"] <= 3


def test_cli_with_the_local_engine(video, capsys):
    _, path = _tiny_processor()
    rc = cli_main([
        "video-qa", video.path, "What happens?", "--model", str(path), "--num-frames", "2",
        "--max-pixels", str(64 * 64), "--max-new-tokens", "2", "--json",
    ])
    out = capsys.readouterr().out
    assert rc == 0, out
    data = json.loads(out)
    assert data["frames_used"] == 2 and data["usage"]["video_tokens"] > 0


# ---------------------------------------------------------------------------- a run's own video


STEP_COLORS = [(200, 40, 40), (40, 160, 60), (40, 70, 200), (220, 200, 40), (150, 60, 170)]


def _make_run(run_dir) -> None:
    """A run folder with five screenshots; step 1 clicks at (0.75, 0.5), step 3 is a portrait screenshot,
    one more step's screenshot is missing and another's unreadable."""
    from vlagent.actions import Action
    from vlagent.recorder import RunRecorder

    with RunRecorder(run_dir) as rec:
        rec.write_header(task="make a video", policy="scripted", env="test")
        for i, color in enumerate(STEP_COLORS):
            size = (200, 320) if i == 3 else (320, 200)
            name = rec.save_screenshot(i, Image.new("RGB", size, color))
            actions = [Action("click", point=(0.75, 0.5)).to_dict()] if i == 1 else [Action("wait", seconds=1).to_dict()]
            rec.write_step({"index": i, "screenshot": name, "actions": actions})
        rec.write_step({"index": 5, "screenshot": "step-005.png", "actions": []})  # never written
        (run_dir / "step-006.png").write_bytes(b"\x89PNG\r\n\x1a\n cut short")  # unreadable
        rec.write_step({"index": 6, "screenshot": "step-006.png", "actions": []})
        rec.write_result(status="done", steps=7)


def test_exported_run_video_is_a_valid_video_qa_input(tmp_path, capsys):
    from vlagent.cli import main as vlagent_main
    from vlagent.run_export import export_run_video
    from vlagent.video import probe

    _make_run(tmp_path / "run")
    out = export_run_video(tmp_path / "run", tmp_path / "run.mp4", seconds_per_step=0.5)
    assert out == tmp_path / "run.mp4" and not (tmp_path / "run.mp4.part").exists()
    info = probe(out)
    assert info.codec == "h264" and (info.width, info.height) == (320, 200)
    assert info.duration == pytest.approx(len(STEP_COLORS) * 0.5) and info.source_fps == pytest.approx(2.0)

    sample = sample_frames(out, num_frames=len(STEP_COLORS), max_pixels=320 * 224)
    assert sample.timestamps == pytest.approx([0.5 * i for i in range(len(STEP_COLORS))])
    for i, frame in enumerate(sample.frames):
        h, w, _ = frame.shape
        corner = frame[: h // 8, w // 2 - w // 16 : w // 2 + w // 16].reshape(-1, 3).mean(axis=0)
        assert np.abs(corner - STEP_COLORS[i]).max() < 20, (i, corner)
        if i == 3:  # portrait screenshot, letterboxed: black sides, the colour in the middle
            assert frame[:, : w // 8].mean() < 20 and frame[:, -w // 8 :].mean() < 20
            continue
        near_click = frame[h // 2 - h // 10 : h // 2 + h // 10, int(0.75 * w) - w // 10 : int(0.75 * w) + w // 10]
        drawn = np.abs(near_click.astype(int) - STEP_COLORS[i]).max(axis=-1) > 60
        assert drawn.mean() > 0.05 if i == 1 else drawn.mean() < 0.01, (i, drawn.mean())

    with FakeOpenAIServer(["Step 2 clicks on the right."], require_tools=False) as server:
        rc = vlagent_main(["video-qa", str(out), "Which step clicks?", "--api-base", server.base_url,
                           "--model", "fake-model", "--num-frames", "5", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert rc == 0 and data["frames_used"] == len(STEP_COLORS)
    images = [p["image_url"]["url"] for p in server.requests[0]["messages"][0]["content"] if p["type"] == "image_url"]
    for url, color in zip(images, STEP_COLORS):
        img = np.asarray(Image.open(io.BytesIO(base64.b64decode(url.partition(",")[2]))).convert("RGB"))
        assert np.abs(img[: img.shape[0] // 8, img.shape[1] // 2].mean(axis=0) - color).max() < 25


def test_run_video_export_errors(tmp_path):
    from vlagent.recorder import RunRecorder
    from vlagent.run_export import export_run_video

    with pytest.raises(FileNotFoundError, match="not a run folder"):
        export_run_video(tmp_path, tmp_path / "x.mp4")
    with RunRecorder(tmp_path / "empty") as rec:
        rec.write_header(task="t")
        rec.write_step({"index": 0, "screenshot": None, "actions": []})
    with pytest.raises(ValueError, match="no step .* has a readable screenshot"):
        export_run_video(tmp_path / "empty", tmp_path / "x.mp4")
    _make_run(tmp_path / "run")
    with pytest.raises(ValueError, match="seconds_per_step"):
        export_run_video(tmp_path / "run", tmp_path / "x.mp4", seconds_per_step=0)
    assert not (tmp_path / "x.mp4").exists()
