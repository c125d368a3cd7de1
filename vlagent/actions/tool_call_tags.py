"""Where the `<tool_call>` blocks of a model reply are: the one place those tags are read.

An unclosed `<tool_call>` (generation often stops on `</tool_call>`) runs to
the next `<tool_call>` or to the end of the reply. The parser accepts that only
for the last block; the prompt side (thought text, history) takes every block
as found.
"""

from __future__ import annotations

from dataclasses import dataclass

OPEN = "<tool_call>"
CLOSE = "</tool_call>"


@dataclass(frozen=True)
class ToolCallBlock:
    start: int  # index of the opening tag
    end: int  # index after the closing tag, or where an unclosed body stops
    body: str  # the text between the tags, as written
    closed: bool


def tool_call_blocks(text: str) -> list[ToolCallBlock]:
    """Every `<tool_call>` block of `text`, in order."""
    blocks: list[ToolCallBlock] = []
    start = text.find(OPEN)
    close = -2  # the first closing tag at or after the current body; searched again only once passed
    while start != -1:
        body_start = start + len(OPEN)
        if close != -1 and close < body_start:  # (-1: there is none further on, so none later either)
            close = text.find(CLOSE, body_start)
        following = text.find(OPEN, body_start)
        if close != -1 and (following == -1 or close < following):
            blocks.append(ToolCallBlock(start, close + len(CLOSE), text[body_start:close], closed=True))
            start = text.find(OPEN, close + len(CLOSE))
        else:
            stop = following if following != -1 else len(text)
            blocks.append(ToolCallBlock(start, stop, text[body_start:stop], closed=False))
            start = following
    return blocks


def without_tool_calls(text: str) -> str:
    """`text` with every `<tool_call>` block cut out."""
    pieces, pos = [], 0
    for block in tool_call_blocks(text):
        pieces.append(text[pos : block.start])
        pos = block.end
    pieces.append(text[pos:])
    return "".join(pieces)
