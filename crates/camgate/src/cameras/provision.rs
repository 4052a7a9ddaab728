//! Validation of a provisioning request body (`POST /cameras/provision`) into a [`CameraSpec`].
//!
//! The body is walked by hand rather than through `#[derive(Deserialize)]` so that every
//! problem gets its own code and a message naming the field, `camera_id` can be a string or a
//! number, and no message ever echoes a value (a value may be a URL with a password).

use std::time::Duration;

use serde_json::{Map, Value};

use super::{
    CameraSpec, InvalidInput, RecordLimits, Transport, default_stream_path, validate_camera_id,
    validate_stream_path,
};

/// Every field a provisioning body may hold; anything else is rejected by name.
pub const PROVISION_FIELDS: &[&str] = &[
    "camera_id",
    "rtsp_url",
    "name",
    "on_demand",
    "record",
    "stream_path",
    "transport",
    "idle_timeout_seconds",
    "record_retain",
    "record_max_bytes",
    "profiles",
    "frame_interval",
    "username",
    "password",
];

const MAX_URL_LEN: usize = 2048;
const MAX_NAME_LEN: usize = 256;
const MAX_CREDENTIAL_LEN: usize = 256;
/// One day: longer than any sensible "keep the camera connected after the last viewer".
const MAX_IDLE_TIMEOUT_SECONDS: f64 = 86_400.0;

/// Validates a provisioning body. Absent or `null` optional fields take their defaults
/// (`name` = the camera id, `on_demand` true, `record` false, `transport` auto,
/// `stream_path` `cam_{camera_id}`, no per-camera idle timeout).
pub fn parse_provision(body: &Value) -> Result<CameraSpec, InvalidInput> {
    let Value::Object(obj) = body else {
        return Err(InvalidInput::new(
            "invalid_body",
            "the body must be a JSON object such as {\"camera_id\":\"1\",\"rtsp_url\":\"rtsp://host/stream\"}",
        ));
    };
    if let Some(unknown) = obj.keys().find(|k| !PROVISION_FIELDS.contains(&k.as_str())) {
        return Err(InvalidInput::new(
            "unknown_field",
            format!(
                "unknown field `{}`; accepted fields are: {}",
                printable(unknown),
                PROVISION_FIELDS.join(", ")
            ),
        ));
    }

    let camera_id = camera_id(obj)?;
    let rtsp_url = match field(obj, "rtsp_url") {
        None => {
            return Err(InvalidInput::new(
                "missing_rtsp_url",
                "rtsp_url is required, e.g. \"rtsp://user:password@192.168.1.10:554/stream1\"",
            ));
        }
        Some(Value::String(s)) => validate_rtsp_url(s)?,
        Some(_) => return Err(wrong_type("rtsp_url", "a string", "invalid_rtsp_url")),
    };
    let rtsp_url = with_credentials(
        rtsp_url,
        credential(obj, "username")?,
        credential(obj, "password")?,
    )?;
    let name = match field(obj, "name") {
        None => camera_id.clone(),
        Some(Value::String(s)) => validate_name(s)?,
        Some(_) => return Err(wrong_type("name", "a string", "invalid_name")),
    };
    let stream_path = match field(obj, "stream_path") {
        None => default_stream_path(&camera_id),
        Some(Value::String(s)) => {
            validate_stream_path(s)?;
            s.clone()
        }
        Some(_) => return Err(wrong_type("stream_path", "a string", "invalid_stream_path")),
    };
    let on_demand = bool_field(obj, "on_demand", true)?;
    let record = bool_field(obj, "record", false)?;
    let transport = match field(obj, "transport") {
        None => Transport::Auto,
        Some(Value::String(s)) => s.parse()?,
        Some(_) => return Err(wrong_type("transport", "a string", "invalid_transport")),
    };
    let idle_timeout = match field(obj, "idle_timeout_seconds") {
        None => None,
        Some(Value::Number(n)) => match n.as_f64() {
            Some(s) if (0.0..=MAX_IDLE_TIMEOUT_SECONDS).contains(&s) => {
                Some(Duration::from_secs_f64(s))
            }
            _ => return Err(bad_idle_timeout()),
        },
        Some(_) => return Err(bad_idle_timeout()),
    };

    let record_limits = RecordLimits {
        retain: record_retain(obj)?,
        max_bytes: record_max_bytes(obj)?,
    };

    let profiles = profiles(obj)?;

    Ok(CameraSpec {
        camera_id,
        name,
        rtsp_url: super::SecretUrl::new(rtsp_url),
        stream_path,
        on_demand,
        record,
        transport,
        idle_timeout,
        record_limits,
        profiles,
        frame_interval: frame_interval(obj)?,
    })
}

/// Most profiles one camera may list (each is an ffmpeg when watched).
pub const MAX_CAMERA_PROFILES: usize = 16;

/// `profiles`: the `[profiles.NAME]` names the camera is served with, e.g. `["720p","360p"]`.
/// Only their spelling is checked here; whether each is configured is the caller's check
/// (the config file is not this module's). `"h264"` is every camera's anyway and is dropped,
/// as are repeats, so the stored list is what it means.
fn profiles(obj: &Map<String, Value>) -> Result<Option<Vec<String>>, InvalidInput> {
    let bad = || {
        InvalidInput::new(
            "invalid_profiles",
            format!(
                "profiles must be a list of at most {MAX_CAMERA_PROFILES} profile names (1-32 characters A-Z a-z 0-9 _ -), e.g. [\"720p\", \"360p\"]"
            ),
        )
    };
    let list = match field(obj, "profiles") {
        None => return Ok(None),
        Some(Value::Array(list)) if list.len() <= MAX_CAMERA_PROFILES => list,
        Some(_) => return Err(bad()),
    };
    let mut out: Vec<String> = Vec::new();
    for v in list {
        let Value::String(name) = v else {
            return Err(bad());
        };
        let ok = !name.is_empty() && name.len() <= 32 && name.chars().all(super::is_id_char);
        if !ok {
            return Err(bad());
        }
        if name != crate::config::RESERVED_PROFILE && !out.contains(name) {
            out.push(name.clone());
        }
    }
    Ok(Some(out))
}

/// `frame_interval` bounds: at most one message per frame of a 25 fps camera (as `[nats]
/// frame_interval`), at least one a day.
const MIN_FRAME_INTERVAL: Duration = Duration::from_millis(40);
const MAX_FRAME_INTERVAL: Duration = Duration::from_secs(86_400);

/// `frame_interval`: a duration string (`"1s"`, `"500ms"`) or a number of seconds, 40 ms to
/// 1 day; `0` = no frame messages for this camera whatever `[nats] frame_interval` says.
fn frame_interval(obj: &Map<String, Value>) -> Result<Option<Duration>, InvalidInput> {
    let bad = || {
        InvalidInput::new(
            "invalid_frame_interval",
            "frame_interval must be a duration such as \"1s\" or \"500ms\" or a number of seconds, from 40ms to 1d; 0 = no frame messages for this camera",
        )
    };
    let d = match field(obj, "frame_interval") {
        None => return Ok(None),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(s) if s.is_finite() && s >= 0.0 && s <= MAX_FRAME_INTERVAL.as_secs_f64() => {
                Duration::from_secs_f64(s)
            }
            _ => return Err(bad()),
        },
        Some(Value::String(s)) => crate::config::duration::parse(s).map_err(|_| bad())?,
        Some(_) => return Err(bad()),
    };
    if !d.is_zero() && !(MIN_FRAME_INTERVAL..=MAX_FRAME_INTERVAL).contains(&d) {
        return Err(bad());
    }
    Ok(Some(d))
}

/// Longest accepted `record_retain`: a year.
const MAX_RECORD_RETAIN: Duration = Duration::from_secs(366 * 86_400);

/// `record_retain`: a duration string (`"7d"`, `"12h"`) or a number of seconds; `0` = no age
/// limit for this camera.
fn record_retain(obj: &Map<String, Value>) -> Result<Option<Duration>, InvalidInput> {
    let bad = || {
        InvalidInput::new(
            "invalid_record_retain",
            "record_retain must be a duration such as \"7d\" or \"12h\" or a number of seconds, at most 366d; 0 = no age limit",
        )
    };
    let d = match field(obj, "record_retain") {
        None => return Ok(None),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(s) if s.is_finite() && s >= 0.0 && s <= MAX_RECORD_RETAIN.as_secs_f64() => {
                Duration::from_secs_f64(s)
            }
            _ => return Err(bad()),
        },
        Some(Value::String(s)) => crate::config::duration::parse(s).map_err(|_| bad())?,
        Some(_) => return Err(bad()),
    };
    if d > MAX_RECORD_RETAIN {
        return Err(bad());
    }
    Ok(Some(d))
}

/// `record_max_bytes`: a size string (`"10GiB"`) or a number of bytes; `0` = unlimited for
/// this camera.
fn record_max_bytes(obj: &Map<String, Value>) -> Result<Option<u64>, InvalidInput> {
    let bad = || {
        InvalidInput::new(
            "invalid_record_max_bytes",
            "record_max_bytes must be a size such as \"10GiB\" or a number of bytes; 0 = unlimited",
        )
    };
    match field(obj, "record_max_bytes") {
        None => Ok(None),
        Some(Value::Number(n)) => n.as_u64().map(Some).ok_or_else(bad),
        Some(Value::String(s)) => s
            .parse::<crate::config::ByteSize>()
            .map(|b| Some(b.bytes()))
            .map_err(|_| bad()),
        Some(_) => Err(bad()),
    }
}

/// A field's value, treating JSON `null` like an absent field.
fn field<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.get(name).filter(|v| !v.is_null())
}

fn camera_id(obj: &Map<String, Value>) -> Result<String, InvalidInput> {
    let id = match field(obj, "camera_id") {
        None => {
            return Err(InvalidInput::new(
                "missing_camera_id",
                "camera_id is required: a string of 1-64 characters [A-Za-z0-9_-] or an integer",
            ));
        }
        Some(Value::String(s)) => s.clone(),
        // `1` and `"1"` name the same camera.
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => n.to_string(),
        Some(_) => {
            return Err(InvalidInput::new(
                "invalid_camera_id",
                "camera_id must be a string of 1-64 characters [A-Za-z0-9_-] or an integer",
            ));
        }
    };
    validate_camera_id(&id)?;
    Ok(id)
}

fn bool_field(obj: &Map<String, Value>, name: &str, default: bool) -> Result<bool, InvalidInput> {
    match field(obj, name) {
        None => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(wrong_type(name, "true or false", "invalid_field")),
    }
}

fn wrong_type(name: &str, want: &str, code: &'static str) -> InvalidInput {
    InvalidInput::new(code, format!("{name} must be {want}"))
}

fn bad_idle_timeout() -> InvalidInput {
    InvalidInput::new(
        "invalid_idle_timeout",
        format!(
            "idle_timeout_seconds must be a number of seconds from 0 to {MAX_IDLE_TIMEOUT_SECONDS}"
        ),
    )
}

/// Checks a camera URL: `rtsp://` or `rtsps://`, a host, no whitespace or control characters.
/// Credentials inline are allowed. Error messages never include the URL.
pub fn validate_rtsp_url(url: &str) -> Result<String, InvalidInput> {
    let invalid = |msg: &str| InvalidInput::new("invalid_rtsp_url", msg.to_owned());
    if url.is_empty() {
        return Err(invalid("rtsp_url must not be empty"));
    }
    if url.len() > MAX_URL_LEN {
        return Err(invalid(&format!(
            "rtsp_url is longer than {MAX_URL_LEN} bytes"
        )));
    }
    // Checked before parsing because the URL parser silently drops tabs and newlines.
    if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(invalid(
            "rtsp_url must not contain spaces or control characters; percent-encode them (%20)",
        ));
    }
    if credentials_with_delimiters(url) {
        return Err(invalid(
            "rtsp_url holds credentials with a raw `?` or `#`, which would be read as the start of a query and leak the password into the host name; \
             put the credentials in the `username` and `password` fields instead (they are escaped for you), or percent-encode them (%3F, %23)",
        ));
    }
    let parsed = url::Url::parse(url).map_err(|e| {
        invalid(&format!(
            "rtsp_url is not a valid URL ({e}); expected rtsp://[user:password@]host[:port]/path"
        ))
    })?;
    if !matches!(parsed.scheme(), "rtsp" | "rtsps") {
        return Err(invalid(
            "rtsp_url must start with rtsp:// or rtsps://, e.g. rtsp://192.168.1.10:554/stream1",
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(invalid(
            "rtsp_url has no host; expected rtsp://[user:password@]host[:port]/path",
        ));
    }
    Ok(url.to_owned())
}

/// True when the text before the URL's first `@` looks like a userinfo (no `/` yet after
/// `://`) but holds a `?` or `#`: `rtsp://admin:12?34@cam/` would parse as host `admin`, port
/// `12`, with the password and the real host in the query. A query of a URL with a path
/// (`rtsp://cam/s?user=a@b`) is not affected.
fn credentials_with_delimiters(url: &str) -> bool {
    let Some((_, rest)) = url.split_once("://") else {
        return false;
    };
    let Some(at) = rest.rfind('@') else {
        return false;
    };
    let before = &rest[..at];
    !before.contains('/') && before.contains(['?', '#'])
}

/// Every byte but the RFC 3986 unreserved ones is escaped, `%` included, so what the user
/// typed is exactly what reaches the camera after the ingest decodes it.
const USERINFO: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn escape(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, USERINFO).to_string()
}

fn credential<'a>(
    obj: &'a Map<String, Value>,
    name: &str,
) -> Result<Option<&'a str>, InvalidInput> {
    match field(obj, name) {
        None => Ok(None),
        Some(Value::String(s))
            if s.chars().count() <= MAX_CREDENTIAL_LEN && !s.chars().any(char::is_control) =>
        {
            Ok(Some(s))
        }
        Some(_) => Err(InvalidInput::new(
            "invalid_credentials",
            format!(
                "{name} must be a string of at most {MAX_CREDENTIAL_LEN} characters without control characters"
            ),
        )),
    }
}

/// Puts `username`/`password` given as separate fields into the URL (percent-encoded), where
/// the ingest expects them. Fields win over credentials already inline in the URL.
fn with_credentials(
    url: String,
    username: Option<&str>,
    password: Option<&str>,
) -> Result<String, InvalidInput> {
    if username.is_none() && password.is_none() {
        return Ok(url);
    }
    let invalid = |msg: &str| InvalidInput::new("invalid_credentials", msg.to_owned());
    // Already validated as an rtsp(s) URL with a host, so it parses and accepts credentials.
    let mut parsed =
        url::Url::parse(&url).map_err(|_| invalid("rtsp_url cannot hold credentials"))?;
    if let Some(user) = username {
        parsed
            .set_username(&escape(user))
            .map_err(|()| invalid("rtsp_url cannot hold a username"))?;
    }
    if parsed.username().is_empty() {
        return Err(invalid(
            "a password needs a username: add the username field or put user@ in rtsp_url",
        ));
    }
    if let Some(pass) = password {
        parsed
            .set_password(Some(&escape(pass)))
            .map_err(|()| invalid("rtsp_url cannot hold a password"))?;
    }
    Ok(parsed.into())
}

fn validate_name(name: &str) -> Result<String, InvalidInput> {
    if name.chars().count() > MAX_NAME_LEN {
        return Err(InvalidInput::new(
            "invalid_name",
            format!("name is longer than {MAX_NAME_LEN} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(InvalidInput::new(
            "invalid_name",
            "name must not contain control characters",
        ));
    }
    Ok(name.to_owned())
}

/// A field name safe to put in a message: bounded, without control characters.
fn printable(name: &str) -> String {
    name.chars().filter(|c| !c.is_control()).take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults() {
        let spec = parse_provision(&json!({"camera_id": 7, "rtsp_url": "rtsp://h/s"})).unwrap();
        assert_eq!(spec.camera_id, "7");
        assert_eq!(spec.name, "7");
        assert_eq!(spec.stream_path, "cam_7");
        assert!(spec.on_demand);
        assert!(!spec.record);
        assert_eq!(spec.transport, Transport::Auto);
        assert_eq!(spec.idle_timeout, None);
    }

    #[test]
    fn all_fields() {
        let spec = parse_provision(&json!({
            "camera_id": "door-1", "rtsp_url": "rtsps://u:p@cam:322/x", "name": "Front door",
            "on_demand": false, "record": true, "stream_path": "front", "transport": "udp",
            "idle_timeout_seconds": 5
        }))
        .unwrap();
        assert_eq!(spec.stream_path, "front");
        assert_eq!(spec.transport, Transport::Udp);
        assert_eq!(spec.idle_timeout, Some(Duration::from_secs(5)));
        assert!(spec.record && !spec.on_demand);
        assert_eq!(spec.record_limits, RecordLimits::default());
    }

    #[test]
    fn profiles_are_names_without_repeats_or_h264() {
        let spec = parse_provision(&json!({
            "camera_id": 1, "rtsp_url": "rtsp://h/s",
            "profiles": ["720p", "h264", "360p", "720p"]
        }))
        .unwrap();
        assert_eq!(spec.profiles, Some(vec!["720p".into(), "360p".into()]));
        let spec =
            parse_provision(&json!({"camera_id": 1, "rtsp_url": "rtsp://h/s", "profiles": []}))
                .unwrap();
        assert_eq!(spec.profiles, Some(vec![]));
        for bad in [
            json!("720p"),
            json!([1]),
            json!(["a b"]),
            json!([""]),
            json!(["x~y"]),
            json!(vec!["p"; MAX_CAMERA_PROFILES + 1]),
        ] {
            let err = parse_provision(
                &json!({"camera_id": 1, "rtsp_url": "rtsp://h/s", "profiles": bad}),
            )
            .unwrap_err();
            assert_eq!(err.code, "invalid_profiles", "{bad}");
        }
    }

    #[test]
    fn record_limits() {
        let spec = parse_provision(&json!({
            "camera_id": 1, "rtsp_url": "rtsp://h/s", "record": true,
            "record_retain": "7d", "record_max_bytes": "10GiB"
        }))
        .unwrap();
        assert_eq!(
            spec.record_limits.retain,
            Some(Duration::from_secs(7 * 86_400))
        );
        assert_eq!(spec.record_limits.max_bytes, Some(10 << 30));
        let spec = parse_provision(&json!({
            "camera_id": 1, "rtsp_url": "rtsp://h/s", "record_retain": 3600, "record_max_bytes": 0
        }))
        .unwrap();
        assert_eq!(spec.record_limits.retain, Some(Duration::from_secs(3600)));
        assert_eq!(spec.record_limits.max_bytes, Some(0));
        for (body, code) in [
            (json!({"record_retain": "soon"}), "invalid_record_retain"),
            (json!({"record_retain": -1}), "invalid_record_retain"),
            (json!({"record_retain": "400d"}), "invalid_record_retain"),
            (json!({"record_retain": true}), "invalid_record_retain"),
            (
                json!({"record_max_bytes": "lots"}),
                "invalid_record_max_bytes",
            ),
            (json!({"record_max_bytes": -5}), "invalid_record_max_bytes"),
            (json!({"record_max_bytes": 1.5}), "invalid_record_max_bytes"),
        ] {
            let mut obj = body.as_object().unwrap().clone();
            obj.insert("camera_id".into(), json!(1));
            obj.insert("rtsp_url".into(), json!("rtsp://h/s"));
            let err = parse_provision(&Value::Object(obj)).unwrap_err();
            assert_eq!(err.code, code, "{body}");
        }
    }

    #[test]
    fn frame_interval() {
        let parse = |v: Value| {
            parse_provision(&json!({"camera_id": 1, "rtsp_url": "rtsp://h/s", "frame_interval": v}))
        };
        let ok = |v: Value| parse(v).unwrap().frame_interval;
        assert_eq!(ok(json!("1s")), Some(Duration::from_secs(1)));
        assert_eq!(ok(json!("500ms")), Some(Duration::from_millis(500)));
        assert_eq!(ok(json!(2.5)), Some(Duration::from_millis(2500)));
        assert_eq!(ok(json!(0)), Some(Duration::ZERO));
        assert_eq!(ok(json!("0s")), Some(Duration::ZERO));
        assert_eq!(ok(Value::Null), None);
        for bad in [
            json!("10ms"),
            json!(0.01),
            json!("2d"),
            json!(-1),
            json!("often"),
            json!(true),
            json!([1]),
        ] {
            let err = parse(bad.clone()).unwrap_err();
            assert_eq!(err.code, "invalid_frame_interval", "{bad}");
            assert!(err.message.contains("40ms"), "{}", err.message);
        }
    }

    #[test]
    fn bad_urls() {
        for url in [
            "http://h/s",
            "rtsp://",
            "rtsp:///path",
            "rtsp://h/a b",
            "rtsp://h/\n",
            "h/s",
            "",
        ] {
            let err = validate_rtsp_url(url).unwrap_err();
            assert_eq!(err.code, "invalid_rtsp_url", "{url:?}");
        }
        assert!(validate_rtsp_url("rtsp://admin:p%40ss@10.1.2.3:554/Streaming/101").is_ok());
    }

    #[test]
    fn separate_credentials_go_into_the_url() {
        let spec = parse_provision(&json!({
            "camera_id": 1, "rtsp_url": "rtsp://old:old@cam:554/s", "username": "admin", "password": "p@ss w/rd"
        }))
        .unwrap();
        assert_eq!(
            spec.rtsp_url.expose(),
            "rtsp://admin:p%40ss%20w%2Frd@cam:554/s"
        );
        let spec = parse_provision(
            &json!({"camera_id": 1, "rtsp_url": "rtsp://user@cam/s", "password": "x"}),
        )
        .unwrap();
        assert_eq!(spec.rtsp_url.expose(), "rtsp://user:x@cam/s");
        for body in [
            json!({"camera_id": 1, "rtsp_url": "rtsp://cam/s", "password": "hunter2"}),
            json!({"camera_id": 1, "rtsp_url": "rtsp://cam/s", "username": 5}),
            json!({"camera_id": 1, "rtsp_url": "rtsp://cam/s", "username": "a", "password": "hunter2\n"}),
        ] {
            let err = parse_provision(&body).unwrap_err();
            assert_eq!(err.code, "invalid_credentials", "{body}");
            assert!(!err.message.contains("hunter2"));
        }
    }

    /// Issue 16 #3: a raw `?` or `#` in an inline password is refused, never parsed as a host.
    #[test]
    fn inline_passwords_with_query_delimiters_are_refused() {
        for url in [
            "rtsp://admin:1234?S3cr3t@cam.local/Streaming/101",
            "rtsp://admin:12#34@cam.local/s",
            "rtsp://admin:a?b@10.0.0.5:554/s?x=1",
            "rtsp://ad?min:pw@cam/s",
        ] {
            let err = validate_rtsp_url(url).unwrap_err();
            assert_eq!(err.code, "invalid_rtsp_url", "{url}");
            assert!(err.message.contains("`password`"), "{}", err.message);
            assert!(!err.message.contains("S3cr3t") && !err.message.contains("1234"));
        }
        for ok in [
            "rtsp://cam/s?user=a@b",
            "rtsp://a:p%3Fq@cam/s",
            "rtsp://cam:554/s#x",
        ] {
            assert!(validate_rtsp_url(ok).is_ok(), "{ok}");
        }
    }

    /// Issue 16 #4: every printable ASCII character (and `%XX` sequences, and unicode)
    /// survives the trip through the URL: what the ingest decodes is what was typed.
    #[test]
    fn credential_fields_round_trip() {
        let printable: String = (0x20u8..0x7f).map(char::from).collect();
        for secret in [
            printable.as_str(),
            "S3cr3t%40Pw",
            "%",
            "%zz%41",
            "pässwörd✓",
            "a:b@c/d?e#f",
        ] {
            let spec = parse_provision(&json!({
                "camera_id": 1, "rtsp_url": "rtsp://cam:554/s", "username": secret, "password": secret
            }))
            .unwrap();
            let url = url::Url::parse(spec.rtsp_url.expose()).unwrap();
            assert_eq!(url.host_str(), Some("cam"), "{secret}");
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8()
                    .unwrap()
                    .into_owned()
            };
            assert_eq!(decode(url.username()), secret);
            assert_eq!(decode(url.password().unwrap()), secret);
            let only_password = parse_provision(&json!({
                "camera_id": 1, "rtsp_url": "rtsp://cam:554/s", "username": "admin", "password": secret
            }))
            .unwrap();
            assert_eq!(
                only_password.rtsp_url.redacted(),
                "rtsp://admin:***@cam:554/s"
            );
        }
    }

    #[test]
    fn messages_never_echo_the_url() {
        let err = parse_provision(&json!({"camera_id": 1, "rtsp_url": "http://u:hunter2@h/"}))
            .unwrap_err();
        assert!(!err.message.contains("hunter2"));
    }
}
