//! The video library's files: which names are acceptable, which files are listed, and where
//! a name leads on disk. Everything here is refused before the filesystem is touched when the
//! name alone is suspect, and checked again on disk (symlinks) when it is not.
//!
//! A name is one file directly in `[library] dir`: no separator of any platform (`/`, `\`),
//! no `..` anywhere, no leading dot (dot files and `.`/`..`), no drive or stream colon, no
//! control characters, no `%` (a name still holding one was encoded twice), and otherwise
//! only letters and digits of any script and a few ASCII marks. Unicode look-alikes of dots
//! and slashes (`U+2024`, `U+FF0E`, `U+2215`, ...) are neither letters nor those marks, so
//! they are refused too. The name must end in a media extension. On disk the path must be a
//! regular file, or a symlink whose target is a regular file inside the library.
//!
//! Owns no state but the directory's path; HTTP is `library_http`'s.

use std::fs::Metadata;
use std::io;
use std::path::{Path, PathBuf};

/// Media extensions served, with their content types.
const MEDIA: &[(&str, &str)] = &[
    ("mp4", "video/mp4"),
    ("m4v", "video/mp4"),
    ("mov", "video/quicktime"),
    ("mkv", "video/x-matroska"),
    ("webm", "video/webm"),
    ("ts", "video/mp2t"),
    ("avi", "video/x-msvideo"),
    ("mpg", "video/mpeg"),
    ("mpeg", "video/mpeg"),
    ("ogv", "video/ogg"),
    ("m4a", "audio/mp4"),
    ("mp3", "audio/mpeg"),
];

/// ASCII marks allowed in a name besides letters and digits.
const MARKS: &str = " -_.()[]+,~@!&'=";

const MAX_NAME_BYTES: usize = 255;

/// Why a name does not lead to a file.
#[derive(Debug, thiserror::Error)]
pub enum NameError {
    #[error("{0}")]
    Invalid(&'static str),
    #[error("no such video")]
    NotFound,
    #[error("the library directory cannot be read: {0}")]
    Io(io::Error),
}

/// The files of one directory.
#[derive(Debug)]
pub struct Library {
    dir: PathBuf,
}

impl Library {
    pub fn new(dir: &Path) -> Library {
        Library {
            dir: dir.to_path_buf(),
        }
    }

    /// Checks a name by itself; `Ok` gives its content type.
    pub fn check_name(name: &str) -> Result<&'static str, NameError> {
        use NameError::Invalid;
        if name.is_empty() || name.len() > MAX_NAME_BYTES {
            return Err(Invalid("a video name is 1-255 bytes"));
        }
        if name.contains(['/', '\\']) {
            return Err(Invalid("a video name is a file name, without / or \\"));
        }
        if name.starts_with('.') || name.contains("..") {
            return Err(Invalid(
                "a video name does not start with a dot and holds no `..`",
            ));
        }
        if let Some(bad) = name
            .chars()
            .find(|c| !(c.is_alphanumeric() || MARKS.contains(*c)))
        {
            return Err(if bad == '%' {
                Invalid("a video name holds no `%` (was it percent-encoded twice?)")
            } else {
                Invalid(
                    "a video name holds only letters, digits, spaces and - _ . ( ) [ ] + , ~ @ ! & ' =",
                )
            });
        }
        content_type(name).ok_or(Invalid(
            "not a media file name (expected .mp4, .m4v, .mov, .mkv, .webm, .ts, .avi, .mpg, .mpeg, .ogv, .m4a or .mp3)",
        ))
    }

    /// The media files directly in the directory, sorted by name: regular files and symlinks
    /// to regular files inside the directory, with acceptable names. Blocking.
    pub fn list(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if Self::check_name(&name).is_ok() && self.file(&name).is_ok() {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    /// Where an acceptable name leads: the path, its metadata (of the final file) and its
    /// content type. Blocking.
    pub fn open(&self, name: &str) -> Result<(PathBuf, Metadata, &'static str), NameError> {
        let content_type = Self::check_name(name)?;
        let (path, meta) = self.file(name)?;
        Ok((path, meta, content_type))
    }

    fn file(&self, name: &str) -> Result<(PathBuf, Metadata), NameError> {
        let path = self.dir.join(name);
        let link = match std::fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(NameError::NotFound),
            Err(e) => return Err(NameError::Io(e)),
        };
        if link.file_type().is_symlink() {
            // Followed only when it stays inside: a link to /etc/passwd is "not found".
            let root = std::fs::canonicalize(&self.dir).map_err(NameError::Io)?;
            let target = std::fs::canonicalize(&path).map_err(|_| NameError::NotFound)?;
            if target.parent() != Some(root.as_path()) {
                return Err(NameError::NotFound);
            }
            let meta = std::fs::metadata(&target).map_err(|_| NameError::NotFound)?;
            return if meta.is_file() {
                Ok((target, meta))
            } else {
                Err(NameError::NotFound)
            };
        }
        if link.is_file() {
            Ok((path, link))
        } else {
            Err(NameError::NotFound)
        }
    }
}

fn content_type(name: &str) -> Option<&'static str> {
    let (_, ext) = name.rsplit_once('.')?;
    MEDIA
        .iter()
        .find(|(e, _)| e.eq_ignore_ascii_case(ext))
        .map(|(_, t)| *t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_are_refused_by_name_alone() {
        for bad in [
            "",
            "../etc/passwd",
            "..",
            ".",
            ".hidden.mp4",
            "a/b.mp4",
            "a\\b.mp4",
            "..\\..\\win.ini",
            "/etc/passwd",
            "C:evil.mp4",
            "video..mp4",
            "%2e%2e%2fpasswd.mp4",
            "x%00.mp4",
            "nul\0.mp4",
            "line\n.mp4",
            "\u{2024}\u{2024}\u{2215}etc.mp4",
            "\u{ff0e}\u{ff0e}\u{ff0f}x.mp4",
            "a\u{2044}b.mp4",
            "notes.txt",
            "noext",
        ] {
            assert!(
                matches!(Library::check_name(bad), Err(NameError::Invalid(_))),
                "{bad:?} must be refused"
            );
        }
        assert_eq!(Library::check_name("sample.mp4").unwrap(), "video/mp4");
        assert_eq!(
            Library::check_name("Câmera Entrada (1).MOV").unwrap(),
            "video/quicktime"
        );
    }
}
