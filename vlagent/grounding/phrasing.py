"""Instructions for harvested elements, written from the element's name and role.

A real screen gives us an element's accessible name ("Save", "Username",
"Staff status") and its kind (button, field, checkbox...). People ask for the
same element in several ways, so each kind has several phrasings; which one
a target gets is picked by a seeded RNG (deterministic per screen and name),
so a dataset mixes them without ever depending on dict order or time.

    instruction_for("Log in", "button", rng)   # e.g. "click Log in" or "the 'Log in' button"
"""

from __future__ import annotations

import random
import re

# {n}: the element's name; {r}: the role word ("button", "drop-down", "menu item"...).
_PHRASINGS: dict[str, tuple[str, ...]] = {
    "button": ("the '{n}' button", "click {n}", "click the {n} button", "press '{n}'", "the {n} {r}"),
    "icon": ("the {n} icon", "click the {n} icon", "the icon for {n}", "the '{n}' {r}"),
    "link": ("the '{n}' link", "click the link {n}", "open {n}", "the link to {n}", "follow '{n}'"),
    "field": ("the {n} field", "the '{n}' {r}", "click in the {n} field", "the input for {n}"),
    "checkbox": ("the checkbox {n}", "the '{n}' checkbox", "tick {n}", "check the {n} box", "toggle {n}"),
    "radio": ("the radio button {n}", "the '{n}' option", "select {n}", "choose the {n} option"),
    "switch": ("the {n} switch", "the switch for {n}", "toggle {n}"),
    "menu": ("the {n} {r}", "the '{n}' {r}", "choose {n}", "click {n} in the menu"),
    "tab": ("the {n} tab", "switch to the {n} tab", "open the '{n}' tab", "the tab {n}"),
    "list item": ("the list item {n}", "{n} in the list", "select '{n}'", "the '{n}' row"),
    "slider": ("the {n} slider", "the slider for {n}", "the '{n}' {r}"),
    "text": ("the text '{n}'", "the label {n}", "'{n}'"),
}

# The word used for {r} when the harvester gives none.
DEFAULT_ROLE_WORDS: dict[str, str] = {
    "button": "button", "icon": "icon", "link": "link", "field": "field", "checkbox": "checkbox",
    "radio": "radio button", "switch": "switch", "menu": "menu", "tab": "tab", "list item": "item",
    "slider": "slider", "text": "text",
}  # fmt: skip

# Where a toolbar icon sits is part of how people ask for it.
_ICON_IN_TOOLBAR = ("the {n} icon in the toolbar", "the toolbar's {n} icon", "the {n} button on the toolbar")

_SPACE = re.compile(r"\s+")


def clean_name(name: str) -> str:
    """An accessible name as a person would say it: one line, without a
    trailing colon or ellipsis ("Open…" -> "Open", "Username:" -> "Username")."""
    name = _SPACE.sub(" ", name).strip()
    while name.endswith((":", "…", "...")):
        name = name.rstrip(":").removesuffix("…").removesuffix("...").rstrip()
    return name


def instruction_for(
    name: str, element: str, rng: random.Random, role_word: str | None = None, in_toolbar: bool = False
) -> str:
    """One instruction naming the element `name` of kind `element`.

    Raises KeyError for an element kind without phrasings and ValueError for
    an empty name (an instruction must name what it means).
    """
    if element not in _PHRASINGS:
        raise KeyError(f"no phrasings for element kind {element!r} (known: {', '.join(_PHRASINGS)})")
    name = clean_name(name)
    if not name:
        raise ValueError("an instruction needs the element's name, got an empty one")
    templates = _PHRASINGS[element]
    if element == "icon" and in_toolbar:
        templates = _ICON_IN_TOOLBAR + templates[:2]  # mostly the toolbar phrasings
    template = rng.choice(templates)
    return template.format(n=name, r=role_word or DEFAULT_ROLE_WORDS[element])


def all_phrasings(element: str) -> tuple[str, ...]:
    """The templates of one element kind (for tests and docs)."""
    return _PHRASINGS[element]


__all__ = ["DEFAULT_ROLE_WORDS", "all_phrasings", "clean_name", "instruction_for"]
