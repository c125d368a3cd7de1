"""Which part of an instruction names its target, before any word of it is matched against the screen.

"type Москва into the Email field": the Email field (what is typed is not on the screen yet).
"choose a language from the Language dropdown list": the Language dropdown list (the language is one of
its options, not shown until it opens). "set the Theme drop-down to Dark": the Theme drop-down.
Light on purpose (no torch): the OCR grounder and the trained one both use it.
"""
from __future__ import annotations

import re

_TYPE_INTO = re.compile(r"^\s*(?:type|enter|write|input)\s+.+?\s+(?:into|in)\s+(.+)$", re.IGNORECASE)
# A kind of thing chosen from a named list: "choose a language from the Language dropdown", "pick your
# country from the list". A named option ("select English from the menu") is the target itself.
_CHOOSE_FROM = re.compile(r"^\s*(?:please\s+)?(?:choose|pick|select)\s+(?:a|an|one|your)\s+[^'\"“‘]+?"
                          r"\s+from\s+(the\s+.+)$", re.IGNORECASE)
# A control set to a value: "set the Theme drop-down to Dark", "change the Size combo box to Large".
_SET_TO = re.compile(r"^\s*(?:please\s+)?(?:set|change|switch)\s+(the\s+.+?\b(?:drop[- ]?down|combo ?box|select box"
                     r"|slider|field|spin ?box)(?:\s+(?:list|menu))?)\s+to\s+\S.*$", re.IGNORECASE)


def target_words(instruction: str) -> str:
    """The part of an instruction naming its target; the whole instruction where no part is singled out."""
    for form in (_TYPE_INTO, _CHOOSE_FROM, _SET_TO):
        found = form.match(instruction)
        if found:
            return found.group(1)
    return instruction
