"""The HTML run report and draw_action."""

from __future__ import annotations

import base64
import io
import re

import pytest
from PIL import Image, ImageChops, ImageDraw

from vlagent.actions import Action, ActionParseError
from vlagent.agent import Agent
from vlagent.environments.base import BaseEnvironment, Observation
from vlagent.policy.scripted import ScriptedPolicy
from vlagent.recorder import RunRecorder, load_trajectory
from vlagent.overlay import draw_action
from vlagent.report import build_report, render_report, svg_overlay


class TinyEnv(BaseEnvironment):
    name = "tiny"

    def __init__(self, size=(400, 250)):
        self.size, self.executed = size, []

    def observe(self) -> Observation:
        shade = 200 + 10 * (len(self.executed) % 5)  # every step looks different
        return Observation(image=Image.new("RGB", self.size, (shade, 220, 240)), screen_size=self.size)

    def execute(self, action: Action) -> None:
        self.executed.append(action)


def _run(tmp_path, script, **kw):
    task = kw.pop("task", "demo <task> & co")
    return Agent(ScriptedPolicy(script), TinyEnv(), run_dir=tmp_path / "run", **kw).run(task)


SCRIPT = [
    Action("click", point=(0.412, 0.2)),
    [Action("double_click", point=(0.5, 0.5)), Action("type", text="a<b>&\"c\"")],
    Action("right_click", point=(0.1, 0.9)),
    ActionParseError("no action found", "<img src=x onerror=alert(1)>"),
    [Action("drag", point=(0.1, 0.1), end=(0.9, 0.8)), Action("scroll", direction="down", amount=3)],
    Action("key", keys=("ctrl", "c")),
    Action("answer", text="it is <42>"),
]


def test_report_is_self_contained_with_one_image_per_step(tmp_path):
    result = _run(tmp_path, SCRIPT)
    page = (result.run_dir / "report.html").read_text(encoding="utf-8")
    assert result.steps == 7
    # Self-contained: no external src/href, no http(s) URL anywhere, no <link>/<script src>.
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert "http://" not in page and "https://" not in page and "<link" not in page.lower()
    imgs = re.findall(r'<img [^>]*src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(imgs) == result.steps
    # The inlined images are the recorded screenshots, in order.
    for i, data in enumerate(imgs):
        assert base64.b64decode(data) == (result.run_dir / f"step-{i:03d}.png").read_bytes()
    # each heading names its screenshot, the name replay's messages use ("step 3 of the recording (step-002.png)")
    headings = re.findall(r"<h2>Step (\d+) <span[^>]*>([^<]*)</span>", page)
    assert [(int(n), f"step-{int(n) - 1:03d}.png" in meta) for n, meta in headings] == [(i + 1, True) for i in range(7)]
    for text in ("demo &lt;task&gt; &amp; co", "answered", "it is &lt;42&gt;", "no action found"):
        assert text in page
    # Model text is escaped, never live HTML.
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert 'a&lt;b&gt;&amp;' in page


def test_click_overlay_sits_at_the_normalized_position(tmp_path):
    result = _run(tmp_path, SCRIPT)
    page = (result.run_dir / "report.html").read_text(encoding="utf-8")
    steps = page.split('<section class="step')[1:]
    assert len(steps) == 7
    first = steps[0]
    assert '<svg class="overlay" viewBox="0 0 400 250"' in first
    m = re.search(r'<g class="mk click" data-kind="click" data-x="([\d.]+)%" data-y="([\d.]+)%" transform="translate\(([\d.]+) ([\d.]+)\)"', first)
    assert m, first[:2000]
    assert (float(m.group(1)), float(m.group(2))) == (41.2, 20.0)
    assert (float(m.group(3)), float(m.group(4))) == pytest.approx((0.412 * 400, 0.2 * 250), abs=0.05)
    # Different styles for double / right click, arrows for drag and scroll, labels for type / key.
    assert 'data-kind="double_click"' in steps[1] and "type &#x27;a&lt;b&gt;" in steps[1]
    assert 'data-kind="right_click"' in steps[2] and "stroke-dasharray" in steps[2]
    assert "no screenshot" not in steps[3] and 'class="mk' not in steps[3]  # a failed parse draws nothing
    assert 'data-kind="drag"' in steps[4] and 'marker-end="url(#ah-drag)"' in steps[4]
    assert 'data-direction="down"' in steps[4] and "scroll down ×3" in steps[4]
    assert "key ctrl+c" in steps[5]
    # The raw output is there, collapsible.
    assert "<details><summary>Raw model output" in steps[0]


def test_overlay_percentages_do_not_depend_on_image_size():
    a = [Action("click", point=(0.25, 0.75))]
    small, big = svg_overlay(a, (200, 100)), svg_overlay(a, (2000, 1000))
    for svg, (w, h) in ((small, (200, 100)), (big, (2000, 1000))):
        assert 'data-x="25.00%" data-y="75.00%"' in svg
        assert f"translate({0.25 * w:.1f} {0.75 * h:.1f})" in svg


def test_report_of_an_unfinished_run(tmp_path):
    rec = RunRecorder(tmp_path / "crashed")
    rec.write_header(task="half", policy="p", env="e", started="now", settings={})
    name = rec.save_screenshot(0, Image.new("RGB", (64, 48), "white"))
    rec.write_step({"index": 0, "actions": [{"kind": "click", "point": [0.5, 0.5]}], "outcomes": [], "screenshot": name})
    rec._file.write('{"type": "step", "index": 1, "act')  # killed mid-write
    rec.close()
    header, steps, result = load_trajectory(tmp_path / "crashed")
    assert header["task"] == "half" and len(steps) == 1 and result is None
    page = build_report(tmp_path / "crashed").read_text()
    assert "did not finish" in page and page.count("<img ") == 1


def test_screenshots_are_written_off_the_loop_thread_and_all_flushed_by_close(tmp_path, monkeypatch):
    import threading

    import vlagent.recorder as recorder

    release = threading.Event()
    writer_threads = []
    real_write = recorder.write_png

    def slow_write(path, image):
        writer_threads.append(threading.current_thread())
        release.wait(10)  # the "encoder" is stuck until the test lets it go
        real_write(path, image)

    monkeypatch.setattr(recorder, "write_png", slow_write)
    rec = RunRecorder(tmp_path / "run")
    images = [Image.new("RGB", (40, 30), (i * 60, 10, 200)) for i in range(3)]
    # All three return while the first write is blocked: encoding is not on the caller's path.
    names = [rec.save_screenshot(i, im) for i, im in enumerate(images)]
    assert names == ["step-000.png", "step-001.png", "step-002.png"]
    assert not (tmp_path / "run" / "step-002.png").exists()
    release.set()
    rec.close()  # waits for the queue to drain
    assert writer_threads and all(t is not threading.main_thread() for t in writer_threads)
    for name, image in zip(names, images):
        with Image.open(tmp_path / "run" / name) as saved:
            assert saved.tobytes() == image.tobytes()
    rec.close()  # twice is fine
    with pytest.raises(RuntimeError, match="closed"):
        rec.save_screenshot(3, images[0])


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "P", "1"])
def test_screenshot_png_is_lossless(mode):
    import io

    from vlagent.images import encode_png

    image = Image.new("RGB", (97, 61), (240, 240, 240))
    draw = ImageDraw.Draw(image)
    draw.rectangle((5, 5, 60, 30), fill=(30, 90, 200))
    draw.text((8, 40), "Grüße OK", fill=(0, 0, 0))
    image.putpixel((96, 60), (255, 0, 7))
    image = image.convert(mode)
    with Image.open(io.BytesIO(encode_png(image))) as back:
        back.load()
        assert (back.mode, back.size) == (mode, image.size) and back.tobytes() == image.tobytes()
    # Flat UI colours compress well even without row filters.
    assert len(encode_png(Image.new("RGB", (1920, 1080), (236, 239, 244)))) < 64_000  # of 6.2 MB raw


def test_a_screenshot_that_cannot_be_written_is_named_at_close(tmp_path, monkeypatch):
    import vlagent.recorder as recorder

    real_write = recorder.write_png

    def failing_write(path, image):
        if path.name == "step-001.png":
            raise OSError("No space left on device")
        real_write(path, image)

    monkeypatch.setattr(recorder, "write_png", failing_write)
    rec = RunRecorder(tmp_path / "run")
    for i in range(3):
        rec.save_screenshot(i, Image.new("RGB", (8, 8)))
    with pytest.raises(OSError, match=r"1 screenshot\(s\).*step-001.png: OSError: No space left"):
        rec.close()
    assert (tmp_path / "run" / "step-000.png").is_file() and (tmp_path / "run" / "step-002.png").is_file()


def test_render_report_needs_a_trajectory(tmp_path):
    with pytest.raises(FileNotFoundError, match="no trajectory"):
        render_report(tmp_path)


def test_draw_action_marks_the_point():
    base = Image.new("RGB", (300, 200), "white")
    out = draw_action(base, Action("click", point=(0.5, 0.25)))
    assert out is not base and out.size == base.size and base.getpixel((150, 50)) == (255, 255, 255)
    bbox = ImageChops.difference(out, base).getbbox()
    assert bbox is not None
    cx, cy = (bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2
    assert abs(cx - 150) <= 2 and abs(cy - 50) <= 2
    # Other kinds draw something too, including on RGBA / grayscale inputs.
    for action in (
        Action("drag", point=(0.1, 0.1), end=(0.9, 0.9)),
        Action("scroll", direction="up"),
        Action("type", text="hello"),
        Action("right_click", point=(0.2, 0.8)),
    ):
        for mode in ("RGB", "RGBA", "L"):
            img = Image.new(mode, (300, 200), "white" if mode != "RGBA" else (255, 255, 255, 255))
            drawn = draw_action(img, action)
            assert ImageChops.difference(drawn, img.convert("RGB")).getbbox() is not None, (action, mode)
    buf = io.BytesIO()
    out.save(buf, format="PNG")
    assert buf.tell() > 0


EVERY_KIND = [
    Action("click", point=(0.3, 0.3)),
    Action("double_click", point=(0.3, 0.3)),
    Action("triple_click", point=(0.3, 0.3)),
    Action("right_click", point=(0.3, 0.3)),
    Action("middle_click", point=(0.3, 0.3)),
    Action("move", point=(0.3, 0.3)),
    Action("drag", point=(0.3, 0.3), end=(0.6, 0.6)),
    Action("scroll", direction="left", amount=2),
    Action("type", text="x"),
    Action("key", keys=("f5",)),
    Action("long_press", point=(0.3, 0.3), seconds=1.5),
    Action("swipe", point=(0.5, 0.8), end=(0.5, 0.2)),
    Action("back"),
    Action("home"),
    Action("open_app", text="Clock"),
    Action("wait", seconds=2),
    Action("answer", text="ok"),
    Action("done", success=False),
]


def test_every_action_kind_is_drawn():
    from vlagent.actions import ACTION_KINDS

    assert {a.kind for a in EVERY_KIND} == ACTION_KINDS
    for action in EVERY_KIND:
        svg = svg_overlay([action], (640, 360))
        assert svg.startswith("<svg") and svg.endswith("</svg>")
        assert ('class="mk' in svg) or ('class="lbl' in svg), action
        drawn = draw_action(Image.new("RGB", (640, 360), "white"), action)
        assert ImageChops.difference(drawn, Image.new("RGB", (640, 360), "white")).getbbox(), action
    # All at once (one step with many actions): numbered badges.
    svg = svg_overlay(EVERY_KIND, (640, 360), ["executed"] * len(EVERY_KIND))
    assert ">18. done (failure)<" in svg
