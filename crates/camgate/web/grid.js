// The camera grid: one tile per camera playing live video with its name, state, rate and
// viewers; layouts 1, 2x2, 3x3, 4x4 and auto; click (or Enter) focuses a tile. Only tiles on
// screen in a visible tab play, so on-demand cameras nobody looks at can go idle; the others
// show the camera's latest snapshot.

import { h, setText, updateBadge, fmtRate, clear } from "./dom.js";
import { play, protocols } from "./player.js";
import { store, subscribe, watchCamera } from "./live.js";

const LAYOUTS = [["1", "1"], ["2", "2x2"], ["3", "3x3"], ["4", "4x4"], ["auto", "Auto"]];
const LAYOUT_KEY = "camgate.layout";
/** How often a tile that is not playing refreshes its snapshot. */
const POSTER_EVERY_MS = 10_000;

/** Per camera, the protocol its tile plays with, as the user last chose it. */
const PROTOCOL_KEY = (id) => `camgate.protocol.${id}`;
const PROTOCOL_LABELS = { webrtc: "WebRTC", mse: "MSE", hls: "HLS" };

export function renderGrid(root) {
  const tiles = new Map(); // camera_id -> tile
  let layout = localStorage.getItem(LAYOUT_KEY) || "auto";
  if (!LAYOUTS.some(([v]) => v === layout)) layout = "auto";

  const grid = h("section", { class: "grid", "aria-label": "Cameras", dataset: { layout } });
  const empty = h("p", { class: "empty", hidden: true });
  const buttons = LAYOUTS.map(([value, label]) => h("button", {
    type: "button", class: "layout", "aria-pressed": String(value === layout),
    title: `Layout ${label}`,
    onclick: () => setLayout(value),
  }, label));
  const toolbar = h("div", { class: "toolbar", role: "group", "aria-label": "Layout" }, "Layout:", buttons);
  clear(root);
  root.append(toolbar, empty, grid);

  function setLayout(value) {
    layout = value;
    localStorage.setItem(LAYOUT_KEY, value);
    grid.dataset.layout = value;
    buttons.forEach((b, i) => b.setAttribute("aria-pressed", String(LAYOUTS[i][0] === value)));
  }

  function setFocus(tile) {
    const focused = grid.querySelector(".tile.focused");
    if (focused) focused.classList.remove("focused");
    if (tile && tile !== focused) {
      tile.classList.add("focused");
      grid.classList.add("focus-mode");
      tile.focus();
    } else {
      grid.classList.remove("focus-mode");
      if (focused) focused.focus();
    }
    // Hidden tiles stop through the IntersectionObserver; shown ones start.
  }

  const observer = new IntersectionObserver((entries) => {
    for (const e of entries) {
      const tile = tiles.get(e.target.dataset.id);
      if (tile) { tile.onScreen = e.isIntersecting; tile.sync(); }
    }
  }, { threshold: 0.05 });

  const onVisibility = () => { for (const t of tiles.values()) t.sync(); };
  document.addEventListener("visibilitychange", onVisibility);

  function makeTile(camera) {
    const id = camera.camera_id;
    const video = h("video", { muted: true, playsinline: true, autoplay: true, "aria-label": `Live video of ${camera.name}` });
    video.muted = true;
    const name = h("span", { class: "name" });
    const state = h("span", { class: "badge" });
    const rate = h("span", { class: "rate" });
    const viewers = h("span", { class: "viewers" });
    const problem = h("span", { class: "problem" });
    const details = h("a", { class: "details", href: `#/camera/${encodeURIComponent(id)}` }, "Details");
    const choice = h("select", { class: "protocol", "aria-label": `Protocol for ${camera.name}`, title: "How this tile plays" });
    const el = h("article", { class: "tile", tabindex: "0", dataset: { id }, "aria-label": camera.name },
      h("div", { class: "video-box" }, video, problem),
      h("div", { class: "meta" }, name, state, rate, viewers, choice, details));
    choice.addEventListener("click", (e) => e.stopPropagation());
    choice.addEventListener("keydown", (e) => e.stopPropagation());
    choice.addEventListener("change", () => {
      localStorage.setItem(PROTOCOL_KEY(id), choice.value);
      tile.restart();
    });
    el.addEventListener("click", (e) => { if (!e.target.closest("a")) setFocus(el); });
    el.addEventListener("keydown", (e) => {
      if (e.target !== el) return;
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); setFocus(el); }
      else if (e.key === "Escape" && el.classList.contains("focused")) setFocus(null);
    });
    const tile = {
      el, camera, onScreen: false, stopPlay: null, stopWatch: null, codec: undefined, posterAt: 0,
      /**
       * A tile that is not playing shows the camera's latest snapshot (the video's poster)
       * instead of a black box. Only of a live camera: a snapshot of an idle on-demand camera
       * would start it, and letting it go idle is why off-screen tiles stop. Refreshed at
       * most every POSTER_EVERY_MS; a tile keeps the last one when its camera goes idle.
       */
      poster(force) {
        const s = store.status.get(id) || {};
        if (s.state !== "live" || (!force && Date.now() - this.posterAt < POSTER_EVERY_MS)) return;
        this.posterAt = Date.now();
        const url = `/cameras/${encodeURIComponent(id)}/snapshot.jpg?width=640&t=${this.posterAt}`;
        // Preloaded, so a failed snapshot keeps the previous poster.
        const img = new Image();
        img.onload = () => { video.poster = url; el.dataset.poster = "1"; };
        img.src = url;
      },
      /** The remembered choice if this browser can use it for the stream's codec, else the best. */
      protocol() {
        const can = protocols(this.codec);
        const saved = localStorage.getItem(PROTOCOL_KEY(id));
        return can.includes(saved) ? saved : can[0] || "mse";
      },
      options() {
        const can = protocols(this.codec);
        const want = this.protocol();
        if (choice.dataset.options !== can.join()) {
          clear(choice);
          for (const p of can) choice.append(h("option", { value: p }, PROTOCOL_LABELS[p]));
          choice.dataset.options = can.join();
        }
        choice.value = want;
        el.dataset.protocol = want;
      },
      restart() {
        if (this.stopPlay) { this.stopPlay(); this.stopPlay = null; this.stopWatch(); this.stopWatch = null; }
        this.sync();
      },
      sync() {
        const want = this.onScreen && !document.hidden;
        if (want && !this.stopPlay) {
          setText(problem, "");
          this.options();
          const onFallback = (p) => { el.dataset.protocol = p; choice.value = p; };
          this.stopPlay = play(video, this.camera.stream_path, (why) => setText(problem, why), this.protocol(), onFallback);
          this.stopWatch = watchCamera(this.camera);
        } else if (!want && this.stopPlay) {
          this.poster(true);
          this.stopPlay(); this.stopPlay = null;
          this.stopWatch(); this.stopWatch = null;
        }
      },
      update() {
        setText(name, this.camera.name);
        el.setAttribute("aria-label", this.camera.name);
        const s = store.status.get(id) || {};
        // The codec decides which protocols can play (H.265: not WebRTC in most browsers);
        // a tile that learns it moved to one its choice cannot play restarts.
        if (s.codec && s.codec !== this.codec) {
          const before = this.protocol();
          this.codec = s.codec;
          this.options();
          if (this.stopPlay && this.protocol() !== before) this.restart();
        }
        updateBadge(state, s.state);
        setText(rate, fmtRate(s));
        setText(viewers, typeof s.viewers === "number" ? `${s.viewers} watching` : "");
        if (s.state === "live") setText(problem, "");
        if (!this.stopPlay) this.poster(false);
      },
      destroy() {
        observer.unobserve(el);
        this.onScreen = false;
        this.sync();
        el.remove();
      },
    };
    video.addEventListener("playing", () => setText(problem, ""));
    return tile;
  }

  function render() {
    const seen = new Set();
    let index = 0;
    for (const camera of store.cameras) {
      seen.add(camera.camera_id);
      let tile = tiles.get(camera.camera_id);
      if (tile && tile.camera.stream_path !== camera.stream_path) { tile.destroy(); tiles.delete(camera.camera_id); tile = null; }
      if (!tile) {
        tile = makeTile(camera);
        tiles.set(camera.camera_id, tile);
        observer.observe(tile.el);
      }
      tile.camera = camera;
      // The API's order; only moved when out of place.
      if (grid.children[index] !== tile.el) grid.insertBefore(tile.el, grid.children[index] || null);
      index += 1;
      tile.update();
    }
    for (const [id, tile] of tiles) if (!seen.has(id)) { tile.destroy(); tiles.delete(id); }
    empty.hidden = store.cameras.length > 0 && !store.error;
    clear(empty);
    if (store.error) empty.append(store.error);
    else if (!store.cameras.length) empty.append("No cameras yet. ", h("a", { href: "#/add" }, "Add a camera"), ".");
  }

  const unsubscribe = subscribe((what) => {
    if (what === "cameras") render();
    else if (tiles.has(what)) tiles.get(what).update();
  });
  const onKey = (e) => { if (e.key === "Escape" && grid.classList.contains("focus-mode")) setFocus(null); };
  document.addEventListener("keydown", onKey);
  render();

  return () => {
    unsubscribe();
    document.removeEventListener("visibilitychange", onVisibility);
    document.removeEventListener("keydown", onKey);
    for (const tile of tiles.values()) tile.destroy();
    observer.disconnect();
  };
}
