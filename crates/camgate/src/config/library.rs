//! `[library]`: the video library of the compatibility routes (`/api/videos`,
//! `/api/stream/{name}`, ...; docs/compat.md). Owns these keys' defaults and checks; the
//! `compat` output reads them, this file knows nothing of it.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::validate::{Invalid, Section};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LibraryConfig {
    /// The directory whose media files the library serves (not its subdirectories). `""`
    /// (the default): the library is off and its routes answer `404 library_off`.
    pub dir: PathBuf,
}

impl LibraryConfig {
    /// The directory, when the library is on.
    pub fn dir(&self) -> Option<&std::path::Path> {
        (!self.dir.as_os_str().is_empty()).then_some(self.dir.as_path())
    }
}

impl Section for LibraryConfig {
    fn validate(&self) -> Result<(), Invalid> {
        // Existence is checked when serving (a mount may come later); a relative path is
        // relative to the working directory, which is fine for a file path.
        if self.dir.as_os_str().to_string_lossy().contains('\0') {
            return Err(Invalid::new("library.dir", "must not contain a NUL byte"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_by_default_on_with_a_dir() {
        let off = LibraryConfig::default();
        assert!(off.validate().is_ok());
        assert_eq!(off.dir(), None);
        let on = LibraryConfig {
            dir: PathBuf::from("/srv/videos"),
        };
        assert_eq!(on.dir(), Some(std::path::Path::new("/srv/videos")));
    }
}
