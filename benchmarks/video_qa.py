"""The whole video question, end to end: our engine vs transformers on the same sampled frames.

    python benchmarks/video_qa.py             # two-hour 640x360 file, 64 and 256 frames, Qwen3.5-0.8B shape
    python benchmarks/video_qa.py --quick     # tiny model, two-minute small file, 8 and 16 frames: seconds

What a `vlagent video-qa` user waits for, stage by stage. The file is the
two-hour 640x360 5 fps H.264 file of benchmarks/video_sampling.py (generated
once; --video to give another). For each frame count the frames are sampled
with `sample_frames` (exact mode, default sizes; the video tokens then follow
from Qwen's pixel budget), and the same question is asked, greedily, for
--new-tokens tokens:
  engine        our processor (`build_local_messages`, as LocalVideoBackend) + `model.generate`
  transformers  Qwen3VLProcessor on the same frames (their times given as frame indices at the
                file's rate) + `Qwen3_5ForConditionalGeneration.generate`
on a random-weight Qwen3.5-0.8B-shaped checkpoint built with transformers'
own classes (bf16; cached under --cache-dir). Each side and count runs in its
own process. Columns, in seconds unless stated:
  sampling      sample_frames (each side samples the file itself: the same frames)
  processor     chat template, frame resizing, patches, token ids
  vision        the vision tower's forward (timed by forward hooks)
  prefill       generate's start to the first new token (vision tower included)
  first token   sampling + processor + prefill: from the question to the first token
  tok/s         decode speed over the remaining tokens
Without torchvision, transformers' video processor cannot run: its three
torchvision calls are then replaced by what torchvision does on CPU (the same
stand-ins as tests/test_processor.py, which checks both processors give equal
tensors).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
from engine import FULL_TEXT, FULL_VISION, SMOKE_TEXT, SMOKE_VISION, cpu_name  # noqa: E402
from machine_info import peak_rss_mb  # noqa: E402
from video_sampling import FULL as SAMPLING_FILES, QUICK as SAMPLING_QUICK, make_video  # noqa: E402

QUESTION = "What happens in this video, and when does the moving pattern first change direction?"
# The small tokenizer of tests/tiny_checkpoints.py puts Qwen's special tokens at ids 0..10.
TOKEN_IDS = dict(image_token_id=5, video_token_id=6, vision_start_token_id=3, vision_end_token_id=4)


def build_checkpoint(folder: Path, quick: bool) -> Path:
    """Random Qwen3.5 weights (transformers' classes, bf16) + a small tokenizer + processor configs."""
    if (folder / "config.json").exists() and (folder / "tokenizer_config.json").exists():
        return folder
    import torch
    from transformers import Qwen3_5Config, Qwen3_5ForConditionalGeneration

    sys.path.insert(0, str(ROOT.parent / "tests"))
    from tiny_checkpoints import build_tokenizer

    from vlagent.model.processor import save_processor_config

    text, vision = (SMOKE_TEXT, SMOKE_VISION) if quick else (FULL_TEXT, FULL_VISION)
    config = Qwen3_5Config(text_config=dict(text, tie_word_embeddings=True), vision_config=vision,
                           tie_word_embeddings=True, **TOKEN_IDS)
    torch.manual_seed(0)
    t0 = time.perf_counter()
    torch.set_default_dtype(torch.bfloat16)
    try:
        model = Qwen3_5ForConditionalGeneration(config)
    finally:
        torch.set_default_dtype(torch.float32)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    build_tokenizer(folder)
    save_processor_config(folder)
    n = sum(p.numel() for p in model.parameters())
    print(f"built random checkpoint ({n / 1e6:.0f} M parameters) in {time.perf_counter() - t0:.1f} s -> {folder}",
          file=sys.stderr)
    return folder


@contextlib.contextmanager
def torchvision_standins():
    """transformers' video processor calls three torchvision ops; without torchvision, do what
    torchvision 0.28 does on CPU (see tests/test_processor.py). With torchvision: nothing."""
    import importlib.util

    if importlib.util.find_spec("torchvision") is not None:
        yield False
        return
    from unittest import mock

    import torch
    import torch.nn.functional as F
    from transformers import image_processing_backends as backends
    from transformers import video_processing_utils as vpu
    from transformers.processing_utils import ProcessorMixin

    def resize(self, image, size, resample=None, antialias=True, **kwargs):
        *lead, c, h, w = image.shape
        if (h, w) == (size.height, size.width):
            return image
        out = F.interpolate(image.reshape(-1, c, h, w), size=(size.height, size.width), mode="bicubic",
                            align_corners=False, antialias=antialias)
        return out.reshape(*lead, c, size.height, size.width)

    def normalize(self, image, mean, std, inplace=False, **kwargs):
        mean = torch.as_tensor(mean, dtype=image.dtype).view(-1, 1, 1)
        std = torch.as_tensor(std, dtype=image.dtype).view(-1, 1, 1)
        return image.sub(mean).div_(std)

    with mock.patch.object(backends.TorchvisionBackend, "resize", resize), \
            mock.patch.object(backends.TorchvisionBackend, "normalize", normalize), \
            mock.patch.object(vpu.BaseVideoProcessor, "convert_to_rgb", lambda self, video, **kw: video), \
            mock.patch.object(ProcessorMixin, "check_argument_for_proper_class", lambda self, name, arg: None):
        yield True


def hf_processor(folder: Path):
    from transformers import AutoTokenizer, Qwen3VLProcessor
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil
    from transformers.models.qwen3_vl.video_processing_qwen3_vl import Qwen3VLVideoProcessor

    tok = AutoTokenizer.from_pretrained(str(folder))
    image_cfg = json.loads((folder / "preprocessor_config.json").read_text())
    video_cfg = json.loads((folder / "video_preprocessor_config.json").read_text())
    return Qwen3VLProcessor(image_processor=Qwen2VLImageProcessorPil(**image_cfg), tokenizer=tok,
                            video_processor=Qwen3VLVideoProcessor(**video_cfg), chat_template=tok.chat_template)


class Timer:
    """Seconds spent inside a module's forward (pre/post hooks)."""

    def __init__(self, module) -> None:
        self.seconds = 0.0
        self._t = 0.0
        module.register_forward_pre_hook(lambda *a: self._start())
        module.register_forward_hook(lambda *a: self._stop())

    def _start(self) -> None:
        self._t = time.perf_counter()

    def _stop(self) -> None:
        self.seconds += time.perf_counter() - self._t


def prepare(side: str, processor, sample) -> dict:
    """The side's processor on `sample`: the model's keyword arguments (token ids, patches, grids)."""
    if side == "engine":
        from vlagent.video.qa import build_local_messages

        return dict(processor.apply_chat_template(build_local_messages(sample, QUESTION)))
    from transformers.video_utils import VideoMetadata

    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": QUESTION}]}]
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    indices = [round(t * sample.source_fps) for t in sample.timestamps]  # CFR: index = time x rate
    meta = VideoMetadata(total_num_frames=int(round(sample.duration * sample.source_fps)),
                         fps=sample.source_fps, frames_indices=indices)
    return dict(processor(text=[text], videos=[sample.frames], video_metadata=[meta], do_sample_frames=False,
                          return_tensors="pt"))


def ask(side: str, model, processor, sample, new_tokens: int):
    """The question on `sample` through one side: (input ids, new tokens, processor s, prefill s, decode s)."""
    t_proc = time.perf_counter()
    kwargs = prepare(side, processor, sample)
    processor_s = time.perf_counter() - t_proc
    ids = kwargs["input_ids"]
    t_gen = time.perf_counter()
    if side == "engine":
        res = model.generate(**kwargs, max_new_tokens=new_tokens, stop_token_ids=[], return_dict=True)
        return ids, list(res.new_tokens[0]), processor_s, res.stats["prefill_s"], res.stats["decode_s"]
    from transformers.generation.streamers import BaseStreamer

    class Clock(BaseStreamer):
        def __init__(self):
            self.times = []

        def put(self, value):
            self.times.append(time.perf_counter())

        def end(self):
            pass

    clock = Clock()
    out = model.generate(**kwargs, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                         streamer=clock, eos_token_id=None, pad_token_id=0)
    end = time.perf_counter()
    first = clock.times[1] if len(clock.times) > 1 else end  # times[0] is the prompt
    return ids, out[0, ids.shape[1]:].tolist(), processor_s, first - t_gen, end - first


def run_side(side: str, folder: Path, video: str, frames: int, new_tokens: int, sample_kw: dict) -> dict:
    """One side, one frame count, in this process: load, warm up, then the measured question."""
    import torch

    from vlagent.video import sample_frames

    t0 = time.perf_counter()
    if side == "engine":
        from vlagent.model import load_model
        from vlagent.model.processor import Processor

        model = load_model(folder, device="cpu", dtype=torch.bfloat16, with_mtp=False)
        processor = Processor.from_pretrained(folder)
        vision = Timer(model.visual)
    else:
        from transformers import Qwen3_5ForConditionalGeneration

        model = Qwen3_5ForConditionalGeneration.from_pretrained(folder, dtype=torch.bfloat16).eval()
        vision = Timer(model.model.visual)
    load_s = time.perf_counter() - t0

    with torch.inference_mode(), torchvision_standins():
        if side == "transformers":
            processor = hf_processor(folder)
        # warm-up: the same path on a 2-frame low-resolution sample (allocator, oneDNN kernels,
        # lazy imports, the vision tower's first call)
        ask(side, model, processor, sample_frames(video, num_frames=2, max_pixels=64 * 64, min_pixels=32 * 32), 2)
        vision.seconds = 0.0

        t_sample = time.perf_counter()
        sample = sample_frames(video, num_frames=frames, **sample_kw)
        sampling_s = time.perf_counter() - t_sample
        ids, tokens, processor_s, prefill_s, decode_s = ask(side, model, processor, sample, new_tokens)
        # The same processor work once more in this process: on a VM, the first touch of memory the
        # process never had can cost ~20x a normal page fault (docs: benchmarks/README.md, video question)
        t_again = time.perf_counter()
        prepare(side, processor, sample)
        processor_again_s = time.perf_counter() - t_again
    return dict(
        side=side, frames=len(sample), sampling_s=sampling_s, processor_s=processor_s, vision_s=vision.seconds,
        processor_again_s=processor_again_s,
        prefill_s=prefill_s, first_token_s=sampling_s + processor_s + prefill_s,
        tok_s=(len(tokens) - 1) / decode_s if decode_s > 0 else float("nan"), load_s=load_s,
        prompt_tokens=int(ids.shape[1]), video_tokens=int((ids == TOKEN_IDS["video_token_id"]).sum()),
        frame_size=f"{sample.plan.width}x{sample.plan.height}", tokens=tokens, peak_mb=peak_rss_mb(),
        threads=torch.get_num_threads(),
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", "--smoke", action="store_true", help="tiny model, small file, few frames: seconds")
    ap.add_argument("--frames", default=None, help="frame counts (default 64,256; --quick 8,16)")
    ap.add_argument("--new-tokens", type=int, default=None, help="greedy tokens per answer (default 32; --quick 4)")
    ap.add_argument("--video", default=None, help="the video (default: the two-hour 640x360 file, generated once)")
    ap.add_argument("--cache-dir", default=os.environ.get("VLAGENT_BENCH_CACHE", "/tmp/vlagent_bench"))
    ap.add_argument("--sides", default="engine,transformers")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    cache = Path(args.cache_dir)
    folder = cache / ("qwen35_video_smoke" if args.quick else "qwen35_0.8b_random_video")
    new_tokens = args.new_tokens or (4 if args.quick else 32)
    # --quick: small frames too, so the tiny model's prefill takes a moment.
    sample_kw = dict(max_pixels=64 * 64 * 2, min_pixels=32 * 32) if args.quick else {}
    if args.worker:
        print(json.dumps(run_side(args.worker, folder, args.video, args.n, new_tokens, sample_kw)))
        return 0

    counts = [int(x) for x in (args.frames or ("8,16" if args.quick else "64,256")).split(",") if x.strip()]
    sides = [s.strip() for s in args.sides.split(",") if s.strip()]
    if unknown := set(sides) - {"engine", "transformers"}:
        ap.error(f"unknown side(s): {', '.join(sorted(unknown))}")
    video = args.video
    if video is None:
        case = (SAMPLING_QUICK if args.quick else SAMPLING_FILES)["360p"]
        shared = ROOT / ".cache" / case.file_name()  # made by benchmarks/video_sampling.py already?
        path = shared if shared.exists() and not args.quick else cache / case.file_name()
        if not path.exists():
            print(f"generating {path.name} (once; cached) ...", file=sys.stderr)
            make_video(path, case)
        video = str(path)
    if not Path(video).exists():
        ap.error(f"video not found: {video}")
    build_checkpoint(folder, args.quick)

    load_before = os.getloadavg()[0]
    results: dict[tuple[str, int], dict] = {}
    for n in counts:
        for side in sides:
            print(f"  {side}: {n} frames", file=sys.stderr)
            cmd = [sys.executable, __file__, "--worker", side, "--n", str(n), "--video", video,
                   "--cache-dir", args.cache_dir, "--new-tokens", str(new_tokens)] + (["--quick"] if args.quick else [])
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                sys.exit(f"{side} worker ({n} frames) failed:\n{proc.stderr[-4000:]}")
            results[side, n] = json.loads(proc.stdout.strip().splitlines()[-1])

    shape = "tiny shape (--quick)" if args.quick else "0.8B shape (random weights, bf16)"
    print(f"\nvideo question, Qwen3.5 {shape} on {cpu_name()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}; load average (1 min) {load_before:.2f} before, {os.getloadavg()[0]:.2f} after")
    print(f"video: {Path(video).name}; {new_tokens} greedy tokens; times in seconds")
    header = (f"{'frames':>6} {'side':<13}{'video tok':>10}{'prompt':>8}{'sampling':>9}{'processor':>10}{'vision':>8}"
              f"{'prefill':>9}{'1st token':>10}{'tok/s':>7}{'peak MB':>9}")
    print(header)
    print("-" * len(header))
    for n in counts:
        for side in sides:
            r = results[side, n]
            print(f"{r['frames']:>6} {side:<13}{r['video_tokens']:>10}{r['prompt_tokens']:>8}{r['sampling_s']:>9.3f}"
                  f"{r['processor_s']:>10.3f}{r['vision_s']:>8.2f}{r['prefill_s']:>9.2f}{r['first_token_s']:>10.2f}"
                  f"{r['tok_s']:>7.2f}{r['peak_mb']:>9.0f}")
        if {"engine", "transformers"} <= set(sides):
            e, t = results["engine", n], results["transformers", n]
            same = next((i for i, (a, b) in enumerate(zip(e["tokens"], t["tokens"])) if a != b), len(e["tokens"]))
            print(f"{'':>6} {'ratio':<13}{'':>18}{'':>9}{t['processor_s'] / e['processor_s']:>9.2f}x"
                  f"{t['vision_s'] / max(e['vision_s'], 1e-9):>7.2f}x{t['prefill_s'] / e['prefill_s']:>8.2f}x"
                  f"{t['first_token_s'] / e['first_token_s']:>9.2f}x{e['tok_s'] / t['tok_s']:>6.2f}x"
                  f"   ({same}/{len(e['tokens'])} leading tokens agree; frame {e['frame_size']})")
    print("(ratios: transformers time / engine time; engine tok/s / transformers tok/s)")
    print("processor once more in the same process, after the answer (s): " + "; ".join(
        f"{side} {n} frames {results[side, n]['processor_again_s']:.3f}" for n in counts for side in sides))
    return 0


if __name__ == "__main__":
    sys.exit(main())
