"""Turn an AT-SPI tree dump (see atspi_helper.py) into grounding targets.

Kept apart from the process plumbing so the rules can be read, and tested,
on a dump alone:

- only showing, visible, sensitive nodes with a real box (GTK reports
  -2147483648 for rows scrolled out of a tree view) and a name — their own,
  or for entries the label that `labelled-by` points at;
- a box must be at least 90 % inside every scrolling ancestor (scroll pane,
  viewport, table, list...) and the window, so a half-scrolled row is not a
  target; and nothing under an open popup menu counts;
- roles map to the record's element kinds (push button -> button, check box
  -> checkbox, entry -> field, menu item -> menu, page tab -> tab, table
  cell -> list item...), and a button whose name could not fit inside it as
  text shows an icon: it becomes an `icon` target (the toolbar's "Open",
  the header bar's "Menu").
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

from vlagent.grounding.harvest_common import ScreenTarget

Node = dict[str, Any]

INVALID_COORD = -2147483648  # GTK's "not on screen" extents

# role -> (element kind, the word instructions use)
ROLE_KINDS: dict[str, tuple[str, str]] = {
    "push button": ("button", "button"),
    # GTK draws a toggle button as a button (galculator's keys are toggle buttons).
    "toggle button": ("button", "button"),
    "table column header": ("button", "column header"),
    "check box": ("checkbox", "checkbox"),
    "radio button": ("radio", "radio button"),
    "text": ("field", "field"),
    "entry": ("field", "field"),
    "password text": ("field", "password field"),
    "spin button": ("field", "spin box"),
    "combo box": ("field", "drop-down"),
    "menu": ("menu", "menu"),
    "menu item": ("menu", "menu item"),
    "check menu item": ("menu", "menu item"),
    "radio menu item": ("menu", "menu item"),
    "page tab": ("tab", "tab"),
    "list item": ("list item", "item"),
    "table cell": ("list item", "item"),
    "tree item": ("list item", "item"),
    "slider": ("slider", "slider"),
    "link": ("link", "link"),
}
# Roles whose box bounds what of their descendants is visible.
CLIPPING_ROLES = frozenset({
    "scroll pane", "viewport", "table", "tree table", "tree", "list", "list box", "layered pane",
    "frame", "dialog", "window", "file chooser", "alert", "menu bar", "tool bar",
})  # fmt: skip
TOP_LEVEL_POPUP_ROLES = frozenset({"window"})  # popup menus, combo box lists
FIELD_ROLES = frozenset({"text", "entry", "password text", "spin button"})
BUTTON_ROLES = frozenset({"push button", "toggle button"})

# GTK's default UI font here ("Sans" -> DejaVu Sans, 10 pt at 96 dpi) and
# the horizontal padding + border of an Adwaita button.
UI_FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
UI_FONT_PX = 13.333
BUTTON_PADDING_PX = 12
MIN_VISIBLE_FRACTION = 0.9
MAX_COVERED = 0.1  # a target may lose this much of its box under a popup menu


@lru_cache(maxsize=1)
def _font() -> Any:
    from PIL import ImageFont

    if Path(UI_FONT).exists():
        return ImageFont.truetype(UI_FONT, UI_FONT_PX)
    return ImageFont.load_default(size=UI_FONT_PX)


def text_width(text: str) -> float:
    """How wide `text` is in GTK's default UI font, in pixels."""
    return float(_font().getlength(text))


def shows_icon_only(name: str, box_width: float) -> bool:
    """Whether a button named `name` that is `box_width` pixels wide must show an icon.

    AT-SPI does not say whether a GTK3 button draws its label or an image
    (icon-only buttons carry their name for screen readers), but a label
    that does not fit in the button cannot be what it draws. One-character
    names (a calculator's "+") always fit as text.
    """
    if len(name) <= 1:
        return False
    return text_width(name) + BUTTON_PADDING_PX > box_width


def _valid(box: Sequence[int] | None) -> bool:
    return box is not None and box[0] != INVALID_COORD and box[1] != INVALID_COORD and box[2] > 0 and box[3] > 0


def _xyxy(box: Sequence[int]) -> tuple[float, float, float, float]:
    return (box[0], box[1], box[0] + box[2], box[1] + box[3])


def _intersect(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, float, float]:
    return (max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3]))


def _area(b: Sequence[float]) -> float:
    return max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1])


LABELLED_ROLES = FIELD_ROLES | {"combo box", "slider"}
# Rows and buttons whose text sits in a child label (GtkListBoxRow in the file chooser's sidebar).
NAMED_BY_CONTENT = frozenset({"list item", "push button", "toggle button", "radio button", "check box", "page tab"})
LABEL_GAP_PX = 90  # how far left of its field a form's label may end (grid columns align labels left)
LABEL_ABOVE_PX = 20  # how far above its field a label may end


def node_name(node: Node, nodes: Sequence[Node] = ()) -> str:
    """The name a person would use: the node's own; for a field its label's
    (the `labelled-by` relation, else the label just left of it on the same
    row or just above it, as zenity's forms lay them out); for a row or
    button without a name, the one label inside it."""
    name = (node.get("name") or "").strip()
    role = node.get("role")
    if name or not nodes:
        if not name and role in LABELLED_ROLES and node.get("labelled_by"):
            name = node["labelled_by"][0].strip()
        return name
    if role in LABELLED_ROLES:
        if node.get("labelled_by"):
            return node["labelled_by"][0].strip()
        return _adjacent_label(node, nodes)
    if role in NAMED_BY_CONTENT:
        path = tuple(node["path"])
        inner = [
            n["name"].strip() for n in nodes
            if n["role"] == "label" and n["name"].strip() and tuple(n["path"][: len(path)]) == path and n is not node
        ]  # fmt: skip
        if len(inner) == 1:
            return inner[0]
    return ""


def _adjacent_label(field: Node, nodes: Sequence[Node]) -> str:
    fx0, fy0, fx1, fy1 = _xyxy(field["box"])
    best: tuple[float, str] | None = None
    for n in nodes:
        if n["role"] != "label" or not n["name"].strip() or not _valid(n.get("box")):
            continue
        x0, y0, x1, y1 = _xyxy(n["box"])
        cy = (y0 + y1) / 2
        if fy0 <= cy <= fy1 and x1 <= fx0 + 2 and fx0 - x1 <= LABEL_GAP_PX:
            gap = fx0 - x1
        elif y1 <= fy0 + 2 and fy0 - y1 <= LABEL_ABOVE_PX and x0 < fx1 and x1 > fx0:
            gap = fy0 - y1 + 0.5  # a label above counts a little less than one beside
        else:
            continue
        if best is None or gap < best[0]:
            best = (gap, n["name"].strip())
    return best[1] if best else ""


MENU_ITEM_ROLES = frozenset({"menu item", "check menu item", "radio menu item", "menu", "separator", "tearoff menu item"})


def popup_boxes(nodes: Sequence[Node]) -> dict[tuple[int, ...], tuple[float, float, float, float]]:
    """Open popup menus: the path of each open menu -> the union of its items' boxes.

    GTK3 puts a popup's items under the menu-bar entry that opened it (not in a
    top-level window of their own), with boxes outside the window; they are
    drawn above everything else.
    """
    items: dict[tuple[int, ...], list[tuple[float, float, float, float]]] = {}
    roles = {tuple(n["path"]): n["role"] for n in nodes}
    for n in nodes:
        path = tuple(n["path"])
        if n["role"] in MENU_ITEM_ROLES and roles.get(path[:-1]) in ("menu", "combo box") and _valid(n.get("box")):
            items.setdefault(path[:-1], []).append(_xyxy(n["box"]))
    return {
        p: (min(b[0] for b in bs), min(b[1] for b in bs), max(b[2] for b in bs), max(b[3] for b in bs))
        for p, bs in items.items()
    }


def window_box(nodes: Sequence[Node], screen: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """The union of the application's showing top-level windows and open popup
    menus, clipped to the screen (x0, y0, x1, y1)."""
    boxes = [_xyxy(n["box"]) for n in nodes if n["depth"] == 0 and _valid(n.get("box"))]
    if not boxes:
        return None
    boxes += list(popup_boxes(nodes).values())
    union = (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))
    x0, y0, x1, y1 = _intersect(union, (0, 0, screen[0], screen[1]))
    if x1 - x0 < 16 or y1 - y0 < 16:
        return None
    return (int(x0), int(y0), int(x1), int(y1))


def targets_from_tree(
    nodes: Sequence[Node], crop: tuple[int, int, int, int], screen: tuple[int, int]
) -> list[ScreenTarget]:
    """Targets of one dump, with boxes in the pixels of the screenshot cropped to `crop` (x0, y0, x1, y1)."""
    by_path = {tuple(n["path"]): n for n in nodes}
    popups = popup_boxes(nodes)
    popups.update(
        (tuple(n["path"]), _xyxy(n["box"]))
        for n in nodes
        if n["depth"] == 0 and n["role"] in TOP_LEVEL_POPUP_ROLES and _valid(n.get("box"))
    )
    # Without a window manager a window opened later (a Preferences dialog)
    # is mapped above the ones before it.
    later_windows = {
        tuple(n["path"]): _xyxy(n["box"])
        for n in nodes
        if n["depth"] == 0 and n["path"][0] > 0 and n["role"] not in TOP_LEVEL_POPUP_ROLES and _valid(n.get("box"))
    }
    view = _intersect(crop, (0, 0, screen[0], screen[1]))
    targets: list[ScreenTarget] = []
    for node in nodes:
        role = node["role"]
        if role not in ROLE_KINDS or not _valid(node.get("box")):
            continue
        states = set(node["states"])
        if not {"showing", "visible", "sensitive"} <= states:
            continue
        if role in FIELD_ROLES and "editable" not in states:
            continue  # read-only text views are text, not fields
        name = node_name(node, nodes)
        if not name or name.endswith("-symbolic"):
            continue  # "emblem-default-symbolic": an icon's file name, not words on the screen
        path = tuple(node["path"])
        box = _xyxy(node["box"])
        visible = _intersect(box, view)
        in_toolbar = False
        for depth in range(1, len(path)):
            ancestor_path = path[:depth]
            if ancestor_path in popups:
                # Inside a popup: what clipped the window does not clip it.
                visible = _intersect(box, view)
                continue
            ancestor = by_path.get(ancestor_path)
            if ancestor is None:
                continue
            in_toolbar = in_toolbar or ancestor["role"] == "tool bar"
            if ancestor["role"] in CLIPPING_ROLES and _valid(ancestor.get("box")):
                visible = _intersect(visible, _xyxy(ancestor["box"]))
        if _area(visible) < MIN_VISIBLE_FRACTION * _area(box):
            continue  # scrolled partly out of view, or off the screen
        limit = MAX_COVERED * _area(box)
        if any(path[: len(p)] != p and _area(_intersect(box, pbox)) > limit for p, pbox in popups.items()):
            continue  # (mostly) under an open popup menu
        if any(path[0] < p[0] and _area(_intersect(box, wbox)) > limit for p, wbox in later_windows.items()):
            continue  # under a window opened after its own
        kind, role_word = ROLE_KINDS[role]
        if role in BUTTON_ROLES and shows_icon_only(name, box[2] - box[0]):
            kind, role_word = "icon", "icon"
        meta: dict[str, Any] = {"role": role}
        if kind in ("list item", "tab") and text_width(name) > box[2] - box[0]:
            # Drawn ellipsized ("Malayal…"): still the element, but its full name is not on screen.
            meta["truncated"] = True
        targets.append(
            ScreenTarget(
                name=name,
                element=kind,
                box=(visible[0] - crop[0], visible[1] - crop[1], visible[2] - crop[0], visible[3] - crop[1]),
                role_word=role_word,
                in_toolbar=in_toolbar,
                meta=meta,
            )
        )
    return targets


def tree_signature(nodes: Sequence[Node]) -> list[tuple[Any, ...]]:
    """What must not change between the dumps before and after a screenshot."""
    return [(tuple(n["path"]), n["role"], n["name"], tuple(n["box"] or ())) for n in nodes]


__all__ = [
    "ROLE_KINDS", "node_name", "popup_boxes", "shows_icon_only", "targets_from_tree", "text_width", "tree_signature", "window_box",
]  # fmt: skip
