"""Harvest real web pages rendered by Debian's chromium: screenshots + DOM boxes.

    vlagent grounding-data harvest --source web --out DIR [--option sites=doc-libffi,pydoc,django-admin]
                                   [--option pages=6] [--option scrolls=2]
                                   [--option viewport=1280x720,412x915]   (each size in turn; a phone-sized
                                                                           one gets the sites' mobile layouts)

Chromium (the Debian package; Playwright's own browser downloads are not
needed) runs headless through Playwright for Python with
`executable_path=/usr/bin/chromium`. Sites:

- `doc-*`: HTML documentation shipped in Debian packages (file:// pages
  under /usr/share/doc: libffi, Node.js, valgrind, libxslt, Debian policy
  pages...), whichever are installed;
- `pydoc`: Python's own documentation server (`pydoc -b` pages);
- `django-admin`: a throw-away Django project's admin on sqlite (login,
  index, change lists, add and change forms), served on 127.0.0.1.

Each page gives `scrolls` screens (the top, then a viewport further down).
Elements come from the DOM (web_elements.js): visible links, buttons,
inputs, selects, checkboxes with a name, topmost at their centre. Records:
platform "web", source "web:<site>", split by site.
"""

from __future__ import annotations

import contextlib
import glob
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from vlagent.grounding.dataset import GroundingRecord
from vlagent.grounding.harvest import HarvestError
from vlagent.grounding.harvest_common import ScreenBudget, ScreenTarget, save_screenshot, screen_records

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
ELEMENTS_JS = (Path(__file__).with_name("web_elements.js")).read_text()

# Documentation sites: name -> glob patterns of their pages (sorted; the index first when there is one).
DOC_SITES: dict[str, tuple[str, ...]] = {
    "doc-libffi": ("/usr/share/doc/libffi*/html/*.html",),
    "doc-nodejs": ("/usr/share/doc/nodejs/api/*.html",),
    "doc-valgrind": ("/usr/share/doc/valgrind/html/*.html",),
    "doc-libxslt": ("/usr/share/doc/libxslt1-dev/**/*.html",),
    "doc-debian-python": ("/usr/share/doc/python3/*.html",),
    "doc-misc": (
        "/usr/share/doc/ninja-build/manual.html", "/usr/share/doc/nettle-dev/nettle.html",
        "/usr/share/doc/fontconfig/fontconfig-user.html", "/usr/share/doc/base-passwd/users-and-groups.html",
        "/usr/share/doc/shared-mime-info/*.html", "/usr/share/doc/libjs-underscore/index.html",
    ),
}  # fmt: skip
PYDOC_PAGES = ("", "json.html", "os.path.html", "collections.html", "topics.html", "keywords.html",
               "index.html", "urllib.request.html", "pathlib.html", "search?key=http")  # fmt: skip
ALL_SITES = (*DOC_SITES, "pydoc", "django-admin")


def find_chromium() -> str | None:
    return next((p for p in CHROMIUM_CANDIDATES if Path(p).exists()), None)


def web_unavailable() -> str | None:
    """None when pages can be harvested here, else what is missing."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed (pip install 'vlagent[harvest]'; no `playwright install` needed)"
    if find_chromium() is None:
        return "chromium is not installed (apt-get install chromium)"
    return None


def doc_pages(site: str, limit: int) -> list[str]:
    """Up to `limit` file:// URLs of one documentation site (index pages first)."""
    files: list[str] = []
    for pattern in DOC_SITES[site]:
        files += sorted(glob.glob(pattern, recursive=True))
    # One page reached through two paths (a -dev package's doc folder is often a symlink) counts once.
    files = list({str(Path(f).resolve()): f for f in files}.values())
    files = sorted(files, key=lambda p: (Path(p).stem.lower() not in ("index", "manual"), p))
    return [Path(f).as_uri() for f in files[:limit]]


@dataclass
class Page:
    """A page to capture: its URL, and a name for the screen ids."""

    url: str
    name: str


def _viewport(value: Any) -> tuple[int, int]:
    if isinstance(value, (tuple, list)):
        return int(value[0]), int(value[1])
    try:
        w, h = (int(v) for v in str(value).lower().split("x"))
    except ValueError:
        raise HarvestError(f"viewport must look like 1280x720, got {value!r}") from None
    if w < 320 or h < 240:
        raise HarvestError(f"viewport {w}x{h} is too small (at least 320x240)")
    return w, h


class _Browser:
    """One headless chromium with one page at a fixed viewport."""

    def __init__(self, viewport: tuple[int, int]) -> None:
        from playwright.sync_api import sync_playwright

        self._pw = sync_playwright().start()
        try:
            # --no-sandbox: chromium refuses to start as root with its sandbox.
            self.browser = self._pw.chromium.launch(
                executable_path=find_chromium(), headless=True, args=["--no-sandbox", "--disable-gpu"]
            )
        except Exception:
            self._pw.stop()
            raise
        self.context = self.browser.new_context(viewport={"width": viewport[0], "height": viewport[1]},
                                                device_scale_factor=1, reduced_motion="reduce")  # fmt: skip
        self.page = self.context.new_page()
        self.viewport = viewport

    def goto(self, url: str) -> None:
        self.page.goto(url, wait_until="load", timeout=30_000)
        with contextlib.suppress(Exception):
            self.page.wait_for_load_state("networkidle", timeout=3_000)
        self.page.evaluate("document.fonts ? document.fonts.ready.then(() => true) : true")

    def scroll_to(self, index: int) -> bool:
        """Scroll to the `index`-th viewport of the page; False when the page is not that long."""
        if index == 0:
            return True
        height = self.page.evaluate("document.scrollingElement.scrollHeight")
        y = int(index * self.viewport[1] * 0.9)
        if y + self.viewport[1] // 3 > height - self.viewport[1] * 0.1 and y > height - self.viewport[1]:
            return False
        self.page.evaluate(f"window.scrollTo(0, {y})")
        self.page.wait_for_timeout(150)
        return True

    def capture(self) -> tuple[Any, list[dict[str, Any]]]:
        from io import BytesIO

        from PIL import Image

        elements = self.page.evaluate(ELEMENTS_JS)
        png = self.page.screenshot(animations="disabled", caret="hide")
        # The DOM again after the screenshot: a page that moved in between is not used.
        if self.page.evaluate(ELEMENTS_JS) != elements:
            elements = None
        return Image.open(BytesIO(png)).convert("RGB"), elements or []

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.browser.close()
        self._pw.stop()


def _targets(elements: list[dict[str, Any]]) -> list[ScreenTarget]:
    return [
        ScreenTarget(name=e["name"], element=e["kind"], box=tuple(e["box"]), role_word=e["roleWord"],
                     meta={"tag": e["tag"]})  # fmt: skip
        for e in elements
    ]


def _capture_pages(
    browser: _Browser, out_dir: Path, site: str, pages: list[Page], scrolls: int, log: Callable[[str], Any],
    budget: ScreenBudget | None = None,
) -> list[GroundingRecord]:
    budget = budget or ScreenBudget()
    records: list[GroundingRecord] = []
    for page in pages:
        if budget.exhausted:
            break
        try:
            browser.goto(page.url)
        except Exception as exc:  # one broken page must not end the site
            log(f"web: {site}/{page.name} skipped: {exc}")
            continue
        for index in range(scrolls):
            if not browser.scroll_to(index) or not budget.take():
                break
            image, elements = browser.capture()
            screen_id = f"{site}-{page.name}-{index}-{browser.viewport[0]}x{browser.viewport[1]}"
            rel = save_screenshot(image, out_dir, f"web/{screen_id}.png")
            got = screen_records(rel, image.size, _targets(elements), f"web:{site}", "web", screen_id,
                                 meta={"url": browser.page.url, "scroll": index})  # fmt: skip
            log(f"web: {screen_id}: {len(got)} targets of {len(elements)} elements")
            records += got
    return records


def _django_pages(
    browser: _Browser, out_dir: Path, scrolls: int, log: Callable[[str], Any], budget: ScreenBudget
) -> list[GroundingRecord]:
    from vlagent.grounding.web_servers import django_admin_server

    with django_admin_server() as admin:
        base = admin.base + "admin/"
        records = _capture_pages(browser, out_dir, "django-admin", [Page(base + "login/", "login")], 1, log, budget)
        page = browser.page
        page.fill("#id_username", admin.username)
        page.fill("#id_password", admin.password)
        page.click("input[type=submit]")
        page.wait_for_url(base, timeout=15_000)
        pages = [
            Page(base, "index"), Page(base + "auth/user/", "user-list"), Page(base + "auth/user/add/", "user-add"),
            Page(base + "auth/user/1/change/", "user-change"), Page(base + "auth/group/", "group-list"),
            Page(base + "auth/group/add/", "group-add"), Page(base + "password_change/", "password-change"),
            Page(base + "auth/user/?is_staff__exact=1", "user-list-staff"),
        ]  # fmt: skip
        records += _capture_pages(browser, out_dir, "django-admin", pages, scrolls, log, budget)
    return records


def harvest_web(
    out_dir: Path,
    sites: Any = None,
    pages: Any = 6,
    scrolls: Any = 2,
    viewport: Any = "1280x720",
    count: int | None = None,
    seed: int | None = None,
    log: Callable[[str], Any] = print,
) -> list[GroundingRecord]:
    """Harvest `sites` (comma-separated names from ALL_SITES; default: all that exist here);
    `pages` pages per documentation site, `scrolls` screens per page. Images go under out_dir/web/.

    `count` stops after that many screens; `seed` is unused (the pages are what they are).
    """
    del seed
    reason = web_unavailable()
    if reason:
        raise HarvestError(f"cannot harvest web pages: {reason}")
    names = list(ALL_SITES) if sites is None else [s.strip() for s in str(sites).split(",") if s.strip()]
    unknown = [n for n in names if n not in ALL_SITES]
    if unknown or not names:
        raise HarvestError(f"unknown web site(s) {', '.join(unknown) or '(none)'} (known: {', '.join(ALL_SITES)})")
    per_site, per_page = int(pages), int(scrolls)
    if per_site < 1 or per_page < 1:
        raise HarvestError(f"pages and scrolls must be at least 1, got {pages!r} and {scrolls!r}")
    budget = ScreenBudget(count)
    sizes = [_viewport(v) for v in (str(viewport).split(",") if isinstance(viewport, str) else [viewport])]
    records: list[GroundingRecord] = []
    for size in sizes:
        browser = _Browser(size)
        try:
            records += _harvest_sites(browser, Path(out_dir), names, sites is not None, per_site, per_page, log, budget)
        finally:
            browser.close()
    return records


def _harvest_sites(
    browser: _Browser, out_dir: Path, names: list[str], named: bool, per_site: int, per_page: int,
    log: Callable[[str], Any], budget: ScreenBudget,
) -> list[GroundingRecord]:
    records: list[GroundingRecord] = []
    for site in names:
        if budget.exhausted:
            break
        if site in DOC_SITES:
            urls = doc_pages(site, per_site)
            if not urls:
                if named:
                    raise HarvestError(f"no pages of {site} here (looked for {', '.join(DOC_SITES[site])})")
                continue  # the default list takes whatever documentation is installed
            site_pages = [Page(u, f"{i:02d}-{Path(u).stem}") for i, u in enumerate(urls)]
            records += _capture_pages(browser, out_dir, site, site_pages, per_page, log, budget)
        elif site == "pydoc":
            from vlagent.grounding.web_servers import pydoc_server

            with pydoc_server() as base:
                chosen = PYDOC_PAGES[: max(per_site, 1)]
                site_pages = [Page(base + p, (p.split(".html")[0] or "home").replace("?", "-").replace("=", "-"))
                              for p in chosen]  # fmt: skip
                records += _capture_pages(browser, out_dir, site, site_pages, per_page, log, budget)
        else:
            records += _django_pages(browser, out_dir, per_page, log, budget)
    return records


__all__ = ["ALL_SITES", "DOC_SITES", "doc_pages", "find_chromium", "harvest_web", "web_unavailable"]
