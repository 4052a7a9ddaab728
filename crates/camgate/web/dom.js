// Building DOM without markup strings: every text from the server goes through textContent
// or an attribute, never through HTML parsing (camera names are user input).

/** h("a", {href: "#/", class: "x", onclick: fn}, "text", child, ...) */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

/** Sets an element's text (only if it changed, so screen readers are not spammed). */
export function setText(el, text) {
  const t = String(text ?? "");
  if (el.textContent !== t) el.textContent = t;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
}

/** The state badge's text and class for a camera state. */
export function badge(state) {
  const s = state || "unknown";
  return h("span", { class: `badge state-${s.replace(/[^a-z_]/g, "")}` }, s);
}

export function updateBadge(el, state) {
  const s = state || "unknown";
  setText(el, s);
  el.className = `badge state-${s.replace(/[^a-z_]/g, "")}`;
}

export function fmtRate(status) {
  if (!status || status.state !== "live") return "";
  const fps = typeof status.fps === "number" ? status.fps.toFixed(1) : "?";
  return `${fps} fps · ${status.bitrate_kbps ?? 0} kbit/s`;
}
