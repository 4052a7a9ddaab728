//! What every router uses: the one error type ([`AppError`], a JSON `{"error":{"code",
//! "message"}}` answer), the extractors, the shared refusals (stream not found, too many
//! viewers, bad path), the access check (API keys, viewer tokens, sessions, Origin and Host),
//! who the client is (`client`), the request span, public URLs and route declarations.
//!
//! It owns no state of the live path and no router of its own. It must not import outputs,
//! `api` or `app`; outputs and `api` import it.

pub mod access;
pub mod client;
mod error;
pub mod extract;
pub mod json_errors;
pub mod media_paths;
pub mod playlist;
pub mod range;
pub mod refuse;
pub mod routes;
pub mod token;
pub mod trace;
pub mod urls;

pub use access::{Access, is_loopback, require_access};
pub use client::PublicBase;
pub use error::AppError;
pub use routes::{RouteDoc, Routes};
