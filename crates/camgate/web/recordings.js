// The camera page's recordings: a timeline of what is on disk in the last 24 h (GET
// /recordings/{path}, refreshed while the page is open), a click that plays from that time,
// a way back to live, and an export form that downloads export.mp4 for a chosen range.
// Recorded video plays as VOD HLS (index.m3u8?start=) where the browser plays HLS itself,
// else as the progressive export.mp4 of the same samples (every browser plays and seeks it).

import { api } from "./api.js";
import { h, setText, clear } from "./dom.js";

const DAY_MS = 86_400_000;
const REFRESH_MS = 5000;
/** Longest stretch one click plays when the browser needs export.mp4 (no native HLS). */
const EXPORT_SPAN_MS = 3_600_000;

const time = (ms) => new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
const iso = (ms) => new Date(ms).toISOString();

/** A datetime-local value (local time, seconds) for `ms`. */
function localValue(ms) {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60_000);
  return d.toISOString().slice(0, 19);
}

function nativeHls(video) {
  return video.canPlayType("application/vnd.apple.mpegurl") !== "";
}

/**
 * The recordings section of `camera`'s page. `player.recorded(url)` plays a URL in the page's
 * video, `player.live()` returns to live. Returns {el, stop}.
 */
export function recordingsSection(camera, video, player) {
  const p = encodeURIComponent(camera.stream_path);
  const bar = h("div", { class: "timeline", role: "group", "aria-label": "Recorded in the last 24 hours: click to play from that time" });
  const axis = h("div", { class: "timeline-axis" });
  const list = h("ul", { class: "rec-list" });
  const showing = h("p", { class: "rec-showing", "aria-live": "polite" }, "Showing: live");
  const live = h("button", { type: "button", class: "rec-live", "aria-pressed": "true" }, "Live");
  const problem = h("p", { class: "field-error", role: "alert" });
  const start = h("input", { type: "datetime-local", step: "1", id: "rec-start", "aria-label": "Export start" });
  const end = h("input", { type: "datetime-local", step: "1", id: "rec-end", "aria-label": "Export end" });
  const download = h("button", { type: "submit", class: "primary" }, "Download MP4");
  const exportError = h("p", { class: "field-error", id: "rec-export-error", role: "alert" });
  const form = h("form", { class: "rec-export" },
    h("label", { for: "rec-start" }, "From "), start,
    h("label", { for: "rec-end" }, " to "), end, " ", download, exportError);
  const el = h("section", { class: "recordings", "aria-label": "Recordings" },
    h("h2", {}, "Recordings"),
    h("div", { class: "rec-controls" }, live, showing),
    bar, axis, problem, list,
    h("h3", {}, "Export"), form);

  let ranges = [];
  let view = { from: Date.now() - DAY_MS, to: Date.now() };
  let prefilled = false;

  function playFrom(ms) {
    const r = ranges.find((x) => ms >= x.start && ms < x.end) || ranges.find((x) => x.start >= ms);
    if (!r) { setText(problem, "Nothing is recorded after that time."); return; }
    const from = Math.max(ms, r.start);
    setText(problem, "");
    const last = ranges[ranges.length - 1].end;
    const url = nativeHls(video)
      ? `/recordings/${p}/index.m3u8?start=${iso(from)}&end=${iso(last)}`
      : `/recordings/${p}/export.mp4?start=${iso(from)}&end=${iso(Math.min(last, from + EXPORT_SPAN_MS))}`;
    player.recorded(url);
    live.setAttribute("aria-pressed", "false");
    setText(showing, `Showing: recording from ${time(from)}`);
  }

  live.addEventListener("click", () => {
    player.live();
    live.setAttribute("aria-pressed", "true");
    setText(showing, "Showing: live");
  });

  bar.addEventListener("click", (e) => {
    const box = bar.getBoundingClientRect();
    let ms = view.from + ((e.clientX - box.left) / box.width) * (view.to - view.from);
    // A range drawn wider than it is (a few pixels at least) plays from inside it.
    const hit = e.target.closest && e.target.closest(".rec-range");
    if (hit) {
      const r = ranges[Number(hit.dataset.index)];
      if (r) ms = Math.min(Math.max(ms, r.start), r.end - 1);
    }
    playFrom(ms);
  });

  function draw() {
    clear(bar);
    clear(list);
    clear(axis);
    const span = view.to - view.from;
    ranges.forEach((r, i) => {
      const left = ((r.start - view.from) / span) * 100;
      const width = ((r.end - r.start) / span) * 100;
      const mark = h("span", { class: "rec-range", dataset: { index: String(i) }, title: `${time(r.start)} – ${time(r.end)}` });
      // Through the CSSOM: the page's CSP refuses style attributes.
      // Kept inside the bar at its right end, where the newest video is.
      mark.style.left = `min(${left.toFixed(4)}%, calc(100% - 4px))`;
      mark.style.width = `${width.toFixed(4)}%`;
      bar.append(mark);
      const b = h("button", { type: "button" }, `${time(r.start)} – ${time(r.end)} (${Math.round((r.end - r.start) / 1000)} s)`);
      b.addEventListener("click", () => playFrom(r.start));
      list.append(h("li", {}, b));
    });
    if (!ranges.length) list.append(h("li", { class: "empty" }, "Nothing recorded in the last 24 hours."));
    axis.append(h("span", {}, time(view.from)), h("span", {}, "now"));
  }

  async function refresh() {
    const to = Date.now();
    const from = to - DAY_MS;
    const r = await api("GET", `/recordings/${p}?start=${iso(from)}&end=${iso(to)}`);
    if (!r.ok) {
      // A camera that was never recorded has no recordings yet: nothing to say.
      if (r.status !== 404) setText(problem, r.error.message);
      ranges = [];
    } else {
      ranges = r.data.map((x) => ({ start: Date.parse(x.start), end: Date.parse(x.end) }));
    }
    view = { from, to };
    draw();
    if (!prefilled && ranges.length) {
      const last = ranges[ranges.length - 1];
      start.value = localValue(Math.max(last.start, last.end - 60_000));
      end.value = localValue(last.end);
      prefilled = true;
    }
  }

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    setText(exportError, "");
    const from = Date.parse(start.value);
    const to = Date.parse(end.value);
    if (Number.isNaN(from) || Number.isNaN(to)) { setText(exportError, "Choose a start and an end."); return; }
    const url = `/recordings/${p}/export.mp4?start=${iso(from)}&end=${iso(to)}`;
    // Ask first, so a refusal (too long, nothing recorded) is shown in words, not downloaded.
    let res;
    try { res = await fetch(url, { method: "HEAD" }); } catch (_) { setText(exportError, "camgate cannot be reached."); return; }
    if (!res.ok) {
      const r = await api("GET", url);
      setText(exportError, r.error ? r.error.message : `the server answered ${res.status}`);
      return;
    }
    const a = h("a", { href: url, download: "" });
    document.body.append(a);
    a.click();
    a.remove();
  });

  refresh();
  const timer = setInterval(refresh, REFRESH_MS);
  return { el, stop: () => clearInterval(timer) };
}
