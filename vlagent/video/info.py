"""What a video holds before any frame is sampled: every frame's time, the keyframes, size, rotation.

`probe(path)` learns, for the first video stream, every frame's presentation
time (8 bytes a frame), which frames are keyframes, the real duration, and,
from one decoded keyframe, the size and the rotation (display-matrix side
data, or the old `rotate` tag). Two ways to the frame times:

* the container's index, where it has one that lists every frame: an MP4/MOV's
  sample tables. FFmpeg has read them when the file opens (PyAV's
  `stream.index_entries`: dts, keyframe and discard flags, byte ranges);
  `vlagent.video.mp4box` adds the composition offsets (pts = dts + offset) and
  durations FFmpeg does not expose. Nothing of the media data is read but
  the first and the last GOP's packets, which are demuxed to check the index
  against them. An index that disagrees with them, points past the end of the
  file (a truncated file with its moov first), or cannot be matched with
  FFmpeg's (edit lists that drop samples, fragmented files) is not used;
* the packet scan, otherwise and as the fallback: demux every packet of the
  stream without decoding it. It reads the whole file but touches no pixels.
  Matroska stays here: its cues hold no per-frame times (exact sampling and
  the frame count need every frame's), and not even every keyframe: FFmpeg's
  Matroska and WebM muxers write one cue per cluster (a 100-frame, 5-fps
  H.264 file with a keyframe every 2 s has 10 keyframes and 4 cues), so a
  keyframe list taken from the cues would sample other frames than the scan.

Both give the same `VideoInfo` for the same file (tests/test_video_sampling.py
checks it); `VideoInfo.source` says which was used and, for the scan, why.
"""

from __future__ import annotations

import os
import warnings
from array import array
from dataclasses import dataclass, field

import numpy as np

from vlagent.video.mp4box import read_track_tables

try:  # PyAV is the optional "video" extra.
    import av
except ImportError:  # pragma: no cover - exercised only without the extra
    av = None

# What demuxing a damaged file can raise: FFmpeg's errors, and PyAV's IndexError for a packet of a stream
# the file announces only midway (a corrupt MPEG-TS gains a new PID); either way the packets end there.
DEMUX_ERRORS: tuple[type[BaseException], ...] = ((av.FFmpegError, IndexError) if av is not None else ())

HEAD_PACKETS = 16  # packets compared with the index at the start (the first keyframe is decoded among them)
DECODE_TRIES = 16  # keyframes tried for the first decodable frame
CHUNK = 4096  # frames per step of array checks: temporaries stay small however long the video


class VideoError(Exception):
    """A video that cannot be sampled: missing, not a video, empty, corrupt, or a bad range."""


class VideoDecodeWarning(UserWarning):
    """Some frames of a video could not be decoded and were skipped."""


@dataclass(frozen=True)
class VideoInfo:
    """What the probe learned about the video stream (times in seconds)."""

    path: str
    codec: str
    width: int  # coded size, before rotation
    height: int
    rotation: int  # degrees counter-clockwise to turn frames upright: 0, 90, 180 or 270
    duration: float
    source_fps: float
    num_packets: int
    time_base: float
    origin_pts: int  # pts of t = 0
    keyframe_pts: tuple[int, ...]  # sorted
    frame_pts: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0, np.int64))  # every frame, sorted
    sample_aspect_ratio: float = 1.0  # pixel width / height (anamorphic video: != 1)
    reordered: bool = False  # decode order differs from presentation order (B-frames)
    source: str = "scan"  # "index" (the container's index) or "scan" (every packet demuxed)
    source_note: str = ""  # why the index was not used

    @property
    def display_size(self) -> tuple[int, int]:
        """(width, height) as the video is meant to be seen: square pixels, upright."""
        width = max(1, round(self.width * self.sample_aspect_ratio))
        return (self.height, width) if self.rotation in (90, 270) else (width, self.height)

    def seconds(self, pts: int) -> float:
        return (pts - self.origin_pts) * self.time_base

    def frames_between(self, start_pts: int, end_pts: int) -> int:
        """How many frames are presented in [start_pts, end_pts) (the one on screen at start included)."""
        first = max(0, int(np.searchsorted(self.frame_pts, start_pts, side="right")) - 1)
        last = int(np.searchsorted(self.frame_pts, end_pts, side="left"))
        return max(1, last - first)

    def frames_strictly_between(self, a: int | None, b: int) -> int:
        """How many frames have a < pts < b (a None: from the start)."""
        lo = 0 if a is None else int(np.searchsorted(self.frame_pts, a, side="right"))
        return max(0, int(np.searchsorted(self.frame_pts, b, side="left")) - lo)

    def shown_at(self, pts: int) -> int:
        """pts of the frame on screen at `pts` (the first frame for times before it)."""
        i = int(np.searchsorted(self.frame_pts, pts, side="right")) - 1
        return int(self.frame_pts[max(i, 0)])


def _require_av() -> None:
    if av is None:
        raise VideoError("PyAV is not installed; install the video extra: pip install 'vlagent[video]'")


def _open(path: str):
    if not os.path.exists(path):
        raise VideoError(f"video file not found: {path}")
    if not os.path.isfile(path):
        raise VideoError(f"not a file: {path}")
    if os.path.getsize(path) == 0:
        raise VideoError(f"video file is empty (0 bytes): {path}")
    try:
        # Tags are decoded leniently: a corrupt byte in a title must not make the frames unreadable.
        container = av.open(path, mode="r", metadata_errors="replace")
    except av.FFmpegError as exc:
        raise VideoError(
            f"cannot read {path} as a video (FFmpeg: {exc}); it is not a video, or it is truncated or corrupt"
        ) from None
    streams = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
    if not streams:
        kinds = sorted({s.type for s in container.streams}) or ["none"]
        container.close()
        raise VideoError(f"no video stream in {path} (streams found: {', '.join(kinds)})")
    stream = streams[0]
    if stream.codec_context is None:  # a codec FFmpeg does not know, or a damaged sample description
        container.close()
        raise VideoError(f"video stream of {path} has no decoder: its codec is unknown to FFmpeg, or the file is corrupt")
    stream.thread_type = "AUTO"  # frame + slice threads
    return container, stream


def _rotation_of(frame, stream) -> int:
    """Counter-clockwise degrees (0/90/180/270) that turn `frame` upright."""
    degrees = 0.0
    try:
        degrees = float(frame.rotation or 0)  # from the display matrix
    except (AttributeError, TypeError, ValueError):
        degrees = 0.0
    if degrees == 0 and "rotate" in stream.metadata:
        # Old-style tag: clockwise degrees.
        try:
            degrees = -float(stream.metadata["rotate"])
        except ValueError:
            degrees = 0.0
    return int(round(degrees / 90.0)) % 4 * 90


def probe(path: str | os.PathLike, *, use_index: bool = True) -> VideoInfo:
    """Learn the video stream's frames and keyframes: from the container's index where it
    lists every frame (MP4/MOV), else by demuxing (not decoding) every packet.
    `use_index=False` always scans."""
    _require_av()
    path = os.fspath(path)
    container, stream = _open(path)
    try:
        if stream.time_base is None:
            raise VideoError(f"video stream of {path} has no time base")
        note = "not asked to use the index"
        if use_index:
            scan, note = _index_scan(container, stream, path)
            if scan is not None:
                return _video_info(path, stream, scan, source="index")
            if _has_frame_index(container):  # the check demuxed and seeked: scan with a fresh demuxer
                container.close()
                container, stream = _open(path)
        scan = _packet_scan(container, stream, path)
        return _video_info(path, stream, scan, source="scan", note=note)
    finally:
        container.close()


@dataclass
class _Scan:
    """What the video stream's packets tell about it, known without decoding them."""

    keyframes: list[int] = field(default_factory=list)
    all_pts: array | np.ndarray = field(default_factory=lambda: array("q"))  # decode order; 8 bytes a frame
    num_packets: int = 0
    first_pts: int | None = None
    last_pts: int | None = None
    end_pts: int | None = None  # the latest pts + duration
    first_frame: object | None = None  # one decoded keyframe: its size and display matrix are the stream's
    decode_tries: int = 0
    last_packet: tuple[int, int] | None = None  # (pts, duration) of the last packet counted, in file order

    def add(self, packet, stream) -> None:
        pts = packet.pts if packet.pts is not None else packet.dts
        self.try_first_frame(packet, stream)
        if pts is None or packet.size == 0 or packet.is_discard:
            return  # flush packets, and frames an edit list hides
        self.num_packets += 1
        self.all_pts.append(pts)
        if packet.is_keyframe:
            self.keyframes.append(pts)
        self.first_pts = pts if self.first_pts is None else min(self.first_pts, pts)
        self.last_pts = pts if self.last_pts is None else max(self.last_pts, pts)
        end = pts + (packet.duration or 0)
        self.end_pts = end if self.end_pts is None else max(self.end_pts, end)
        self.last_packet = (pts, packet.duration or 0)

    def drop_last_packet(self) -> None:
        """Forget the last packet in file order (one the file's end cut short); the end moves to the latest
        remaining frame plus the dropped packet's duration."""
        pts, duration = self.last_packet
        at = len(self.all_pts) - 1 - self.all_pts[::-1].index(pts)
        del self.all_pts[at]
        if pts in self.keyframes:
            self.keyframes.remove(pts)
        self.num_packets -= 1
        self.last_packet = None
        if self.all_pts:
            self.first_pts, self.last_pts = min(self.all_pts), max(self.all_pts)
            self.end_pts = self.last_pts + duration

    def try_first_frame(self, packet, stream) -> None:
        """Decode one keyframe, drained at once (threads would hold it back), until one decodes."""
        if self.first_frame is not None or self.decode_tries >= DECODE_TRIES:
            return
        if not packet.is_keyframe or not packet.size:
            return
        self.decode_tries += 1
        try:
            frames = list(packet.decode()) + list(stream.codec_context.decode(None))
        except av.FFmpegError:
            frames = []
        if frames:
            self.first_frame = frames[0]
        stream.codec_context.flush_buffers()


def _packet_scan(container, stream, path: str) -> _Scan:
    scan = _Scan()
    try:
        for packet in container.demux(stream):
            scan.add(packet, stream)
    except DEMUX_ERRORS as exc:
        if scan.num_packets == 0:
            raise VideoError(f"cannot read the video stream of {path} (FFmpeg: {exc})") from None
        warnings.warn(f"{path}: demuxing stopped early ({exc}); using the first {scan.num_packets} packets",
                      VideoDecodeWarning, stacklevel=4)
    if _cut_mid_packet(container, path) and scan.num_packets > 1:
        scan.drop_last_packet()
    if scan.num_packets == 0:
        raise VideoError(f"video stream of {path} has no frames (zero-length or empty stream)")
    if scan.first_frame is None:
        raise VideoError(f"no frame of {path} could be decoded (corrupt or unsupported {stream.codec_context.name} stream)")
    if not scan.keyframes:
        raise VideoError(f"video stream of {path} has no keyframe (corrupt stream?)")
    return scan


TS_PACKET = 188


def _cut_mid_packet(container, path: str) -> bool:
    """An MPEG-TS file that is not a whole number of 188-byte packets was cut short: FFmpeg still hands
    over the last, incomplete video packet (unflagged), and its frame decodes as concealed garbage."""
    return "mpegts" in container.format.name.split(",") and os.path.getsize(path) % TS_PACKET != 0


def _has_frame_index(container) -> bool:
    return "mp4" in container.format.name.split(",")


def _index_scan(container, stream, path: str) -> tuple[_Scan | None, str]:
    """The packet scan's result read from an MP4's index, checked against the packets of the
    first and the last GOP; (None, why not) where it cannot be had or disagrees.

    Per-frame memory stays near the scan's (tests/test_video_sampling.py measures it): one
    int64 array of times, the tables' int32 durations and offsets, one byte of flags."""
    if not _has_frame_index(container):
        return None, f"no per-frame index in a {container.format.name} container"
    entries = getattr(stream, "index_entries", None)  # PyAV >= 14
    if entries is None:
        return None, "this PyAV does not expose the container's index"
    tables = read_track_tables(path, stream.id)
    if isinstance(tables, str):
        return None, tables
    n = len(entries)
    if n == 0 or n != tables.num_samples:
        return None, f"FFmpeg's index has {n} entries, the sample tables {tables.num_samples}"
    times = np.empty(n, np.int64)  # FFmpeg's dts, then (in place) the pts
    flags = np.empty(n, np.uint8)  # AVINDEX_KEYFRAME 1, AVINDEX_DISCARD_FRAME 2, and 4 here: an empty sample
    byte_end = 0
    for i, entry in enumerate(entries):
        times[i] = entry.timestamp
        flags[i] = (entry.flags & 3) | (4 if entry.size == 0 else 0)
        byte_end = max(byte_end, entry.pos + entry.size)
    if byte_end > os.path.getsize(path):
        return None, "the index points past the end of the file (truncated?)"
    if not _chunks_equal(times, tables.durations):
        return None, "FFmpeg's index times disagree with the stts table (edit list?)"
    index = _Index(entries, times, flags, tables)
    scan = _Scan()
    try:
        why = index.check_head(container, stream, scan) or index.check_tail(container, stream)
    except DEMUX_ERRORS as exc:
        why = f"demuxing to check the index failed ({exc})"
    if why is not None:
        return None, why
    if scan.first_frame is None:
        return None, "no keyframe among the first packets decoded"
    shown = (flags & 6) == 0  # as the scan: no empty packets, no frames an edit list hides
    keys = shown & ((flags & 1) == 1)
    if not keys.any():
        return None, "the index lists no shown keyframe"
    scan.all_pts = times if shown.all() else np.ascontiguousarray(times[shown])
    scan.keyframes = times[keys].tolist()
    scan.num_packets = int(shown.sum())
    scan.first_pts, scan.last_pts = int(scan.all_pts.min()), int(scan.all_pts.max())
    scan.end_pts = index.end_pts(shown)
    return scan, ""


def _sorted_unique(values: np.ndarray) -> np.ndarray:
    """np.unique without its first-call import of numpy.ma (~20 ms, in every fresh process)."""
    ordered = np.sort(values)
    if ordered.size < 2:
        return ordered
    keep = np.empty(ordered.size, bool)
    keep[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered if keep.all() else ordered[keep]


def _decreases(values: np.ndarray, chunk: int = CHUNK) -> bool:
    """Whether some value is below the one before it (chunked: no full-length temporaries)."""
    for s in range(0, len(values) - 1, chunk):
        e = min(s + chunk, len(values) - 1)
        if (values[s + 1 : e + 1] < values[s:e]).any():
            return True
    return False


def _chunks_equal(dts: np.ndarray, durations: np.ndarray, chunk: int = CHUNK) -> bool:
    """dts[i + 1] - dts[i] == durations[i] for all i, a chunk at a time (no full-length temporaries)."""
    for s in range(0, len(dts) - 1, chunk):
        e = min(s + chunk, len(dts) - 1)
        if not np.array_equal(dts[s + 1 : e + 1] - dts[s:e], durations[s:e]):
            return False
    return True


class _Index:
    """An MP4's per-frame index while it is checked against the file's packets."""

    def __init__(self, entries, times: np.ndarray, flags: np.ndarray, tables) -> None:
        self.entries = entries
        self.times = times  # dts until check_head learns the pts shift, pts after
        self.flags = flags
        self.offsets = tables.composition_offsets
        self.durations = tables.durations
        self.shift = 0  # FFmpeg's pts - (dts + composition offset): its dts shift for negative offsets
        self.tail_start = len(times)  # the last keyframe's entry, once check_tail has read the tail
        self.tail_durations: list[int] = []  # the tail packets' own durations

    def dts(self, i: int) -> int:
        return int(self.times[i]) - (0 if self.offsets is None else int(self.offsets[i])) - self.shift

    def same(self, packet, i: int) -> bool:
        if i >= len(self.times):
            return False
        flags = int(self.flags[i])
        return (packet.dts == self.dts(i) and packet.pts == int(self.times[i])
                and bool(packet.is_keyframe) == bool(flags & 1) and bool(packet.is_discard) == bool(flags & 2)
                and packet.size == self.entries[i].size)

    def check_head(self, container, stream, scan: _Scan) -> str | None:
        """The first packets must be the index's first entries; learns the pts shift from the first
        and decodes the first keyframe (as the scan does)."""
        n, i = len(self.times), 0
        for packet in container.demux(stream):
            if packet.size == 0 and packet.pts is None:
                continue  # the flush packet at the end
            if i == 0:
                if packet.pts is None or packet.dts != self.times[0]:
                    return "the first packet is not the index's first entry"
                self.shift = packet.pts - packet.dts - (0 if self.offsets is None else int(self.offsets[0]))
                if self.offsets is not None:
                    self.times += self.offsets  # dts -> pts, in place
                self.times += self.shift
            if not self.same(packet, i):
                return f"packet {i} of the file is not the index's entry {i}"
            scan.try_first_frame(packet, stream)
            i += 1
            if i >= min(n, HEAD_PACKETS) and scan.first_frame is not None:
                return None
            if i >= 4 * HEAD_PACKETS:
                return None  # no decodable keyframe yet: the caller leaves it to the packet scan
        return None if i == n else f"the file ends after {i} packets; the index lists {n}"

    def check_tail(self, container, stream) -> str | None:
        """From the last keyframe to the end, the packets must be exactly the index's last entries.
        Their durations are kept (FFmpeg may trim the last one to an edit list's end)."""
        n = len(self.times)
        last_key = int(np.flatnonzero(self.flags & 1)[-1])
        container.seek(int(self.times[last_key]), stream=stream, backward=True)  # MP4 seeks go by pts
        i = self.tail_start = last_key
        for packet in container.demux(stream):
            if packet.size == 0 and packet.pts is None:
                continue
            if i == last_key and packet.dts is not None and packet.dts < self.dts(last_key):
                continue  # landed on an earlier keyframe: read on to the last one
            if not self.same(packet, i):
                return f"after a seek to the last keyframe, packet {i} of the file is not the index's entry {i}"
            self.tail_durations.append(packet.duration or 0)
            i += 1
        return None if i == n else f"the file ends {n - i} packets before the index does (truncated?)"

    def end_pts(self, shown: np.ndarray, chunk: int = CHUNK) -> int:
        """The latest pts + duration of a shown frame, as the scan computes it from the packets:
        the tables' durations up to the last GOP, the packets' own in it."""
        ends = [int(t) + d for t, d, s in zip(self.times[self.tail_start :], self.tail_durations,
                                              shown[self.tail_start :]) if s]
        for s in range(0, self.tail_start, chunk):
            e = min(s + chunk, self.tail_start)
            part = (self.times[s:e] + self.durations[s:e])[shown[s:e]]
            if part.size:
                ends.append(int(part.max()))
        return max(ends)


def _video_info(path: str, stream, scan: _Scan, *, source: str, note: str = "") -> VideoInfo:
    """Duration, frame rate, size and rotation from a stream's scan and its headers."""
    origin = min(stream.start_time if stream.start_time is not None else scan.first_pts, scan.first_pts)
    time_base = float(stream.time_base)
    rate = float(stream.average_rate) if stream.average_rate else 0.0
    end_pts = scan.end_pts
    if end_pts == scan.last_pts:  # packets carry no durations: add one frame interval
        end_pts = scan.last_pts + (round(1 / (rate * time_base)) if rate > 0 else 0)
    duration = (end_pts - origin) * time_base
    if not duration > 0:
        raise VideoError(f"video stream of {path} has zero duration")
    if not rate > 0:
        rate = scan.num_packets / duration
    sar = stream.sample_aspect_ratio or stream.codec_context.sample_aspect_ratio
    decode_order = np.frombuffer(scan.all_pts, dtype=np.int64)
    reordered = _decreases(decode_order)
    return VideoInfo(
        path=path,
        codec=stream.codec_context.name,
        width=int(stream.codec_context.width or scan.first_frame.width),
        height=int(stream.codec_context.height or scan.first_frame.height),
        rotation=_rotation_of(scan.first_frame, stream),
        duration=duration,
        source_fps=rate,
        num_packets=scan.num_packets,
        time_base=time_base,
        origin_pts=int(origin),
        keyframe_pts=tuple(sorted(set(scan.keyframes))),
        frame_pts=_sorted_unique(decode_order),
        sample_aspect_ratio=float(sar) if sar and float(sar) > 0 else 1.0,
        reordered=reordered,
        source=source,
        source_note=note,
    )


__all__ = ["VideoError", "VideoDecodeWarning", "VideoInfo", "probe"]
