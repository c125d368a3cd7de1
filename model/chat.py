"""One call from chat messages (text, images, videos) to the model's reply text.

    from vlagent.model import load_model
    from vlagent.model.processor import Processor
    from vlagent.model.chat import chat

    model = load_model(path)
    processor = Processor.from_pretrained(path)
    reply = chat(model, processor, [{"role": "user", "content": [
        {"type": "image", "image": "screen.png"},
        {"type": "text", "text": "What is on the screen?"},
    ]}], max_new_tokens=64)

Message content parts are those of `Processor.render_chat`: text, images (PIL, a path,
a uint8 array, or an OpenAI image_url data URL) and videos ({"video": frames,
"timestamps": seconds} or "fps").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import torch

from .processor import Processor


@dataclass
class ChatReply:
    text: str  # the reply, special tokens kept (so <think>/<tool_call> stay visible), end-of-turn dropped
    token_ids: list[int]
    prompt_tokens: int
    image_tokens: int
    video_tokens: int
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def answer(self) -> str:
        """The reply without its thinking (Qwen3.5's template opens <think> in the prompt)."""
        return self.text.rpartition("</think>")[2].strip() if "</think>" in self.text else self.text.strip()


def chat_reply(
    model: Any,
    processor: Processor,
    messages: Sequence[dict[str, Any]],
    *,
    max_new_tokens: int = 256,
    chat_template_kwargs: dict[str, Any] | None = None,
    **gen_kwargs: Any,
) -> ChatReply:
    """Like `chat`, with token counts and generation stats."""
    inputs = processor.apply_chat_template(messages, **(chat_template_kwargs or {}))
    ids = inputs["input_ids"]
    if ids.shape[0] != 1:
        raise ValueError("chat() takes one conversation")
    stops = set(gen_kwargs.pop("stop_token_ids", None) or []) | set(model.config.eos_token_ids)
    stops |= processor.end_of_turn_ids
    result = model.generate(
        **inputs.to(model.device),
        max_new_tokens=max_new_tokens,
        stop_token_ids=sorted(stops),
        tokenizer=processor.tokenizer,
        return_dict=True,
        **gen_kwargs,
    )
    new = list(result.new_tokens[0])
    while new and new[-1] in stops:
        new.pop()
    return ChatReply(
        text=processor.decode(new, skip_special_tokens=False),
        token_ids=new,
        prompt_tokens=int(ids.shape[1]),
        image_tokens=int((ids == processor.image_token_id).sum()),
        video_tokens=int((ids == processor.video_token_id).sum()),
        stats=dict(result.stats),
    )


@torch.inference_mode()
def chat(
    model: Any,
    processor: Processor,
    messages: Sequence[dict[str, Any]],
    *,
    max_new_tokens: int = 256,
    chat_template_kwargs: dict[str, Any] | None = None,
    **gen_kwargs: Any,
) -> str:
    """The model's reply to `messages` (greedy unless sampling arguments are given).

    `chat_template_kwargs` go to the chat template (e.g. {"enable_thinking": False},
    {"tools": [...]}); other keyword arguments go to `model.generate` (temperature, top_p,
    seed, stop_strings, on_text, ...). Generation stops at the checkpoint's eos ids and at
    Qwen's end-of-turn tokens.
    """
    return chat_reply(
        model, processor, messages, max_new_tokens=max_new_tokens, chat_template_kwargs=chat_template_kwargs,
        **gen_kwargs,
    ).text


__all__ = ["ChatReply", "chat", "chat_reply"]
