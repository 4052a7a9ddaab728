//! Arbitrary bytes as a video library name (`/library/{name}` of the compat API): checking a
//! name never panics, and a name it accepts is one plain file name directly in the library
//! (no separator of any platform, no `..`, no leading dot, no control character, no `%`, at
//! most 255 bytes, a media extension), whose path on disk stays a direct child of the
//! library's directory.
//!
//! Input: the bytes are the name (lossily UTF-8, as a decoded URL path segment would be).

use std::path::{Component, Path};

use camgate::compat::Library;

/// The fuzz target's body: `fuzz/fuzz_targets/library_name.rs` runs it under libFuzzer, and
/// `crates/camgate/tests/fuzz_corpus.rs` replays `fuzz/corpus/library_name/` through it.
pub fn run(data: &[u8]) {
    let name = String::from_utf8_lossy(data);
    let Ok(content_type) = Library::check_name(&name) else {
        return;
    };
    assert!(!name.is_empty() && name.len() <= 255, "{name:?}");
    assert!(!name.contains(['/', '\\', ':', '%']), "{name:?}");
    assert!(!name.starts_with('.') && !name.contains(".."), "{name:?}");
    assert!(!name.chars().any(char::is_control), "{name:?}");
    assert!(
        content_type.starts_with("video/") || content_type.starts_with("audio/"),
        "{name:?} -> {content_type}"
    );
    // Joined to the library's directory, it is one normal component below it.
    let dir = Path::new("/srv/library");
    let joined = dir.join(&*name);
    assert_eq!(joined.parent(), Some(dir), "{name:?}");
    let last: Vec<_> = joined.strip_prefix(dir).unwrap().components().collect();
    assert!(
        matches!(last.as_slice(), [Component::Normal(_)]),
        "{name:?} is {last:?}"
    );
}
