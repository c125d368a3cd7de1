"""Describe, don't point: automation scripts that address the screen by description.

    import vlagent
    with vlagent.connect("desktop") as bot:            # or "android", "android:SERIAL"
        bot.click("the Save button")
        bot.type_into("the Name field", "Grüße, 你好")
        bot.select("the Language dropdown", "Deutsch")
        loc = bot.locate("the gear icon")            # point, box, confidence, candidates
        bot.wait_for("the 'Upload complete' message", timeout=30)
        bot.wait_until_gone("Loading...", timeout=60)  # a spinner's line, a dialog closing
        bot.hover("the Undo button")                  # the pointer on it, no click: its tooltip shows
        if bot.exists("the cookie banner"):
            bot.click("Accept")
        bot.click("report.pdf", modifiers="ctrl")    # ctrl held down during the click
        bot.scroll_to("Order 1063", within="Order 1001")  # scroll a list until it shows
        bot.set_slider("the Volume slider", 0.7)     # its knob dragged to 70 % of the track
        bot.press("ctrl", "s")

Every call looks at a fresh screenshot, grounds the description (looking again for up to
`find_timeout` seconds while it is not there yet), and executes through the environment inside a
recorded Session (trajectory.jsonl, report.html), which waits for the screen to show what an action
did before the next call looks. Where a description is still not found at the second look while the
pointer rests on what the last call clicked, the pointer is moved aside (POINTER_ASIDE, a recorded
step) and the look goes on: that element's tooltip may cover the target. The safety options are those
of `vlagent run`: dry_run, confirm, secrets typed as {{name}} (and text typed into a password, PIN or token field, which the recording
keeps as {{typed_1}}). Below the grounder's confidence a call raises TargetNotFound naming the
description, with the candidates drawn on a saved screenshot: it never clicks a guess.
"""
from __future__ import annotations

import re
import sys
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from vlagent.actions import Action
from vlagent.grounding.controls import FIELD, control_kind
from vlagent.grounding.locate import TargetNotFound, locate
from vlagent.loop_guard import same_screen, screen_print, wait_until_still
from vlagent.session import Session


FIND_TIMEOUT = 3.0  # seconds a call that acts on a description keeps looking for it (a menu still opening)
MAX_SCROLLS = 25  # scrolls scroll_to() makes at most before it gives up (a list's end stops it sooner)
SCROLL_DIRECTIONS = ("down", "up", "right", "left")
SLIDER_TOLERANCE = 0.02  # of a slider's track: a knob set this near the level asked for is not dragged again
LIST_WAIT = 2.0  # seconds select() gives a drop-down's list to appear (a screen that does not change opened none)
# Where a miss moves a resting pointer out of the way (its tooltip may cover the target): the middle of the
# screen's right edge, where desktops put no hot corner and a tooltip has little to cover.
POINTER_ASIDE = (0.999, 0.5)


def as_drop_down(description: str) -> str:
    """However a drop-down is named ("the Language drop-down menu", "Language"), it is a field to click."""
    return description if control_kind(description) == FIELD else f"{description} (drop-down)"


def in_the_list(option: str) -> str:
    """The description of an option in an open list, quoted as its text: "'Large' in the list"."""
    return f"{_quoted(option)} in the list"


class ActionFailed(RuntimeError):
    """The environment did not execute an action (declined, unsupported, failed)."""


class Bot:
    """A scripted session on one environment; create it with vlagent.connect()."""

    def __init__(self, env: Any, grounder: Any, *, platform: str = "desktop", run_dir: str | Path | None = None,
                 dry_run: bool = False, confirm: Any = None, secrets: Mapping[str, str] | Sequence[str] | None = None,
                 task: str = "script", find_timeout: float = FIND_TIMEOUT, settle: bool = True,
                 session: Session | None = None, execute: Callable[[Action, str], Any] | None = None) -> None:
        """session: act inside this one (the MCP server's) instead of a new one; the run-folder and safety
        options are then its own. execute(action, note) -> ActionOutcome: how an action is executed
        (default: session.act; the MCP server asks the user through its client first)."""
        if not find_timeout >= 0:
            raise ValueError(f"find_timeout is seconds, 0 or more; got {find_timeout!r}")
        self.env, self.grounder, self.platform, self.find_timeout = env, grounder, platform, find_timeout
        self.session = session if session is not None else Session(
            env, task=task, run_dir=run_dir, dry_run=dry_run, confirm=confirm, secrets=secrets, settle=settle)
        self._execute = execute if execute is not None else self.session.act

    # -- finding ------------------------------------------------------------

    def locate(self, description: str, timeout: float | None = None) -> Any:
        """The grounder's answer on a fresh screenshot (a GroundingResult). Looks again, every half second,
        for up to `timeout` seconds (default the bot's find_timeout: a menu still opening, a page still
        loading) before it raises TargetNotFound. Every call that acts on a description finds it so."""
        return self._find("locate", description, self.find_timeout if timeout is None else timeout)

    def exists(self, description: str) -> bool:
        """Whether the description is on the screen now (one look). A "no" is an answer, not an error: it is
        recorded as one line, without a candidates screenshot. A tooltip covering the target hides it
        from exists(): the pointer is moved aside only after a second miss, which one look never has."""
        _, result, missing = self._look(description)
        if missing is not None:
            self.session.note(f"exists({description!r}) -> no ({missing.reason or 'below the confidence threshold'})")
            return False
        self._record_hit(f"exists({description!r}) -> yes", result)
        return True

    def wait_for(self, description: str, timeout: float = 30.0, interval: float = 0.5) -> Any:
        """Poll until the description is found (returns the result) or raise TargetNotFound at the timeout.
        Only the outcome is recorded (one step), not every look."""
        return self._find("wait_for", description, timeout, interval)

    def wait_until_gone(self, description: str, timeout: float = 30.0, interval: float = 0.5) -> float:
        """Poll until the description is no longer on the screen (a spinner, a "Loading..." line, a dialog
        closing; text, quoted, is the surest) and return the seconds that took: two looks in a row that do
        not find it. Raise TimeoutError naming it where it is still there after `timeout` seconds. Only
        the outcome is recorded (one step), not every look."""
        if not timeout >= 0 or not interval > 0:
            raise ValueError(f"timeout is seconds, 0 or more, and interval more than 0; got {timeout!r}, {interval!r}")
        start, looks, misses = time.monotonic(), 0, 0
        while True:
            _, result, missing = self._look(description)
            looks += 1
            waited = time.monotonic() - start
            misses = misses + 1 if missing is not None else 0
            # gone at two misses in a row (one may be a spinner's blank frame), or one at the deadline
            if misses >= 2 or (misses and waited + interval > timeout):
                self.session.note(f"wait_until_gone({description!r}) -> gone after {waited:.1f} s "
                                  f"({looks} look{'s' * (looks > 1)})")
                return waited
            if missing is None and waited + interval > timeout:
                message = (f"{description!r} is still on the screen after {timeout:g} s ({looks} look"
                           f"{'s' * (looks > 1)}), at ({result.point[0]:.3f}, {result.point[1]:.3f})")
                self.session.note(f"wait_until_gone({description!r}): still there", error=message)
                raise TimeoutError(message)
            time.sleep(interval)

    def read(self, description: str | None = None, timeout: float | None = None) -> str:
        """The text written inside what the description names (a field's content, a status line, a result
        display; found as `locate` finds it), or, with no description, all the screen's text, a line per
        row, top to bottom. Read by OCR from a fresh screenshot; "" where nothing is written."""
        if description is None:
            image = self.session.observe().image
            text = read_text(image)
            self.session.note(f"read() -> {len(text.splitlines())} lines")
            return text
        found = self.locate(description, timeout)
        text = read_text(self.session.last.image, found.box or box_around(found.point))
        self.session.note(f"read({description!r}) -> {text!r}")
        return text

    def screenshot(self, path: str | Path | None = None) -> Any:
        """A fresh screenshot (a PIL image), also saved as PNG at `path` when given."""
        image = self.session.observe().image
        if path is not None:
            image.save(Path(path), format="PNG")
        return image

    def _find(self, call: str, description: str, timeout: float, interval: float = 0.5,
              named: str | None = None, missing_as: str = "not found", aside: bool = True) -> Any:
        """Look for `description` until found or `timeout` seconds have passed; one step records the outcome.
        `named`: the description as the script wrote it, where `description` adds to it; `missing_as`: how
        the miss reads ("not in the list" within 1 s); `aside`: move a resting pointer aside after the
        second miss (not while a list it opened is showing)."""
        start = time.monotonic()
        deadline, looks = start + timeout, 0
        name = named if named is not None else description
        while True:
            image, result, missing = self._look(description)
            looks += 1
            if missing is None:
                after = f", after {time.monotonic() - start:.1f} s ({looks} looks)" if looks > 1 else ""
                self._record_hit(f"{call}({name!r})", result, after)
                return result
            if aside and looks >= 2 and self._pointer_rests():  # the last target's tooltip may cover this one: look again
                self._move_aside(call, name)
                continue
            if time.monotonic() + interval > deadline:
                missing.description = name
                if timeout > 0:  # one look, however long it took, or several
                    missing.reason = (f"{missing_as} within {timeout:g} s ({looks} look{'s' * (looks > 1)}); the "
                                      f"last screenshot: {missing.reason or 'below the confidence threshold'}")
                self._record_miss(f"{call}({name!r})", image, missing)
                raise missing
            time.sleep(interval)

    def _look(self, description: str) -> tuple[Any, Any, TargetNotFound | None]:
        """Ground on a fresh screenshot, recording nothing: (image, result, None) or (image, None, the miss)."""
        image = self.session.observe().image
        try:
            return image, locate(self.grounder, image, description, platform=self.platform), None
        except TargetNotFound as missing:
            return image, None, missing

    def _record_hit(self, call: str, result: Any, after: str = "") -> None:
        self.session.note(f"{call} -> ({result.point[0]:.3f}, {result.point[1]:.3f}), "
                          f"confidence {result.confidence:.2f}{after}")

    def _record_miss(self, call: str, image: Any, missing: TargetNotFound) -> None:
        missing.screenshot = self._draw_candidates(image, missing.candidates)
        self.session.note(f"{call}: not found", error=missing.reason)

    # -- acting -------------------------------------------------------------

    def click(self, description: str, button: str = "left", double: bool = False,
              modifiers: str | Sequence[str] = ()) -> Any:
        """Find the element and click it. modifiers: keys held down during the click on a desktop
        (`modifiers="ctrl"` adds an item to a selection, `("shift",)` extends it)."""
        found, keys = self.locate(description), _held(modifiers)
        self._act(Action(_click_kind(button, double), point=found.point, keys=keys),
                  f"click({description!r}{_held_note(keys)})")
        return found

    def click_at(self, x: float, y: float, button: str = "left", double: bool = False,
                 modifiers: str | Sequence[str] = ()) -> None:
        """Click a point given as fractions of the screen (0-1, x right, y down): for what no description
        names, such as a spot in a canvas or an editor's empty page."""
        if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
            raise ValueError(f"click_at takes fractions of the screen from 0 to 1; got ({x!r}, {y!r})")
        keys = _held(modifiers)
        self._act(Action(_click_kind(button, double), point=(float(x), float(y)), keys=keys),
                  f"click_at({x:.3f}, {y:.3f}{_held_note(keys)})")

    def hover(self, description: str) -> Any:
        """Move the pointer onto the element without clicking (its tooltip shows, a hover menu opens)."""
        found = self.locate(description)
        self._act(Action("move", point=found.point), f"hover({description!r})")
        return found

    def type_into(self, description: str, text: str, secret: bool | None = None) -> Any:
        """Click the field, then type `text`. secret: type it without recording it (the run folder's text
        shows ``{{typed_1}}``; screenshots show what the screen shows); by default when the description
        names a password, PIN, security or one-time code, key or token field ("the Password field") and
        the text is 4 characters or more. A replay asks for hidden text as a secret: `vlagent replay
        RUN --secret typed_1` with VLAGENT_SECRET_TYPED_1 set."""
        found = self.click(description)
        self._act(Action("type", text=self.session.typed(text, secret, description)), f"type_into({description!r})")
        return found

    def select(self, description: str, option: str, timeout: float = 10.0) -> Any:
        """Open the drop-down this describes and choose `option` from its list: `bot.select("the Language
        dropdown", "Deutsch")`. Clicks the drop-down and gives its list up to LIST_WAIT seconds to be
        drawn (TargetNotFound at once when the screen does not change: what was clicked opened no list),
        then looks for the option as text in the list for up to `timeout` seconds (TargetNotFound after
        that) and clicks it; like every action, it returns once the screen holds still, so the next call
        sees the choice. Returns the option's GroundingResult (None in a dry run: the list never opens)."""
        if not option.strip():
            raise ValueError("select() needs the option to choose, as its list writes it; got an empty one")
        call = f"select({description!r}, {option!r})"
        opened = self._find("locate", as_drop_down(description), self.find_timeout, named=description)
        closed = screen_print(self.session.last.image)  # the screen the drop-down was found on
        self._act(Action("click", point=opened.point), f"{call}: open")
        if self.session.dry_run:
            self.session.note(f"{call}: the list does not open in a dry run; the option is not looked for")
            return None
        # Wait for the list to be drawn; a screen that does not change opened none (a label was clicked).
        if not wait_until_still(lambda: self.session.observe().image, closed, min(timeout, LIST_WAIT)):
            missing = TargetNotFound(description, f"clicking it at ({opened.point[0]:.3f}, {opened.point[1]:.3f}) "
                                     f"opened no list: the screen did not change in {min(timeout, LIST_WAIT):g} s "
                                     "(a label beside the drop-down, or no drop-down)", None, [])
            self._record_miss(f"{call}: open", self.session.last.image, missing)
            raise missing
        found = self._find("locate", in_the_list(option), timeout, named=option, missing_as="not in the list",
                           aside=False)
        # The session waits for the list to close and the app to repaint: the next call sees the choice.
        self._act(Action("click", point=found.point), call)
        return found

    def type(self, text: str, secret: bool = False) -> None:
        """Type into whatever has the keyboard focus; secret=True keeps `text` out of the recording."""
        self._pointer_back()
        self._act(Action("type", text=self.session.typed(text, secret)), "type(…)")

    def press(self, *keys: str) -> None:
        self._pointer_back()
        self._act(Action("key", keys=tuple(keys)), f"press({'+'.join(keys)})")

    def scroll(self, direction: str = "down", within: str | None = None, amount: float = 3.0) -> None:
        point = self.locate(within).point if within else None
        self._act(Action("scroll", direction=direction, amount=amount, point=point), f"scroll({direction})")

    def scroll_to(self, description: str, direction: str = "down", within: str | None = None,
                  max_scrolls: int = MAX_SCROLLS, amount: float = 3.0) -> Any:
        """Scroll until the description is on the screen; returns what was found, as locate() does:
        `bot.scroll_to("Battery")`, `bot.scroll_to("the checkbox in the row with zed", within="alice")`.
        Looks first, then scrolls `direction` by `amount` at `within`'s place (else where the pointer rests
        after this script's last action, else the screen's middle) and looks again. Raises TargetNotFound
        once a scroll changes nothing on the screen (the end of what scrolls) or after `max_scrolls`
        scrolls; each scroll is a recorded step."""
        if direction not in SCROLL_DIRECTIONS:
            raise ValueError(f"direction is one of {', '.join(SCROLL_DIRECTIONS)}; got {direction!r}")
        if isinstance(max_scrolls, bool) or not isinstance(max_scrolls, int) or max_scrolls < 1:
            raise ValueError(f"max_scrolls is a whole number of scrolls, 1 or more; got {max_scrolls!r}")
        # a desktop's wheel scrolls what is under the pointer: where it rests (in the list just clicked), if it does
        point = self.locate(within).point if within else None if self._pointer_rests() else (0.5, 0.5)
        image, result, missing = self._look(description)
        scrolls = 0
        while missing is not None and scrolls < max_scrolls:
            before = screen_print(image)
            scrolls += 1
            self._act(Action("scroll", direction=direction, amount=amount, point=point),
                      f"scroll_to({description!r}): scroll {direction} ({scrolls})")
            image, result, missing = self._look(description)
            if missing is not None and self.session.dry_run:
                ended = "a dry run does not scroll: not on the screen as it is"
                break
            if missing is not None and same_screen(before, screen_print(image)):
                ended = f"scrolled {direction} to the end ({scrolls} scroll{'s' * (scrolls > 1)}; the last one " \
                        f"changed nothing)"
                break
        else:
            ended = f"not found after {scrolls} scroll{'s' * (scrolls > 1)} {direction}"
        if missing is None:
            after = f", after {scrolls} scroll{'s' * (scrolls > 1)} {direction}" if scrolls else ""
            self._record_hit(f"scroll_to({description!r})", result, after)
            return result
        missing.description = description
        missing.reason = f"{ended}; the last screenshot: {missing.reason or 'below the confidence threshold'}"
        self._record_miss(f"scroll_to({description!r})", image, missing)
        raise missing

    def set_slider(self, description: str, level: float) -> float:
        """Drag the knob of the slider this describes to `level` of the way along its track (0 to 1: from
        the left, or from the bottom of a standing slider) and return the level its knob shows afterwards
        (a slider that moves in steps stops near the one asked for): `bot.set_slider("the Volume slider",
        0.7)`. A knob that lands off the level by more than SLIDER_TOLERANCE is dragged once more."""
        from vlagent.grounding.controls import find_sliders, slider_level, slider_point, text_height
        from vlagent.grounding.grounders.head import screen_text

        if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0.0 <= level <= 1.0:
            raise ValueError(f"level is a fraction of the slider's track, from 0 to 1; got {level!r}")
        found = self.locate(description)
        image = self.session.last.image
        unit = text_height(screen_text(image), image.size)
        slider = _slider_at(find_sliders(image, unit), found.point, image.size, unit)
        if slider is None:
            raise ActionFailed(f"{description!r} was found at ({found.point[0]:.3f}, {found.point[1]:.3f}), but no "
                               "slider (a track with a knob on it) is there")
        for attempt in range(2):
            start, end = (_normalized(p, image.size) for p in (slider.knob, slider_point(slider, float(level))))
            self._act(Action("drag", point=start, end=end), f"set_slider({description!r}, {level:g})")
            if self.session.dry_run:  # nothing moved: the knob's level as it is
                return slider_level(slider)
            image = self.session.observe().image
            moved = _slider_at(find_sliders(image, unit), end, image.size, unit)
            if moved is None:
                raise ActionFailed(f"the slider {description!r} was dragged, and no slider is seen there any more")
            slider, reached = moved, slider_level(moved)
            if abs(reached - level) <= SLIDER_TOLERANCE:
                break
        self.session.note(f"set_slider({description!r}, {level:g}) -> {reached:.3f}")
        return reached

    def drag(self, description: str, to: str, modifiers: str | Sequence[str] = ()) -> None:
        """Drag the element onto another (modifiers: keys held down meanwhile: "ctrl" copies in a file manager)."""
        start, end, keys = self.locate(description).point, self.locate(to).point, _held(modifiers)
        self._act(Action("drag", point=start, end=end, keys=keys), f"drag({description!r} -> {to!r}{_held_note(keys)})")

    # phone verbs
    def back(self) -> None:
        self._act(Action("back"), "back()")

    def home(self) -> None:
        self._act(Action("home"), "home()")

    def open_app(self, package: str) -> None:
        self._act(Action("open_app", text=package), f"open_app({package})")

    def long_press(self, description: str) -> None:
        self._act(Action("long_press", point=self.locate(description).point), f"long_press({description!r})")

    def swipe(self, description: str, to: str) -> None:
        start, end = self.locate(description).point, self.locate(to).point
        self._act(Action("swipe", point=start, end=end), f"swipe({description!r} -> {to!r})")

    # -- the session --------------------------------------------------------

    @property
    def run_dir(self) -> Path:
        return self.session.run_dir

    def close(self) -> Path | None:
        """Finish the run folder; returns report.html."""
        report = self.session.close()
        self.env.close()
        return report

    def __enter__(self) -> "Bot":
        return self

    def __exit__(self, exc_type, *rest: Any) -> None:
        self.session.close("done" if exc_type is None else "error")
        self.env.close()

    def _act(self, action: Action, note: str) -> Any:
        outcome = self._execute(action, note)
        if outcome.status in ("failed", "declined"):
            raise ActionFailed(outcome.error or f"{action.describe()} was {outcome.status}")
        return outcome

    def _move_aside(self, call: str, name: str) -> None:
        self.session.aside_from = self.session.pointer
        self._act(Action("move", point=POINTER_ASIDE), f"{call}({name!r}): not found with the pointer at rest on "
                  "the last target; moved aside (a tooltip may cover the screen)")

    def _pointer_back(self) -> None:
        pointer_back(self.session, self._act)

    def _pointer_rests(self) -> bool:
        """Whether the desktop's pointer rests where an action of this session left it (not moved aside)."""
        return self.platform == "desktop" and self.session.pointer not in (None, POINTER_ASIDE)

    def _draw_candidates(self, image, candidates: list) -> Path:
        from vlagent.overlay import draw_grounding

        path = self.session.run_dir / f"not-found-{self.session.steps:03d}.png"
        draw_grounding(image, None, [c.point for c in candidates]).save(path)
        return path


def pointer_back(session: Session, act: Callable[[Action, str], Any]) -> None:
    """Before keys are typed or pressed with the pointer moved aside (Bot's tooltip move), put it back where
    it rested: on an X server without a window manager the keyboard goes to the window under the pointer,
    and aside lies outside every window. `act(action, note)` runs the move."""
    if session.pointer == POINTER_ASIDE and session.aside_from is not None:
        act(Action("move", point=session.aside_from), "moved back onto the last target: the keyboard may follow "
            "the pointer")


def _click_kind(button: str, double: bool) -> str:
    kinds = {"left": "click", "right": "right_click", "middle": "middle_click"}
    if button not in kinds:
        raise ValueError(f"button is 'left', 'right' or 'middle'; got {button!r}")
    return "double_click" if double else kinds[button]


def _held(modifiers: str | Sequence[str]) -> tuple[str, ...] | None:
    """Keys to hold during a click: "ctrl", "ctrl+shift" or ("ctrl", "shift") (the environment reads a
    "+" combo as its keys); None for none."""
    keys = tuple(key for key in ([modifiers] if isinstance(modifiers, str) else modifiers) if key.strip())
    return keys or None


def _held_note(keys: tuple[str, ...] | None) -> str:
    return f", modifiers={'+'.join(keys)!r}" if keys else ""


def _slider_at(sliders: Sequence[Any], point: tuple[float, float], size: tuple[int, int], unit: float) -> Any:
    """The slider (controls.Control) whose box, half a text height wider all round, holds the normalized
    point; the nearest such where several do; None where none does."""
    x, y = point[0] * size[0], point[1] * size[1]
    holding = [s for s in sliders if s.contains(x, y, margin=unit / 2)]
    return min(holding, key=lambda s: (s.centre[0] - x) ** 2 + (s.centre[1] - y) ** 2, default=None)


def _normalized(pixel: Sequence[float], size: tuple[int, int]) -> tuple[float, float]:
    return min(max(pixel[0] / size[0], 0.0), 1.0), min(max(pixel[1] / size[1], 0.0), 1.0)


ROW_OVERLAP = 0.5  # share of the smaller line's height two OCR lines share to be read as one row
_CARET_AT_END = re.compile(r"\s*[|│]$")  # a field's text cursor, which OCR reads as a bar after the text


def read_text(image: Any, box: Sequence[float] | None = None) -> str:
    """The OCR text of `image`, or of what is written inside `box` (normalized x0, y0, x1, y1): the lines
    whose middle lies in it, and of other lines the words whose middle does (OCR reads a toolbar's
    "Save Open Delete" as one line). A row per line (pieces side by side joined by spaces, left to
    right), top to bottom."""
    from vlagent.grounding.dataset import OcrLine
    from vlagent.grounding.ocr import read_page

    page = read_page(image)
    lines = [ln for ln in page.lines if ln.text.strip()]
    if box is not None:
        x0, y0, x1, y1 = box

        def inside(piece: Any) -> bool:
            return x0 <= (piece.box[0] + piece.box[2]) / 2 <= x1 and y0 <= (piece.box[1] + piece.box[3]) / 2 <= y1

        lines = []
        for line, words in zip(page.lines, page.words):
            if inside(line):
                lines.append(line)
            elif any(inside(w) for w in words):
                kept = [w for w in words if inside(w)]
                lines.append(OcrLine(" ".join(w.text for w in kept), (min(w.box[0] for w in kept), min(w.box[1] for w in kept),
                                                                      max(w.box[2] for w in kept), max(w.box[3] for w in kept))))
        lines = [ln for ln in lines if ln.text.strip()]
    rows: list[list[Any]] = []
    for line in sorted(lines, key=lambda ln: (ln.box[1] + ln.box[3]) / 2):
        row = rows[-1] if rows else None
        if row is not None:
            top, bottom = max(r.box[1] for r in row), min(r.box[3] for r in row)
            shared = min(bottom, line.box[3]) - max(top, line.box[1])
            if shared >= ROW_OVERLAP * min(bottom - top, line.box[3] - line.box[1]):
                row.append(line)
                continue
        rows.append([line])
    joined = (" ".join(ln.text.strip() for ln in sorted(row, key=lambda ln: ln.box[0])) for row in rows)
    return "\n".join(_CARET_AT_END.sub("", text) for text in joined)


def box_around(point: tuple[float, float], reach: float = 0.02) -> tuple[float, float, float, float]:
    """A small box about a point, for an answer that came without one."""
    return (point[0] - reach, point[1] - reach, point[0] + reach, point[1] + reach)


def _quoted(text: str) -> str:
    """`text` in quotes the grounder reads as a name written on the screen, whatever quotes it holds."""
    for open_, close in (("'", "'"), ('"', '"'), ("“", "”")):
        if open_ not in text and close not in text:
            return f"{open_}{text}{close}"
    return text


def connect(where: str = "desktop", *, grounder: str | Any = "default", run_dir: str | Path | None = None,
            dry_run: bool = False, confirm: Any = None, secrets: Mapping[str, str] | Sequence[str] | None = None,
            env: Any = None, monitor: int = 1, task: str | None = None, find_timeout: float = FIND_TIMEOUT,
            settle: bool = True) -> Bot:
    """A Bot on "desktop", "android" or "android:SERIAL" (or a ready `env`). grounder: a --grounder SPEC
    ("default", "ocr", "grounder:FOLDER", "api:MODEL@URL") or an object with ground(image, instruction).
    task: the run's title in its folder name and report (default: "script" and the script's file name).
    find_timeout: seconds a call that acts on a description keeps looking for it (0: one look).
    settle: after each action, wait for the screen to show it (False: go on at once, as a script that
    waits its own way may want)."""
    kind, _, serial = where.partition(":")
    if kind not in ("desktop", "android"):
        raise ValueError(f"connect() takes 'desktop', 'android' or 'android:SERIAL'; got {where!r}")
    if isinstance(grounder, str):
        from vlagent.grounding.grounders import make_grounder

        grounder = make_grounder(grounder)
    if env is None:
        if kind == "desktop":
            from vlagent.environments.desktop import DesktopEnv

            env = DesktopEnv(monitor=monitor)
        else:
            from vlagent.environments.android import AndroidEnv

            env = AndroidEnv(serial=serial or None)
    if task is None:
        script = Path(sys.argv[0]).name if sys.argv and sys.argv[0] not in ("", "-c", "-") else ""
        task = f"script {script}" if script else "script"
    return Bot(env, grounder, platform=kind, run_dir=run_dir, dry_run=dry_run, confirm=confirm, secrets=secrets,
               task=task, find_timeout=find_timeout, settle=settle)
