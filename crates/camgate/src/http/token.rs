//! Viewer tokens and dashboard sessions: what they say, how they are signed and checked, and
//! the signing key (configured, or a random key in `{data_dir}/token.key`, mode 0600).
//!
//! A token is `cgt1.{payload}.{mac}` (URL-safe base64, no padding): the payload names what it
//! opens and when it expires, the mac is HMAC-SHA256 over `cgt1.{payload}` with the key. It is
//! checked without a database, so a token names its camera's id and stream path itself.
//! Lives in `http/` because only the access check reads tokens; the token route (`api`) and
//! `camgate token-key rotate` (cli) call in here. Owns no route and imports nothing of ours.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The longest a viewer token may live.
pub const MAX_TTL: Duration = Duration::from_secs(7 * 86_400);
/// The name of the key file in the data directory.
pub const KEY_FILE: &str = "token.key";
const PREFIX: &str = "cgt1";
/// Longer strings are not tokens: refused before any decoding.
const MAX_TOKEN_LEN: usize = 512;
/// How often a server looks at the key file for a rotation.
const RELOAD_EVERY: Duration = Duration::from_secs(1);

/// What a viewer token may open, as bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scope(u8);

impl Scope {
    pub const LIVE: Scope = Scope(1);
    pub const RECORDINGS: Scope = Scope(2);
    pub const SNAPSHOT: Scope = Scope(4);
    const ALL: u8 = 7;

    pub fn empty() -> Scope {
        Scope(0)
    }

    pub fn parse(name: &str) -> Option<Scope> {
        match name {
            "live" => Some(Scope::LIVE),
            "recordings" => Some(Scope::RECORDINGS),
            "snapshot" => Some(Scope::SNAPSHOT),
            _ => None,
        }
    }

    pub fn with(self, other: Scope) -> Scope {
        Scope(self.0 | other.0)
    }

    pub fn allows(self, needed: Scope) -> bool {
        self.0 & needed.0 == needed.0 && needed.0 != 0
    }

    pub fn names(self) -> Vec<&'static str> {
        [
            (Scope::LIVE, "live"),
            (Scope::RECORDINGS, "recordings"),
            (Scope::SNAPSHOT, "snapshot"),
        ]
        .into_iter()
        .filter(|(s, _)| self.allows(*s))
        .map(|(_, n)| n)
        .collect()
    }
}

/// What a token grants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Grant {
    /// One camera's streams (its path and its profiles `{path}~x`), for the scopes named.
    Viewer {
        camera_id: String,
        stream_path: String,
        scope: Scope,
    },
    /// The dashboard's session: what the API key that opened it may do.
    Session,
}

/// A verified token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claims {
    pub grant: Grant,
    /// Unix seconds.
    pub expires: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenError {
    /// Not a token of ours: wrong shape, bad encoding, bad signature.
    Invalid,
    Expired,
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The signing key: fixed (configured), or read from a file and re-read when the file changes
/// (`camgate token-key rotate` replaces it while the server runs).
pub struct TokenKeys {
    file: Option<PathBuf>,
    state: Mutex<KeyState>,
}

struct KeyState {
    key: [u8; 32],
    checked: Instant,
    stamp: Option<FileStamp>,
}

/// What tells us the key file was replaced: rotation writes a new file and renames it.
#[derive(Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    modified: Option<SystemTime>,
    inode: u64,
    len: u64,
}

fn stamp(path: &Path) -> Option<FileStamp> {
    let meta = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let inode = 0;
    Some(FileStamp {
        modified: meta.modified().ok(),
        inode,
        len: meta.len(),
    })
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKeys")
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

impl TokenKeys {
    /// A key from configuration (`[auth] token_key`): its SHA-256, so any long string will do.
    pub fn fixed(secret: &str) -> TokenKeys {
        use sha2::Digest;
        TokenKeys {
            file: None,
            state: Mutex::new(KeyState {
                key: Sha256::digest(secret.as_bytes()).into(),
                checked: Instant::now(),
                stamp: None,
            }),
        }
    }

    /// A key of this process alone (tokens die with it): when the data directory cannot hold one.
    pub fn ephemeral() -> TokenKeys {
        TokenKeys {
            file: None,
            state: Mutex::new(KeyState {
                key: random_key(),
                checked: Instant::now(),
                stamp: None,
            }),
        }
    }

    /// The key in `{dir}/token.key`, created (mode 0600) when missing.
    pub fn in_dir(dir: &Path) -> std::io::Result<TokenKeys> {
        let path = dir.join(KEY_FILE);
        if !path.exists() {
            write_key_file(&path, &random_key())?;
        }
        let key = read_key_file(&path)?;
        Ok(TokenKeys {
            state: Mutex::new(KeyState {
                key,
                checked: Instant::now(),
                stamp: stamp(&path),
            }),
            file: Some(path),
        })
    }

    fn key(&self) -> [u8; 32] {
        // A poisoned lock only means another request panicked mid-read; the key is still whole.
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(path) = &self.file
            && st.checked.elapsed() >= RELOAD_EVERY
        {
            st.checked = Instant::now();
            let now = stamp(path);
            if now.is_some() && now != st.stamp {
                match read_key_file(path) {
                    Ok(key) => {
                        st.key = key;
                        st.stamp = now;
                        tracing::info!(file = %path.display(), "token key changed; earlier tokens no longer open anything");
                    }
                    Err(e) => {
                        tracing::warn!(file = %path.display(), error = %e, "cannot read the new token key; keeping the old one")
                    }
                }
            }
        }
        st.key
    }

    fn mac(&self, signed: &str) -> Hmac<Sha256> {
        // HMAC takes a key of any length; 32 bytes cannot fail.
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key()).expect("HMAC accepts any key");
        mac.update(signed.as_bytes());
        mac
    }

    /// Signs `grant` until `expires` (Unix seconds).
    pub fn issue(&self, grant: &Grant, expires: u64) -> String {
        let payload = match grant {
            Grant::Viewer {
                camera_id,
                stream_path,
                scope,
            } => format!("v|{camera_id}|{stream_path}|{}|{expires}", scope.0),
            Grant::Session => format!("s|{expires}"),
        };
        let signed = format!("{PREFIX}.{}", B64.encode(payload));
        let tag = B64.encode(self.mac(&signed).finalize().into_bytes());
        format!("{signed}.{tag}")
    }

    /// Checks the signature first (in constant time), then reads and checks the claims.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        self.verify_at(token, now_unix())
    }

    pub fn verify_at(&self, token: &str, now: u64) -> Result<Claims, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Invalid);
        }
        let (signed, tag) = token.rsplit_once('.').ok_or(TokenError::Invalid)?;
        let (prefix, payload) = signed.split_once('.').ok_or(TokenError::Invalid)?;
        if prefix != PREFIX {
            return Err(TokenError::Invalid);
        }
        let tag = B64.decode(tag).map_err(|_| TokenError::Invalid)?;
        self.mac(signed)
            .verify_slice(&tag)
            .map_err(|_| TokenError::Invalid)?;
        let payload = B64.decode(payload).map_err(|_| TokenError::Invalid)?;
        let payload = std::str::from_utf8(&payload).map_err(|_| TokenError::Invalid)?;
        let claims = parse_payload(payload).ok_or(TokenError::Invalid)?;
        if claims.expires <= now {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

fn parse_payload(payload: &str) -> Option<Claims> {
    let parts: Vec<&str> = payload.split('|').collect();
    let number = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    match parts.as_slice() {
        ["s", exp] => Some(Claims {
            grant: Grant::Session,
            expires: number(exp)?,
        }),
        ["v", camera_id, stream_path, scope, exp] => {
            let scope = u8::try_from(number(scope)?).ok()?;
            if scope == 0 || scope & !Scope::ALL != 0 || camera_id.is_empty() {
                return None;
            }
            Some(Claims {
                grant: Grant::Viewer {
                    camera_id: (*camera_id).to_owned(),
                    stream_path: (*stream_path).to_owned(),
                    scope: Scope(scope),
                },
                expires: number(exp)?,
            })
        }
        _ => None,
    }
}

fn random_key() -> [u8; 32] {
    use rand::RngCore;
    let mut key = [0u8; 32];
    rand::rng().fill_bytes(&mut key);
    key
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn read_key_file(path: &Path) -> std::io::Result<[u8; 32]> {
    let text = std::fs::read_to_string(path)?;
    let text = text.trim();
    let bad = || {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "{} must hold 64 hex digits; delete it or run `camgate token-key rotate`",
                path.display()
            ),
        )
    };
    if text.len() != 64 {
        return Err(bad());
    }
    let mut key = [0u8; 32];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2).ok_or_else(bad)?, 16)
            .map_err(|_| bad())?;
    }
    Ok(key)
}

/// Writes the key to a temporary file created with mode 0600 and renames it over `path`, so a
/// reader sees the old key or the new one, never half of one, and nobody else can read it.
fn write_key_file(path: &Path, key: &[u8; 32]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("key.tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&tmp)?;
    file.write_all(format!("{}\n", hex(key)).as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// `camgate token-key rotate`: a new random key in `{dir}/token.key`. Every token issued
/// before stops working; a running server picks the new key up within a second. Needs no
/// lock on the data directory: the rename is atomic.
pub fn rotate(dir: &Path) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(KEY_FILE);
    write_key_file(&path, &random_key())?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn viewer() -> Grant {
        Grant::Viewer {
            camera_id: "1".into(),
            stream_path: "cam_1".into(),
            scope: Scope::LIVE.with(Scope::SNAPSHOT),
        }
    }

    #[test]
    fn round_trip_expiry_and_tampering() {
        let keys = TokenKeys::ephemeral();
        let t = keys.issue(&viewer(), 1000);
        let c = keys.verify_at(&t, 999).unwrap();
        assert_eq!(c.grant, viewer());
        assert_eq!(keys.verify_at(&t, 1000), Err(TokenError::Expired));
        // Every single-character change is refused.
        for i in 0..t.len() {
            let mut b = t.clone().into_bytes();
            b[i] = if b[i] == b'A' { b'B' } else { b'A' };
            let altered = String::from_utf8(b).unwrap();
            if altered != t {
                assert!(keys.verify_at(&altered, 0).is_err(), "{altered}");
            }
        }
        // A forged payload for another camera with the old signature.
        let (_, tag) = t.rsplit_once('.').unwrap();
        let forged = format!("cgt1.{}.{tag}", B64.encode("v|2|cam_2|7|99999999999"));
        assert_eq!(keys.verify_at(&forged, 0), Err(TokenError::Invalid));
        // Another key does not accept it.
        assert_eq!(
            TokenKeys::ephemeral().verify_at(&t, 0),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn key_file_is_private_and_rotation_is_seen() {
        let dir = tempfile::tempdir().unwrap();
        let keys = TokenKeys::in_dir(dir.path()).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let t = keys.issue(&Grant::Session, u64::MAX / 2);
        assert!(keys.verify(&t).is_ok());
        // The same file opened again (a restart) accepts it.
        assert!(TokenKeys::in_dir(dir.path()).unwrap().verify(&t).is_ok());
        rotate(dir.path()).unwrap();
        std::thread::sleep(RELOAD_EVERY + Duration::from_millis(50));
        assert_eq!(keys.verify(&t), Err(TokenError::Invalid));
    }

    #[test]
    fn arbitrary_strings_never_panic() {
        use proptest::prelude::*;
        let keys = TokenKeys::ephemeral();
        proptest!(ProptestConfig::with_cases(2000), |(s in ".{0,600}")| {
            let _ = keys.verify_at(&s, 0);
            let _ = parse_payload(&s);
        });
        proptest!(ProptestConfig::with_cases(500), |(s in "cgt1\\.[A-Za-z0-9_|-]{0,80}\\.[A-Za-z0-9_-]{0,60}")| {
            prop_assert!(keys.verify_at(&s, 0).is_err());
        });
    }
}
