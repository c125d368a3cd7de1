"""Ask a question about a long video through an OpenAI-compatible server.

    python demos/video_question.py lecture.mp4 "When is the loss curve first shown?" \
        http://localhost:8000/v1 Qwen/Qwen3.5-27B

Frames are sampled at 1 fps (at most 256), each sent after its "<t seconds>" stamp.
"""

import sys

from vlagent.video import OpenAIVideoBackend, ask


def main(video: str, question: str, api_base: str, model: str) -> int:
    backend = OpenAIVideoBackend(model, base_url=api_base)
    reply = ask(video, question, backend=backend, fps=1.0, max_frames=256)
    print(reply.answer)
    print(f"({reply.frames_used} frames, {reply.timestamps[0]:.1f}-{reply.timestamps[-1]:.1f} s)")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    sys.exit(main(*sys.argv[1:]))
