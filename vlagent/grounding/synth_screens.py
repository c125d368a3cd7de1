"""Layouts of synthetic screens: desktop windows, dialogs, mobile screens, web pages.

Each layout function draws onto a `Canvas` with labels from the screen's
language and records every control as an `Element`. Layouts are random in
their parts (which widgets, how many, where) but drawn in a flow so nothing
overlaps; a part that would not fit is left out.
"""

from __future__ import annotations

from vlagent.grounding.synth_canvas import Canvas, Element
from vlagent.grounding.synth_icons import ICONS
from vlagent.grounding.synth_theme_icons import available_theme_icons
from vlagent.grounding.synth_vocab import KEYBOARD_ROWS, VOCAB

TOOLBAR_ICONS = ("plus", "folder", "download", "upload", "trash", "pencil", "search", "refresh", "share", "copy",
                 "star", "filter", "gear", "help", "info", "link", "image", "lock", "calendar", "play", "pause")
APPBAR_ICONS = ("search", "more", "share", "heart", "star", "bell", "filter", "gear", "pencil", "trash", "camera")
NAV_ICONS = ("home", "search", "bell", "user", "gear", "mail", "calendar", "heart", "cart", "location", "clock", "image")


def _vocab(c: Canvas, kind: str) -> tuple[str, ...]:
    return VOCAB[c.lang].get(kind) or VOCAB["en"][kind]


def _title_bar(c: Canvas, x0: int, y0: int, x1: int, title: str, container: str) -> int:
    """A window title bar with minimize/maximize/close; returns its bottom."""
    t = c.theme
    h = c.u(30)
    c.draw.rectangle((x0, y0, x1, y0 + h), fill=t.surface2)
    c.text(((x0 + x1) // 2, y0 + h // 2), title, 12, t.text, bold=True, anchor="mm")
    s = c.u(12)
    bx = x1 - c.u(10) - s - c.u(8)
    close = c.icon_button(bx, y0 + (h - s) // 2 - c.u(4), "close", size=12, pad=4, container=container,
                          role="close button")  # fmt: skip
    close.extra["position"] = "close"
    # Minimize / maximize are drawn but not targets: their meaning is not in the icon set.
    mx = close.box[0] - c.u(26)
    c.draw.rectangle((mx, y0 + h // 2 - s // 2, mx + s, y0 + h // 2 + s // 2), outline=t.text, width=max(1, c.u(1)))
    nx = mx - c.u(26)
    c.draw.line((nx, y0 + h // 2 + s // 3, nx + s, y0 + h // 2 + s // 3), fill=t.text, width=max(1, c.u(1.5)))
    return y0 + h


def _form(c: Canvas, x: int, y: int, width: int, y_max: int, n_fields: int, n_checks: int) -> int:
    """Labelled fields, then checkboxes or radios, then maybe a slider; returns the y below."""
    for label in c.pick(_vocab(c, "field"), n_fields):
        if y + c.u(60) > y_max:
            return y
        placeholder = None if c.rng.random() < 0.7 else label.lower()
        _, y = c.field(x, y, width, label, placeholder if placeholder != label else None)
        y += c.u(12)
    if c.rng.random() < 0.5:
        for label in c.pick(_vocab(c, "check"), n_checks):
            if y + c.u(24) > y_max:
                return y
            _, h = c.check(x, y, label, "checkbox")
            y += h + c.u(10)
    else:
        group = c.pick(_vocab(c, "option"), min(3, n_checks + 1))
        selected = c.rng.randrange(len(group))
        for i, label in enumerate(group):
            if y + c.u(24) > y_max:
                return y
            _, h = c.check(x, y, label, "radio", on=i == selected, index=i, siblings=len(group), container="options")
            y += h + c.u(10)
    if c.rng.random() < 0.4 and y + c.u(50) < y_max:
        _, y = c.slider(x, y + c.u(4), min(width, c.u(260)), c.pick(_vocab(c, "slider"))[0])
        y += c.u(10)
    return y


def _list(c: Canvas, x0: int, y: int, x1: int, y_max: int, n: int, with_icons: bool = False) -> int:
    t = c.theme
    items = c.pick(_vocab(c, "item"), n)
    row = c.u(28 if not with_icons else 44)
    rows = []
    for label in items:
        if y + row > y_max:
            break
        rows.append((label, (x0, y, x1, y + row)))
        y += row
    for i, (label, box) in enumerate(rows):
        if i % 2 == 1:
            c.draw.rectangle(box, fill=t.surface2)
        tx = box[0] + c.u(10)
        if with_icons:
            r = c.u(14)
            cy = (box[1] + box[3]) // 2
            c.draw.ellipse((tx, cy - r, tx + 2 * r, cy + r), fill=t.accent)
            c.text((tx + r, cy), label[:1].upper(), 12, t.on_accent, bold=True, anchor="mm")
            tx += 2 * r + c.u(10)
        c.text((tx, (box[1] + box[3]) // 2), label, 13, t.text, anchor="lm")
        c.add("list item", box, label=label, container="list", index=i, siblings=len(rows), role="item")
    return y


def desktop_window(c: Canvas) -> None:
    t = c.theme
    y = _title_bar(c, 0, 0, c.w, c.rng.choice(("Files", "Mail", "Notes", "Editor", "Photos", "Music")), "window")
    # Menu bar
    c.draw.rectangle((0, y, c.w, y + c.u(26)), fill=t.surface)
    x = c.u(8)
    menus = c.pick(_vocab(c, "menu"), c.rng.randint(4, 6))
    menu_elements = []
    for i, label in enumerate(menus):
        tw, _ = c.text_size(label, 13)
        box = (x, y, x + tw + c.u(16), y + c.u(26))
        c.text((x + c.u(8), y + c.u(13)), label, 13, t.text, anchor="lm")
        menu_elements.append(c.add("menu", box, label=label, container="menu bar", index=i, siblings=len(menus),
                                   role="menu"))  # fmt: skip
        x = box[2]
    y += c.u(26)
    # Toolbar
    c.draw.rectangle((0, y, c.w, y + c.u(38)), fill=t.surface2)
    x = c.u(6)
    # the drawn shapes, or (half the time, where the theme is installed) the desktop's own icons
    theme = available_theme_icons()
    icons = c.rng.sample(theme if theme and c.rng.random() < 0.5 else TOOLBAR_ICONS, c.rng.randint(5, 9))
    for i, icon in enumerate(icons):
        size, pad = (16, 7) if icon in theme else (20, 5)  # a GTK toolbar's 16-px icon in a 30-px button
        el = c.icon_button(x, y + c.u(4), icon, size=size, pad=pad, container="toolbar", index=i,
                           siblings=len(icons))
        x = el.box[2] + c.u(4)
    y += c.u(38)
    body_top = y
    status_h = c.u(40)
    # Sidebar list
    side_w = c.u(c.rng.randint(170, 230))
    c.draw.rectangle((0, body_top, side_w, c.h - status_h), fill=t.surface)
    _list(c, 0, body_top + c.u(8), side_w, c.h - status_h, c.rng.randint(4, 8))
    # Content: tabs and a form
    x0 = side_w + c.u(24)
    y = body_top + c.u(10)
    if c.rng.random() < 0.6:
        y = c.tab_row(x0 - c.u(8), y, c.pick(_vocab(c, "tab"), c.rng.randint(3, 5))) + c.u(14)
    width = min(c.u(360), c.w - x0 - c.u(24))
    _form(c, x0, y, width, c.h - status_h - c.u(10), c.rng.randint(1, 3), c.rng.randint(1, 3))
    # Status bar with buttons on the right
    c.draw.rectangle((0, c.h - status_h, c.w, c.h), fill=t.surface2)
    labels = c.pick(_vocab(c, "button"), 2)
    x1 = c.w - c.u(10)
    for i, label in enumerate(reversed(labels)):
        tw, _ = c.text_size(label, 13)
        bx = x1 - tw - c.u(28)
        el = c.button(bx, c.h - status_h + c.u(5), label, primary=i == 0)
        x1 = el.box[0] - c.u(8)
    # An open drop-down under one menu, drawn last so it covers what is beneath.
    if c.rng.random() < 0.4:
        _open_menu(c, menu_elements[c.rng.randrange(len(menu_elements))])


def _open_menu(c: Canvas, parent: Element) -> None:
    t = c.theme
    items = c.pick(_vocab(c, "menu_item"), c.rng.randint(3, 6))
    width = max(c.text_size(i, 13)[0] for i in items) + c.u(40)
    x0, y = parent.box[0], parent.box[3]
    row = c.u(26)
    box = (x0, y, x0 + width, y + row * len(items) + c.u(8))
    # Whatever the menu covers is no longer a target.
    c.elements = [e for e in c.elements if not _overlaps(e.box, box) or e is parent]
    c.draw.rectangle(box, fill=t.surface, outline=t.border)
    y += c.u(4)
    for i, label in enumerate(items):
        item = (x0 + 1, y, x0 + width - 1, y + row)
        c.text((item[0] + c.u(14), y + row // 2), label, 13, t.text, anchor="lm")
        c.add("menu", item, label=label, container="open menu", index=i, siblings=len(items), role="menu item",
              extra={"parent": parent.label})  # fmt: skip
        y += row


def _overlaps(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return not (a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1])


def desktop_dialog(c: Canvas) -> None:
    t = c.theme
    # A blurred-looking desktop: flat wallpaper with a few window shapes.
    c.draw.rectangle((0, 0, c.w, c.h), fill=t.bg)
    for _ in range(3):
        x, y = c.rng.randrange(0, c.w // 2), c.rng.randrange(0, c.h // 2)
        c.draw.rectangle((x, y, x + c.w // 2, y + c.h // 2), fill=t.surface2, outline=t.border)
    dw = min(c.w - c.u(40), c.u(c.rng.randint(380, 520)))
    x0 = (c.w - dw) // 2
    title = c.pick(_vocab(c, "title"))[0]
    n_fields = c.rng.randint(0, 3)
    n_checks = c.rng.randint(0, 2)
    est_h = c.u(30 + 50 + 62 * n_fields + 30 * n_checks + 70 + (50 if n_checks else 0))
    y0 = max(c.u(10), (c.h - est_h) // 2)
    c.draw.rectangle((x0 + c.u(4), y0 + c.u(6), x0 + dw + c.u(4), y0 + est_h + c.u(6)), fill=t.border)  # shadow
    c.draw.rectangle((x0, y0, x0 + dw, y0 + est_h), fill=t.surface, outline=t.border)
    y = _title_bar(c, x0, y0, x0 + dw, title, "dialog")
    # The close button and the button row say "dialog" in their instructions; the form inside does not need to.
    y = c.text((x0 + c.u(20), y + c.u(16)), c.rng.choice(("Please fill in the details below.", "Choose your options.",
                                                           "Changes apply after a restart.")), 12, t.muted)[3]  # fmt: skip
    y += c.u(16)
    y = _form(c, x0 + c.u(20), y, dw - c.u(40), y0 + est_h - c.u(60), n_fields, n_checks) if n_fields + n_checks else y
    labels = c.pick(_vocab(c, "button"), c.rng.randint(2, 3))
    x1 = x0 + dw - c.u(16)
    by = y0 + est_h - c.u(48)
    placed = []
    for i, label in enumerate(reversed(labels)):
        tw, _ = c.text_size(label, 13)
        el = c.button(x1 - tw - c.u(28), by, label, primary=i == 0, container="dialog")
        placed.append(el)
        x1 = el.box[0] - c.u(10)
    for i, el in enumerate(reversed(placed)):
        el.index, el.siblings = i, len(placed)
    placed[0].extra["position"] = "bottom right"


def mobile_screen(c: Canvas) -> None:
    t = c.theme
    # Status bar: time and system icons (not targets).
    sb = c.u(24)
    c.draw.rectangle((0, 0, c.w, sb), fill=t.surface2)
    c.text((c.u(14), sb // 2), f"{c.rng.randint(7, 23)}:{c.rng.randint(0, 59):02d}", 11, t.text, anchor="lm")
    c.draw.rectangle((c.w - c.u(30), c.u(8), c.w - c.u(12), sb - c.u(8)), outline=t.text, width=max(1, c.u(1)))
    # App bar: back or menu, title, one or two actions.
    ab = c.u(56)
    c.draw.rectangle((0, sb, c.w, sb + ab), fill=t.surface)
    lead = c.rng.choice(("back", "menu"))
    c.icon_button(c.u(6), sb + c.u(10), lead, size=24, pad=6, container="app bar", role="icon")
    c.text((c.u(60), sb + ab // 2), c.pick(_vocab(c, "title"))[0], 17, t.text, bold=True, anchor="lm")
    x = c.w - c.u(6)
    for icon in c.rng.sample(APPBAR_ICONS, c.rng.randint(1, 2)):
        x -= c.u(36)
        c.icon_button(x, sb + c.u(10), icon, size=24, pad=6, container="app bar")
    y = sb + ab + c.u(8)
    nav_h = c.u(64) if c.rng.random() < 0.7 else 0
    keyboard = c.rng.random() < 0.25
    bottom = c.h - nav_h - (c.u(210) if keyboard else 0)
    variant = c.rng.choice(("settings", "list", "cards", "form"))
    if variant == "settings":
        for label in c.pick(_vocab(c, "check"), c.rng.randint(3, 7)):
            row = c.u(52)
            if y + row > bottom:
                break
            c.text((c.u(16), y + row // 2), label, 15, t.text, anchor="lm")
            c.switch(c.w - c.u(16), y + row // 2, label)
            c.draw.line((c.u(16), y + row, c.w, y + row), fill=t.border)
            y += row
    elif variant == "list":
        _list(c, 0, y, c.w, bottom, c.rng.randint(4, 9), with_icons=True)
    elif variant == "cards":
        for _ in range(3):
            ch = c.u(130)
            if y + ch > bottom:
                break
            box = (c.u(12), y, c.w - c.u(12), y + ch)
            c.draw.rounded_rectangle(box, radius=c.u(10), fill=t.surface, outline=t.border)
            c.text((box[0] + c.u(14), y + c.u(14)), c.pick(_vocab(c, "item"))[0], 15, t.text, bold=True)
            c.text((box[0] + c.u(14), y + c.u(40)), "Lorem ipsum dolor sit amet.", 12, t.muted)
            c.button(box[0] + c.u(10), y + ch - c.u(46), c.pick(_vocab(c, "button"))[0], primary=c.rng.random() < 0.5)
            c.icon_button(box[2] - c.u(46), y + ch - c.u(46), c.rng.choice(("heart", "share", "star", "more")),
                          size=22, pad=6, container="card")  # fmt: skip
            y += ch + c.u(12)
    else:
        _form(c, c.u(16), y + c.u(8), c.w - c.u(32), bottom - c.u(60), c.rng.randint(2, 3), 1)
        label = c.pick(_vocab(c, "button"))[0]
        tw, _ = c.text_size(label, 15)
        c.button((c.w - tw - c.u(28)) // 2, bottom - c.u(52), label, primary=True, size=15)
    if keyboard:
        _keyboard(c, c.h - nav_h - c.u(210), c.h - nav_h)
    if nav_h:
        _bottom_nav(c, c.h - nav_h)
    elif not keyboard:
        s = c.u(56)
        fab = c.icon_button(c.w - s - c.u(16), c.h - s - c.u(16), c.rng.choice(("plus", "pencil", "camera")),
                            size=24, pad=16, color=t.on_accent, background=t.accent, round_=True,
                            container="screen", role="floating button")  # fmt: skip
        fab.extra["position"] = "floating"


def _bottom_nav(c: Canvas, y0: int) -> None:
    t = c.theme
    c.draw.rectangle((0, y0, c.w, c.h), fill=t.surface2)
    n = c.rng.randint(3, 5)
    icons = c.rng.sample(NAV_ICONS, n)
    labels = c.pick(_vocab(c, "nav"), n) if c.rng.random() < 0.7 else [None] * n
    cell = c.w / n
    for i, (icon, label) in enumerate(zip(icons, labels)):
        cx = int(cell * i + cell / 2)
        s = c.u(24)
        top = y0 + c.u(8)
        color = t.accent if i == 0 else t.muted
        el = c.icon_button(cx - s // 2 - c.u(4), top, icon, size=24, pad=4, color=color,
                           container="bottom navigation", index=i, siblings=n)  # fmt: skip
        if label:
            lb = c.text((cx, el.box[3] + c.u(2)), label, 11, color, anchor="mt")
            # A labelled navigation item is one tab: icon and label together.
            c.elements.remove(el)
            c.add("tab", (min(el.box[0], lb[0]), el.box[1], max(el.box[2], lb[2]), lb[3] + c.u(2)), label=label,
                  icon=icon, container="bottom navigation", index=i, siblings=n, role="tab")  # fmt: skip


def _keyboard(c: Canvas, y0: int, y1: int) -> None:
    t = c.theme
    c.draw.rectangle((0, y0, c.w, y1), fill=t.surface2)
    rows = [*KEYBOARD_ROWS]
    gap = c.u(4)
    key_h = (y1 - y0 - 5 * gap) // 4
    key_w = (c.w - 11 * gap) / 10
    for r, letters in enumerate(rows):
        y = y0 + gap + r * (key_h + gap)
        x = gap + (10 - len(letters)) * (key_w + gap) / 2
        for ch in letters:
            box = (int(x), y, int(x + key_w), y + key_h)
            c.draw.rounded_rectangle(box, radius=c.u(4), fill=t.surface)
            c.text(((box[0] + box[2]) // 2, (box[1] + box[3]) // 2), ch, 16, t.text, anchor="mm")
            c.add("button", box, label=ch, container="keyboard", role="key")
            x += key_w + gap
    y = y0 + gap + 3 * (key_h + gap)
    space = (int(gap + 2.5 * (key_w + gap)), y, int(gap + 7.5 * (key_w + gap) - gap), y + key_h)
    c.draw.rounded_rectangle(space, radius=c.u(4), fill=t.surface)
    c.add("button", space, label="space", container="keyboard", role="space bar")


def web_page(c: Canvas) -> None:
    t = c.theme
    # Top navigation: site name, links, search field + button, sign-in button.
    nh = c.u(56)
    c.draw.rectangle((0, 0, c.w, nh), fill=t.surface)
    c.draw.line((0, nh, c.w, nh), fill=t.border)
    brand = c.rng.choice(("Acme", "Nimbus", "Quill", "Orbit", "Fjord", "Lumen"))
    x = c.text((c.u(20), nh // 2), brand, 18, t.text, bold=True, anchor="lm")[2] + c.u(28)
    for label in c.pick(_vocab(c, "link"), c.rng.randint(3, 5)):
        if x + c.u(120) > c.w * 0.6:
            break
        el = c.link(x, nh // 2 - c.u(8), label, underline=False, container="navigation bar")
        x = el.box[2] + c.u(22)
    right = c.w - c.u(20)
    label = c.pick(_vocab(c, "button"))[0]
    tw, _ = c.text_size(label, 13)
    sign = c.button(right - tw - c.u(28), nh // 2 - c.u(16), label, primary=True, container="navigation bar")
    if sign.box[0] - c.u(260) > x:
        f, _ = c.field(sign.box[0] - c.u(250), nh // 2 - c.u(15), c.u(190), None, c.rng.choice(("Search…", "Suchen…",
                       "Rechercher…", "Поиск…", "搜索…")) if c.lang != "en" else "Search…", label_above=False,
                       container="navigation bar")  # fmt: skip
        f.role = "search box"
        c.icon_button(f.box[2] + c.u(4), f.box[1], "search", size=18, pad=6, container="navigation bar")
    # Heading, paragraph, then a form or cards in the main column; links in a sidebar.
    y = nh + c.u(30)
    main_x = c.u(40)
    heading = c.pick(_vocab(c, "title"))[0]
    hb = c.text((main_x, y), heading, 26, t.text, bold=True)
    c.add("text", hb, label=heading, role="heading")
    y = hb[3] + c.u(12)
    y = c.text((main_x, y), "The quick brown fox jumps over the lazy dog.", 13, t.muted)[3] + c.u(24)
    sidebar = c.w > c.u(900)
    main_w = (c.w - c.u(340)) if sidebar else c.w - 2 * main_x
    if c.rng.random() < 0.6:
        y = _form(c, main_x, y, min(main_w, c.u(420)), c.h - c.u(70), c.rng.randint(2, 3), c.rng.randint(1, 2))
        labels = c.pick(_vocab(c, "button"), 2)
        bx = main_x
        for i, label in enumerate(labels):
            if y + c.u(40) > c.h:
                break
            el = c.button(bx, y + c.u(6), label, primary=i == 0)
            bx = el.box[2] + c.u(12)
        if y + c.u(70) < c.h:
            c.link(main_x, y + c.u(52), c.pick(_vocab(c, "link"))[0])
    else:
        _list(c, main_x, y, main_x + min(main_w, c.u(520)), c.h - c.u(20), c.rng.randint(3, 7), with_icons=True)
    if sidebar:
        sx = c.w - c.u(260)
        sy = nh + c.u(34)
        c.text((sx, sy), "Links", 15, t.text, bold=True)
        sy += c.u(30)
        for label in c.pick(_vocab(c, "link"), c.rng.randint(2, 4)):
            if sy + c.u(30) > c.h:
                break
            c.link(sx, sy, label, container="sidebar")
            sy += c.u(28)


LAYOUTS = {
    "desktop": (desktop_window, "desktop"),
    "dialog": (desktop_dialog, "desktop"),
    "mobile": (mobile_screen, "android"),
    "web": (web_page, "web"),
}

assert all(icon in ICONS for icon in (*TOOLBAR_ICONS, *APPBAR_ICONS, *NAV_ICONS))

__all__ = ["LAYOUTS"]
