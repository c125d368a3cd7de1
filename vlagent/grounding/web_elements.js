// Collect the clickable elements of the page that are visible in the viewport.
// Run by harvest_web.py through Playwright's page.evaluate(); returns a list of
// {name, kind, roleWord, box: [x0, y0, x1, y1] in CSS pixels of the viewport, tag}.
//
// An element counts when it is rendered (size, visibility, opacity), lies at
// least 90 % inside the viewport, and is the topmost element at its box's
// centre (elementFromPoint), so covered or clipped elements are skipped.
// Its name is an approximation of the accessible name: aria-label,
// aria-labelledby, <label for>, a wrapping <label>, alt/title of an image
// inside, the value of a submit button, the visible text, placeholder, title.
() => {
  const vw = window.innerWidth, vh = window.innerHeight;
  const clean = (s) => (s || "").replace(/\s+/g, " ").trim();
  const byId = (id) => document.getElementById(id);

  function labelText(el) {
    if (el.getAttribute("aria-label")) return clean(el.getAttribute("aria-label"));
    const lb = el.getAttribute("aria-labelledby");
    if (lb) {
      const t = lb.split(/\s+/).map((id) => byId(id)).filter(Boolean).map((n) => n.innerText).join(" ");
      if (clean(t)) return clean(t);
    }
    if (el.id) {
      const lab = document.querySelector(`label[for="${CSS.escape(el.id)}"]`);
      if (lab && textOf(lab)) return textOf(lab);
    }
    const wrap = el.closest("label");
    if (wrap && textOf(wrap)) return textOf(wrap);
    return "";
  }

  // Whether any of the element's own text is actually drawn (not a visually
  // hidden span for screen readers, as Django's theme toggle has).
  function drawsText(el) {
    const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    const range = document.createRange();
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      if (!clean(node.textContent)) continue;
      range.selectNodeContents(node);
      const r = range.getBoundingClientRect();
      // The usual "visually hidden" span is a 1x1 box that clips its text.
      const p = node.parentElement.getBoundingClientRect();
      if (r.width > 2 && r.height > 2 && p.width > 2 && p.height > 2) return true;
    }
    return false;
  }

  // The element's text as written (textContent, not CSS text-transform's
  // capitals), leaving out text that is not rendered at all (display: none).
  function textOf(el) {
    const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    const parts = [];
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      const parent = node.parentElement;
      if (parent && parent.getClientRects().length > 0 && clean(node.textContent)) parts.push(node.textContent);
    }
    return clean(parts.join(" "));
  }

  function nameOf(el, kind) {
    const aria = labelText(el);
    if (aria) return { name: aria, fromText: false };
    const tag = el.tagName.toLowerCase();
    if (tag === "input" && ["submit", "button", "reset"].includes(el.type)) return { name: clean(el.value), fromText: true };
    const text = textOf(el);
    if (text) return { name: text, fromText: drawsText(el) };
    const img = el.querySelector("img[alt], svg[aria-label], [title]");
    if (img) return { name: clean(img.getAttribute("alt") || img.getAttribute("aria-label") || img.getAttribute("title")), fromText: false };
    if (el.getAttribute("title")) return { name: clean(el.getAttribute("title")), fromText: false };
    if (el.getAttribute("placeholder")) return { name: clean(el.getAttribute("placeholder")), fromText: false };
    return { name: "", fromText: false };
  }

  function kindOf(el) {
    const tag = el.tagName.toLowerCase();
    const role = (el.getAttribute("role") || "").toLowerCase();
    const type = (el.getAttribute("type") || "text").toLowerCase();
    if (role === "tab") return ["tab", "tab"];
    if (role === "switch") return ["switch", "switch"];
    if (role === "menuitem") return ["menu", "menu item"];
    if (role === "checkbox") return ["checkbox", "checkbox"];
    if (role === "radio") return ["radio", "radio button"];
    if (role === "slider") return ["slider", "slider"];
    if (tag === "a") return ["link", "link"];
    if (tag === "select") return ["field", "drop-down"];
    if (tag === "textarea") return ["field", "text area"];
    if (tag === "input") {
      if (type === "checkbox") return ["checkbox", "checkbox"];
      if (type === "radio") return ["radio", "radio button"];
      if (type === "range") return ["slider", "slider"];
      if (["submit", "button", "reset", "image"].includes(type)) return ["button", "button"];
      if (["hidden", "file", "color"].includes(type)) return null;
      if (type === "password") return ["field", "password field"];
      if (type === "search") return ["field", "search box"];
      return ["field", "field"];
    }
    if (tag === "button" || role === "button" || tag === "summary") return ["button", "button"];
    return null;
  }

  const selector = "a[href], button, input, select, textarea, summary, [role=button], [role=link], " +
    "[role=checkbox], [role=radio], [role=tab], [role=switch], [role=menuitem], [role=slider]";
  const out = [];
  for (const el of document.querySelectorAll(selector)) {
    const k = kindOf(el);
    if (!k) continue;
    if (el.disabled || el.getAttribute("aria-disabled") === "true") continue;
    const style = getComputedStyle(el);
    if (style.visibility !== "visible" || parseFloat(style.opacity) === 0 || style.display === "none") continue;
    // A link wrapping one image is drawn by the image: use the union of its client rects.
    const r = el.getBoundingClientRect();
    if (r.width < 4 || r.height < 4) continue;
    const x0 = Math.max(0, r.left), y0 = Math.max(0, r.top), x1 = Math.min(vw, r.right), y1 = Math.min(vh, r.bottom);
    if (x1 <= x0 || y1 <= y0 || (x1 - x0) * (y1 - y0) < 0.9 * r.width * r.height) continue;
    const cx = (r.left + r.right) / 2, cy = (r.top + r.bottom) / 2;
    const hit = document.elementFromPoint(cx, cy);
    if (!hit || !(hit === el || el.contains(hit) || (hit.tagName === "LABEL" && hit.control === el))) continue;
    let [kind, roleWord] = k;
    const { name, fromText } = nameOf(el, kind);
    if (!name) continue;
    // A button or link that shows no text of its own is drawn as an icon.
    if ((kind === "button" || kind === "link") && !fromText && !drawsText(el) && el.querySelector("img, svg")) {
      kind = "icon"; roleWord = "icon";
    }
    out.push({ name, kind, roleWord, box: [r.left, r.top, r.right, r.bottom], tag: el.tagName.toLowerCase() });
  }
  return out;
}
