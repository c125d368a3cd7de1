"""Frame sampling on real PyAV-made videos whose frames show their own index."""

from __future__ import annotations

import os

import av
import numpy as np
import pytest

import video_fixtures as vf
from vlagent.video import VideoDecodeWarning, VideoError, probe, sample_frames
from vlagent.video.plan import (
    DEFAULT_MIN_PIXELS,
    FACTOR,
    make_plan,
    plan_frame_count,
    plan_resolution,
    plan_target_times,
)

SMALL = dict(max_pixels=128 * 96, min_pixels=64 * 64)  # keep test frames small


@pytest.fixture(scope="session")
def videos(tmp_path_factory) -> dict[str, vf.MadeVideo]:
    return vf.video_set(str(tmp_path_factory.mktemp("videos")))


@pytest.fixture(scope="session")
def long_video(tmp_path_factory) -> vf.MadeVideo:
    return vf.make_long_mp4(str(tmp_path_factory.mktemp("long") / "long.mp4"))


def keyframe_times(path: str) -> list[float]:
    """Keyframe presentation times, read independently of the sampler."""
    with av.open(path) as container:
        stream = container.streams.video[0]
        origin = stream.start_time or 0
        return sorted(
            float((p.pts - origin) * stream.time_base)
            for p in container.demux(stream)
            if p.pts is not None and p.is_keyframe
        )


def packets_from_keyframe_to(path: str, t: float) -> int:
    """Packets in decode order from the keyframe before the frame at `t` up to that frame's packet."""
    with av.open(path) as container:
        stream = container.streams.video[0]
        count = 0
        for packet in container.demux(stream):
            if packet.pts is None:
                continue
            if packet.is_keyframe and float(packet.pts * stream.time_base) <= t + 1e-9:
                count = 0  # a later keyframe, still not past the frame
            count += 1
            if abs(float(packet.pts * stream.time_base) - t) < 1e-9:
                return count
    raise AssertionError(f"no packet at {t}")


def assert_frames_match(video: vf.MadeVideo, sample) -> list[int]:
    """Each frame shows the index of the frame presented at its timestamp, at that exact time."""
    indices = [vf.read_index(frame) for frame in sample.frames]
    for index, t in zip(indices, sample.timestamps):
        assert index == video.index_at(t), f"frame at {t:.3f}s shows #{index}, expected #{video.index_at(t)}"
        assert t == pytest.approx(video.times[index], abs=1e-6), "timestamp is not the frame's presentation time"
    assert sample.timestamps == sorted(sample.timestamps)
    assert len(set(sample.timestamps)) == len(sample.timestamps), "a frame was returned twice"
    return indices


def test_index_code_survives_resize_and_detects_rotation():
    for i in (0, 1, 5, 1234, vf.MAX_INDEX):
        img = vf.index_frame(i, 64, 48)
        assert vf.read_index(img) == i
        big = np.repeat(np.repeat(img, 3, axis=0), 3, axis=1)
        assert vf.read_index(big) == i
    with pytest.raises(ValueError):
        vf.read_index(np.rot90(vf.index_frame(7, 64, 48)))
    with pytest.raises(ValueError):
        vf.read_index(vf.index_frame(7, 64, 48)[..., ::-1])  # BGR


@pytest.mark.parametrize("name", ["h264", "ts", "vp9", "mjpeg", "vfr", "audio+video", "rot90", "rot270"])
def test_exact_mode_returns_the_frame_on_screen_at_each_target(videos, name):
    video = videos[name]
    sample = sample_frames(video.path, num_frames=10, mode="exact", **SMALL)
    indices = assert_frames_match(video, sample)
    assert len(sample) == 10 and sample.frames.shape[0] == 10
    # The frame returned for each target is the one on screen at the target time.
    assert indices == [video.index_at(t) for t in sample.plan.target_times]
    assert sample.frames.dtype == np.uint8 and sample.frames.shape[1:] == (sample.plan.height, sample.plan.width, 3)


@pytest.mark.parametrize("name", ["h264", "ts", "vp9", "mjpeg", "vfr", "audio+video", "rot90"])
def test_keyframe_mode_returns_nearest_keyframes_only(videos, name):
    video = videos[name]
    keys = keyframe_times(video.path)
    sample = sample_frames(video.path, num_frames=8, mode="keyframe", **SMALL)
    assert_frames_match(video, sample)
    for t in sample.timestamps:
        assert min(abs(t - k) for k in keys) < 1e-6, f"{t} is not a keyframe time"
    # Every target got a nearest keyframe (ties between two keyframes may go either way).
    for target in sample.plan.target_times:
        best = min(abs(k - target) for k in keys)
        assert min(abs(t - target) for t in sample.timestamps) <= best + 1e-6
    assert len(sample) <= len(sample.plan.target_times)
    assert sample.frames.shape[0] == len(sample) == sample.plan.num_frames
    assert sample.stats["decoded_frames"] == len(sample), "keyframe mode decoded more than the keyframes it returns"


@pytest.mark.parametrize("mode", ["exact", "keyframe"])
def test_frames_look_like_a_plain_rgb_resize(videos, mode):
    """Scaling in YUV, then converting to RGB, changes the work, not the picture."""
    from PIL import Image

    video = videos["h264"]
    sample = sample_frames(video.path, num_frames=4, mode=mode, max_pixels=128 * 96, min_pixels=96 * 64)
    size = (sample.plan.width, sample.plan.height)
    assert size != (video.width, video.height)  # a real resize
    with av.open(video.path) as container:
        stream = container.streams.video[0]
        full = {round(float(f.pts * stream.time_base), 6): f.to_ndarray(format="rgb24") for f in container.decode(stream)}
    for frame, t in zip(sample.frames, sample.timestamps):
        reference = np.asarray(Image.fromarray(full[round(t, 6)]).resize(size, Image.Resampling.BICUBIC))
        diff = np.abs(frame.astype(int) - reference.astype(int))
        assert diff.mean() < 2 and np.percentile(diff, 99) < 30, (t, diff.mean())  # a neighbour: > 10, ~200


def test_rotation_metadata_makes_frames_upright(videos):
    for name, rotation in (("rot90", 90), ("rot270", 270)):
        video = videos[name]
        info = probe(video.path)
        assert info.rotation == rotation
        assert (info.width, info.height) == (video.height, video.width)  # stored landscape
        assert info.display_size == (video.width, video.height)  # shown portrait
        sample = sample_frames(video.path, num_frames=4, **SMALL)
        assert sample.frames.shape[1] > sample.frames.shape[2], "portrait video came out landscape"
        assert_frames_match(video, sample)  # read_index refuses frames that are not upright


def test_anamorphic_video_is_shown_with_square_pixels(tmp_path):
    import fractions

    # Stored 64x48 with pixels twice as wide as tall: meant to be seen at 128x48.
    video = vf.write_video(
        str(tmp_path / "sar.mp4"), codec="libx264", width=64, height=48, num_frames=20,
        sample_aspect_ratio=fractions.Fraction(2, 1), options=vf.X264_FAST,
    )
    info = probe(video.path)
    assert info.display_size == (128, 48)
    sample = sample_frames(video.path, num_frames=4, max_pixels=256 * 96, min_pixels=FACTOR * FACTOR)
    assert sample.plan.source_width == 128
    assert sample.frames.shape[2] >= 2 * sample.frames.shape[1]  # wide, as displayed (64x48 stored)
    assert_frames_match(video, sample)


def test_legacy_rotate_tag_is_honoured():
    # FFmpeg 8's MP4 muxer drops a written `rotate` tag (PyAV 18 writes the display
    # matrix instead, as the fixtures do), so the fallback is checked on stand-ins.
    from types import SimpleNamespace

    from vlagent.video.sampling import _rotation_of

    plain = SimpleNamespace(rotation=0)
    assert _rotation_of(plain, SimpleNamespace(metadata={"rotate": "90"})) == 270  # 90 clockwise
    assert _rotation_of(plain, SimpleNamespace(metadata={"rotate": "180"})) == 180
    assert _rotation_of(plain, SimpleNamespace(metadata={})) == 0
    assert _rotation_of(SimpleNamespace(rotation=-90), SimpleNamespace(metadata={"rotate": "90"})) == 270
    assert _rotation_of(SimpleNamespace(rotation=90.0), SimpleNamespace(metadata={})) == 90


def test_fps_sampling_follows_the_plan(videos):
    video = videos["h264"]  # 12 s at 10 fps
    sample = sample_frames(video.path, fps=2, **SMALL)
    assert len(sample) == 24 == sample.plan.num_frames
    assert sample.duration == pytest.approx(12.0)
    assert sample.source_fps == pytest.approx(10.0)
    assert_frames_match(video, sample)
    capped = sample_frames(video.path, fps=2, max_frames=9, **SMALL)
    assert len(capped) == 8  # rounded down to an even count
    low = sample_frames(video.path, fps=0.1, **SMALL)
    assert len(low) == 4  # min_frames


def test_token_budget_sets_the_frame_size(videos):
    video = videos["rot90"]  # 96x160 upright: 15 tokens a temporal patch at full size
    total = 16 * FACTOR * FACTOR  # 16 tokens for 8 frames = 4 temporal patches of 4 tokens
    sample = sample_frames(video.path, num_frames=8, total_pixels=total, min_pixels=FACTOR * FACTOR)
    assert sample.plan.num_tokens * FACTOR * FACTOR <= total
    assert sample.frames.shape == (8, sample.plan.height, sample.plan.width, 3)
    assert sample.plan.height % FACTOR == 0 and sample.plan.width % FACTOR == 0
    bigger = sample_frames(video.path, num_frames=8, total_pixels=4 * total, min_pixels=FACTOR * FACTOR)
    assert bigger.plan.num_tokens > sample.plan.num_tokens
    assert_frames_match(video, sample)


def test_range_limits_the_samples(videos):
    video = videos["vfr"]
    for mode in ("exact", "keyframe"):
        sample = sample_frames(video.path, num_frames=6, start=2.0, end=6.0, mode=mode, **SMALL)
        assert_frames_match(video, sample)
        if mode == "exact":
            # Each frame is on screen somewhere inside the range.
            assert all(video.index_at(2.0) <= vf.read_index(f) <= video.index_at(6.0) for f in sample.frames)
        else:
            assert all(2.0 <= t < 6.0 for t in sample.timestamps)
    assert sample_frames(video.path, num_frames=6, start=2.0, end=6.0, **SMALL).plan.target_times[0] == pytest.approx(2 + 4 / 12)


def test_dense_exact_sampling_decodes_each_frame_once(videos):
    video = videos["h264"]  # B-frames: decode order differs from display order
    sample = sample_frames(video.path, fps=10, max_frames=1000, **SMALL)
    assert len(sample) == video.num_frames
    assert vf.read_index(sample.frames[0]) == 0 and [vf.read_index(f) for f in sample.frames] == list(range(video.num_frames))
    assert sample.stats["seeks"] == 1
    assert sample.stats["decoded_frames"] == video.num_frames
    # Whatever the count, no frame is decoded twice (non-reference skipping off, to count them all).
    for count in (5, 13, 24, 60, 119):
        sample = sample_frames(video.path, num_frames=count, skip_nonref=False, **SMALL)
        assert sample.stats["decoded_frames"] <= video.num_frames
        assert sample.stats["packets_read"] <= video.num_frames + 1  # + the final flush packet


def test_targets_in_separate_gops_skip_the_gops_between(videos):
    video = videos["h264"]  # keyframe every 10 frames, 12 GOPs
    # strategy="seek": the seeking path's own work (at 64x48 "auto" decodes straight through;
    # see the planner tests below).
    sample = sample_frames(video.path, num_frames=2, strategy="seek", **SMALL)  # targets at 3 s and 9 s
    assert_frames_match(video, sample)
    assert sample.stats["seeks"] == 2
    assert sample.stats["decoded_frames"] <= 2 * 10 + 4  # two partial GOPs (+ decoder delay)
    # The decoder is drained after each wanted frame's packet: nothing is read past it
    # (frame threads and B-frame reordering would otherwise be fed packets the seek flushes).
    assert sample.stats["packets_read"] == sum(packets_from_keyframe_to(video.path, t) for t in sample.timestamps)


def test_skipping_unneeded_nonreference_frames_changes_only_the_work(videos):
    saved = 0
    for name in ("h264", "vfr"):  # both have B-frames
        for count in (3, 10):
            # one plan for both (the planner weighs skipped frames, so "auto" may plan them differently)
            fast = sample_frames(videos[name].path, num_frames=count, strategy="straight", **SMALL)
            full = sample_frames(videos[name].path, num_frames=count, skip_nonref=False, strategy="straight", **SMALL)
            assert fast.timestamps == full.timestamps
            assert np.array_equal(fast.frames, full.frames)
            assert fast.stats["decoded_frames"] <= full.stats["decoded_frames"]
            saved += full.stats["decoded_frames"] - fast.stats["decoded_frames"]
    assert saved > 0


def test_intra_only_video_decodes_just_the_wanted_frames(videos):
    sample = sample_frames(videos["mjpeg"].path, num_frames=5, strategy="seek", **SMALL)
    assert_frames_match(videos["mjpeg"], sample)
    assert sample.stats["decoded_frames"] == 5


def test_long_video_exact_decodes_a_small_fraction(long_video):
    info = probe(long_video.path)
    assert info.duration == pytest.approx(long_video.duration)
    assert info.duration > 2 * 3600
    assert info.num_packets == long_video.num_frames
    sample = sample_frames(long_video.path, max_frames=64, min_pixels=FACTOR * FACTOR, max_pixels=128 * 96)
    assert len(sample) == 64
    assert_frames_match(long_video, sample)
    assert sample.stats["decoded_frames"] < long_video.num_frames / 10
    keys = sample_frames(long_video.path, max_frames=64, mode="keyframe", min_pixels=FACTOR * FACTOR, max_pixels=128 * 96)
    assert_frames_match(long_video, keys)
    assert all(round(t) % 10 == 0 for t in keys.timestamps)
    assert keys.stats["decoded_frames"] == len(keys) == 64


def test_progress_is_reported(videos):
    calls = []
    sample = sample_frames(videos["mjpeg"].path, num_frames=6, progress=lambda d, t: calls.append((d, t)), **SMALL)
    assert calls == [(i, 6) for i in range(1, 7)] and len(sample) == 6


# ---------------------------------------------------------------------------- plan


def test_frame_count_rules():
    assert plan_frame_count(100.0, 3000, fps=2) == 200
    assert plan_frame_count(7200.0, 216000) == 768  # default 2 fps, capped at max_frames
    assert plan_frame_count(1.0, 30, fps=2) == 4  # min_frames
    assert plan_frame_count(10.0, 300, fps=2, max_frames=7) == 6  # even
    assert plan_frame_count(10.0, 300, fps=0.35) == 4
    assert plan_frame_count(10.0, 3, fps=2) == 2  # no more than the frames there are, even
    assert plan_frame_count(1.0, 1, fps=2) == 1  # a single-frame range
    assert plan_frame_count(10.0, 300, num_frames=7) == 7  # an explicit count is kept
    assert plan_frame_count(10.0, 5, num_frames=7) == 5
    with pytest.raises(ValueError):
        plan_frame_count(10.0, 300, fps=2, num_frames=4)
    with pytest.raises(ValueError):
        plan_frame_count(10.0, 300, fps=0)
    with pytest.raises(ValueError):
        plan_frame_count(10.0, 300, num_frames=0)
    assert plan_target_times(10.0, 20.0, 4) == (11.25, 13.75, 16.25, 18.75)


def test_resolution_rules_follow_pixel_and_token_budgets():
    w, h = plan_resolution(1920, 1080, 64)
    assert w % FACTOR == 0 and h % FACTOR == 0
    assert w * h <= 768 * FACTOR * FACTOR and abs(w / h - 16 / 9) < 0.1
    # A total budget of 10k tokens over 768 frames (384 temporal patches).
    total = 10_000 * FACTOR * FACTOR
    w2, h2 = plan_resolution(1920, 1080, 768, total_pixels=total)
    assert w2 * h2 <= max(total * 2 / 768, DEFAULT_MIN_PIXELS * 1.05)
    assert w2 * h2 < w * h
    # Explicit max_pixels below the default minimum still wins.
    w3, h3 = plan_resolution(1920, 1080, 8, max_pixels=64 * 64 * 2)
    assert w3 * h3 <= 64 * 64 * 2 and w3 % FACTOR == 0
    # Small sources are scaled up to the minimum, like Qwen's processor.
    w4, h4 = plan_resolution(64, 48, 8)
    assert w4 * h4 >= DEFAULT_MIN_PIXELS


def test_plan_token_count():
    plan = make_plan(duration=60, source_fps=30, source_width=1280, source_height=720, start=0, end=60, fps=2, max_pixels=640 * 360)
    assert plan.num_frames == 120
    assert plan.tokens_per_patch == (plan.width // 32) * (plan.height // 32)
    assert plan.num_tokens == 60 * plan.tokens_per_patch
    odd = make_plan(duration=60, source_fps=30, source_width=1280, source_height=720, start=0, end=60, num_frames=5)
    assert odd.temporal_patches == 3


# ---------------------------------------------------------------------------- bad input


def test_bad_inputs_raise_video_error(tmp_path, videos):
    with pytest.raises(VideoError, match="not found"):
        sample_frames(tmp_path / "missing.mp4")
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    with pytest.raises(VideoError, match="cannot read"):
        sample_frames(text)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(VideoError, match="empty"):
        sample_frames(empty)
    audio = vf.make_audio_only(str(tmp_path / "audio.m4a"))
    with pytest.raises(VideoError, match="no video stream.*audio"):
        sample_frames(audio)
    zero = vf.make_zero_length_avi(str(tmp_path / "zero.avi"))
    with pytest.raises(VideoError, match="no frames"):
        sample_frames(zero)
    with pytest.raises(VideoError, match="not a file"):
        sample_frames(tmp_path)
    path = videos["h264"].path  # 12 s
    with pytest.raises(VideoError, match="start 20 s is outside"):
        sample_frames(path, start=20)
    with pytest.raises(VideoError, match="past the end"):
        sample_frames(path, start=2, end=30)
    with pytest.raises(VideoError, match="empty range"):
        sample_frames(path, start=5, end=5)
    with pytest.raises(VideoError, match="outside"):
        sample_frames(path, start=-1)
    with pytest.raises(ValueError, match="mode"):
        sample_frames(path, mode="fast")
    with pytest.raises(ValueError, match="either fps or num_frames"):
        sample_frames(path, fps=1, num_frames=4)


def test_keyframe_mode_with_no_keyframe_in_range(videos):
    with pytest.raises(VideoError, match="no keyframe"):
        sample_frames(videos["h264"].path, start=0.1, end=0.5, mode="keyframe", num_frames=2)


def test_corrupted_frames_are_skipped_with_a_warning(tmp_path):
    video = vf.make_h264_mp4(str(tmp_path / "good.mp4"))
    # MP4 puts its index (moov) at the end: damage the frame data in the middle.
    bad = vf.corrupt_middle(video.path, str(tmp_path / "bad.mp4"), fraction=0.4, length=600)
    with pytest.warns(VideoDecodeWarning, match="failed to decode"):
        sample = sample_frames(bad, fps=10, max_frames=1000, **SMALL)
    assert sample.stats["decode_errors"] > 0
    assert 0 < len(sample) < video.num_frames  # the undecodable frames are missing
    readable = []
    for frame, t in zip(sample.frames, sample.timestamps):
        try:
            readable.append(vf.read_index(frame) == video.index_at(t))
        except ValueError:
            readable.append(False)  # damaged pixels
    assert sum(readable) >= 0.8 * len(sample)
    # Frames before the damage are all intact and in place.
    assert all(readable[:20])


def test_a_stream_with_no_decodable_frame_gives_a_clear_error(tmp_path):
    import struct

    video = vf.make_mjpeg_avi(str(tmp_path / "good.avi"), num_frames=20)
    data = bytearray(open(video.path, "rb").read())
    # Overwrite the payload of every frame chunk ("00dc") between 'movi' and the index with noise.
    rng = np.random.default_rng(0)
    at, end, damaged = data.find(b"movi"), data.rfind(b"idx1"), 0
    while (at := data.find(b"00dc", at)) != -1 and at < end:
        size = struct.unpack_from("<I", data, at + 4)[0]
        data[at + 8 : at + 8 + size] = rng.integers(0, 256, size=size, dtype=np.uint8).tobytes()
        at, damaged = at + 8 + size, damaged + 1
    assert damaged == video.num_frames
    bad = tmp_path / "bad.avi"
    bad.write_bytes(bytes(data))
    with pytest.raises(VideoError, match="no frame of .* could be decoded .*corrupt"):
        sample_frames(bad, num_frames=4)


def test_a_stream_with_an_unknown_codec_gives_a_clear_error(tmp_path):
    # A damaged MP4 sample description (the codec's four-character code overwritten): FFmpeg opens
    # the file, but the stream has no decoder at all.
    video = vf.make_h264_mp4(str(tmp_path / "good.mp4"))
    data = bytearray(open(video.path, "rb").read())
    at = data.find(b"avc1", data.find(b"stsd"))
    assert at > 0
    data[at : at + 4] = b"zzzz"
    bad = tmp_path / "unknown.mp4"
    bad.write_bytes(bytes(data))
    for mode in ("exact", "keyframe"):
        with pytest.raises(VideoError, match="has no decoder: its codec is unknown to FFmpeg, or the file is corrupt"):
            sample_frames(bad, num_frames=4, mode=mode)


def test_an_mpegts_cut_inside_a_keyframe_gives_no_concealed_frame(tmp_path):
    # MPEG-TS has no index and no checksum over a PES: FFmpeg hands over the cut last packet unflagged,
    # and it decodes as concealed garbage. A size that is not a whole number of 188-byte TS packets
    # tells the file was cut, and the last packet is left out.
    import av

    video = vf.make_h264_ts(str(tmp_path / "full.ts"))
    with av.open(video.path) as container:
        # a keyframe whose data, after the TS and PES headers, runs into a second 188-byte TS packet
        key = [p for p in container.demux(container.streams.video[0]) if p.is_keyframe and p.size >= 155][-1]
        at = key.pos
    data = open(video.path, "rb").read()
    cut = tmp_path / "cut.ts"
    cut.write_bytes(data[: at + 188 + 61])  # inside that second TS packet, which FFmpeg then drops
    assert cut.stat().st_size % 188 != 0
    sample = sample_frames(cut, num_frames=64, mode="keyframe", **SMALL)
    assert_frames_match(video, sample)
    assert sample.timestamps[-1] < video.times[-1]
    whole = sample_frames(video.path, num_frames=64, mode="keyframe", **SMALL)
    assert whole.timestamps[: len(sample.timestamps)] == sample.timestamps


def test_truncated_files(tmp_path):
    # Matroska keeps what it has: the sample covers the frames that are there.
    video = vf.make_vp9_webm(str(tmp_path / "full.webm"))
    data = open(video.path, "rb").read()
    cut = tmp_path / "cut.webm"
    cut.write_bytes(data[: len(data) // 2])
    sample = sample_frames(cut, num_frames=6, **SMALL)
    assert 1.0 < sample.duration < video.duration - 1.0
    assert_frames_match(video, sample)
    with pytest.raises(VideoError, match="past the end"):
        sample_frames(cut, start=0, end=video.duration)
    # MP4 writes its index last: without it the file cannot be read at all.
    mp4 = vf.make_h264_mp4(str(tmp_path / "full.mp4"))
    data = open(mp4.path, "rb").read()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoError, match="truncated or corrupt"):
        sample_frames(cut)


def test_damaged_index_gives_a_clear_error(tmp_path):
    video = vf.make_h264_mp4(str(tmp_path / "good.mp4"))
    size = os.path.getsize(video.path)
    data = bytearray(open(video.path, "rb").read())
    at = data.rfind(b"moov")
    assert at > 0
    data[at - 4 : at + 64] = b"\xff" * 68
    bad = tmp_path / "bad_moov.mp4"
    bad.write_bytes(bytes(data))
    assert os.path.getsize(bad) == size
    with pytest.raises(VideoError, match="cannot read"):
        sample_frames(bad)


def test_memory_follows_the_output_not_the_video_length(tmp_path, long_video):
    """Python-side peak memory of sampling: the output array plus the probe's
    8 bytes per frame; never the decoded frames or demuxed packets."""
    import mmap
    import tracemalloc

    short = vf.write_video(
        str(tmp_path / "short.mp4"), codec="libx264", width=long_video.width, height=long_video.height,
        num_frames=600, fps=1, gop=10, options={"preset": "ultrafast"},
    )
    assert long_video.num_frames > 10 * short.num_frames
    # A small output, so that any per-frame state of the sampler would stand out.
    settings = dict(num_frames=16, min_pixels=FACTOR * FACTOR, max_pixels=2 * FACTOR * FACTOR)
    sample_frames(short.path, **settings)  # first-use allocations (imports, codec tables) are not growth
    for mode in ("exact", "keyframe"):
        extra = {}
        for video in (short, long_video):
            tracemalloc.start()
            try:
                sample = sample_frames(video.path, mode=mode, **settings)
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            assert len(sample) >= 14
            assert_frames_match(video, sample)
            # The output array has a row per kept frame; where MAP_POPULATE exists
            # it is an mmap, which tracemalloc does not see.
            output = 0 if hasattr(mmap, "MAP_POPULATE") else sample.frames.nbytes
            extra[video.num_frames] = peak - output
        # 12x the frames costs at most ~32 bytes per extra frame (the probe's pts index
        # and keyframe list), far less than one kept Python object per packet or frame.
        growth = extra[long_video.num_frames] - extra[short.num_frames]
        assert growth <= 32 * (long_video.num_frames - short.num_frames), (mode, extra)
        assert extra[long_video.num_frames] <= 256 * 1024 + 32 * long_video.num_frames, (mode, extra)


# ---------------------------------------------------------------------------- probe: index vs packet scan


def remux_mp4(src: str, dst: str, movflags: str) -> str:
    """Copy an MP4's video packets into a new MP4 with these movflags (faststart: moov first;
    frag_keyframe+empty_moov: a fragmented file whose moov lists no samples)."""
    with av.open(src) as source, av.open(dst, "w", options={"movflags": movflags}) as out:
        stream = source.streams.video[0]
        target = out.add_stream_from_template(stream)
        for packet in source.demux(stream):
            if packet.dts is not None:
                packet.stream = target
                out.mux(packet)
    return dst


def assert_same_info(a, b) -> None:
    """Two probes of one file agree on everything but how they were made."""
    import dataclasses

    for f in dataclasses.fields(a):
        if f.name in ("source", "source_note"):
            continue
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray):
            assert np.array_equal(x, y), f.name
        else:
            assert x == y, (f.name, x, y)


@pytest.mark.parametrize("name", ["h264", "vfr", "audio+video", "rot90", "rot270"])
def test_mp4_index_gives_the_packet_scans_result(videos, name):
    indexed, scanned = probe(videos[name].path), probe(videos[name].path, use_index=False)
    assert indexed.source == "index" and indexed.source_note == ""
    assert scanned.source == "scan"
    assert_same_info(indexed, scanned)
    # B-frames (decode order is not presentation order) but in the zerolatency rotated fixtures
    assert indexed.reordered == (not name.startswith("rot"))


def test_mp4_index_of_a_long_file_and_a_faststart_file(long_video, tmp_path):
    indexed = probe(long_video.path)
    assert indexed.source == "index"
    assert_same_info(indexed, probe(long_video.path, use_index=False))
    assert not indexed.reordered  # ultrafast: no B-frames
    fast = remux_mp4(long_video.path, str(tmp_path / "faststart.mp4"), "faststart")
    assert open(fast, "rb").read(64).find(b"moov") > 0  # the index before the media data
    assert probe(fast).source == "index"
    assert_same_info(probe(fast), indexed.__class__(**{**indexed.__dict__, "path": fast}))


@pytest.mark.parametrize("name,why", [("ts", "mpegts"), ("vp9", "matroska"), ("mjpeg", "avi")])
def test_containers_without_a_frame_index_are_scanned(videos, name, why):
    info = probe(videos[name].path)
    assert info.source == "scan" and why in info.source_note
    assert info.num_packets == videos[name].num_frames
    assert info.reordered == (name == "ts")  # the MPEG-TS fixture has B-frames


def test_fragmented_and_truncated_mp4s_fall_back_to_the_scan(videos, tmp_path):
    video = videos["h264"]
    fragmented = remux_mp4(video.path, str(tmp_path / "frag.mp4"), "frag_keyframe+empty_moov")
    info = probe(fragmented)
    assert info.source == "scan" and "fragmented" in info.source_note
    assert info.num_packets == video.num_frames
    assert_frames_match(video, sample_frames(fragmented, num_frames=7, **SMALL))
    # moov first, media data cut: the index promises frames the file no longer has.
    fast = remux_mp4(video.path, str(tmp_path / "fast.mp4"), "faststart")
    data = open(fast, "rb").read()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 2 // 3])
    info = probe(cut)
    assert info.source == "scan" and "truncated" in info.source_note
    assert_same_info(info, probe(cut, use_index=False))
    assert 10 < info.num_packets < video.num_frames and info.duration < video.duration
    sample = sample_frames(cut, num_frames=5, **SMALL)
    assert_frames_match(video, sample)
    assert sample.timestamps[-1] < info.duration


def test_mp4_box_reader_reasons(tmp_path, videos):
    from vlagent.video.mp4box import read_track_tables

    tables = read_track_tables(videos["h264"].path, 1)
    assert tables.num_samples == videos["h264"].num_frames and tables.composition_offsets is not None
    assert "no moov" in read_track_tables(videos["vp9"].path, 1)
    assert "no track with id 7" in read_track_tables(videos["h264"].path, 7)
    assert "not a video track" in read_track_tables(videos["audio+video"].path, 1)  # the AAC track
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00\x00\x00\x10moov\x00\x00\x00\xffstbl")  # a box larger than its parent
    assert "cannot parse" in read_track_tables(junk, 1)


# ---------------------------------------------------------------------------- the decode planner


def synthetic_info(*, frames: int, gop: int, width: int, height: int, reordered: bool = True):
    """A VideoInfo of a CFR video with a keyframe every `gop` frames (pts = frame index)."""
    from vlagent.video import VideoInfo

    return VideoInfo(
        path="synthetic.mp4", codec="h264", width=width, height=height, rotation=0, duration=frames / 10,
        source_fps=10.0, num_packets=frames, time_base=0.1, origin_pts=0,
        keyframe_pts=tuple(range(0, frames, gop)), frame_pts=np.arange(frames, dtype=np.int64), reordered=reordered,
    )


def test_planner_decodes_dense_wants_straight_and_seeks_for_sparse_ones():
    from vlagent.video.decode_plan import estimate_costs, plan_decoding

    info = synthetic_info(frames=36_000, gop=50, width=640, height=360)
    costs = estimate_costs(info)
    dense = list(range(7, 36_000, 5))  # ten wanted frames a GOP
    plan = plan_decoding(info, dense, costs)
    assert plan.seeks == 1 and all(plan.straight_after)
    sparse = list(range(7, 36_000, 50 * 40))  # one wanted frame every 40 GOPs
    plan = plan_decoding(info, sparse, costs)
    assert plan.seeks == len(sparse) and not any(plan.straight_after)
    assert plan.cost_s < plan.straight_cost_s / 10


def test_planner_weighs_resolution_and_the_frames_a_seek_skips():
    from vlagent.video.decode_plan import estimate_costs, plan_decoding

    # One wanted frame a GOP, 5 frames after its keyframe: a seek skips the other 44.
    wanted = list(range(5, 3_000, 50))
    small = synthetic_info(frames=3_000, gop=50, width=64, height=48)
    big = synthetic_info(frames=3_000, gop=50, width=1920, height=1080)
    assert plan_decoding(small, wanted, estimate_costs(small)).seeks == 1  # tiny frames: cheaper than a seek
    assert plan_decoding(big, wanted, estimate_costs(big)).seeks == len(wanted)  # 1080p: seek past them
    # Wanted frames near their GOP's end leave few frames for a seek to skip: decode on.
    mid = synthetic_info(frames=3_000, gop=50, width=640, height=360)
    near_end = list(range(45, 3_000, 50))
    far = list(range(2, 3_000, 50))
    assert plan_decoding(mid, near_end, estimate_costs(mid)).seeks == 1
    assert plan_decoding(mid, far, estimate_costs(mid)).seeks == len(far)
    # Without B-frames (or without non-reference skipping) every frame on the way is decoded.
    flat = synthetic_info(frames=3_000, gop=50, width=640, height=360, reordered=False)
    assert estimate_costs(flat).reference_share == 1.0 == estimate_costs(mid, skip_nonref=False).reference_share
    assert estimate_costs(mid).on_the_way_s(10) < estimate_costs(flat).on_the_way_s(10)


def test_planned_cost_is_never_above_either_pure_strategy():
    from vlagent.video.decode_plan import estimate_costs, plan_decoding

    rng = np.random.default_rng(0)
    for gop, width in ((12, 64), (50, 640), (250, 1280), (30, 1920)):
        info = synthetic_info(frames=20_000, gop=gop, width=width, height=width * 9 // 16)
        costs = estimate_costs(info)
        for count in (1, 2, 10, 100, 1_000, 8_000):
            wanted = sorted(set(rng.integers(0, 20_000, count).tolist()))
            plans = {s: plan_decoding(info, wanted, costs, s) for s in ("auto", "seek", "straight")}
            auto = plans["auto"]
            assert auto.cost_s <= min(auto.seek_cost_s, auto.straight_cost_s) + 1e-12
            assert plans["seek"].cost_s == pytest.approx(auto.seek_cost_s)
            assert plans["straight"].cost_s == pytest.approx(auto.straight_cost_s)
            assert plans["straight"].seeks == 1 and auto.seeks <= plans["seek"].seeks
    with pytest.raises(ValueError, match="strategy"):
        plan_decoding(info, [1, 2], costs, "fastest")


def several_videos(folder: str) -> dict[str, vf.MadeVideo]:
    """H.264 with B-frames at several GOP sizes and frame rates, plus VFR and MPEG-TS."""
    p = lambda name: os.path.join(folder, name)  # noqa: E731
    return {
        "gop5_10fps": vf.make_h264_mp4(p("gop5.mp4"), num_frames=90, fps=10, gop=5),
        "gop25_30fps": vf.make_h264_mp4(p("gop25.mp4"), num_frames=150, fps=30, gop=25),
        "gop60_25fps": vf.make_h264_mp4(p("gop60.mp4"), num_frames=180, fps=25, gop=60, width=192, height=108),
        "vfr": vf.make_vfr_mp4(p("vfr.mp4"), num_frames=80),
        "ts": vf.make_h264_ts(p("ts.ts"), num_frames=100, gop=20),
    }


def test_every_strategy_returns_the_old_paths_frames(tmp_path):
    """strategy="seek" is the sampler before the planner (seek wherever frames can be skipped);
    "auto" and "straight" must return exactly its frames, doing no more decoding than one
    straight decode."""
    for name, video in several_videos(str(tmp_path)).items():
        for count in (3, 8, 21, video.num_frames):
            samples = {s: sample_frames(video.path, num_frames=count, strategy=s, skip_nonref=False, **SMALL)
                       for s in ("seek", "auto", "straight")}
            # Non-reference skipping on top changes the work only.
            samples["auto+nonref"] = sample_frames(video.path, num_frames=count, **SMALL)
            old = samples["seek"]
            assert_frames_match(video, old)
            for strategy in ("auto", "straight", "auto+nonref"):
                new = samples[strategy]
                assert new.timestamps == old.timestamps, (name, count, strategy)
                assert np.array_equal(new.frames, old.frames), (name, count, strategy)
            assert samples["auto"].stats["decoded_frames"] <= samples["straight"].stats["decoded_frames"]
            assert samples["straight"].stats["decode_plan"]["seeks"] == 1
            assert samples["auto"].stats["decode_plan"]["strategy"] == "auto"
    with pytest.raises(ValueError, match="strategy"):
        sample_frames(video.path, strategy="fastest")


def test_mixed_plans_return_the_same_frames(tmp_path, monkeypatch):
    """Plans that seek across some gaps and decode straight across others (a seek made worth
    about a third of a GOP) still return the seeking path's frames exactly."""
    from vlagent.video import sampling
    from vlagent.video.decode_plan import DecodeCosts

    mixed = 0
    for video in several_videos(str(tmp_path)).values():
        gop = video.keyframe_every
        monkeypatch.setattr(sampling, "estimate_costs", lambda info, skip_nonref=True: DecodeCosts(
            frame_s=1.0, dropped_s=1.0, seek_s=gop / 3, reference_share=1.0))
        for count in (5, 13, 30):
            auto = sample_frames(video.path, num_frames=count, **SMALL)
            old = sample_frames(video.path, num_frames=count, strategy="seek", **SMALL)
            assert auto.timestamps == old.timestamps and np.array_equal(auto.frames, old.frames)
            assert_frames_match(video, auto)
            plan = auto.stats["decode_plan"]
            mixed += 1 < plan["seeks"] < count
    assert mixed >= 3


def test_auto_strategy_on_real_files_seeks_when_sparse_and_goes_straight_when_dense(videos, long_video):
    dense = sample_frames(videos["h264"].path, fps=5, **SMALL)  # 5 of 10 frames, 64x48
    assert dense.stats["decode_plan"]["seeks"] == 1 and dense.stats["seeks"] == 1
    sparse = sample_frames(long_video.path, num_frames=16, min_pixels=FACTOR * FACTOR, max_pixels=128 * 96)
    assert sparse.stats["decode_plan"]["seeks"] == 16 == sparse.stats["seeks"]
    assert_frames_match(long_video, sparse)


def test_matroska_cues_miss_keyframes_so_the_scan_decides(tmp_path):
    """Why Matroska is scanned (vlagent/video/info.py): FFmpeg's muxer writes one cue per cluster, so the
    cues miss keyframes that the packet scan finds (and hold no per-frame times at all)."""
    import av
    import numpy as np

    path = str(tmp_path / "gop10.mkv")
    with av.open(path, "w") as out:
        stream = out.add_stream("libx264", rate=5, options={"g": "10", "keyint_min": "10", "sc_threshold": "0"})
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(100):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), (i * 7) % 256, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    with av.open(path) as container:
        cues = [e for e in container.streams.video[0].index_entries if e.is_keyframe]
    info = probe(path)
    assert info.source == "scan" and "matroska" in info.source_note
    assert info.num_packets == 100 and len(info.keyframe_pts) == 10
    assert len(cues) < len(info.keyframe_pts)
