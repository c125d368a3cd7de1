"""Prompts for Qwen3.5-style GUI agents: the text (text.py) and the conversation built from it (conversation.py)."""

from vlagent.policy.prompts.conversation import (
    build_conversation,
    build_messages,
    conversation_images,
    describe_step,
    platform_of,
    secret_names_of,
    split_reply,
    to_openai_messages,
)
from vlagent.policy.prompts.text import (
    COMPUTER_USE_ACTIONS,
    MOBILE_USE_ACTIONS,
    RELATIVE_SCALE,
    SYSTEM_BUTTONS,
    TOOL_STYLES,
    computer_use_tool,
    mobile_use_tool,
    normalize_platform,
    render_tools_block,
    system_prompt,
    tool_for,
    tool_name,
)

__all__ = [
    "RELATIVE_SCALE",
    "COMPUTER_USE_ACTIONS",
    "MOBILE_USE_ACTIONS",
    "SYSTEM_BUTTONS",
    "normalize_platform",
    "platform_of",
    "secret_names_of",
    "computer_use_tool",
    "mobile_use_tool",
    "tool_for",
    "TOOL_STYLES",
    "tool_name",
    "render_tools_block",
    "system_prompt",
    "split_reply",
    "describe_step",
    "build_conversation",
    "conversation_images",
    "to_openai_messages",
    "build_messages",
]
