// Add and edit a camera. The API validates; its error code says which field is wrong and its
// message is shown next to that field. The password is never filled in from the server (the
// server never sends it back): editing a camera that has one asks for it again.

import { api } from "./api.js";
import { h, setText, clear } from "./dom.js";
import { refreshCameras, byId } from "./live.js";

/** API error code -> the form field it concerns. */
const FIELD_OF_CODE = {
  missing_camera_id: "camera_id",
  invalid_camera_id: "camera_id",
  missing_rtsp_url: "rtsp_url",
  invalid_rtsp_url: "rtsp_url",
  invalid_name: "name",
  invalid_stream_path: "stream_path",
  stream_path_in_use: "stream_path",
  invalid_transport: "transport",
  invalid_idle_timeout: "idle_timeout_seconds",
  invalid_credentials: "username",
};

function fieldFor(error) {
  if (error.code === "invalid_credentials" && /^password/.test(error.message)) return "password";
  if (FIELD_OF_CODE[error.code]) return FIELD_OF_CODE[error.code];
  // Codes shared by several fields (invalid_field) name the field first in the message.
  const first = (error.message || "").split(/\s/)[0];
  return first;
}

/** Splits a (redacted) URL into the URL without credentials and the user name. */
function splitCredentials(url) {
  try {
    const u = new URL(url);
    const user = decodeURIComponent(u.username);
    const hadPassword = u.password !== "";
    u.username = "";
    u.password = "";
    return { url: u.toString(), user, hadPassword };
  } catch (_) {
    return { url, user: "", hadPassword: false };
  }
}

export async function renderForm(root, id) {
  clear(root);
  let camera = null;
  if (id !== null) {
    if (!byId(id)) await refreshCameras();
    camera = byId(id);
    if (!camera) {
      root.append(h("p", { class: "empty" }, `There is no camera with the id “${id}”. `, h("a", { href: "#/" }, "Back to the grid")));
      return () => {};
    }
  }
  const editing = camera !== null;
  const creds = editing ? splitCredentials(camera.rtsp_url) : { url: "", user: "", hadPassword: false };
  const errors = {};
  const inputs = {};

  function field(name, label, input, hint) {
    input.id = `f-${name}`;
    input.name = name;
    inputs[name] = input;
    const err = h("p", { class: "field-error", id: `e-${name}`, role: "alert" });
    errors[name] = err;
    input.setAttribute("aria-describedby", `e-${name}${hint ? ` h-${name}` : ""}`);
    return h("div", { class: "field" },
      h("label", { for: `f-${name}` }, label),
      input,
      hint ? h("p", { class: "hint", id: `h-${name}` }, hint) : null,
      err);
  }

  const transport = h("select", {},
    ["auto", "tcp", "udp"].map((t) => h("option", { value: t }, t)));
  transport.value = editing ? camera.transport : "auto";
  const onDemand = h("input", { type: "checkbox" });
  onDemand.checked = editing ? camera.on_demand : true;
  const record = h("input", { type: "checkbox" });
  record.checked = editing ? camera.record : false;
  const formError = h("p", { class: "field-error", role: "alert" });
  const submit = h("button", { type: "submit", class: "primary" }, editing ? "Save" : "Add camera");

  const form = h("form", { class: "camera-form", novalidate: true },
    h("h1", {}, editing ? `Edit ${camera.name}` : "Add a camera"),
    field("camera_id", "Camera id", h("input", { type: "text", required: true, autocomplete: "off", value: editing ? camera.camera_id : "", readonly: editing }),
      "Letters, digits, _ and -; at most 64 characters."),
    field("name", "Name", h("input", { type: "text", autocomplete: "off", value: editing ? camera.name : "" })),
    field("rtsp_url", "RTSP URL", h("input", { type: "text", required: true, autocomplete: "off", placeholder: "rtsp://192.168.1.10:554/stream1", value: creds.url }),
      "rtsp:// or rtsps://; the user name and password go in their own fields."),
    field("username", "User name", h("input", { type: "text", autocomplete: "off", value: creds.user })),
    field("password", "Password", h("input", { type: "password", autocomplete: "new-password", value: "" }),
      editing && creds.hadPassword ? "The server never sends the password back: type it again to save." : null),
    field("stream_path", "Stream path", h("input", { type: "text", autocomplete: "off", value: editing ? camera.stream_path : "", placeholder: "cam_{camera id}" })),
    field("transport", "Transport", transport),
    h("div", { class: "field check" }, onDemand, h("label", { for: "f-on_demand" }, "On demand (connect only while someone watches)")),
    h("div", { class: "field check" }, record, h("label", { for: "f-record" }, "Record")),
    formError,
    h("div", { class: "buttons" }, submit,
      h("a", { class: "button", href: editing ? `#/camera/${encodeURIComponent(camera.camera_id)}` : "#/" }, "Cancel")),
  );
  onDemand.id = "f-on_demand";
  record.id = "f-record";
  root.append(form);
  inputs[editing ? "name" : "camera_id"].focus();

  function showError(name, message) {
    const err = errors[name];
    if (err) {
      setText(err, message);
      inputs[name].setAttribute("aria-invalid", "true");
      inputs[name].focus();
    } else {
      setText(formError, message);
    }
  }

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    for (const [name, err] of Object.entries(errors)) { setText(err, ""); inputs[name].removeAttribute("aria-invalid"); }
    setText(formError, "");
    const body = {
      camera_id: inputs.camera_id.value.trim(),
      rtsp_url: inputs.rtsp_url.value.trim(),
      transport: transport.value,
      on_demand: onDemand.checked,
      record: record.checked,
    };
    const name = inputs.name.value.trim();
    if (name) body.name = name;
    const path = inputs.stream_path.value.trim();
    if (path) body.stream_path = path;
    const user = inputs.username.value;
    const pass = inputs.password.value;
    if (user) body.username = user;
    if (pass) body.password = pass;
    if (editing && creds.hadPassword && !pass) {
      showError("password", "Type the camera's password again: the server never sends it back, and saving without it would remove it.");
      return;
    }
    submit.disabled = true;
    const r = await api("POST", "/cameras/provision", body);
    submit.disabled = false;
    if (!r.ok) {
      showError(fieldFor(r.error), r.error.message);
      return;
    }
    await refreshCameras();
    location.hash = editing ? `#/camera/${encodeURIComponent(r.data.camera_id)}` : "#/";
  });
  return () => {};
}
