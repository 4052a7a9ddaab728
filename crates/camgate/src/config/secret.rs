//! Deserializers for secret fields (`#[serde(deserialize_with = "secret::string")]`): a value
//! of the wrong type fails with a message that says what was expected and never quotes what was
//! written, because serde's own messages do (`invalid type: integer `5`, expected a string`)
//! and the error is printed and logged. Redacting a secret for display is each section's
//! `Section::redact`; this file owns only the reading.

use serde::{Deserialize, Deserializer, de};

pub(super) fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    String::deserialize(d).map_err(|_| de::Error::custom("expected a string"))
}

pub(super) fn list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Vec::<String>::deserialize(d).map_err(|_| de::Error::custom("expected a list of strings"))
}
