//! File names of everything a playlist references, and their strict parsing. Naming lives
//! here only: the playlist renders these names and `Segmenter::lookup` resolves them.
//!
//! - init segment: `init-{instance}-{generation}.mp4` (a new generation per codec change, so
//!   a changed init segment never reuses a cached name)
//! - segment:      `seg-{instance}-{msn}.m4s`
//! - part:         `part-{instance}-{part_id}.m4s` (`part_id` counts parts over the stream's
//!   life, so the preload hint can name the next part before knowing its segment)
//!
//! Numbers are plain decimal (no sign, no leading zeros); anything else parses to `None`.

/// A resource named by the playlist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Name {
    Init { generation: u64 },
    Segment { msn: u64 },
    Part { id: u64 },
}

/// The file name of `name` for a segmenter `instance`.
pub fn render(instance: u64, name: Name) -> String {
    match name {
        Name::Init { generation } => format!("init-{instance}-{generation}.mp4"),
        Name::Segment { msn } => format!("seg-{instance}-{msn}.m4s"),
        Name::Part { id } => format!("part-{instance}-{id}.m4s"),
    }
}

/// A canonical decimal u64: 1-20 digits, no leading zero unless it is "0".
fn number(s: &str) -> Option<u64> {
    let canonical = !s.is_empty()
        && s.len() <= 20
        && s.bytes().all(|b| b.is_ascii_digit())
        && (s == "0" || !s.starts_with('0'));
    if canonical { s.parse().ok() } else { None }
}

/// Parses a file name produced by `render`, returning its instance and what it names.
pub fn parse(file: &str) -> Option<(u64, Name)> {
    if file.len() > 64 {
        return None;
    }
    let (kind, rest) = file.split_once('-')?;
    let (stem, ext) = rest.rsplit_once('.')?;
    let (instance, n) = stem.split_once('-')?;
    let (instance, n) = (number(instance)?, number(n)?);
    let name = match (kind, ext) {
        ("init", "mp4") => Name::Init { generation: n },
        ("seg", "m4s") => Name::Segment { msn: n },
        ("part", "m4s") => Name::Part { id: n },
        _ => return None,
    };
    Some((instance, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for name in [
            Name::Init { generation: 0 },
            Name::Segment { msn: 17 },
            Name::Part { id: u64::MAX },
        ] {
            assert_eq!(parse(&render(42, name)), Some((42, name)));
        }
        assert_eq!(render(0, Name::Segment { msn: 3 }), "seg-0-3.m4s");
    }

    #[test]
    fn hostile_names_are_rejected() {
        for bad in [
            "",
            "seg-0-3.mp4",
            "init-0-3.m4s",
            "seg-0-03.m4s",
            "seg-00-3.m4s",
            "seg-0-+3.m4s",
            "seg-0--3.m4s",
            "seg-0-3.m4s/",
            "../seg-0-3.m4s",
            "seg-0-3.m4s?x",
            "seg-0-3",
            "seg-0-18446744073709551616.m4s",
            "seg-0-3-4.m4s",
            "Seg-0-3.m4s",
            "seg-0-3 .m4s",
            "seg-0-٣.m4s",
            "part-0-1.m4s.m4s",
            "index.m3u8",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}
