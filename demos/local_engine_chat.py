"""Run a Qwen3.5 checkpoint on our own engine and ask about a screenshot.

    python demos/local_engine_chat.py /models/Qwen3.5-0.8B screenshot.png "What app is open?"
"""

import sys

import torch

from vlagent.model import load_model
from vlagent.model.chat import chat
from vlagent.model.processor import Processor


def main(checkpoint: str, image: str, question: str) -> int:
    dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = load_model(checkpoint, device=device, dtype=dtype)
    processor = Processor.from_pretrained(checkpoint)
    messages = [{"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": question}]}]
    print(chat(model, processor, messages, max_new_tokens=128))
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    sys.exit(main(*sys.argv[1:]))
