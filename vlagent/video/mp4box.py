"""A track's sample tables from an MP4/MOV `moov` box, read without touching the media data.

An MP4 lists every sample (frame) of a track in its `moov` box: decode-time
deltas (`stts`), composition offsets (`ctts`: pts - dts, non-zero with
B-frames), sync samples (`stss`: keyframes) and sizes (`stsz`/`stz2`).
FFmpeg reads these tables when it opens the file and builds its seek index
from them (PyAV: `stream.index_entries`, one entry per sample with its dts,
keyframe and discard flags, byte position and size, already shifted by the
edit list), but it exposes no presentation times. This module reads the
tables FFmpeg does not hand out: per-sample durations and composition
offsets (`vlagent.video.info.probe` joins them with FFmpeg's index).

Only the boxes on the way to the track are read: the top-level box headers
(mdat is skipped by seeking), then the `moov` payload. Anything unexpected
(no moov, a compressed or fragmented movie, a missing or malformed table)
gives a reason string instead of tables: the caller falls back to reading the
packets.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

import numpy as np

# moov holds every sample's tables: ~20 bytes a frame. Refuse absurd sizes rather than read them.
MAX_MOOV_BYTES = 512 * 2**20
_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts"}


@dataclass(frozen=True)
class TrackTables:
    """Per-sample tables of one track, in decode order (time units: the track's timescale)."""

    track_id: int
    timescale: int
    # int32 (not int64): the probe keeps the per-frame memory of a two-hour file small.
    durations: np.ndarray  # int32 [n]: stts delta of each sample (its packet duration)
    composition_offsets: np.ndarray | None  # int32 [n]: ctts offset of each sample (pts - dts); None: no ctts

    @property
    def num_samples(self) -> int:
        return int(self.durations.size)


def _boxes(data: bytes | memoryview, start: int, end: int):
    """(type, payload start, payload end) of the boxes in data[start:end]."""
    at = start
    while at + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, at)
        header = 8
        if size == 1:
            if at + 16 > end:
                raise ValueError("truncated 64-bit box header")
            size = struct.unpack_from(">Q", data, at + 8)[0]
            header = 16
        elif size == 0:
            size = end - at  # to the end of the enclosing box
        if size < header or at + size > end:
            raise ValueError(f"box {kind!r} at {at} has a bad size {size}")
        yield kind, at + header, at + size
        at += size


def _read_moov(path: str) -> bytes | str:
    """The moov payload, or the reason it cannot be had."""
    file_size = os.path.getsize(path)
    with open(path, "rb") as f:
        at = 0
        while at + 8 <= file_size:
            f.seek(at)
            head = f.read(16)
            if len(head) < 8:
                break
            size, kind = struct.unpack_from(">I4s", head)
            header = 8
            if size == 1:
                if len(head) < 16:
                    return "truncated box header"
                size, header = struct.unpack_from(">Q", head, 8)[0], 16
            elif size == 0:
                size = file_size - at
            if size < header:
                return f"bad top-level box size at byte {at}"
            if kind == b"moof":
                return "fragmented MP4 (moof boxes): samples are listed per fragment"
            if kind == b"moov":
                if at + size > file_size:
                    return "moov box runs past the end of the file"
                if size - header > MAX_MOOV_BYTES:
                    return f"moov box too large ({size} bytes)"
                f.seek(at + header)
                return f.read(size - header)
            at += size
    return "no moov box"


def _full_box(data, start: int) -> tuple[int, int]:
    """(version, payload start after version + flags)."""
    return data[start], start + 4


def _runs(data, start: int, end: int, dtype: str) -> np.ndarray:
    """The (count, value) runs of an stts or ctts box, int64 [k, 2] (expanded only once checked)."""
    _, at = _full_box(data, start)
    (count,) = struct.unpack_from(">I", data, at)
    if at + 4 + 8 * count > end:
        raise ValueError("sample table runs past its box")
    runs = np.frombuffer(data, dtype=dtype, count=2 * count, offset=at + 4).reshape(-1, 2).astype(np.int64)
    runs[:, 0] &= 0xFFFFFFFF  # counts are unsigned
    return runs


def _expand(runs: np.ndarray, what: str) -> np.ndarray:
    if runs.size and np.abs(runs[:, 1]).max() > np.iinfo(np.int32).max:
        raise ValueError(f"{what} value beyond 32 bits")
    return np.repeat(runs[:, 1].astype(np.int32), runs[:, 0])


def _sample_count(data, start: int) -> int:
    """stsz: sample_size then the count; stz2: reserved + field_size (4 bytes) then the count."""
    _, at = _full_box(data, start)
    return struct.unpack_from(">I", data, at + 4)[0]


def _track(data, start: int, end: int, found: dict | None = None) -> dict:
    """What one trak box says: id, handler, timescale and the sample tables found.
    (Recursion by a plain function: a nested one would keep `data` alive in a reference cycle.)"""
    found = {} if found is None else found
    for kind, ps, pe in _boxes(data, start, end):
        if kind in _CONTAINERS:
            _track(data, ps, pe, found)
        elif kind == b"tkhd":
            version, at = _full_box(data, ps)
            found["track_id"] = struct.unpack_from(">I", data, at + (16 if version == 1 else 8))[0]
        elif kind == b"mdhd":
            version, at = _full_box(data, ps)
            found["timescale"] = struct.unpack_from(">I", data, at + (16 if version == 1 else 8))[0]
        elif kind == b"hdlr":
            _, at = _full_box(data, ps)
            found["handler"] = bytes(data[at + 4 : at + 8])
        elif kind == b"stts":
            found["stts"] = _runs(data, ps, pe, ">u4")
        elif kind == b"ctts":
            # Offsets are signed in version 1; FFmpeg reads version 0 offsets as signed too.
            found["ctts"] = _runs(data, ps, pe, ">i4")
        elif kind in (b"stsz", b"stz2"):
            found["count"] = _sample_count(data, ps)
    return found


def read_track_tables(path: str | os.PathLike, track_id: int) -> TrackTables | str:
    """The sample tables of the track with this id (PyAV: `stream.id`), or why there are none."""
    path = os.fspath(path)
    try:
        moov = _read_moov(path)
        if isinstance(moov, str):
            return moov
        tracks = []
        for kind, ps, pe in _boxes(moov, 0, len(moov)):
            if kind == b"mvex":
                return "fragmented MP4 (mvex): samples are listed per fragment"
            if kind == b"cmov":
                return "compressed moov box"
            if kind == b"trak":
                tracks.append((ps, pe))
        for ps, pe in tracks:
            track = _track(moov, ps, pe)
            if track.get("track_id") == track_id:
                break
        else:
            return f"no track with id {track_id} in the moov box"
    except (ValueError, struct.error, OSError) as exc:
        return f"cannot parse the moov box ({exc})"
    if track.get("handler") != b"vide":
        return f"track {track_id} is not a video track"
    if "stts" not in track or "count" not in track or not track.get("timescale"):
        return f"track {track_id} lacks a sample table (stts, stsz or mdhd)"
    n = int(track["count"])
    for name in ("stts", "ctts"):
        if name in track and int(track[name][:, 0].sum()) != n:
            return f"{name} lists {int(track[name][:, 0].sum())} samples, stsz {n}"
    try:
        durations = _expand(track["stts"], "stts")
        offsets = _expand(track["ctts"], "ctts") if "ctts" in track else None
    except ValueError as exc:
        return str(exc)
    return TrackTables(track_id, int(track["timescale"]), durations, offsets)


__all__ = ["TrackTables", "read_track_tables", "MAX_MOOV_BYTES"]
