"""Sample frames from long videos with PyAV without decoding the whole file.

`sample_frames(path, ...)` plans the frames (see `vlagent.video.plan`), then:

* probes the file once (`vlagent.video.info.probe`): every frame's
  presentation time (8 bytes a frame), which frames are keyframes, the real
  duration, from the container's index where it lists every frame (MP4/MOV
  sample tables, checked against the packets of the first and last GOP), else
  by demuxing every packet *without decoding it*; and it decodes the first
  frame to learn the size and the rotation (display-matrix side data, or the
  old `rotate` tag);
* `mode="exact"`: for each target time returns the frame on screen at that
  time (the last frame whose presentation time is <= the target), known from
  the probe before any decoding. Wanted frames are visited in time order.
  Between two of them the decoder either seeks to the second one's keyframe,
  skipping the frames between, or decodes straight on: a plan made from the
  probe before decoding picks, per gap, the cheaper by estimated cost
  (`vlagent.video.decode_plan`: seeks for sparse wants and large frames,
  straight for dense wants, short GOPs and small frames), so the work never
  exceeds one straight decode plus converting the kept frames. Targets
  sharing a GOP are served in one pass and no packet is handed to the decoder
  twice. Frames decoded on the way (references, or frames not worth a seek)
  are never converted to RGB.
  Non-reference frames are dropped with `skip_frame="NONREF"`, switched per
  packet and never for a wanted frame's packet: nothing references a
  non-reference frame, so dropping one loses that frame alone. (Setting
  NONREF for the whole stream would not be exact: the frame on screen at a
  target is often a non-reference B-frame, and it would silently become its
  predecessor.) `skip_nonref=False` turns this off; the output is identical.
  Before a seek the decoder is drained right after the wanted frame's packet,
  so frame threads and B-frame reordering are not fed packets that the seek
  would flush undecoded;
* `mode="keyframe"`: for each target takes the nearest keyframe inside the
  range; only those packets are decoded. They are fetched by seeking, and
  decoded back to back by a decoder that no seek flushes (a second opening of
  the file): a keyframe depends on no other frame, so frame threads decode
  several at once. Much faster on long files; the timestamps say where each
  keyframe really is. Targets sharing a nearest keyframe give it once, so a
  range with few keyframes gives fewer frames than `min_frames` (a 3 s clip
  with one keyframe: one frame); mode="exact" gives them all.

Which frames are kept is known before decoding. Each is scaled (reused swscale
contexts; anamorphic video comes out with square pixels) in its own pixel
format, then converted to RGB at the output size, rotated upright
(display-matrix flips are not applied), and written into one preallocated
[N, H, W, 3] uint8 array with a row per kept frame: memory follows the output,
not the video's length (apart from the probe's 8 bytes per frame).

Timestamps are seconds from the video stream's start time, the timeline in
which `start`/`end` are given. Two targets that land on the same frame give
that frame once, so a sample can hold fewer frames than planned;
`VideoSample.plan.num_frames` is the number returned. Frames that fail to
decode are left out with a `VideoDecodeWarning`; counters of the work done
are in `VideoSample.stats` (decoded_frames, seeks, packets_read, ...).
"""

from __future__ import annotations

import bisect
import dataclasses
import itertools
import math
import mmap
import os
import warnings
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np

from vlagent.video.plan import (
    DEFAULT_MAX_FRAMES,
    DEFAULT_MIN_FRAMES,
    SamplingPlan,
    make_plan,
)

from vlagent.model.resize import check_aspect_ratio
from vlagent.video.decode_plan import STRATEGIES, DecodePlan, estimate_costs, plan_decoding
from vlagent.video.info import (  # noqa: F401 - names kept importable from here (_rotation_of: tests)
    DEMUX_ERRORS,
    VideoDecodeWarning,
    VideoError,
    VideoInfo,
    _open,
    _rotation_of,
    probe,
)

try:  # PyAV is the optional "video" extra.
    import av
    from av.video.reformatter import VideoReformatter
except ImportError:  # pragma: no cover - exercised only without the extra
    av = None

ProgressCallback = Callable[[int, int], None]
MODES = ("exact", "keyframe")


@dataclass
class VideoSample:
    """Sampled frames: `frames[i]` was on screen at `timestamps[i]` seconds."""

    frames: np.ndarray  # uint8 [N, H, W, 3], RGB, upright
    timestamps: list[float]
    duration: float
    source_fps: float
    plan: SamplingPlan
    mode: str
    rotation: int
    stats: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.timestamps)


def _resolve_range(info: VideoInfo, start: float | None, end: float | None) -> tuple[float, float]:
    start = 0.0 if start is None else float(start)
    end = info.duration if end is None else float(end)
    slack = 0.5 / info.source_fps if info.source_fps > 0 else 1e-3  # rounding of container durations
    if start < 0 or start >= info.duration:
        raise VideoError(f"start {start:g} s is outside the video (duration {info.duration:.3f} s)")
    if end > info.duration + slack:
        raise VideoError(f"end {end:g} s is past the end of the video (duration {info.duration:.3f} s)")
    if end <= start:
        raise VideoError(f"empty range: end {end:g} s is not after start {start:g} s")
    return start, min(end, info.duration)


def _packets_from_keyframe(container, stream, info: VideoInfo, key: int, stats: dict) -> Iterator | None:
    """Demuxed packets starting exactly at the keyframe packet whose pts is `key`.

    Indexed containers (MP4, Matroska, AVI) land on it at once. Others (MPEG-TS)
    can land after it: then seek again, earlier each time, dropping (not
    decoding) the packets before the keyframe. None if it cannot be reached.
    """
    one_second = max(1, round(1.0 / info.time_base))
    lowest = int(info.frame_pts[0]) if len(info.frame_pts) else info.origin_pts
    # Some demuxers land past the stream's first keyframe when asked for exactly
    # its time, so the margins reach below the first frame, finally by 1 s.
    margins = [0, one_second, 4 * one_second, 16 * one_second, 64 * one_second, 256 * one_second]
    offsets = [key - m for m in margins if key - m > lowest] + [lowest - one_second]
    for offset in offsets:
        try:  # a truncated or corrupt file can refuse the seek (AVI: EPERM) or the read after it
            container.seek(offset, stream=stream, backward=True)
            stats["seeks"] += 1
            packets = _demuxed(container.demux(stream), stats)
            for packet in packets:
                stats["packets_read"] += 1
                if packet.pts is None:
                    continue
                if packet.pts == key and packet.is_keyframe:
                    return itertools.chain([packet], packets)
                if packet.is_keyframe and packet.pts > key:
                    break  # landed past it
        except av.FFmpegError as exc:
            stats.setdefault("errors", []).append(f"seeking to pts {offset}: {exc}")
    return None


def _demuxed(packets: Iterator, stats: dict) -> Iterator:
    """`packets`, ending (with the error noted) where the demuxer fails: a file cut short or corrupt."""
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            return
        except DEMUX_ERRORS as exc:
            stats["decode_errors"] += 1
            stats.setdefault("errors", []).append(f"reading packets: {exc}")
            return
        yield packet


class _Decoder:
    """Forward decoding from a seek point, counting and tolerating bad packets."""

    def __init__(self, container, stream, info: VideoInfo, stats: dict, needed_pts: set[int] | None = None):
        self.container = container
        self.stream = stream
        self.info = info
        self.stats = stats
        # With the pts of every frame we keep known, the decoder may drop the
        # other non-reference frames: no frame depends on a non-reference frame,
        # so dropping one loses that frame alone, and never one we return.
        self.needed_pts = needed_pts
        self.sent_pts: int | None = None  # highest pts handed to the decoder since the last seek
        # Once the packet with this pts is sent, the decoder is drained and stops: the
        # caller seeks next, and packets sent after the wanted one (frame threads and
        # B-frame reordering hold several) would be decoded only to be flushed.
        self.stop_after: int | None = None
        self.stopped = False  # drained: no packet will be sent before the next seek
        self._frames: Iterator | None = None
        # pts of packets the demuxer flagged corrupt (cut short by the end of a truncated file): the
        # decoder conceals what is missing, so their frames are not flagged; they are never returned.
        self.corrupt_pts: set[int] = set()

    @property
    def running(self) -> bool:
        """Decoding forward: packets after those sent will be sent next."""
        return self._frames is not None and not self.stopped

    def seek(self, key: int) -> None:
        """Restart decoding at the keyframe `key` (decoder buffers are flushed by the seek)."""
        self.sent_pts = None
        self.stopped = False
        packets = _packets_from_keyframe(self.container, self.stream, self.info, key, self.stats)
        self._frames = None if packets is None else self._decode_forward(packets)
        if packets is None:
            self.stats.setdefault("errors", []).append(f"could not seek to the keyframe at pts {key}")

    def _decode_forward(self, packets: Iterator):
        codec_context = self.stream.codec_context
        needed = self.needed_pts
        skipping = False
        first = True
        for packet in packets:
            if not first:
                self.stats["packets_read"] += 1
            first = False
            if packet.pts is not None and (self.sent_pts is None or packet.pts > self.sent_pts):
                self.sent_pts = packet.pts
            if needed is not None:
                skip = packet.pts is not None and packet.pts not in needed
                if skip != skipping:  # read per packet by the decoder (and its threads)
                    codec_context.skip_frame = "NONREF" if skip else "DEFAULT"
                    skipping = skip
            yield from self._decode(codec_context, packet)
            if packet.pts is not None and packet.pts == self.stop_after:
                self.stopped = True
                yield from self._decode(codec_context, None)
                return

    def _decode(self, codec_context, packet):
        if packet is not None and packet.is_corrupt and packet.pts is not None:
            self.corrupt_pts.add(packet.pts)
        try:
            frames = codec_context.decode(packet)
        except av.FFmpegError as exc:
            self.stats["decode_errors"] += 1
            self.stats.setdefault("errors", []).append(f"pts {None if packet is None else packet.pts}: {exc}")
            return
        for frame in frames:
            self.stats["decoded_frames"] += 1
            yield frame

    def next_frame(self):
        """The next decoded frame in presentation order, or None at the end."""
        if self._frames is None:
            return None
        for frame in self._frames:
            if frame.pts is None:
                self.stats["frames_without_pts"] += 1
                continue
            return frame
        self._frames = None
        return None


def _empty_frames(shape: tuple[int, ...]) -> np.ndarray:
    """An uninitialised uint8 array whose pages are faulted in by one mmap call.

    Filling a fresh array page by page costs one page fault per 4 KiB; in a
    virtual machine that is most of the copy time (measured here: ~1.2 s to
    first-touch 610 MB, 0.3 s with MAP_POPULATE). np.empty where it is missing.
    """
    size = math.prod(shape)
    flags = getattr(mmap, "MAP_POPULATE", 0)
    if not size or not flags:
        return np.empty(shape, dtype=np.uint8)
    buffer = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | flags)
    return np.frombuffer(buffer, dtype=np.uint8).reshape(shape)  # the array keeps the mmap alive


class _Output:
    """Preallocated output with a row for each frame to keep (known before decoding).

    Frames are scaled in their own pixel format, then converted to RGB at the
    output size: two swscale calls with fast (SIMD) paths, ~3x cheaper than
    one scaling YUV->RGB call (measured: 1.7 vs 5.1 ms for 720p -> 736x384
    bicubic). Chroma is then as subsampled as the source's, at output size.
    """

    def __init__(self, plan: SamplingPlan, info: VideoInfo, keep_pts: list[int], progress: ProgressCallback | None):
        self.progress = progress
        self.k = info.rotation // 90
        # Size before rotation (swscale works on the coded frame).
        self.coded_size = (plan.height, plan.width) if self.k % 2 else (plan.width, plan.height)
        self.row_of = {pts: row for row, pts in enumerate(keep_pts)}
        self.pts: list[int | None] = [None] * len(keep_pts)
        self.count = 0
        self.frames = _empty_frames((len(keep_pts), plan.height, plan.width, 3))
        # Reused reformatters keep swscale's contexts (and filter tables) alive;
        # `frame.to_ndarray(width=...)` would rebuild them per frame.
        self.scaler = VideoReformatter()
        self.to_rgb = VideoReformatter()

    def wants(self, pts: int) -> bool:
        row = self.row_of.get(pts)
        return row is not None and self.pts[row] is None

    def add(self, frame) -> None:
        row = self.row_of.get(frame.pts)
        if row is None or self.pts[row] is not None:
            return  # not wanted, or already kept
        w, h = self.coded_size
        scaled = self.scaler.reformat(frame, width=w, height=h, interpolation="BICUBIC")
        rgb = self.to_rgb.reformat(scaled, format="rgb24").to_ndarray()
        self.frames[row] = np.rot90(rgb, self.k) if self.k else rgb
        self.pts[row] = frame.pts
        self.count += 1
        if self.progress is not None:
            self.progress(self.count, len(self.pts))

    def result(self) -> tuple[np.ndarray, list[int]]:
        """The kept frames in order; rows of frames that never came are closed up in place."""
        kept = [row for row, pts in enumerate(self.pts) if pts is not None]
        for to, row in enumerate(kept):
            if to != row:
                self.frames[to] = self.frames[row]
        # A view: the spare rows (decode failures only) are not worth a copy of the rest.
        return self.frames[: len(kept)], [self.pts[row] for row in kept]


def _wanted_frames(info: VideoInfo, targets: list[int]) -> list[int]:
    """pts of the frames on screen at the targets (sorted, each once), known from the probe."""
    return sorted({info.shown_at(t) for t in targets})


def _sample_exact(decoder: _Decoder, info: VideoInfo, wanted: list[int], out: _Output, stats: dict,
                  plan: DecodePlan) -> None:
    """Decode forward to each wanted frame; between two, seek or decode straight on as `plan` says."""
    keys = info.keyframe_pts
    pending = None  # a frame decoded past the previous wanted one
    for i, want in enumerate(wanted):
        key = keys[max(bisect.bisect_right(keys, want) - 1, 0)]
        # Stop after this frame when the next one is reached by a seek (or there is none):
        # the decoder is drained right after its packet, so that no packet is handed to it
        # only to be flushed by the seek. Nothing handed to the decoder is handed to it again.
        straight_on = i < len(plan.straight_after) and plan.straight_after[i]
        decoder.stop_after = None if straight_on else want
        # Seek where the plan says, even if the decoder has not reached the stop yet (the
        # previous wanted frame may have come out of its own packet's decode call), and where
        # the stream ended or broke before.
        if i == 0 or not plan.straight_after[i - 1] or not decoder.running:
            decoder.seek(key)
            pending = None
        frame, pending = pending, None
        while frame is None or frame.pts < want:
            frame = decoder.next_frame()
            if frame is None:
                break
        if frame is None:  # stream ended (or broke) before the wanted frame
            stats["skipped_targets"] += 1
            continue
        if frame.pts == want and not frame.is_corrupt and frame.pts not in decoder.corrupt_pts:
            out.add(frame)
        else:
            # The wanted frame did not decode (error, or flagged corrupt).
            stats["corrupt_frames"] += int(frame.pts == want)
            stats["skipped_targets"] += 1
        if frame.pts > want:
            pending = frame  # may be the next wanted frame


def _nearest(sorted_values: list[int], x: float) -> int:
    """The value nearest to x (the earlier one on a tie)."""
    j = bisect.bisect_left(sorted_values, x)
    candidates = sorted_values[max(j - 1, 0) : j + 1]
    return min(candidates, key=lambda v: (abs(v - x), v))


def _chosen_keyframes(info: VideoInfo, targets: list[float], start_pts: float, end_pts: float) -> list[int]:
    """pts of the keyframe nearest each target inside the range (sorted, each once)."""
    keys = [k for k in info.keyframe_pts if start_pts <= k < end_pts]
    if not keys:
        raise VideoError(
            f"no keyframe between {info.seconds(int(start_pts)):.3f} s and {info.seconds(int(end_pts)):.3f} s of {info.path}; use mode='exact'"
        )
    return sorted({_nearest(keys, t) for t in targets})


def _sample_keyframes(container, stream, info: VideoInfo, chosen: list[int], out: _Output, stats: dict) -> None:
    """Decode the chosen keyframe packets, and only them, as one stream.

    Packets are fetched by seeking `container`; they are decoded by the codec
    context of a second opening of the file, which no seek ever flushes. Keyframes
    depend on no other frame, so they can go to the decoder back to back: its
    frame threads then decode several at once while this thread converts, where
    a seek (and its flush) per keyframe would decode them one at a time.
    """
    decoding = av.open(info.path, mode="r", metadata_errors="replace")
    try:
        decoder_stream = decoding.streams[stream.index]
        decoder_stream.thread_type = "AUTO"
        codec_context = decoder_stream.codec_context

        def receive(packet) -> None:
            if packet is not None and packet.is_corrupt:  # cut short: its frame would come out concealed
                stats["corrupt_frames"] += int(packet.pts in out.row_of)
                return
            try:
                frames = codec_context.decode(packet)
            except av.FFmpegError as exc:  # with frame threads, may concern an earlier packet
                stats["decode_errors"] += 1
                stats.setdefault("errors", []).append(f"pts {None if packet is None else packet.pts}: {exc}")
                return
            for frame in frames:
                stats["decoded_frames"] += 1
                if frame.is_corrupt:
                    stats["corrupt_frames"] += int(frame.pts in out.row_of)
                elif frame.pts is not None:
                    out.add(frame)

        for key in chosen:
            packets = _packets_from_keyframe(container, stream, info, key, stats)
            packet = next(packets, None) if packets is not None else None
            if packet is None:
                stats.setdefault("errors", []).append(f"could not seek to the keyframe at pts {key}")
                continue
            receive(packet)
        receive(None)  # drain the frames still in the decoder's threads
        stats["skipped_targets"] += len(chosen) - out.count
    finally:
        decoding.close()


def sample_frames(
    path: str | os.PathLike,
    *,
    fps: float | None = None,
    num_frames: int | None = None,
    max_frames: int = DEFAULT_MAX_FRAMES,
    min_frames: int = DEFAULT_MIN_FRAMES,
    start: float | None = None,
    end: float | None = None,
    mode: str = "exact",
    max_pixels: int | None = None,
    total_pixels: int | None = None,
    min_pixels: int | None = None,
    progress: ProgressCallback | None = None,
    skip_nonref: bool = True,
    strategy: str = "auto",
) -> VideoSample:
    """Frames of `path` for a vision-language model.

    `fps` (default 2) or `num_frames` decides how many frames (see
    `vlagent.video.plan`); `start`/`end` (seconds) limit the range;
    `mode` is "exact" (the frame on screen at each target time) or
    "keyframe" (the nearest keyframe: fast, approximate times, but the
    returned timestamps are the keyframes' real times). `progress(done,
    total)` is called after each kept frame. `skip_nonref` (exact mode) lets
    the decoder drop non-reference frames that are not returned: same frames,
    less decoding. `strategy` (exact mode; see `vlagent.video.decode_plan`)
    decides the work between wanted frames: "auto" (by estimated cost),
    "seek" (wherever frames can be skipped) or "straight" (one decode from the
    first wanted frame): same frames, different work. Raises `VideoError` for
    a file that cannot be sampled and `ValueError` for bad arguments.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    info = probe(path)
    try:  # a size no model reads is a property of this file (a corrupt header), not a bad argument
        check_aspect_ratio(info.display_size[1], info.display_size[0])
    except ValueError as exc:
        raise VideoError(f"{info.path}: {exc} (a corrupt size in the stream's header?)") from None
    start_s, end_s = _resolve_range(info, start, end)
    plan = make_plan(
        duration=info.duration, source_fps=info.source_fps,
        source_width=info.display_size[0], source_height=info.display_size[1],
        start=start_s, end=end_s, fps=fps, num_frames=num_frames, min_frames=min_frames, max_frames=max_frames,
        min_pixels=min_pixels, max_pixels=max_pixels, total_pixels=total_pixels,
        frames_in_range=info.frames_between(_to_pts(info, start_s), _to_pts(info, end_s)),
    )
    keep = _frames_to_keep(info, plan, mode, start_s, end_s)
    # Two targets on the same frame give it once: the output has a row per kept frame.
    out = _Output(plan, info, keep, progress)
    stats = _new_stats(info)
    _decode_kept_frames(info, mode, keep, out, stats, skip_nonref, strategy)
    _warn_about_losses(info, stats)
    frames, kept_pts = out.result()
    if not kept_pts:
        raise VideoError(f"no frame of {info.path} in {start_s:.3f}–{end_s:.3f} s could be decoded")
    stats["converted_frames"] = len(kept_pts)
    stats["planned_frames"] = plan.num_frames
    return VideoSample(
        frames=frames,
        timestamps=[info.seconds(p) for p in kept_pts],
        duration=info.duration,
        source_fps=info.source_fps,
        plan=dataclasses.replace(plan, num_frames=len(kept_pts)),
        mode=mode,
        rotation=info.rotation,
        stats=stats,
    )


def _to_pts(info: VideoInfo, t: float) -> int:
    """The pts of a time in seconds. Frame pts are integers: flooring keeps "pts <= target"
    exact, and the nudge absorbs float error (0.6 s / (1/10240) = 6143.999...)."""
    return math.floor(info.origin_pts + t / info.time_base + 1e-6)


def _frames_to_keep(info: VideoInfo, plan: SamplingPlan, mode: str, start_s: float, end_s: float) -> list[int]:
    """pts of the frames the sample will hold (sorted, each once), known before any decoding."""
    if mode == "exact":
        return _wanted_frames(info, [_to_pts(info, t) for t in plan.target_times])
    # Nearness is measured on the unrounded target times.
    exact_targets = [info.origin_pts + t / info.time_base for t in plan.target_times]
    return _chosen_keyframes(info, exact_targets, _to_pts(info, start_s), _to_pts(info, end_s))


def _new_stats(info: VideoInfo) -> dict:
    return {
        "probe_packets": info.num_packets,
        "decoded_frames": 0,
        "packets_read": 0,
        "seeks": 0,
        "decode_errors": 0,
        "corrupt_frames": 0,
        "skipped_targets": 0,
        "frames_without_pts": 0,
    }


def _decode_kept_frames(info: VideoInfo, mode: str, keep: list[int], out: _Output, stats: dict,
                        skip_nonref: bool, strategy: str) -> None:
    container, stream = _open(info.path)
    try:
        if mode == "exact":
            plan = plan_decoding(info, keep, estimate_costs(info, skip_nonref=skip_nonref), strategy)
            stats["decode_plan"] = plan.to_dict()
            decoder = _Decoder(container, stream, info, stats, set(keep) if skip_nonref else None)
            _sample_exact(decoder, info, keep, out, stats, plan)
        else:
            _sample_keyframes(container, stream, info, keep, out, stats)
    finally:
        container.close()


def _warn_about_losses(info: VideoInfo, stats: dict) -> None:
    """One VideoDecodeWarning, pointing at sample_frames' caller, when frames were lost."""
    if stats["decode_errors"] or stats["skipped_targets"] or stats["corrupt_frames"]:
        warnings.warn(
            f"{info.path}: {stats['decode_errors']} packet(s) failed to decode, {stats['corrupt_frames']} corrupt "
            f"frame(s) seen, {stats['skipped_targets']} sample(s) skipped",
            VideoDecodeWarning,
            stacklevel=3,
        )


__all__ = [
    "VideoError",
    "VideoDecodeWarning",
    "VideoInfo",
    "VideoSample",
    "probe",
    "sample_frames",
]
