"""The run report: one self-contained HTML page per run folder.

`build_report(run_dir)` reads trajectory.jsonl and the step screenshots and
writes report.html: screenshots inlined as data URIs, the actions drawn over
them as SVG (positions come from the normalized action coordinates, so the
overlay scales with the image), thoughts, raw outputs, errors and timings.
No external resources: the page opens offline and can be mailed around.

The markers' palette, labels and geometry are shared with the PIL drawing in
vlagent/overlay.py.
"""

from __future__ import annotations

import base64
import html
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from vlagent.actions import Action
from vlagent.agent import RunResult
from vlagent.overlay import COLORS, SCROLL_VECTORS, label_for, scroll_segment, step_actions
from vlagent.recorder import REPORT, load_trajectory, screenshot_path

STATUS_COLORS = {
    "done": "#1f9d55",
    "answered": "#1f9d55",
    "max_steps": "#b7791f",
    "timeout": "#b7791f",
    "interrupted": "#6b7280",
    "failed": "#c53030",
    "stuck": "#c05621",
    "screen_changed": "#c05621",
    "error": "#c53030",
}
OUTCOME_COLORS = {
    "executed": "#1f9d55",
    "final": "#1f9d55",
    "dry_run": "#3b82f6",
    "declined": "#b7791f",
    "skipped": "#6b7280",
    "failed": "#c53030",
}

esc = html.escape


# ---------------------------------------------------------------- SVG overlay


def _pct(v: float) -> str:
    return f"{v * 100:.2f}%"


@dataclass(frozen=True)
class _SvgScale:
    """Sizes of one overlay: positions in image pixels, markers sized by the image."""

    w: float
    h: float
    r: float
    stroke: float
    font: float

    @classmethod
    def of(cls, size: tuple[int, int]) -> "_SvgScale":
        w, h = size
        unit = max(w, h) / 100.0  # marker sizes follow the image, like the positions
        return cls(w, h, max(7.0, 2.1 * unit), max(2.0, 0.33 * unit), max(11.0, 1.8 * unit))


def svg_overlay(actions: list[Action], size: tuple[int, int], statuses: list[str] | None = None) -> str:
    """An <svg> drawing `actions` over an image of `size` (viewBox in image pixels)."""
    sc = _SvgScale.of(size)
    parts: list[str] = [f'<svg class="overlay" viewBox="0 0 {size[0]} {size[1]}" aria-hidden="true">', _svg_defs()]
    labels_at_bottom: list[tuple[str, str]] = []
    last_point: tuple[float, float] | None = None
    anchored: dict[tuple[float, float], int] = {}  # labels already placed under a point
    numbered = len(actions) > 1
    for i, action in enumerate(actions):
        status = statuses[i] if statuses and i < len(statuses) else "executed"
        dim = " dim" if status in ("declined", "skipped", "failed") else ""
        number = f"{i + 1}" if numbered else None
        kind = action.kind
        if action.point is not None and kind not in ("drag", "swipe", "scroll"):
            last_point = (action.point[0] * sc.w, action.point[1] * sc.h)
            parts.append(_svg_point(action, number, dim, sc))
        elif kind in ("drag", "swipe") and action.point is not None and action.end is not None:
            last_point = (action.end[0] * sc.w, action.end[1] * sc.h)
            parts.append(_svg_drag(action, number, dim, sc))
        elif kind == "scroll":
            last_point = scroll_segment(action, sc.w, sc.h)[0]
            parts.append(_svg_scroll(action, number, dim, sc))
        else:
            label = label_for(action)
            if not label:
                continue
            if number:
                label = f"{number}. {label}"
            if kind in ("type", "key") and last_point is not None:
                # Typed text goes where the last click put the focus; several stack downwards.
                stacked = anchored.get(last_point, 0)
                anchored[last_point] = stacked + 1
                y_at = last_point[1] + 1.6 * sc.r + stacked * 2.1 * sc.font
                parts.append(_svg_label(label, last_point[0] + 1.6 * sc.r, y_at, sc.font, sc.w, sc.h, dim))
            else:
                labels_at_bottom.append((label, dim))
    # Actions without a place on screen: a stack of labels along the bottom edge.
    y = sc.h - 0.9 * sc.font
    for label, dim in reversed(labels_at_bottom):
        parts.append(_svg_label(label, 0.8 * sc.font, y, sc.font, sc.w, sc.h, dim, anchor_bottom=True))
        y -= 2.1 * sc.font
    parts.append("</svg>")
    return "".join(parts)


def _svg_defs() -> str:
    arrows = "".join(
        f'<marker id="ah-{name}" viewBox="0 0 10 10" refX="8" refY="5" markerWidth="5" markerHeight="5" '
        f'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{color}"/></marker>'
        for name, color in (("drag", COLORS["drag"]), ("scroll", COLORS["scroll"]))
    )
    return f"<defs>{arrows}</defs>"


def _svg_point(action: Action, number: str | None, dim: str, sc: _SvgScale) -> str:
    """A marker at the action's point (clicks, move, long press), with its number badge."""
    kind, (x, y) = action.kind, action.point  # type: ignore[misc]
    color = COLORS.get(kind, COLORS["click"])
    px, py = x * sc.w, y * sc.h
    parts = [
        f'<g class="mk {kind}{dim}" data-kind="{kind}" data-x="{_pct(x)}" '
        f'data-y="{_pct(y)}" transform="translate({px:.1f} {py:.1f})">',
        _svg_marker(kind, sc.r, sc.stroke, color),
        _svg_badge(number, sc.r, sc.font, color) if number else "",
        "</g>",
    ]
    label = label_for(action) if kind == "long_press" else None
    if label:
        parts.append(_svg_label(label, px + 1.6 * sc.r, py + 1.6 * sc.r, sc.font, sc.w, sc.h, dim))
    return "".join(parts)


def _svg_drag(action: Action, number: str | None, dim: str, sc: _SvgScale) -> str:
    """An arrow from the start to the end of a drag or swipe."""
    kind, start, end = action.kind, action.point, action.end
    color, r, stroke = COLORS.get(kind, COLORS["click"]), sc.r, sc.stroke
    (x1, y1), (x2, y2) = (start[0] * sc.w, start[1] * sc.h), (end[0] * sc.w, end[1] * sc.h)  # type: ignore[index]
    badge = f'<g transform="translate({x1:.1f} {y1:.1f})">{_svg_badge(number, r, sc.font, color)}</g>' if number else ""
    return (
        f'<g class="mk {kind}{dim}" data-kind="{kind}" data-x="{_pct(start[0])}" '  # type: ignore[index]
        f'data-y="{_pct(start[1])}" data-x2="{_pct(end[0])}" data-y2="{_pct(end[1])}">'  # type: ignore[index]
        f'<circle cx="{x1:.1f}" cy="{y1:.1f}" r="{r * 0.55:.1f}" fill="{color}" fill-opacity="0.35" '
        f'stroke="{color}" stroke-width="{stroke:.1f}"/>'
        f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="#fff" '
        f'stroke-width="{stroke * 2.4:.1f}" stroke-linecap="round" opacity="0.7"/>'
        f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{color}" '
        f'stroke-width="{stroke:.1f}" stroke-linecap="round" marker-end="url(#ah-drag)"/>'
        f"{badge}</g>"
    )


def _svg_scroll(action: Action, number: str | None, dim: str, sc: _SvgScale) -> str:
    """An arrow in the scroll direction, labelled on the opposite side so the two never cross."""
    color, r, stroke = COLORS["scroll"], sc.r, sc.stroke
    (x1, y1), (x2, y2) = scroll_segment(action, sc.w, sc.h)
    arrow = (
        f'<g class="mk scroll{dim}" data-kind="scroll" data-direction="{esc(action.direction or "")}">'
        f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="#fff" '
        f'stroke-width="{stroke * 3.2:.1f}" stroke-linecap="round" opacity="0.7"/>'
        f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{color}" '
        f'stroke-width="{stroke * 1.6:.1f}" stroke-linecap="round" marker-end="url(#ah-scroll)"/>'
        f'<circle cx="{x1:.1f}" cy="{y1:.1f}" r="{r * 0.4:.1f}" fill="{color}"/></g>'
    )
    label = (f"{number}. " if number else "") + (label_for(action) or "")
    dx, dy = SCROLL_VECTORS[action.direction or "down"]
    box_w, box_h = _label_box(label, sc.font)
    lx = x1 - box_w / 2 if dx == 0 else (x1 + r if dx < 0 else x1 - r - box_w)
    ly = y1 - box_h / 2 if dy == 0 else (y1 + r if dy < 0 else y1 - r - box_h)
    return arrow + _svg_label(label, lx, ly, sc.font, sc.w, sc.h, dim)


def _svg_marker(kind: str, r: float, stroke: float, color: str) -> str:
    halo = f'stroke="#fff" stroke-width="{stroke * 2.2:.1f}" fill="none" opacity="0.75"'
    ring = f'stroke="{color}" stroke-width="{stroke:.1f}" fill="none"'
    cross = (
        f'<path d="M{-1.9 * r:.1f},0 H{-0.45 * r:.1f} M{0.45 * r:.1f},0 H{1.9 * r:.1f} '
        f'M0,{-1.9 * r:.1f} V{-0.45 * r:.1f} M0,{0.45 * r:.1f} V{1.9 * r:.1f}" '
        f'stroke="{color}" stroke-width="{stroke * 0.8:.1f}" stroke-linecap="round"/>'
    )
    dot = f'<circle r="{max(1.5, stroke * 0.7):.1f}" fill="{color}"/>'
    if kind == "double_click":
        return (
            f'<circle r="{r:.1f}" {halo}/><circle r="{r:.1f}" {ring}/>'
            f'<circle r="{r * 1.45:.1f}" {halo}/><circle r="{r * 1.45:.1f}" {ring}/>{cross}{dot}'
        )
    if kind == "triple_click":
        rings = "".join(f'<circle r="{r * f:.1f}" {ring}/>' for f in (0.6, 1.0, 1.4))
        return f'<circle r="{r * 1.4:.1f}" {halo}/>{rings}{dot}'
    if kind == "right_click":
        return (
            f'<circle r="{r:.1f}" {halo}/><circle r="{r:.1f}" {ring} stroke-dasharray="{r * 0.5:.1f} {r * 0.3:.1f}"/>'
            f"{cross}{dot}"
        )
    if kind == "middle_click":
        return f'<circle r="{r:.1f}" {halo}/><circle r="{r:.1f}" {ring} stroke-dasharray="{stroke:.1f} {stroke:.1f}"/>{dot}'
    if kind == "long_press":
        return f'<circle r="{r * 1.2:.1f}" {halo}/><circle r="{r * 1.2:.1f}" fill="{color}" fill-opacity="0.35" {ring}/>{dot}'
    if kind == "move":
        return f'<path d="M0,{-r:.1f} L{r:.1f},0 L0,{r:.1f} L{-r:.1f},0 z" {halo}/><path d="M0,{-r:.1f} L{r:.1f},0 L0,{r:.1f} L{-r:.1f},0 z" {ring}/>{dot}'
    return f'<circle r="{r:.1f}" {halo}/><circle r="{r:.1f}" {ring}/>{cross}{dot}'


def _svg_badge(number: str, r: float, font: float, color: str) -> str:
    br = font * 0.75
    cx, cy = r * 1.1, -r * 1.1
    return (
        f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{br:.1f}" fill="{color}" stroke="#fff" stroke-width="1.5"/>'
        f'<text x="{cx:.1f}" y="{cy:.1f}" font-size="{font * 0.85:.1f}" fill="#fff" text-anchor="middle" '
        f'dominant-baseline="central" font-family="system-ui,sans-serif" font-weight="700">{esc(number)}</text>'
    )


def _label_box(text: str, font: float) -> tuple[float, float]:
    # SVG cannot measure text; estimate the box from the character count (monospace).
    return 0.58 * font * len(text) + 1.2 * font, 1.7 * font


def _svg_label(text: str, x: float, y: float, font: float, w: float, h: float, dim: str = "", anchor_bottom: bool = False) -> str:
    box_w, box_h = _label_box(text, font)
    x = min(max(2.0, x), max(2.0, w - box_w - 2))
    top = y - box_h if anchor_bottom else y
    top = min(max(2.0, top), max(2.0, h - box_h - 2))
    return (
        f'<g class="lbl{dim}"><rect x="{x:.1f}" y="{top:.1f}" width="{box_w:.1f}" height="{box_h:.1f}" rx="{font * 0.35:.1f}" '
        f'fill="{COLORS["label"]}" fill-opacity="0.86" stroke="#fff" stroke-opacity="0.5"/>'
        f'<text x="{x + 0.6 * font:.1f}" y="{top + box_h / 2:.1f}" font-size="{font:.1f}" fill="#fff" '
        f'dominant-baseline="central" font-family="ui-monospace,SFMono-Regular,Menlo,Consolas,monospace">'
        f"{esc(text)}</text></g>"
    )


# ---------------------------------------------------------------- the page


def _fmt_seconds(s: float | None) -> str:
    if s is None:
        return "–"
    if s < 1:
        return f"{s * 1000:.0f} ms"
    if s < 120:
        return f"{s:.2f} s"
    return f"{int(s // 60)} min {s % 60:.0f} s"


def _image_data_uri(path: Path) -> str | None:
    try:
        data = path.read_bytes()
    except OSError:
        return None
    mime = "image/jpeg" if path.suffix.lower() in (".jpg", ".jpeg") else "image/png"
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _render_step_safely(step: dict[str, Any], run_dir: Path, position: int) -> str:
    """A step's section; a record too damaged to draw still gets one, saying so, with its raw JSON."""
    try:
        return _render_step(step, run_dir)
    except Exception as e:  # noqa: BLE001 - one bad record must not cost the report of the others
        raw = json.dumps(step, ensure_ascii=False, default=str)
        raw = raw if len(raw) <= 4000 else raw[:4000] + " …"
        return (
            f'<section class="step failed" id="step-{position}"><div class="fig"><div class="shot missing">'
            f'not shown</div></div><div class="info"><h2>Step {position + 1}</h2><div class="err"><b>Unreadable '
            f"record</b> {esc(type(e).__name__)}: {esc(str(e))}</div><pre>{esc(raw)}</pre></div></section>"
        )


def _screenshot_of(step: dict[str, Any], run_dir: Path) -> tuple[str | None, tuple[int, int] | None, str]:
    """(data URI, size, why there is none) of a step's screenshot, read only from inside the run folder."""
    name = step.get("screenshot")
    path = screenshot_path(run_dir, name)
    if path is None:
        return None, None, "no screenshot" if not name else "no screenshot (its name points outside the run folder)"
    try:
        with Image.open(path) as im:  # reads the header only
            size = im.size
    except (OSError, ValueError):
        return None, None, "screenshot missing or unreadable"
    uri = _image_data_uri(path)
    return (uri, size, "") if uri and size[0] > 0 and size[1] > 0 else (None, None, "screenshot unreadable")


def _render_step(step: dict[str, Any], run_dir: Path) -> str:
    index = int(step.get("index", 0))
    actions = step_actions(step)
    outcomes = [o if isinstance(o, dict) else {} for o in (step.get("outcomes") or [])]
    statuses = [str(o.get("status", "")) for o in outcomes]
    uri, size, missing = _screenshot_of(step, run_dir)
    if uri and size:
        w, h = size
        figure = (
            f'<div class="shot" style="aspect-ratio:{w}/{h}"><img alt="step {index} screenshot" src="{uri}">'
            f"{svg_overlay(actions, (w, h), statuses)}</div>"
        )
    else:
        figure = f'<div class="shot missing">{esc(missing)}</div>'

    rows = []
    for i, a in enumerate(actions):
        status = statuses[i] if i < len(statuses) else ""
        err = outcomes[i].get("error") if i < len(outcomes) else None
        confirmed = outcomes[i].get("confirmed") if i < len(outcomes) else None
        conf = {True: ' <span class="tag">confirmed</span>', False: ' <span class="tag">declined</span>'}.get(confirmed, "")
        rows.append(
            f'<li><span class="dot" style="background:{COLORS.get(a.kind, COLORS["label"])}"></span>'
            f"<code>{esc(a.describe())}</code> "
            f'<span class="badge" style="background:{OUTCOME_COLORS.get(status, "#6b7280")}">{esc(status.replace("_", " ") or "?")}</span>{conf}'
            + (f'<div class="small err-inline">{esc(err)}</div>' if err and status == "skipped" else "")
            + "</li>"
        )
    actions_html = f'<ol class="acts">{"".join(rows)}</ol>' if rows else '<p class="muted">no action</p>'
    thought = step.get("thought")
    thought_html = f'<div class="thought">{esc(thought)}</div>' if thought else ""
    error = step.get("error")
    error_html = f'<div class="err"><b>Error</b> {esc(error)}</div>' if error else ""
    targets_html = _grounding_html(step.get("grounding"))
    timings = step.get("timings") or {}
    tparts = [f"{esc(k)} <b>{_fmt_seconds(timings[k])}</b>" for k in ("observe", "decide", "execute", "record") if k in timings]
    tparts += [f"{esc(k)} <b>{_fmt_seconds(v)}</b>" for k, v in (step.get("policy_timings") or {}).items() if isinstance(v, (int, float))]
    # the screenshot's file name: what replay's and the loop's messages name a step by
    sizes = f' · {step["screenshot"]}' if isinstance(step.get("screenshot"), str) else ""
    if step.get("screen_size"):
        sizes += f' · screen {step["screen_size"][0]}×{step["screen_size"][1]}'
        if step.get("image_size") and step["image_size"] != step["screen_size"]:
            sizes += f', image {step["image_size"][0]}×{step["image_size"][1]}'
    raw = step.get("raw_output") or ""
    raw_html = f'<details><summary>Raw model output ({len(raw)} chars)</summary><pre>{esc(raw)}</pre></details>' if raw else ""
    usage = step.get("usage")
    usage_html = (
        f'<div class="small muted">usage: {esc(", ".join(f"{k} {v}" for k, v in usage.items()))}</div>' if isinstance(usage, dict) and usage else ""
    )
    # Red for errors, amber when the only problem is a declined action.
    failed = " declined" if error and statuses and "failed" not in statuses and "declined" in statuses else (" failed" if error else "")
    return (
        f'<section class="step{failed}" id="step-{index}">'
        f'<div class="fig">{figure}</div>'
        f'<div class="info"><h2>Step {index + 1} <span class="muted small">{esc(str(step.get("time", "")))}{esc(sizes)}</span></h2>'
        f"{thought_html}{actions_html}{targets_html}{error_html}"
        f'<div class="timings">{" · ".join(tparts)}</div>{usage_html}{raw_html}</div>'
        "</section>"
    )


def _grounding_html(records: Any) -> str:
    """A planner step's targets: each description, where the grounder found it or why not."""
    if not isinstance(records, list) or not records:
        return ""
    rows = []
    for r in records:
        if not isinstance(r, dict):
            continue
        if r.get("found"):
            x, y = r.get("point") or (0, 0)
            where = f"found at ({x:.3f}, {y:.3f}), confidence {r.get('confidence', 0):.2f}"
        else:
            near = ", ".join(f"{c.get('label') or '?'!r} {c.get('score', 0):.2f}" for c in r.get("candidates") or [])
            where = f"not found ({r.get('error') or 'below the threshold'})" + (f"; nearest {near}" if near else "")
        rows.append(f"<li><code>{esc(str(r.get('target')))}</code> {esc(where)}</li>")
    grounder = next((r.get("grounder") for r in records if isinstance(r, dict) and r.get("grounder")), "grounder")
    return f'<div class="small"><b>Targets</b> ({esc(str(grounder))})<ul>{"".join(rows)}</ul></div>'


CSS = """
*{box-sizing:border-box}
body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:#f3f4f6;color:#111827}
header{background:#111827;color:#f9fafb;padding:22px 32px}
header h1{margin:0 0 6px;font-size:22px;font-weight:650}
header .meta{color:#9ca3af;font-size:13px}
.status{display:inline-block;padding:2px 10px;border-radius:999px;color:#fff;font-weight:600;font-size:13px;vertical-align:middle}
.summary{display:flex;flex-wrap:wrap;gap:10px;margin-top:14px}
.card{background:#1f2937;border-radius:8px;padding:8px 14px;min-width:110px}
.card .k{font-size:11px;text-transform:uppercase;letter-spacing:.06em;color:#9ca3af}
.card .v{font-size:16px;font-weight:600}
.answer{margin-top:14px;background:#064e3b;color:#d1fae5;border-radius:8px;padding:10px 14px;white-space:pre-wrap}
.runerr{margin-top:14px;background:#7f1d1d;color:#fee2e2;border-radius:8px;padding:10px 14px;white-space:pre-wrap}
main{padding:20px 32px;max-width:1500px;margin:auto}
.step{display:grid;grid-template-columns:minmax(0,3fr) minmax(0,2fr);gap:20px;background:#fff;border-radius:10px;
 box-shadow:0 1px 3px rgba(0,0,0,.08);padding:16px;margin-bottom:18px;border-left:4px solid #10b981}
.step.failed{border-left-color:#ef4444}.step.declined{border-left-color:#f59e0b}
@media (max-width:900px){.step{grid-template-columns:1fr}}
.shot{position:relative;width:100%;border-radius:6px;overflow:hidden;background:#e5e7eb;border:1px solid #e5e7eb}
.shot img{display:block;width:100%;height:100%}
.shot svg.overlay{position:absolute;inset:0;width:100%;height:100%;pointer-events:none}
.shot.missing{aspect-ratio:16/9;display:flex;align-items:center;justify-content:center;color:#6b7280}
.dim{opacity:.45}
.info h2{margin:0 0 8px;font-size:17px}
.thought{background:#f9fafb;border-left:3px solid #6366f1;padding:8px 12px;border-radius:4px;white-space:pre-wrap;margin-bottom:10px;color:#374151}
.acts{margin:0 0 10px;padding-left:22px}
.acts li{margin:4px 0}
.acts code{background:#eef2ff;padding:1px 6px;border-radius:4px;font-size:13px}
.dot{display:inline-block;width:9px;height:9px;border-radius:50%;margin-right:6px}
.badge{display:inline-block;color:#fff;font-size:11px;padding:0 7px;border-radius:999px;font-weight:600;vertical-align:1px}
.tag{font-size:11px;color:#6b7280;border:1px solid #d1d5db;border-radius:4px;padding:0 5px}
.err{background:#fef2f2;color:#991b1b;border:1px solid #fecaca;padding:8px 12px;border-radius:6px;white-space:pre-wrap;margin-bottom:10px;font-size:14px}
.err-inline{color:#6b7280}
.timings{font-size:12px;color:#6b7280;margin-bottom:8px}
.small{font-size:12px}.muted{color:#6b7280;font-weight:400}
details summary{cursor:pointer;color:#4b5563;font-size:13px}
pre{background:#111827;color:#e5e7eb;padding:10px 12px;border-radius:6px;overflow:auto;max-height:320px;white-space:pre-wrap;font-size:12.5px}
footer{color:#9ca3af;font-size:12px;text-align:center;padding:10px 0 24px}
"""


def render_report(run_dir: str | os.PathLike) -> str:
    """The report page of `run_dir` as an HTML string."""
    run_dir = Path(run_dir)
    header, steps, result = load_trajectory(run_dir)
    # Every field is read as data that may be damaged: shown as text, or left out.
    task = str(header.get("task") or "(unknown task)")
    status = str((result or {}).get("status") or "incomplete")
    answer = (result or {}).get("answer")
    error = (result or {}).get("error")
    elapsed = (result or {}).get("elapsed_s")
    elapsed = elapsed if isinstance(elapsed, (int, float)) and not isinstance(elapsed, bool) else None
    settings = header.get("settings") if isinstance(header.get("settings"), dict) else {}
    cards = [
        ("Status", f'<span class="status" style="background:{STATUS_COLORS.get(status, "#6b7280")}">{esc(status)}</span>'),
        ("Steps", esc(str((result or {}).get("steps", len(steps))))),
        ("Total time", _fmt_seconds(elapsed) if elapsed is not None else "–"),
        ("Policy", esc(str(header.get("policy", "?")))),
        ("Environment", esc(str(header.get("env", "?")))),
    ]
    if settings.get("dry_run"):
        cards.append(("Mode", "dry run"))
    if result and result.get("success") is not None and RunResult.is_finished(status):
        cards.append(("Success", "yes" if result["success"] else "no"))
    flags = ", ".join(f"{k}={v}" for k, v in settings.items() if v not in (None, False, [], {}, ""))
    body = [
        "<header>",
        f"<h1>{esc(task)}</h1>",
        f'<div class="meta">started {esc(str(header.get("started", "?")))} · {esc(str(run_dir.name))}'
        + (f" · {esc(flags)}" if flags else "")
        + "</div>",
        '<div class="summary">'
        + "".join(f'<div class="card"><div class="k">{k}</div><div class="v">{v}</div></div>' for k, v in cards)
        + "</div>",
    ]
    if answer is not None:
        body.append(f'<div class="answer"><b>Answer</b> {esc(str(answer))}</div>')
    if error:
        body.append(f'<div class="runerr"><b>Stopped</b> {esc(str(error))}</div>')
    if result is None:
        body.append('<div class="runerr">The run did not finish writing its result (it may still be running, or it crashed).</div>')
    body.append("</header><main>")
    body.extend(_render_step_safely(s, run_dir, n) for n, s in enumerate(steps))
    if not steps:
        body.append('<p class="muted">No steps were recorded.</p>')
    body.append("</main><footer>vlagent run report</footer>")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{esc(task)} — vlagent run</title><style>{CSS}</style></head><body>"
        + "".join(body)
        + "</body></html>\n"
    )


def build_report(run_dir: str | os.PathLike) -> Path:
    """Write ``report.html`` into `run_dir` and return its path."""
    run_dir = Path(run_dir)
    page = render_report(run_dir)
    out = run_dir / REPORT
    tmp = out.with_suffix(".html.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(out)
    return out


__all__ = ["build_report", "render_report", "svg_overlay"]
