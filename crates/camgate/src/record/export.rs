//! `export.mp4`: one progressive MP4 (moov first) over a time range of a stream's recordings,
//! assembled on the fly from the samples already in our fMP4 files. Nothing is re-encoded,
//! copied or written: the files of the range are scanned (`media::mp4read::Scanner`, box
//! headers and moofs only, up to each file's indexed length), their video samples clipped to
//! the range (from the keyframe at or before `start`), laid out by
//! `media::progressive::Progressive`, and every output byte range is mapped back onto byte
//! ranges of the files ([`ExportMap`], served by `http::range`). Memory is the sample table
//! (the moov) and nothing more, whatever the range's length.
//!
//! Gaps (the camera was down) are closed up: the export plays the recorded video back to
//! back. A codec or resolution change (a different sample entry) ends the export at the last
//! sample before it: the first run is exported, and `Plan::cut_at_change` says so.

use std::collections::VecDeque;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use media::mp4read::{InitTrack, Sample, Scanner, Step};
use media::progressive::{self, Progressive, SampleRef, TrackInput};
use sha2::{Digest, Sha256};

use crate::db::recordings::{FileState, RecordingFile};
use crate::http::range;

/// One recording file and where it is on disk.
pub struct Source {
    pub row: RecordingFile,
    pub path: PathBuf,
}

/// A file's video track and samples, as far as its index row says it is flushed.
pub struct Scanned {
    pub track: InitTrack,
    pub samples: Vec<Sample>,
}

/// Reads `path`'s init segment and video samples within its first `limit` bytes (the indexed
/// extent: bytes past it may be a fragment being written). A torn tail just ends the list.
pub fn scan(path: &std::path::Path, limit: u64) -> std::io::Result<Option<Scanned>> {
    let file = std::fs::File::open(path)?;
    let len = file.metadata()?.len().min(limit);
    let mut scan = Scanner::new(len);
    let mut samples = Vec::new();
    let mut video_id = None;
    let mut buf = Vec::new();
    loop {
        match scan.step() {
            Step::Read { offset, len } => {
                buf.resize(len, 0);
                let mut got = 0;
                while got < len {
                    match file.read_at(&mut buf[got..], offset + got as u64)? {
                        0 => break,
                        n => got += n,
                    }
                }
                scan.feed(&buf[..got]);
            }
            Step::Init => video_id = scan.init().and_then(|i| i.video()).map(|t| t.track_id),
            Step::Fragment(f) => {
                for t in f.tracks {
                    if Some(t.track_id) == video_id {
                        samples.extend(t.samples);
                    }
                }
            }
            Step::End(_) => break,
        }
    }
    let track = scan.into_init().and_then(|i| i.video().cloned());
    Ok(track.map(|track| Scanned { track, samples }))
}

/// What an export holds: the layout and the files it reads from.
pub struct Plan {
    pub progressive: Progressive,
    /// The files, indexed by `SampleRef::source`.
    pub paths: Vec<Arc<PathBuf>>,
    /// Wall-clock ms of the first exported sample (a keyframe at or before `start`).
    pub first_ms: i64,
    /// Wall-clock ms just after the last exported sample.
    pub end_ms: i64,
    pub samples: usize,
    /// Names the content: the request, the layout's version, the header (moov), and the files
    /// used (name, row id, the extent read). Any change that could change a byte changes it.
    pub etag: String,
    /// When the last exported sample was recorded (`end_ms`): the content does not change
    /// after that, even while its file grows.
    pub last_modified: SystemTime,
    /// Every file used is complete (it will not grow).
    pub complete: bool,
    /// The export stops before a codec or resolution change inside the range.
    pub cut_at_change: bool,
}

/// Why there is nothing to export.
#[derive(Debug, PartialEq, Eq)]
pub enum NoExport {
    /// No video sample of the files falls in the range.
    Nothing,
    /// The layout failed (never for samples our writer wrote).
    Layout(String),
}

/// `ms` since the file's first sample, for a decode time in `timescale` units.
fn wall_ms(row: &RecordingFile, first_dts: u64, dts: u64, timescale: u32) -> i64 {
    let since = dts.saturating_sub(first_dts);
    row.start_ms + (u128::from(since) * 1000 / u128::from(timescale.max(1))) as i64
}

/// Lays out the export of `[from, to)` over `files` (oldest first, each with what `scan`
/// found, `None` for a file that could not be read: it is left out).
pub fn plan(
    stream_path: &str,
    files: &[(Source, Option<Scanned>)],
    from: i64,
    to: i64,
) -> Result<Plan, NoExport> {
    let mut track: Option<TrackInput> = None;
    let mut reference: Option<&InitTrack> = None;
    let mut first_ms = 0;
    let mut end_ms = 0;
    let mut used: Vec<usize> = Vec::new();
    let mut cut_at_change = false;
    'files: for (i, (src, scanned)) in files.iter().enumerate() {
        let Some(sc) = scanned else { continue };
        let Some(first) = sc.samples.first() else {
            continue;
        };
        let ts = sc.track.timescale;
        let at = |s: &Sample| wall_ms(&src.row, first.dts, s.dts, ts);
        let begin = match reference {
            None => {
                // The first sample still showing at `from`, then back to its keyframe (our
                // files start with one; forward to the next if this one does not).
                let Some(k) = sc.samples.iter().position(|s| {
                    wall_ms(&src.row, first.dts, s.dts + u64::from(s.duration), ts) > from
                }) else {
                    continue;
                };
                if at(&sc.samples[k]) >= to {
                    break;
                }
                let key = (0..=k)
                    .rev()
                    .find(|&j| sc.samples[j].keyframe())
                    .or_else(|| (k..sc.samples.len()).find(|&j| sc.samples[j].keyframe()));
                let Some(key) = key else { continue };
                if at(&sc.samples[key]) >= to {
                    break;
                }
                reference = Some(&sc.track);
                track = Some(TrackInput::from_init(&sc.track, 0));
                first_ms = at(&sc.samples[key]);
                key
            }
            Some(r) => {
                if r.sample_entry != sc.track.sample_entry || r.timescale != ts {
                    cut_at_change = true;
                    break;
                }
                0
            }
        };
        let Some(out) = track.as_mut() else { continue };
        let source = used.len();
        let mut took = false;
        for s in &sc.samples[begin..] {
            let t = at(s);
            if t >= to {
                if took {
                    used.push(i);
                }
                break 'files;
            }
            out.samples.push(SampleRef::from_sample(source, s));
            end_ms = wall_ms(&src.row, first.dts, s.dts + u64::from(s.duration), ts);
            took = true;
        }
        if took {
            used.push(i);
        }
    }
    let Some(track) = track.filter(|t| !t.samples.is_empty()) else {
        return Err(NoExport::Nothing);
    };
    let samples = track.samples.len();
    let progressive = Progressive::build(std::slice::from_ref(&track))
        .map_err(|e| NoExport::Layout(e.to_string()))?;
    let rows: Vec<&RecordingFile> = used.iter().map(|&i| &files[i].0.row).collect();
    // The output is a function of the layout (the moov names every sample's size, time and
    // place in the mdat), of which file each run of samples comes from, and of those files'
    // bytes up to the last sample used, which our writer never rewrites: a file still being
    // written keeps its ETag for a range it already covers, and a file replaced under the
    // same name has a new row id.
    let mut extent = vec![0u64; rows.len()];
    for s in &track.samples {
        extent[s.source] = extent[s.source].max(s.offset + u64::from(s.size));
    }
    let mut h = Sha256::new();
    h.update(format!(
        "v{}|{stream_path}|{from}|{to}",
        progressive::FORMAT_VERSION
    ));
    for (r, end) in rows.iter().zip(&extent) {
        h.update(format!("|{}:{}:{end}", r.file_name, r.id));
    }
    h.update(progressive.header());
    let digest = h.finalize();
    let etag = format!("x{}", hex(&digest[..16]));
    Ok(Plan {
        progressive,
        paths: used
            .iter()
            .map(|&i| Arc::new(files[i].0.path.clone()))
            .collect(),
        first_ms,
        end_ms,
        samples,
        etag,
        last_modified: SystemTime::UNIX_EPOCH + Duration::from_millis(end_ms.max(0) as u64),
        complete: rows.iter().all(|r| r.state == FileState::Complete),
        cut_at_change,
    })
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A progressive layout's bytes as `http::range` pieces: its header from memory, every
/// other byte from the recording files.
pub struct ExportMap {
    header: Bytes,
    plan: Arc<Plan>,
}

impl ExportMap {
    pub fn new(plan: Arc<Plan>) -> Self {
        ExportMap {
            header: plan.progressive.header().clone(),
            plan,
        }
    }
}

impl range::PieceMap for ExportMap {
    fn len(&self) -> u64 {
        self.plan.progressive.len()
    }

    fn pieces(&self, r: Range<u64>) -> Vec<range::Piece> {
        self.plan
            .progressive
            .pieces(r)
            .into_iter()
            .filter_map(|p| match p {
                progressive::Piece::Header(r) => Some(range::Piece::Bytes(self.header.slice(r))),
                progressive::Piece::Source {
                    source,
                    offset,
                    len,
                } => Some(range::Piece::File {
                    // Every source index comes from `plan`, which numbers `paths`.
                    path: self.plan.paths.get(source)?.clone(),
                    offset,
                    len,
                }),
            })
            .collect()
    }
}

/// The last few plans, by what they were built from: a player seeking in an export sends
/// one Range request after another for the same file, and each would otherwise scan every
/// file of the range again.
#[derive(Default)]
pub struct PlanCache {
    recent: Mutex<VecDeque<(String, Arc<Plan>)>>,
}

/// Plans kept: a few players exporting at once.
const CACHED_PLANS: usize = 4;

impl PlanCache {
    /// What a plan is built from: the request and every index row it reads (a row that
    /// grew, was replaced or removed gives another key).
    pub fn key(stream_path: &str, from: i64, to: i64, rows: &[RecordingFile]) -> String {
        let mut key = format!("{stream_path}|{from}|{to}");
        for r in rows {
            key.push_str(&format!("|{}:{}:{}", r.file_name, r.id, r.bytes));
        }
        key
    }

    pub fn get(&self, key: &str) -> Option<Arc<Plan>> {
        let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        recent
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, p)| p.clone())
    }

    pub fn put(&self, key: String, plan: Arc<Plan>) {
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        recent.retain(|(k, _)| *k != key);
        recent.push_front((key, plan));
        recent.truncate(CACHED_PLANS);
    }
}

/// `{path}_{start}.mp4`, the start in UTC without characters file systems refuse.
pub fn file_name(stream_path: &str, start_ms: i64) -> String {
    let when = super::store::ms_rfc3339(start_ms).replace(':', "-");
    format!("{stream_path}_{when}.mp4")
}

#[cfg(test)]
mod tests;
