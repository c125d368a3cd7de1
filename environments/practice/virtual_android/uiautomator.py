"""The uiautomator dump: the current screen as the XML hierarchy real devices write."""

from __future__ import annotations

from xml.sax.saxutils import quoteattr

from vlagent.environments.practice.virtual_android.phone_ui import Element, PhoneUI


def window_xml(ui: PhoneUI) -> bytes:
    """The uiautomator dump of the current screen, in the format real devices write."""
    with ui.lock:
        elements = ui.layout()
        package = ui.package
        w, h = ui.size
    children: dict[str | None, list[Element]] = {}
    for el in elements:
        children.setdefault(el.parent, []).append(el)

    def node(el: Element | None, index: int) -> str:
        if el is None:
            attrs = _attrs(index, "", "", "android.widget.FrameLayout", package, "", bounds=(0, 0, w, h),
                           clickable=False)
            kids = children.get(None, [])
        else:
            attrs = _element_attrs(el, index, package)
            kids = children.get(el.id, [])
        inner = "".join(node(k, i) for i, k in enumerate(kids))
        return f"<node {attrs}>{inner}</node>" if inner else f"<node {attrs} />"

    body = node(None, 0)
    return (f"<?xml version='1.0' encoding='UTF-8' standalone='yes' ?><hierarchy rotation=\"{ui.rotation}\">"
            f"{body}</hierarchy>").encode()



_CLASSES = {
    "button": "android.widget.Button",
    "toggle": "android.widget.Switch",
    "edit_text": "android.widget.EditText",
    "list": "androidx.recyclerview.widget.RecyclerView",
    "list_item": "android.widget.TextView",
    "icon": "android.widget.TextView",
    "text": "android.widget.TextView",
}


def _attrs(index: int, text: str, resource_id: str, cls: str, package: str, desc: str, *,
           bounds: tuple[int, int, int, int], checkable: bool = False, checked: bool = False, clickable: bool = True,
           focusable: bool = False, focused: bool = False, scrollable: bool = False, long_clickable: bool = False,
           hint: str | None = None) -> str:
    x1, y1, x2, y2 = bounds
    pairs = [
        ("index", str(index)), ("text", text), ("resource-id", resource_id), ("class", cls), ("package", package),
        ("content-desc", desc), ("checkable", checkable), ("checked", checked), ("clickable", clickable),
        ("enabled", True), ("focusable", focusable or clickable), ("focused", focused), ("scrollable", scrollable),
        ("long-clickable", long_clickable), ("password", False), ("selected", False),
    ]
    if hint is not None:
        pairs.append(("hint", hint))
    pairs.append(("bounds", f"[{x1},{y1}][{x2},{y2}]"))
    return " ".join(f"{k}={quoteattr(str(v).lower() if isinstance(v, bool) else v)}" for k, v in pairs)


def _element_attrs(el: Element, index: int, package: str) -> str:
    if el.kind == "edit_text":
        text, desc = str(el.value or ""), ""
    elif el.kind == "icon":
        text, desc = el.label, el.label
    elif el.kind == "list":
        text, desc = "", el.label
    else:
        text, desc = el.label, ""
    return _attrs(
        index, text, el.resource_id, _CLASSES[el.kind], package, desc, bounds=el.bounds,
        checkable=el.kind == "toggle", checked=bool(el.value) if el.kind == "toggle" else False,
        clickable=el.clickable, focusable=el.kind == "edit_text", focused=el.focused, scrollable=el.scrollable,
        long_clickable=el.long_clickable, hint=el.hint if el.kind == "edit_text" else None,
    )
