//! Which recording files go, decided from the index alone (never by walking the directory):
//! by age (`retain`, per camera `record_retain`), by bytes per camera (`camera_max_bytes`,
//! per camera `record_max_bytes`), by bytes for all streams (`max_bytes`) and by free space
//! (`min_free`). The oldest whole files go first, whichever limit is hit first. A file still
//! being written counts towards the limits but is not removed: its stream is asked to cut it
//! early, and the next pass removes it once it is closed.
//!
//! A pure function ([`choose`]); `store.rs` carries out its answer.

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::db::recordings::{FileState, RecordingFile};

/// The configured limits; `None` = that limit is off.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    pub retain_ms: Option<i64>,
    pub max_bytes: Option<u64>,
    pub camera_max_bytes: Option<u64>,
    pub min_free: Option<u64>,
}

/// A camera's overrides, from provisioning: `Some(0)` turns that limit off for the camera.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CameraLimits {
    pub retain_ms: Option<i64>,
    pub max_bytes: Option<u64>,
}

/// What a pass does.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Choice {
    /// Row ids to remove, oldest first.
    pub delete: Vec<i64>,
    /// Streams whose file being written should be closed at the next keyframe.
    pub cut: BTreeSet<String>,
}

/// `files` oldest first (as `recordings::all` returns them); `free` = bytes free on the
/// recordings' filesystem when known.
pub fn choose(
    files: &[RecordingFile],
    limits: &Limits,
    cameras: &HashMap<String, CameraLimits>,
    now_ms: i64,
    free: Option<u64>,
) -> Choice {
    let mut choice = Choice::default();
    let mut gone: HashSet<i64> = HashSet::new();
    let mut take = |f: &RecordingFile, choice: &mut Choice, gone: &mut HashSet<i64>| -> bool {
        if gone.contains(&f.id) {
            return false;
        }
        if f.state == FileState::Writing {
            choice.cut.insert(f.stream_path.clone());
            return false;
        }
        gone.insert(f.id);
        choice.delete.push(f.id);
        true
    };
    // Rows left marked by an interrupted removal are finished first.
    for f in files.iter().filter(|f| f.state == FileState::Deleting) {
        take(f, &mut choice, &mut gone);
    }
    let live: Vec<&RecordingFile> = files
        .iter()
        .filter(|f| f.state != FileState::Deleting)
        .collect();

    // Age.
    for f in &live {
        let own = cameras.get(&f.camera_id).and_then(|c| c.retain_ms);
        let retain = match own {
            Some(0) => None,
            Some(ms) => Some(ms),
            None => limits.retain_ms.filter(|&ms| ms > 0),
        };
        if retain.is_some_and(|ms| f.end_ms < now_ms - ms) {
            take(f, &mut choice, &mut gone);
        }
    }

    // Bytes per camera.
    let mut by_camera: HashMap<&str, Vec<&RecordingFile>> = HashMap::new();
    for f in &live {
        by_camera.entry(f.camera_id.as_str()).or_default().push(f);
    }
    for (camera, list) in &by_camera {
        let limit = match cameras.get(*camera).and_then(|c| c.max_bytes) {
            Some(0) => None,
            Some(b) => Some(b),
            None => limits.camera_max_bytes,
        };
        if let Some(limit) = limit {
            shed(list, limit, &mut choice, &mut gone, &mut take);
        }
    }

    // Bytes of every stream together.
    if let Some(limit) = limits.max_bytes {
        shed(&live, limit, &mut choice, &mut gone, &mut take);
    }

    // Free space: what is still to be freed after the removals above.
    if let (Some(min_free), Some(free)) = (limits.min_free, free) {
        let freed: u64 = live
            .iter()
            .filter(|f| gone.contains(&f.id))
            .map(|f| f.bytes)
            .sum();
        let mut short = min_free.saturating_sub(free.saturating_add(freed));
        for f in &live {
            if short == 0 {
                break;
            }
            if take(f, &mut choice, &mut gone) {
                short = short.saturating_sub(f.bytes);
            }
        }
    }
    choice
}

/// Removes the oldest of `list` until what is kept fits `limit`.
fn shed(
    list: &[&RecordingFile],
    limit: u64,
    choice: &mut Choice,
    gone: &mut HashSet<i64>,
    take: &mut impl FnMut(&RecordingFile, &mut Choice, &mut HashSet<i64>) -> bool,
) {
    let mut total: u64 = list
        .iter()
        .filter(|f| !gone.contains(&f.id))
        .map(|f| f.bytes)
        .sum();
    for f in list {
        if total <= limit {
            break;
        }
        if gone.contains(&f.id) {
            continue;
        }
        if take(f, choice, gone) {
            total = total.saturating_sub(f.bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(id: i64, camera: &str, start: i64, bytes: u64, state: FileState) -> RecordingFile {
        RecordingFile {
            id,
            stream_path: format!("cam_{camera}"),
            camera_id: camera.into(),
            file_name: format!("{start}.mp4"),
            start_ms: start,
            end_ms: start + 60_000,
            bytes,
            init_bytes: 700,
            samples: 1500,
            codec: "avc1.64001f".into(),
            width: 1920,
            height: 1080,
            state,
        }
    }

    use FileState::{Complete, Deleting, Writing};

    fn files() -> Vec<RecordingFile> {
        let mut v = vec![
            f(1, "a", 0, 100, Complete),
            f(2, "b", 30_000, 100, Complete),
            f(3, "a", 60_000, 100, Complete),
            f(4, "b", 90_000, 100, Complete),
            f(5, "a", 120_000, 100, Writing),
            f(6, "b", 150_000, 100, Writing),
        ];
        v.sort_by_key(|f| f.start_ms);
        v
    }

    #[test]
    fn nothing_goes_under_the_limits() {
        let c = choose(&files(), &Limits::default(), &HashMap::new(), 200_000, None);
        assert_eq!(c, Choice::default());
    }

    #[test]
    fn age_removes_files_that_ended_before_the_window() {
        let limits = Limits {
            retain_ms: Some(100_000),
            ..Default::default()
        };
        // now - retain = 100_000: files ending before it (1 ends 60_000, 2 ends 90_000).
        let c = choose(&files(), &limits, &HashMap::new(), 200_000, None);
        assert_eq!(c.delete, [1, 2]);
        // A camera's own retention overrides, and 0 turns it off for that camera.
        let cams = HashMap::from([
            (
                "a".to_owned(),
                CameraLimits {
                    retain_ms: Some(0),
                    max_bytes: None,
                },
            ),
            (
                "b".to_owned(),
                CameraLimits {
                    retain_ms: Some(49_000),
                    max_bytes: None,
                },
            ),
        ]);
        let c = choose(&files(), &limits, &cams, 200_000, None);
        assert_eq!(c.delete, [2, 4]);
    }

    #[test]
    fn total_bytes_oldest_first_and_the_open_file_is_cut() {
        let limits = Limits {
            max_bytes: Some(350),
            ..Default::default()
        };
        let c = choose(&files(), &limits, &HashMap::new(), 200_000, None);
        assert_eq!(c.delete, [1, 2, 3]);
        assert!(c.cut.is_empty());
        // Only open files left over the limit: they are asked to cut, not removed.
        let limits = Limits {
            max_bytes: Some(50),
            ..Default::default()
        };
        let c = choose(&files(), &limits, &HashMap::new(), 200_000, None);
        assert_eq!(c.delete, [1, 2, 3, 4]);
        assert_eq!(
            c.cut.into_iter().collect::<Vec<_>>(),
            ["cam_a".to_owned(), "cam_b".to_owned()]
        );
    }

    #[test]
    fn per_camera_bytes_and_overrides() {
        let limits = Limits {
            camera_max_bytes: Some(200),
            ..Default::default()
        };
        let c = choose(&files(), &limits, &HashMap::new(), 200_000, None);
        let mut d = c.delete.clone();
        d.sort();
        assert_eq!(d, [1, 2]);
        let cams = HashMap::from([(
            "b".to_owned(),
            CameraLimits {
                retain_ms: None,
                max_bytes: Some(0),
            },
        )]);
        let c = choose(&files(), &limits, &cams, 200_000, None);
        assert_eq!(c.delete, [1]);
    }

    #[test]
    fn free_space_and_leftover_marks() {
        let limits = Limits {
            min_free: Some(1000),
            ..Default::default()
        };
        let mut v = files();
        v[3].state = Deleting; // id 4, marked by a removal that was interrupted
        let c = choose(&v, &limits, &HashMap::new(), 200_000, Some(850));
        // 4 is finished off first; then 150 bytes short: ids 1 and 2.
        assert_eq!(c.delete, [4, 1, 2]);
        let c = choose(&v, &limits, &HashMap::new(), 200_000, Some(5000));
        assert_eq!(c.delete, [4]);
    }
}
