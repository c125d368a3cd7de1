"""The desktop's own icons for synthetic screens: the Adwaita theme's symbolic action icons.

Real GTK toolbars (mousepad's New, Open, Save As, Find and Replace) draw these exact shapes, at 16 px,
so a grounder that has only seen the hand-drawn shapes of synth_icons.py meets them for the first time
on a real screen. Where the theme is installed (Debian: adwaita-icon-theme, which every GTK app
pulls in) its icons join synth_icons.ICONS under their freedesktop names ("edit-find-replace"), each
with the words a toolkit and a person use for it; where it is not, nothing is added and synthetic
screens use the drawn icons only (so a training run is reproducible only with the same theme).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from PIL import Image

THEME_DIRS = tuple(Path(d) / "icons" / "Adwaita" for d in ("/usr/share", "/usr/local/share"))
SIZES = (16, 24, 32, 48, 64, 96)

# freedesktop name -> what people call it; the first is the toolkit's own label (a GTK button's name)
THEME_ICON_MEANINGS: dict[str, tuple[str, ...]] = {
    "document-new": ("New", "new document", "create"),
    "document-open": ("Open", "open file"),
    "document-save": ("Save",),
    "document-save-as": ("Save As",),
    "document-print": ("Print", "printer"),
    "document-print-preview": ("Print Preview",),
    "document-revert": ("Revert", "Reload"),
    "document-properties": ("Properties",),
    "edit-copy": ("Copy",),
    "edit-cut": ("Cut", "scissors"),
    "edit-paste": ("Paste",),
    "edit-undo": ("Undo",),
    "edit-redo": ("Redo",),
    "edit-find": ("Find", "search"),
    "edit-find-replace": ("Find and Replace", "Replace"),
    "edit-delete": ("Delete",),
    "edit-clear": ("Clear",),
    "edit-select-all": ("Select All",),
    "window-close": ("Close Tab", "Close"),
    "tab-new": ("New Tab",),
    "list-add": ("Add", "plus"),
    "list-remove": ("Remove", "minus"),
    "go-previous": ("Back", "Previous", "Prev"),
    "go-next": ("Forward", "Next"),
    "go-home": ("Home",),
    "go-up": ("Up", "Parent Folder"),
    "go-first": ("First",),
    "go-last": ("Last",),
    "view-refresh": ("Refresh", "Reload"),
    "view-fullscreen": ("Fullscreen",),
    "zoom-in": ("Zoom In",),
    "zoom-out": ("Zoom Out",),
    "zoom-original": ("Normal Size", "Reset Zoom"),
    "format-text-bold": ("Bold",),
    "format-text-italic": ("Italic",),
    "format-text-underline": ("Underline",),
    "format-justify-left": ("Align Left",),
    "format-justify-center": ("Center",),
    "media-playback-start": ("Play",),
    "media-playback-pause": ("Pause",),
    "media-playback-stop": ("Stop",),
    "media-skip-forward": ("Skip Forward", "Next Track"),
    "media-skip-backward": ("Skip Backward", "Previous Track"),
    "system-search": ("Search",),
    "preferences-system": ("Preferences", "Settings"),
    "help-browser": ("Help",),
    "help-about": ("About",),
    "folder-new": ("Create Folder", "New Folder"),
    "bookmark-new": ("Add Bookmark", "Bookmark"),
    "mail-send": ("Send",),
    "mail-reply-sender": ("Reply",),
    "mail-forward": ("Forward Message",),
    "open-menu": ("Main Menu", "Menu"),
    "view-more": ("More Options",),
    "view-list": ("List View",),
    "view-grid": ("Grid View",),
    "user-trash": ("Trash", "Delete"),
    "view-sort-ascending": ("Sort Ascending",),
    "view-sort-descending": ("Sort Descending",),
    "insert-image": ("Insert Image",),
    "insert-link": ("Insert Link",),
    "object-rotate-left": ("Rotate Left",),
    "object-rotate-right": ("Rotate Right",),
    "camera-photo": ("Take Photo", "Camera"),
    "audio-volume-high": ("Volume",),
}


def _theme_dir() -> Path | None:
    override = os.environ.get("VLAGENT_ICON_THEME")
    for folder in ((Path(override),) if override else THEME_DIRS):
        if (folder / "16x16" / "actions").is_dir():
            return folder
    return None


@lru_cache(maxsize=None)
def _files(name: str) -> dict[int, Path]:
    """The icon's symbolic PNGs by pixel size."""
    theme = _theme_dir()
    if theme is None:
        return {}
    found = {}
    for size in SIZES:
        hits = sorted((theme / f"{size}x{size}").glob(f"*/{name}-symbolic.symbolic.png"))
        if hits:
            found[size] = hits[0]
    return found


@lru_cache(maxsize=None)
def available_theme_icons() -> tuple[str, ...]:
    """The freedesktop names of THEME_ICON_MEANINGS that this machine's theme holds."""
    return tuple(name for name in THEME_ICON_MEANINGS if _files(name))


@lru_cache(maxsize=4096)
def theme_icon_mask(name: str, side: int) -> Image.Image:
    """The icon's shape as an 'L' mask side x side: its alpha, from the smallest file at least that size
    (downscaled with Lanczos, as a toolkit does at fractional scales)."""
    files = _files(name)
    if not files:
        raise KeyError(f"no theme icon {name!r} on this machine (theme folders tried: "
                       f"{', '.join(map(str, THEME_DIRS))})")
    size = min((s for s in files if s >= side), default=max(files))
    with Image.open(files[size]) as im:
        alpha = im.convert("RGBA").getchannel("A")
    return alpha if alpha.size == (side, side) else alpha.resize((side, side), Image.LANCZOS)


__all__ = ["THEME_ICON_MEANINGS", "available_theme_icons", "theme_icon_mask"]
