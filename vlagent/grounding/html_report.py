"""The HTML report of a grounding evaluation: every miss, grouped by source.

One self-contained page (opens offline). Each screenshot is embedded once,
as a downscaled JPEG in a CSS class, however many misses it has; each miss
shows it with an SVG overlay: the target box (green), the predicted point
(red cross; none when the grounder found nothing), the instruction, the
grounder and what it answered. The summary table heads the page. When
negatives were asked, each one a grounder accepted (it pointed at something
for an instruction naming nothing on the screen) is a miss too, in its own
section, with no target box.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

from PIL import Image

from vlagent.grounding.evaluate import Evaluation, summarize, summary_rows

THUMB_WIDTH = 720
esc = html.escape

_CSS = """
body{font-family:system-ui,sans-serif;margin:24px;color:#1b1b1f;background:#fafafa}
table{border-collapse:collapse;margin-bottom:24px}td,th{border:1px solid #ccc;padding:3px 10px;text-align:right}
td:first-child,th:first-child{text-align:left}h2{margin-top:32px;border-bottom:2px solid #ddd}
.misses{display:flex;flex-wrap:wrap;gap:16px}.miss{width:360px;background:#fff;border:1px solid #ddd;padding:8px}
.shot{position:relative;width:100%;background-size:100% 100%}.shot svg{position:absolute;inset:0;width:100%;height:100%}
.ins{font-weight:600;margin:6px 0 2px}.meta{color:#555;font-size:13px;word-break:break-word}
"""


def _thumb_uri(path: str) -> tuple[str, float]:
    with Image.open(path) as im:
        rgb = im.convert("RGB")
    ratio = rgb.height / rgb.width
    if rgb.width > THUMB_WIDTH:
        rgb = rgb.resize((THUMB_WIDTH, max(1, round(THUMB_WIDTH * ratio))), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    rgb.save(buf, "JPEG", quality=75)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii"), ratio


def _overlay(box: tuple[float, ...] | None, point: tuple[float, float] | None) -> str:
    parts = ['<svg viewBox="0 0 1000 1000" preserveAspectRatio="none">']
    if box is not None:
        x0, y0, x1, y1 = (v * 1000 for v in box)
        parts.append(f'<rect x="{x0:.1f}" y="{y0:.1f}" width="{x1 - x0:.1f}" height="{y1 - y0:.1f}" '
                     'fill="rgba(30,160,80,.18)" stroke="#1ea050" stroke-width="4" '
                     'vector-effect="non-scaling-stroke"/>')  # fmt: skip
    if point is not None:
        px, py = point[0] * 1000, point[1] * 1000
        for dx, dy in ((14, 0), (0, 14)):
            parts.append(f'<line x1="{px - dx:.1f}" y1="{py - dy:.1f}" x2="{px + dx:.1f}" y2="{py + dy:.1f}" '
                         'stroke="#e02424" stroke-width="3" vector-effect="non-scaling-stroke"/>')  # fmt: skip
    parts.append("</svg>")
    return "".join(parts)


def render_html(evaluation: Evaluation, title: str = "Grounding evaluation") -> str:
    summary = summarize(evaluation)
    header, rows = summary_rows(summary)
    table = "<table><tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr>"
    table += "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows) + "</table>"

    misses: dict[str, list[Any]] = {}
    for name in evaluation.grounders:
        for o in evaluation.outcomes[name]:
            if not o.hit:
                misses.setdefault(o.record.source, []).append(o)
    classes: dict[str, tuple[str, float]] = {}
    styles: list[str] = []
    sections: list[str] = []

    def shot_class(path: str) -> tuple[str, float]:
        if path not in classes:
            uri, ratio = _thumb_uri(path)
            classes[path] = (f"s{len(classes)}", ratio)
            styles.append(f".{classes[path][0]}{{background-image:url({uri})}}")
        return classes[path]

    for source in sorted(misses):
        cards = []
        for o in misses[source]:
            cls, ratio = shot_class(str(o.record.image_path))
            res = o.result
            answer = (f"point ({res.point[0]:.3f}, {res.point[1]:.3f}), confidence {res.confidence:.2f}"
                      if res.found and res.point else f"not found: {res.error or ''}")  # fmt: skip
            said = f"<div class='meta'>answer text: {esc(str(res.raw)[:200])}</div>" if res.raw else ""
            cards.append(
                f"<div class='miss'><div class='shot {cls}' style='padding-top:{100 * ratio:.2f}%'>"
                f"{_overlay(o.record.box, res.point if res.found else None)}</div>"
                f"<div class='ins'>{esc(o.record.instruction)}</div>"
                f"<div class='meta'>{esc(o.grounder)} · {esc(o.record.element)} · {esc(o.record.platform)} · "
                f"{esc(o.record.image)}</div><div class='meta'>{esc(answer)}</div>{said}</div>"
            )  # fmt: skip
        sections.append(f"<h2>{esc(source)} — {len(misses[source])} misses</h2><div class='misses'>{''.join(cards)}</div>")
    accepted = [o for name in evaluation.grounders for o in evaluation.negatives.get(name, ()) if not o.rejected]
    if accepted:
        cards = []
        for n in accepted:
            cls, ratio = shot_class(n.image_path)
            res = n.result
            answer = (f"point ({res.point[0]:.3f}, {res.point[1]:.3f}), confidence {res.confidence:.2f}"
                      if res.point else "")  # fmt: skip
            said = f"<div class='meta'>answer text: {esc(str(res.raw)[:200])}</div>" if res.raw else ""
            cards.append(
                f"<div class='miss'><div class='shot {cls}' style='padding-top:{100 * ratio:.2f}%'>"
                f"{_overlay(None, res.point)}</div><div class='ins'>{esc(n.instruction)}</div>"
                f"<div class='meta'>{esc(n.grounder)} · not on this screen · {esc(n.platform)} · "
                f"{esc(Path(n.image_path).name)}</div><div class='meta'>{esc(answer)}</div>{said}</div>"
            )  # fmt: skip
        sections.append(f"<h2>negatives — {len(accepted)} accepted (should have been \"not found\")</h2>"
                        f"<div class='misses'>{''.join(cards)}</div>")  # fmt: skip
    if not sections:
        sections.append("<p>No misses.</p>")
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(title)}</title>"
        f"<style>{_CSS}{''.join(styles)}</style></head><body><h1>{esc(title)}</h1>"
        f"<p>{summary['targets']} targets on {summary['screens']} screens. Green: the target box; "
        f"red cross: the grounder's point.</p>{table}{''.join(sections)}</body></html>"
    )


def write_html(evaluation: Evaluation, path: str | Path, title: str = "Grounding evaluation") -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_html(evaluation, title), encoding="utf-8")
    return out


__all__ = ["render_html", "write_html"]
