//! Which H.264 encoder to use: what `encoder = "auto"` resolves to on this machine. ffmpeg is
//! asked once which encoders it was built with (`-encoders`), then each hardware encoder it
//! has gets a one-frame test encode (as go2rtc does), because NVENC or VAAPI being compiled in
//! says nothing about a GPU or driver being present. The answer is cached for the process.

use std::path::Path;
use std::time::Duration;

use tokio::process::Command;

use super::Encoder;
use super::args::probe_args;

/// Hardware first, in this order; libx264 is the fallback.
const PREFERENCE: [Encoder; 3] = [Encoder::Nvenc, Encoder::Qsv, Encoder::Vaapi];

/// What the probe found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probe {
    /// Encoders ffmpeg lists and that passed a test encode.
    pub working: Vec<Encoder>,
    /// Why an encoder was passed over, for the log.
    pub notes: Vec<String>,
}

impl Probe {
    /// The encoder for `wanted` (None = auto): the wanted one if it works, else an error
    /// naming it; auto takes the first working hardware encoder, else libx264.
    pub fn choose(&self, wanted: Option<Encoder>) -> Result<Encoder, String> {
        match wanted {
            Some(e) if self.working.contains(&e) => Ok(e),
            Some(e) => Err(format!(
                "encoder {} is not available in this ffmpeg or does not work on this machine",
                e.ffmpeg_name()
            )),
            None => PREFERENCE
                .into_iter()
                .chain([Encoder::Libx264])
                .find(|e| self.working.contains(e))
                .ok_or_else(|| {
                    "this ffmpeg has no working H.264 encoder (not even libx264)".into()
                }),
        }
    }
}

/// Names in the first column after the flags of `ffmpeg -encoders` output.
pub fn listed_encoders(text: &str) -> Vec<Encoder> {
    let names: Vec<&str> = text
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let flags = it.next()?;
            // Encoder lines start with six flag characters, the first V for video.
            (flags.len() == 6 && flags.starts_with('V'))
                .then(|| it.next())
                .flatten()
        })
        .collect();
    Encoder::ALL
        .into_iter()
        .filter(|e| names.contains(&e.ffmpeg_name()))
        .collect()
}

/// Runs the probe with the ffmpeg at `ffmpeg`. Never fails: a missing ffmpeg gives an empty
/// list (and every profile then reports why it cannot start).
pub async fn probe(ffmpeg: &Path) -> Probe {
    let mut notes = Vec::new();
    let listed = match run(ffmpeg, &["-hide_banner".into(), "-encoders".into()]).await {
        Ok(out) => listed_encoders(&out),
        Err(e) => {
            notes.push(format!("{}: {e}", ffmpeg.display()));
            return Probe {
                working: Vec::new(),
                notes,
            };
        }
    };
    let mut working = Vec::new();
    for e in listed {
        if e == Encoder::Libx264 {
            // Software: it works wherever it is compiled in; its test encode costs a second.
            working.push(e);
            continue;
        }
        match run(ffmpeg, &probe_args(e)).await {
            Ok(_) => working.push(e),
            Err(why) => notes.push(format!(
                "{} listed but its test encode failed: {why}",
                e.ffmpeg_name()
            )),
        }
    }
    Probe { working, notes }
}

/// Runs ffmpeg to completion (bounded), returning stdout, or the failure with stderr's tail.
async fn run(ffmpeg: &Path, args: &[String]) -> Result<String, String> {
    let child = Command::new(ffmpeg)
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(Duration::from_secs(15), child).await {
        Err(_) => Err("no answer within 15 s".into()),
        Ok(Err(e)) => Err(super::spawn_error(ffmpeg, &e)),
        Ok(Ok(out)) if out.status.success() => {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        }
        Ok(Ok(out)) => {
            let err = String::from_utf8_lossy(&out.stderr);
            let tail: Vec<&str> = err.lines().rev().take(2).collect();
            Err(format!(
                "{} ({})",
                out.status,
                tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LISTING: &str = "Encoders:\n V..... = Video\n ------\n V....D libx264              libx264 H.264\n V....D h264_nvenc           NVIDIA NVENC H.264 encoder (codec h264)\n V..... h264_qsv             H.264 (Intel Quick Sync Video acceleration)\n A....D aac                  AAC\n";

    #[test]
    fn the_listing_is_read() {
        assert_eq!(
            listed_encoders(LISTING),
            vec![Encoder::Libx264, Encoder::Nvenc, Encoder::Qsv]
        );
    }

    #[test]
    fn auto_prefers_working_hardware_and_falls_back() {
        let p = Probe {
            working: vec![Encoder::Libx264, Encoder::Qsv],
            notes: vec![],
        };
        assert_eq!(p.choose(None), Ok(Encoder::Qsv));
        assert_eq!(p.choose(Some(Encoder::Libx264)), Ok(Encoder::Libx264));
        assert!(
            p.choose(Some(Encoder::Nvenc))
                .unwrap_err()
                .contains("h264_nvenc")
        );
        let sw = Probe {
            working: vec![Encoder::Libx264],
            notes: vec![],
        };
        assert_eq!(sw.choose(None), Ok(Encoder::Libx264));
        let none = Probe {
            working: vec![],
            notes: vec![],
        };
        assert!(none.choose(None).is_err());
    }

    /// A fake ffmpeg: lists NVENC and VAAPI but fails NVENC's test encode, like a build with
    /// NVENC on a machine without an NVIDIA GPU.
    #[tokio::test]
    async fn probe_against_a_fake_ffmpeg() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("ffmpeg");
        std::fs::write(
            &fake,
            "#!/bin/sh\ncase \"$*\" in\n  *-encoders*) printf ' V....D libx264 x\\n V....D h264_nvenc x\\n V....D h264_vaapi x\\n' ;;\n  *h264_nvenc*) echo 'Cannot load libcuda.so.1' >&2; exit 1 ;;\n  *) exit 0 ;;\nesac\n",
        )
        .unwrap();
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let p = probe(&fake).await;
        assert_eq!(p.working, vec![Encoder::Libx264, Encoder::Vaapi]);
        assert!(p.notes[0].contains("libcuda"), "{:?}", p.notes);
        assert_eq!(p.choose(None), Ok(Encoder::Vaapi));
        let missing = probe(&dir.path().join("nope")).await;
        assert!(missing.working.is_empty());
        assert!(
            missing.notes[0].contains("not found"),
            "{:?}",
            missing.notes
        );
    }
}
