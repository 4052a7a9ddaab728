//! Playlist reading for segmenter tests. The synthetic frames and parameter sets they use are
//! `media::test_util`'s.
#![allow(dead_code)]

/// Tags and URIs of a playlist, for assertions.
pub struct Parsed {
    pub lines: Vec<String>,
}

impl Parsed {
    pub fn new(text: &str) -> Parsed {
        assert!(text.starts_with("#EXTM3U\n"), "{text}");
        Parsed {
            lines: text.lines().map(str::to_owned).collect(),
        }
    }

    /// Value after `tag:` on the first line with that tag.
    pub fn tag(&self, tag: &str) -> Option<String> {
        let prefix = format!("{tag}:");
        self.lines
            .iter()
            .find_map(|l| l.strip_prefix(&prefix).map(str::to_owned))
    }

    pub fn count(&self, tag: &str) -> usize {
        self.lines.iter().filter(|l| l.starts_with(tag)).count()
    }

    /// An attribute of an attribute-list value (`A=1,B="x"`), quotes removed.
    pub fn attr(list: &str, name: &str) -> Option<String> {
        list.split(',').find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            (k == name).then(|| v.trim_matches('"').to_owned())
        })
    }

    /// Every URI: segment lines, and URI attributes of MAP/PART/PRELOAD-HINT.
    pub fn uris(&self) -> Vec<String> {
        let mut out = Vec::new();
        for l in &self.lines {
            if !l.starts_with('#') && !l.is_empty() {
                out.push(l.clone());
            } else if let Some(i) = l.find("URI=\"") {
                let rest = &l[i + 5..];
                out.push(rest[..rest.find('"').unwrap()].to_owned());
            }
        }
        out
    }

    /// EXTINF durations in seconds.
    pub fn extinfs(&self) -> Vec<f64> {
        self.lines
            .iter()
            .filter_map(|l| l.strip_prefix("#EXTINF:"))
            .map(|v| v.trim_end_matches(',').parse().unwrap())
            .collect()
    }
}
