"""Real test videos made with PyAV whose frames carry their own index.

Every upright frame is a grid of 4 rows × 5 columns of flat cells. The four
corner cells are fixed (top-left pure red, the others black) so a reader can
tell whether a frame is upright and in RGB order; the other 16 cells hold the
frame index in binary (light = 1, dark = 0), most significant bit first. Flat
cells survive lossy compression and resizing, and flat content compresses
so well that a two-hour 1 fps file takes a few seconds to encode.

`read_index(rgb)` recovers the index from a decoded (possibly resized) frame
and raises if the orientation markers are wrong.
"""

from __future__ import annotations

import fractions
import os
from dataclasses import dataclass

import av
import numpy as np

ROWS, COLS = 4, 5
CORNERS = {(0, 0), (0, COLS - 1), (ROWS - 1, 0), (ROWS - 1, COLS - 1)}
BIT_CELLS = [(r, c) for r in range(ROWS) for c in range(COLS) if (r, c) not in CORNERS]
MAX_INDEX = 2 ** len(BIT_CELLS) - 1
LIGHT, DARK = 225, 30


def _cell_bounds(n: int, parts: int, i: int) -> tuple[int, int]:
    return (n * i) // parts, (n * (i + 1)) // parts


def index_frame(index: int, width: int, height: int) -> np.ndarray:
    """An upright RGB frame [height, width, 3] showing `index`."""
    if not 0 <= index <= MAX_INDEX:
        raise ValueError(f"index {index} out of range 0..{MAX_INDEX}")
    img = np.full((height, width, 3), DARK, dtype=np.uint8)
    bits = format(index, f"0{len(BIT_CELLS)}b")
    for bit, (r, c) in zip(bits, BIT_CELLS):
        if bit == "1":
            y0, y1 = _cell_bounds(height, ROWS, r)
            x0, x1 = _cell_bounds(width, COLS, c)
            img[y0:y1, x0:x1] = LIGHT
    y0, y1 = _cell_bounds(height, ROWS, 0)
    x0, x1 = _cell_bounds(width, COLS, 0)
    img[y0:y1, x0:x1] = (255, 0, 0)
    return img


def _cell_mean(rgb: np.ndarray, r: int, c: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    y0, y1 = _cell_bounds(h, ROWS, r)
    x0, x1 = _cell_bounds(w, COLS, c)
    # The middle half of the cell: away from blurred and chroma-subsampled edges.
    dy, dx = (y1 - y0) // 4, (x1 - x0) // 4
    return rgb[y0 + dy : y1 - dy, x0 + dx : x1 - dx].reshape(-1, 3).mean(axis=0)


def read_index(rgb: np.ndarray) -> int:
    """The index shown by an upright RGB frame; ValueError if it is not upright RGB."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an RGB frame [H, W, 3], got shape {rgb.shape}")
    red = _cell_mean(rgb, 0, 0)
    if not (red[0] > 150 and red[1] < 100 and red[2] < 100):
        raise ValueError(f"top-left marker is not red (mean RGB {red.round()}): frame rotated or not RGB")
    for r, c in CORNERS - {(0, 0)}:
        if _cell_mean(rgb, r, c).mean() > 128:
            raise ValueError(f"corner cell ({r},{c}) is not dark: frame rotated or flipped")
    bits = "".join("1" if _cell_mean(rgb, r, c).mean() > 128 else "0" for r, c in BIT_CELLS)
    return int(bits, 2)


@dataclass(frozen=True)
class MadeVideo:
    path: str
    times: tuple[float, ...]  # presentation time of frame i, seconds
    fps: float | None  # None for variable frame rate
    width: int  # upright size
    height: int
    keyframe_every: int | None = None

    @property
    def num_frames(self) -> int:
        return len(self.times)

    @property
    def duration(self) -> float:
        if self.fps:
            return self.num_frames / self.fps
        return self.times[-1] + (self.times[-1] - self.times[-2])

    def index_at(self, t: float) -> int:
        """Index of the frame on screen at time t."""
        return max(0, int(np.searchsorted(np.asarray(self.times), t + 1e-9, side="right")) - 1)


def write_video(
    path: str,
    *,
    codec: str,
    width: int,
    height: int,
    num_frames: int | None = None,
    fps: int = 10,
    pts: list[int] | None = None,
    time_base: fractions.Fraction | None = None,
    gop: int = 10,
    rotation: int = 0,
    options: dict | None = None,
    threads: int = 0,
    sample_aspect_ratio: fractions.Fraction | None = None,
) -> MadeVideo:
    """Encode index frames. CFR: `num_frames` at `fps`; VFR: explicit `pts` in `time_base`.

    `rotation` (degrees counter-clockwise, a multiple of 90) stores frames
    turned the other way and sets the container's display matrix, the way a
    phone records a portrait video; `width`/`height` are the upright size.
    """
    if pts is not None:
        time_base = time_base or fractions.Fraction(1, 1000)
        num_frames = len(pts)
    k = (rotation // 90) % 4
    coded_w, coded_h = (height, width) if k % 2 else (width, height)
    with av.open(path, mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = coded_w, coded_h
        stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
        stream.codec_context.gop_size = gop
        if threads:
            stream.codec_context.thread_count = threads
        if options:
            stream.codec_context.options = dict(options)
        if pts is not None:
            stream.codec_context.time_base = time_base
            stream.time_base = time_base
        if rotation:
            stream.set_display_rotation(rotation)
        if sample_aspect_ratio:
            stream.codec_context.sample_aspect_ratio = sample_aspect_ratio
        for i in range(num_frames):
            # Store the upright picture turned back by the rotation (clockwise).
            coded = np.ascontiguousarray(np.rot90(index_frame(i, width, height), -k))
            frame = av.VideoFrame.from_ndarray(coded, format="rgb24")
            if pts is not None:
                frame.pts = pts[i]
                frame.time_base = time_base
            else:
                frame.pts = i
                frame.time_base = fractions.Fraction(1, fps)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    if pts is not None:
        times = tuple(float(p * time_base) for p in pts)
        return MadeVideo(path, times, None, width, height, gop)
    return MadeVideo(path, tuple(i / fps for i in range(num_frames)), float(fps), width, height, gop)


X264_FAST = {"preset": "ultrafast", "tune": "zerolatency"}
X264_BFRAMES = {"preset": "veryfast", "bf": "2"}


def make_h264_mp4(path: str, *, num_frames: int = 120, fps: int = 10, width: int = 64, height: int = 48, gop: int = 10) -> MadeVideo:
    """H.264 (with B-frames, so decode order differs from display order) in MP4."""
    return write_video(path, codec="libx264", width=width, height=height, num_frames=num_frames, fps=fps, gop=gop, options=X264_BFRAMES)


def make_h264_ts(path: str, *, num_frames: int = 150, fps: int = 25, width: int = 64, height: int = 48, gop: int = 25) -> MadeVideo:
    """H.264 in MPEG-TS: no index, so seeks can land past the keyframe asked for."""
    return write_video(path, codec="libx264", width=width, height=height, num_frames=num_frames, fps=fps, gop=gop, options=X264_BFRAMES)


def make_vp9_webm(path: str, *, num_frames: int = 60, fps: int = 10, width: int = 64, height: int = 48, gop: int = 10) -> MadeVideo:
    return write_video(
        path, codec="libvpx-vp9", width=width, height=height, num_frames=num_frames, fps=fps, gop=gop,
        options={"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0", "crf": "30", "b": "0"},
    )


def make_mjpeg_avi(path: str, *, num_frames: int = 60, fps: int = 10, width: int = 64, height: int = 48) -> MadeVideo:
    """Every MJPEG frame is a keyframe."""
    return write_video(path, codec="mjpeg", width=width, height=height, num_frames=num_frames, fps=fps, gop=1, options={"qscale": "3"})


def vfr_pts(num_frames: int) -> list[int]:
    """Irregular millisecond gaps (33, 50, 100, 17, 250 ms, repeating)."""
    gaps = [33, 50, 100, 17, 250]
    pts, t = [], 0
    for i in range(num_frames):
        pts.append(t)
        t += gaps[i % len(gaps)]
    return pts


def make_vfr_mp4(path: str, *, num_frames: int = 100, width: int = 64, height: int = 48, gop: int = 12) -> MadeVideo:
    return write_video(path, codec="libx264", width=width, height=height, pts=vfr_pts(num_frames), gop=gop, options=X264_BFRAMES)


def make_rotated_mp4(path: str, *, rotation: int = 90, num_frames: int = 40, fps: int = 10, width: int = 96, height: int = 160) -> MadeVideo:
    """A portrait video stored landscape with a display matrix, like a phone's."""
    return write_video(path, codec="libx264", width=width, height=height, num_frames=num_frames, fps=fps, gop=10, rotation=rotation, options=X264_FAST)


def make_long_mp4(path: str, *, seconds: int = 2 * 3600 + 60, fps: int = 1, width: int = 128, height: int = 72, keyframe_seconds: int = 10) -> MadeVideo:
    """Over two hours at 1 fps, a keyframe every 10 s: encodes in seconds."""
    return write_video(
        path, codec="libx264", width=width, height=height, num_frames=seconds * fps, fps=fps, gop=keyframe_seconds * fps,
        options={"preset": "ultrafast"},
    )


def make_h264_with_audio(path: str, *, num_frames: int = 50, fps: int = 10, width: int = 64, height: int = 48) -> MadeVideo:
    """An MP4 whose first stream is AAC audio and second the H.264 video."""
    rate = 16000
    with av.open(path, mode="w") as container:
        audio = container.add_stream("aac", rate=rate)
        audio.layout = "mono"
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.codec_context.gop_size = 10
        samples = 0
        for i in range(num_frames):
            frame = av.VideoFrame.from_ndarray(index_frame(i, width, height), format="rgb24")
            frame.pts, frame.time_base = i, fractions.Fraction(1, fps)
            for packet in video.encode(frame):
                container.mux(packet)
            while samples < (i + 1) * rate // fps:
                tone = (np.sin(np.arange(samples, samples + 1024) / 10) * 0.2).astype(np.float32)[None, :]
                chunk = av.AudioFrame.from_ndarray(tone, format="fltp", layout="mono")
                chunk.sample_rate, chunk.pts = rate, samples
                samples += 1024
                for packet in audio.encode(chunk):
                    container.mux(packet)
        for stream in (video, audio):
            for packet in stream.encode():
                container.mux(packet)
    return MadeVideo(path, tuple(i / fps for i in range(num_frames)), float(fps), width, height, 10)


def make_audio_only(path: str, seconds: float = 1.0) -> str:
    """An AAC-in-M4A file with no video stream."""
    rate = 16000
    with av.open(path, mode="w") as container:
        stream = container.add_stream("aac", rate=rate)
        stream.layout = "mono"
        samples = (np.sin(np.arange(int(rate * seconds)) / 10) * 0.3).astype(np.float32)
        for start in range(0, samples.size, 1024):
            chunk = samples[start : start + 1024]
            if chunk.size < 1024:
                chunk = np.pad(chunk, (0, 1024 - chunk.size))
            frame = av.AudioFrame.from_ndarray(chunk[None, :], format="fltp", layout="mono")
            frame.sample_rate = rate
            frame.pts = start
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def make_zero_length_avi(path: str) -> str:
    """An AVI whose video stream holds no frames (MP4 and Matroska drop such a track)."""
    with av.open(path, mode="w") as container:
        stream = container.add_stream("mjpeg", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuvj420p"
        container.start_encoding()
    return path


def corrupt_middle(src: str, dst: str, *, fraction: float = 0.5, length: int = 4096, seed: int = 0) -> str:
    """Copy `src` to `dst` with `length` random bytes written at `fraction` of the file."""
    data = bytearray(open(src, "rb").read())
    rng = np.random.default_rng(seed)
    at = int(len(data) * fraction)
    data[at : at + length] = rng.integers(0, 256, size=min(length, len(data) - at), dtype=np.uint8).tobytes()
    with open(dst, "wb") as f:
        f.write(bytes(data))
    return dst


def video_set(folder: str) -> dict[str, MadeVideo]:
    """The CFR/VFR/rotated/codec fixtures, written once into `folder`."""
    os.makedirs(folder, exist_ok=True)
    p = lambda name: os.path.join(folder, name)  # noqa: E731
    return {
        "h264": make_h264_mp4(p("h264.mp4")),
        "ts": make_h264_ts(p("h264.ts")),
        "vp9": make_vp9_webm(p("vp9.webm")),
        "mjpeg": make_mjpeg_avi(p("mjpeg.avi")),
        "vfr": make_vfr_mp4(p("vfr.mp4")),
        "audio+video": make_h264_with_audio(p("audio_video.mp4")),
        "rot90": make_rotated_mp4(p("rot90.mp4"), rotation=90),
        "rot270": make_rotated_mp4(p("rot270.mp4"), rotation=-90),
    }
