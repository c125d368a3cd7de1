"""Synthetic screens with known element boxes, and the instructions that point at them.

`make_screen(seed, index)` draws one screen (desktop window, dialog, mobile
screen or web page; light or dark; one of several fonts; 1x/1.5x/2x; labels
in English, German, French, Spanish, Russian or Chinese), deterministic in
(seed, index). `write_instructions(screen, rng)` turns its controls into
targets, each phrased one of five ways (the `style` kept in the record's
meta):

- label: "the 'Save' button", "click Sign in"
- synonym: "log in" for Sign in, "the settings icon" for the gear
- relation: "the field under Email", "the checkbox next to Remember me",
  "the second item in the list"
- icon: "the share icon in the app bar"
- position: "the close button of the dialog", "the button at the bottom
  right of the dialog"

`harvest_synthetic` is the "synthetic" entry of `harvest.HARVESTERS`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from vlagent.grounding.dataset import SPLITS, GroundingRecord, OcrLine
from vlagent.grounding.phrasing import instruction_for
from vlagent.grounding.synth_canvas import Canvas, Element, Theme
from vlagent.grounding.synth_icons import ICONS
from vlagent.grounding.synth_screens import LAYOUTS
from vlagent.grounding.synth_vocab import LANGUAGE_WEIGHTS, LANGUAGES, ORDINALS, SYNONYMS, TYPED_TEXT

SCALES = (1.0, 1.5, 2.0)
SCALE_WEIGHTS = (0.6, 0.25, 0.15)
DESKTOP_SIZES = ((1280, 720), (1280, 800), (1366, 768), (1440, 900), (1920, 1080))
MOBILE_LOGICAL = ((360, 740), (390, 800), (412, 860))
# Smallest logical (unscaled) desktop/web screen the layouts are drawn for.
MIN_LOGICAL = (880, 500)
STYLES = ("label", "synonym", "relation", "icon", "position")
SPLIT_WEIGHTS = (0.8, 0.1, 0.1)  # train, val, test (dataset.SPLITS), drawn per screen


@dataclass
class SyntheticScreen:
    image: Image.Image
    kind: str  # key of synth_screens.LAYOUTS
    platform: str
    lang: str
    scale: float
    dark: bool
    family: str
    elements: list[Element]
    texts: list[tuple[str, tuple[int, int, int, int]]] = field(default_factory=list)  # strings drawn, ink boxes


@dataclass
class Target:
    element: Element
    style: str
    instruction: str
    action: str = "click"
    text: str | None = None


def make_screen(seed: int, index: int, kind: str | None = None) -> SyntheticScreen:
    """Screen `index` of the synthetic set `seed` (same arguments, same pixels)."""
    rng = random.Random(f"vlagent-synthetic:{seed}:{index}")
    kind = kind or rng.choice(tuple(LAYOUTS))
    layout, platform = LAYOUTS[kind]
    lang = rng.choices(LANGUAGES, LANGUAGE_WEIGHTS)[0]
    scale = rng.choices(SCALES, SCALE_WEIGHTS)[0]
    if kind == "mobile":
        lw, lh = rng.choice(MOBILE_LOGICAL)
        size = (int(lw * scale), int(lh * scale))
    else:
        fitting = [s for s in DESKTOP_SIZES if s[0] / scale >= MIN_LOGICAL[0] and s[1] / scale >= MIN_LOGICAL[1]]
        if not fitting:  # no size holds the layout at this scale: fall back to 1x
            scale, fitting = 1.0, list(DESKTOP_SIZES)
        size = rng.choice(fitting)
    # Chinese needs the CJK font; other screens use it sometimes too (it has Latin and Cyrillic).
    family = "wqy" if lang == "zh" else rng.choices(("sans", "serif", "wqy"), (0.6, 0.2, 0.2))[0]
    theme = Theme.random(rng)
    canvas = Canvas(size, scale, theme, family, lang, rng)
    layout(canvas)
    return SyntheticScreen(canvas.img, kind, platform, lang, scale, theme.dark, family, canvas.elements, canvas.texts)


# --------------------------------------------------------------------------- instructions


def _ordinal(i: int) -> str:
    return ORDINALS[i] if i < len(ORDINALS) else f"number {i + 1}"


def _quote(rng: random.Random, label: str) -> str:
    return rng.choice((f"'{label}'", f'"{label}"', label))


def _icon_words(el: Element, screen: SyntheticScreen) -> tuple[str, ...]:
    """What people call `el`'s icon, minus the words another element of the screen answers to (another
    icon's meaning, a label): "the Delete icon" must mean one thing."""
    if el.icon is None:
        return ()
    taken: set[str] = set()
    for other in screen.elements:
        if other is not el:
            taken.update(m.casefold() for m in (ICONS[other.icon][1] if other.icon else ()))
            taken.update((other.label.casefold(),) if other.label else ())
    return tuple(m for m in ICONS[el.icon][1] if m.casefold() not in taken)


def phrasings(el: Element, screen: SyntheticScreen, rng: random.Random) -> list[Target]:
    """Every way this module can ask for `el` on `screen` (ambiguous ones left out)."""
    out: list[Target] = []
    L, q = el.label, (lambda s: _quote(rng, s))

    def add(style: str, text: str, action: str = "click", typed: str | None = None) -> None:
        out.append(Target(el, style, text, action, typed))

    icon_words = _icon_words(el, screen)  # empty where no word names this icon alone
    if el.kind == "button" and el.role == "key":
        add("label", rng.choice((f"the {L} key", f"press {L} on the keyboard", f"the key {L.upper()}")))
    elif el.kind == "button" and el.role == "space bar":
        add("label", rng.choice(("the space bar", "the space key")))
    elif el.kind == "button":
        add("label", rng.choice((f"the {q(L)} button", f"click {L}", f"{L} button", f"press {q(L)}")))
        if L in SYNONYMS:
            syn = rng.choice(SYNONYMS[L])
            add("synonym", rng.choice((f"the button to {syn}", syn)))
        if el.container == "dialog" and el.extra.get("position") == "bottom right":
            add("position", rng.choice(("the button at the bottom right of the dialog", "the last button of the dialog")))
        elif el.container == "dialog" and el.index is not None:
            add("position", f"the {_ordinal(el.index)} button at the bottom of the dialog")
    elif el.kind == "icon":
        meaning = rng.choice(icon_words) if icon_words else None
        if el.extra.get("position") == "close":
            where = "dialog" if el.container == "dialog" else "window"
            add("position", rng.choice((f"the close button of the {where}", f"close the {where}",
                                        f"the X at the top right of the {where}")))  # fmt: skip
        elif el.extra.get("position") == "floating":
            add("position", rng.choice(("the floating action button", "the round button at the bottom right")))
            if meaning:
                add("icon", f"the floating {meaning} button")
        elif meaning:
            add("icon", rng.choice((f"the {meaning} icon", f"click the {meaning} icon", f"the {meaning} button")))
            if el.container in ("toolbar", "app bar", "navigation bar", "bottom navigation"):
                add("icon", f"the {meaning} icon in the {el.container}")
        if el.container == "toolbar" and el.index is not None:
            add("relation", rng.choice((f"the {_ordinal(el.index)} icon in the toolbar",
                                        f"the {_ordinal(el.index)} toolbar button")))  # fmt: skip
    elif el.kind == "field":
        if el.near:
            add("relation", rng.choice((f"the field under {q(el.near)}", f"the text box below {q(el.near)}",
                                        f"the input below the {el.near} label")))  # fmt: skip
            add("label", rng.choice((f"the {el.near} field", f"the {q(el.near)} input")))
            typed = rng.choice(TYPED_TEXT)
            add("relation", f"type {typed} into the field under {el.near}", "type", typed)
        elif el.label:
            add("label", rng.choice((f"the field that says {q(el.label)}", f"the {el.role or 'field'}")))
            typed = rng.choice(TYPED_TEXT)
            add("label", f"type {typed} into the {el.role or 'field'}", "type", typed)
    elif el.kind in ("checkbox", "radio"):
        near = el.near or ""
        add("relation", rng.choice((f"the {el.kind if el.kind == 'checkbox' else 'radio button'} next to {q(near)}",
                                    f"the box beside {q(near)}" if el.kind == "checkbox" else f"the circle next to {q(near)}")))  # fmt: skip
        if el.kind == "checkbox":
            add("label", f"{'untick' if el.extra.get('checked') else 'tick'} {q(near)}")
        else:
            add("label", f"select {q(near)}")
            if el.index is not None:
                add("position", f"the {_ordinal(el.index)} option")
    elif el.kind == "switch":
        near = el.near or ""
        add("relation", rng.choice((f"the switch for {q(near)}", f"the toggle next to {q(near)}")))
        add("label", f"turn {'off' if el.extra.get('on') else 'on'} {near}")
    elif el.kind == "slider":
        add("relation", rng.choice((f"the {el.near} slider", f"the slider under {q(el.near or '')}")))
    elif el.kind == "list item":
        add("label", rng.choice((q(L), f"the item {q(L)}", f"open {L}")))
        if screen.platform == "android":
            add("label", f"long-press {L}", "long-press")
        else:
            button = rng.choice(("double", "right"))
            add("label", f"{button}-click {L}", button)
        if el.index is not None:
            if el.siblings and el.index == el.siblings - 1 and rng.random() < 0.4:
                add("relation", "the last item in the list")
            else:
                add("relation", rng.choice((f"the {_ordinal(el.index)} item in the list", f"the {_ordinal(el.index)} row")))
    elif el.kind == "tab":
        if el.container == "bottom navigation":
            add("label", rng.choice((f"the {L} tab", f"{L} in the bottom navigation")))
            if icon_words:
                add("icon", f"the {rng.choice(icon_words)} icon in the bottom bar")
        else:
            add("label", rng.choice((f"the {q(L)} tab", f"switch to the {L} tab")))
            if el.index is not None:
                add("position", f"the {_ordinal(el.index)} tab")
    elif el.kind == "menu":
        if el.container == "menu bar":
            add("label", rng.choice((f"the {L} menu", f"open the {L} menu")))
            if el.index is not None:
                add("position", f"the {_ordinal(el.index)} menu in the menu bar")
        else:
            parent = el.extra.get("parent")
            add("label", rng.choice((f"{L} in the {parent} menu", f"the menu item {q(L)}")))
    elif el.kind == "link":
        add("label", rng.choice((f"the link {q(L)}", f"click {L}", f"follow the {L} link")))
    elif el.kind == "text":
        add("label", f"the heading {q(L)}")
        add("position", "the page title")
    # The harvesters' phrasings too ("the list item X", "select 'X'", "the 'X' row", "toggle X"), so the
    # same words mean the same kind of target on generated and on real screens: "select X" names a list
    # row here as well as a radio button's label.
    name = el.near if el.kind in _NAMED_BY_LABEL else el.label
    if name and el.kind != "icon" and el.role not in ("key", "space bar") and out:
        add("label", instruction_for(name, el.kind, rng))
    return out


# Controls named by the label beside them, not by text of their own.
_NAMED_BY_LABEL = frozenset({"field", "checkbox", "radio", "switch", "slider"})


def write_instructions(screen: SyntheticScreen, rng: random.Random, limit: int) -> list[Target]:
    """Up to `limit` targets on `screen`, spread over element kinds and phrasing styles."""
    by_kind: dict[str, list[Target]] = {}
    for el in screen.elements:
        options = phrasings(el, screen, rng)
        if options:
            styles = sorted({t.style for t in options})
            style = rng.choice(styles)  # balance styles before phrasings
            by_kind.setdefault(el.kind, []).append(rng.choice([t for t in options if t.style == style]))
    for targets in by_kind.values():
        rng.shuffle(targets)
    kinds = sorted(by_kind)
    rng.shuffle(kinds)
    chosen: list[Target] = []
    while len(chosen) < limit and any(by_kind.values()):  # round-robin over kinds
        for kind in kinds:
            if by_kind[kind] and len(chosen) < limit:
                chosen.append(by_kind[kind].pop())
    return chosen


# --------------------------------------------------------------------------- harvest


def _splits(split: str | None) -> tuple[str, ...] | None:
    if split is None:
        return None
    names = tuple(s.strip() for s in str(split).split(",") if s.strip())
    bad = [s for s in names if s not in SPLITS]
    if not names or bad:
        raise ValueError(f"split must be one or more of {', '.join(SPLITS)} (comma-separated), got {split!r}")
    return names


def _text_lines(screen: SyntheticScreen) -> list[OcrLine]:
    """The strings drawn on a screen with their ink boxes, clipped to it and normalized."""
    w, h = screen.image.size
    out = []
    for text, (x0, y0, x1, y1) in screen.texts:
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
        if x1 - x0 >= 1 and y1 - y0 >= 1:
            out.append(OcrLine(text, (x0 / w, y0 / h, x1 / w, y1 / h)))
    return out


def screen_split(seed: int, index: int) -> str:
    """The split harvest_synthetic gives screen `index` of set `seed` when no split is asked for: what
    other trainers (icon_training) read to train only on the train split."""
    return random.Random(f"vlagent-synthetic-targets:{seed}:{index}").choices(SPLITS, SPLIT_WEIGHTS)[0]


def harvest_synthetic(out_dir: Path, count: int | str = 20, seed: int | str = 0, split: str | None = None,
                      targets_per_screen: int | str = 5, kinds: str | None = None,
                      with_text: bool | str = False) -> list[GroundingRecord]:  # fmt: skip
    """Draw `count` screens into out_dir/synthetic/ and return their targets.

    split: None assigns each screen train/val/test (80/10/10, by its own
    random draw); one split name puts every screen there; a comma list
    ("val,test") alternates between them. kinds: comma list of layouts
    (desktop, dialog, mobile, web); default all. with_text: cache every drawn string and its ink box
    in the records' `ocr` lines (what a perfect OCR would read; training adds OCR-like noise).
    """
    count, seed, per_screen = int(count), int(seed), int(targets_per_screen)
    with_text = with_text if isinstance(with_text, bool) else with_text.lower() in ("1", "true", "yes")
    if count < 1 or per_screen < 1:
        raise ValueError("count and targets_per_screen must be at least 1")
    splits = _splits(split)
    kind_list = tuple(k.strip() for k in kinds.split(",")) if kinds else None
    if kind_list and any(k not in LAYOUTS for k in kind_list):
        raise ValueError(f"kinds must be among {', '.join(LAYOUTS)}, got {kinds!r}")
    folder = Path(out_dir) / "synthetic"
    folder.mkdir(parents=True, exist_ok=True)
    records: list[GroundingRecord] = []
    for i in range(count):
        kind = kind_list[i % len(kind_list)] if kind_list else None
        screen = make_screen(seed, i, kind)
        rng = random.Random(f"vlagent-synthetic-targets:{seed}:{i}")
        if splits is None:
            screen_split = rng.choices(SPLITS, SPLIT_WEIGHTS)[0]  # as screen_split(seed, i)
        else:
            screen_split = splits[i % len(splits)]
        name = f"s{seed}-{i:05d}.png"
        screen.image.save(folder / name, optimize=False)
        w, h = screen.image.size
        text_lines = _text_lines(screen) if with_text else None
        for target in write_instructions(screen, rng, per_screen):
            x0, y0, x1, y1 = target.element.box
            meta: dict[str, Any] = {
                "style": target.style, "lang": screen.lang, "scale": screen.scale, "dark": screen.dark,
                "font": screen.family, "screen": i,
            }  # fmt: skip
            if target.element.label:
                meta["label"] = target.element.label
            if target.element.icon:
                meta["icon"] = target.element.icon
            records.append(GroundingRecord(
                image=f"synthetic/{name}", instruction=target.instruction, box=(x0 / w, y0 / h, x1 / w, y1 / h),
                platform=screen.platform, element=target.element.kind, source=f"synthetic:{screen.kind}",
                split=screen_split, action=target.action, text=target.text, meta=meta, ocr=text_lines,
            ))  # fmt: skip
    return records


__all__ = ["STYLES", "SyntheticScreen", "Target", "harvest_synthetic", "make_screen", "phrasings", "screen_split",
           "write_instructions"]
