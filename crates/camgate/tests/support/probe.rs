//! ffprobe as the independent reader of what camgate serves: one bounded run that decodes
//! what it reads (`-count_frames`), so frame counts are frames ffmpeg could decode, not
//! packets it saw.

use std::time::Duration;

use serde_json::Value;

/// ffprobe reads `url` for `seconds` (`-read_intervals %+N`) and answers its `streams`
/// array with the `-show_entries stream=` fields asked in `entries`. `select` limits the
/// streams (`-select_streams v:0`); `packets` also counts packets. Panics with ffprobe's
/// output when it fails, and after 90 s.
pub async fn streams(
    url: &str,
    select: Option<&str>,
    seconds: u32,
    entries: &str,
    packets: bool,
) -> Vec<Value> {
    let mut cmd = tokio::process::Command::new("ffprobe");
    cmd.args(["-v", "error", "-count_frames"]);
    if packets {
        cmd.arg("-count_packets");
    }
    if let Some(s) = select {
        cmd.args(["-select_streams", s]);
    }
    cmd.args(["-read_intervals", &format!("%+{seconds}")])
        .args(["-show_entries", &format!("stream={entries}")])
        .args(["-of", "json"])
        .arg(url)
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(90), cmd.output())
        .await
        .expect("ffprobe finished within 90 s")
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "ffprobe {url}: {text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_str(&text).unwrap();
    v["streams"].as_array().cloned().unwrap_or_default()
}

/// The first video stream of `url` over `seconds`: codec, size and decoded frames.
pub async fn video(url: &str, seconds: u32) -> Value {
    streams(
        url,
        Some("v:0"),
        seconds,
        "codec_name,width,height,nb_read_frames",
        false,
    )
    .await
    .into_iter()
    .next()
    .unwrap_or(Value::Null)
}
