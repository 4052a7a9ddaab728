//! The one error type of the media crate: what was being parsed or built, and what was wrong
//! with it. Input never panics; it ends up here.

/// Why a parameter set, a bitstream or a frame could not be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MediaError {
    /// The input ended before a field that must be there.
    #[error("{what}: truncated")]
    Truncated { what: &'static str },
    /// A field holds a value the specification does not allow (or we cannot represent).
    #[error("{what}: {reason}")]
    Invalid { what: &'static str, reason: String },
    /// Valid input that camgate does not handle (e.g. an H.264 SPS with 4:4:4 separate planes).
    #[error("{what}: unsupported: {reason}")]
    Unsupported { what: &'static str, reason: String },
}

impl MediaError {
    pub(crate) fn invalid(what: &'static str, reason: impl Into<String>) -> Self {
        MediaError::Invalid {
            what,
            reason: reason.into(),
        }
    }
}
