"""Run folders: trajectory.jsonl written as the run goes, screenshots, report.

Layout of a run folder (default ``runs/<UTC timestamp>-<task slug>/``)::

    trajectory.jsonl   one JSON object a line:
                       {"type": "run", ...}      header: task, policy, env, settings
                       {"type": "step", ...}     one per step, flushed immediately
                       {"type": "result", ...}   status, answer, error, totals
    step-000.png ...   the screenshot each step looked at
    report.html        self-contained page built from the two above

Every string goes through the secret scrubber before it reaches the disk.

Screenshots are encoded and written by one background thread (PNG encoding
of a 1920x1080 screen takes tens of milliseconds, mostly in zlib, which
releases the GIL), so the loop only hands the image over. The queue is
bounded: a writer that falls behind slows the loop down instead of piling up
screenshots in memory. `close()` waits until every queued screenshot is on
disk; the agent calls it on every way out of a run (done, error, Ctrl+C)
before it builds the report.

A run folder that cannot be created or written (read-only, full, gone)
raises `RecordingFailed` (an OSError naming the folder): from the
constructor, from a trajectory write, and from `check()` (and the next
`save_screenshot`) once a screenshot could not be written. The agent checks
before executing a step's actions and ends the run on it: no step starts
after a failed write was seen (the step in flight when the disk filled up may
finish; its line is then the one missing from the trajectory).
"""

from __future__ import annotations

import json
import os
import queue
import re
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, Callable

from PIL import Image

from vlagent.images import encode_png

TRAJECTORY = "trajectory.jsonl"
REPORT = "report.html"
# Screenshots waiting for the writer thread at most; beyond this save_screenshot blocks.
SCREENSHOT_QUEUE = 4


class RecordingFailed(OSError):
    """The run folder cannot be created or written (read-only, full, removed)."""


class RunFolderTaken(RecordingFailed, FileExistsError):
    """The run folder already holds a run (never overwritten)."""


def slugify(text: str, max_len: int = 40) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:max_len].rstrip("-") or "run"


def utc_stamp(t: float | None = None) -> str:
    return datetime.fromtimestamp(time.time() if t is None else t, tz=timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def iso_time(t: float) -> str:
    return datetime.fromtimestamp(t, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


RUNS_ENV = "VLAGENT_RUNS"  # where run folders go when the caller names none


def runs_root() -> Path:
    """Where run folders go by default: $VLAGENT_RUNS; else runs/ in the current folder; else, where the
    current folder cannot be written (a desktop MCP client may start `vlagent mcp` in /), runs/ in the
    user's data folder ($XDG_DATA_HOME/vlagent, ~/.local/share/vlagent by default)."""
    chosen = os.environ.get(RUNS_ENV, "").strip()
    if chosen:
        return Path(chosen).expanduser()
    here = Path("runs")
    if (here.is_dir() and os.access(here, os.W_OK)) or (not here.exists() and os.access(".", os.W_OK)):
        return here
    data = os.environ.get("XDG_DATA_HOME", "").strip() or Path.home() / ".local" / "share"
    return Path(data) / "vlagent" / "runs"


def default_run_dir(task: str, root: str | os.PathLike | None = None) -> Path:
    """``<root>/<UTC timestamp>-<slug of task>``, made unique with a -2, -3... suffix; root: `runs_root()`."""
    base = Path(root if root is not None else runs_root()) / f"{utc_stamp()}-{slugify(task)}"
    candidate, n = base, 2
    while candidate.exists():
        candidate, n = base.with_name(f"{base.name}-{n}"), n + 1
    return candidate


def screenshot_name(index: int) -> str:
    return f"step-{index:03d}.png"


def screenshot_path(run_dir: str | os.PathLike, name: Any) -> Path | None:
    """The file a step record's `screenshot` names, or None when it names none or something outside the
    run folder (a record is data: "../../home/me/.ssh/id_rsa" must not be read into a report)."""
    if not isinstance(name, str) or not name or name in (".", "..") or "/" in name or "\\" in name:
        return None
    return Path(run_dir) / name


def write_png(path: Path, image: Image.Image) -> None:
    """Write one screenshot as PNG (`encode_png`)."""
    path.write_bytes(encode_png(image))


class ScreenshotWriter:
    """One background thread that encodes and writes screenshots, in order.

    `submit` blocks only while `max_pending` screenshots are already
    waiting. Write errors do not stop the thread; `close()` waits for the
    queue to drain and returns the failures as "name: error" strings.
    """

    _STOP = object()

    def __init__(self, max_pending: int = SCREENSHOT_QUEUE) -> None:
        if max_pending < 1:
            raise ValueError(f"max_pending must be at least 1, got {max_pending}")
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_pending)
        self.failures: list[str] = []
        # A daemon thread cannot keep a crashed process alive; close() is what waits for it.
        self._thread: threading.Thread | None = threading.Thread(
            target=self._work, name="vlagent-screenshots", daemon=True
        )
        self._thread.start()

    def submit(self, path: Path, image: Image.Image) -> None:
        if self._thread is None:
            raise RuntimeError("the screenshot writer is closed")
        self._queue.put((path, image))

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is self._STOP:
                return
            path, image = item
            try:
                write_png(path, image)
            except Exception as e:  # noqa: BLE001 - reported by close(); the run goes on
                self.failures.append(f"{path.name}: {type(e).__name__}: {e}")

    def close(self) -> list[str]:
        """Write what is queued, stop the thread; the failures so far. Safe to call twice."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(self._STOP)
            thread.join()
        return list(self.failures)


def check_run_dir_free(run_dir: str | os.PathLike | None) -> None:
    """RunFolderTaken if `run_dir` already holds a run: checked before a display or a phone is started."""
    if run_dir is None:
        return
    path = Path(run_dir) / TRAJECTORY
    if path.is_file() and path.stat().st_size:
        raise RunFolderTaken(f"{path} already holds a run; choose another run folder")


_NEVER_SCRUBBED = ("type", "screenshot")


class RunRecorder:
    """Writes one run folder incrementally; safe to close twice, usable as a context manager.

    `scrub` is applied to every record (recursively to all strings) before
    it is written: the agent passes `SecretStore.redact_obj`. Trajectory
    lines are written and flushed at once; screenshots go through a
    `ScreenshotWriter` and are all on disk once `close()` returns.
    """

    def __init__(self, run_dir: str | os.PathLike, scrub: Callable[[Any], Any] = lambda obj: obj) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / TRAJECTORY
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            check_run_dir_free(self.run_dir)
            self._file: IO[str] | None = open(self.path, "w", encoding="utf-8")
        except RunFolderTaken:
            raise
        except OSError as e:
            raise RecordingFailed(f"cannot create the run folder {self.run_dir}: {e}") from None
        self._scrub = scrub
        self._screenshots = ScreenshotWriter()

    def __enter__(self) -> "RunRecorder":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def _write(self, record: dict[str, Any]) -> None:
        if self._file is None:
            raise RuntimeError(f"recorder for {self.run_dir} is closed")
        # The file names the run folder itself writes are no text anyone typed: a secret "5" must not turn
        # step-005.png into step-00{{pin}}.png.
        kept = {k: record[k] for k in _NEVER_SCRUBBED if k in record}
        line = json.dumps({**self._scrub(record), **kept}, ensure_ascii=False, default=_json_default)
        try:
            self._file.write(line + "\n")
            self._file.flush()  # a crash or Ctrl+C must still leave every finished step on disk
        except OSError as e:
            raise RecordingFailed(f"cannot write the run folder {self.run_dir} ({TRAJECTORY}): {e}") from None

    def write_header(self, **fields: Any) -> None:
        self._write({"type": "run", **fields})

    def save_screenshot(self, index: int, image: Image.Image) -> str:
        """Queue the screenshot of step `index` for writing; returns its file name.

        The image is written later, from another thread: do not change it afterwards.
        """
        self.check()
        name = screenshot_name(index)
        self._screenshots.submit(self.run_dir / name, image)
        return name

    def check(self) -> None:
        """RecordingFailed if a screenshot queued so far could not be written (does not wait for the queue)."""
        failures = self._screenshots.failures
        if failures:
            raise RecordingFailed(f"cannot write the run folder {self.run_dir} (screenshot {failures[0]})")

    def write_step(self, record: dict[str, Any]) -> None:
        self._write({"type": "step", **record})

    def write_result(self, **fields: Any) -> None:
        self._write({"type": "result", **fields})

    def close(self) -> None:
        """Wait for the queued screenshots, close the trajectory.

        Raises OSError naming the screenshots that could not be written
        (after everything else is closed).
        """
        failures = self._screenshots.close()
        if self._file is not None:
            file, self._file = self._file, None
            try:
                file.close()
            except OSError as e:  # the last buffered line could not be flushed (full disk)
                failures = [*failures, f"{TRAJECTORY}: {e}"]
        if failures:
            raise OSError(f"{len(failures)} screenshot(s) of {self.run_dir} not written: " + "; ".join(failures))


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, tuple):
        return list(obj)
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    raise TypeError(f"cannot write {type(obj).__name__} to the trajectory")


def load_trajectory(path: str | os.PathLike) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any] | None]:
    """Read a run folder (or its trajectory.jsonl): (header, steps, result or None).

    A last line cut short by a crash is ignored; any other bad line is an error.
    """
    path = Path(path)
    if path.is_dir():
        path = path / TRAJECTORY
    if not path.exists():
        raise FileNotFoundError(f"no trajectory at {path}")
    lines = path.read_text(encoding="utf-8").splitlines()
    header: dict[str, Any] = {}
    steps: list[dict[str, Any]] = []
    result: dict[str, Any] | None = None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            if n == len(lines):
                break  # interrupted mid-write
            raise ValueError(f"{path}:{n}: not valid JSON ({e})") from None
        if not isinstance(record, dict):
            raise ValueError(f"{path}:{n}: not a record (a JSON {type(record).__name__}, not an object)")
        kind = record.get("type")
        if kind == "run":
            header = record
        elif kind == "step":
            steps.append(record)
        elif kind == "result":
            result = record
        else:
            raise ValueError(f"{path}:{n}: unknown record type {kind!r}")
    return header, steps, result


__all__ = [
    "REPORT",
    "RecordingFailed",
    "RunFolderTaken",
    "check_run_dir_free",
    "TRAJECTORY",
    "RunRecorder",
    "ScreenshotWriter",
    "default_run_dir",
    "runs_root",
    "iso_time",
    "load_trajectory",
    "screenshot_name",
    "screenshot_path",
    "slugify",
    "utc_stamp",
    "write_png",
]
