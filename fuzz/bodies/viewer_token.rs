//! Arbitrary bytes as viewer tokens and as what a token is issued for: verification never
//! panics; a token issued for a grant verifies to exactly that grant (or is refused when the
//! grant's names could be read another way), never to another camera or a session; a token
//! with any one character changed, cut short or lengthened is refused; and an expired one is
//! `Expired`.
//!
//! Input: byte 0 picks the mode: even, the rest is a token as presented; odd, the rest is
//! `camera_id \0 stream_path \0 scope-byte expiry-bytes...` and a byte index to alter.

use camgate::http::token::{Grant, Scope, TokenError, TokenKeys};

const NOW: u64 = 1_800_000_000;

fn scope_of(bits: u8) -> Scope {
    let mut s = Scope::empty();
    for (bit, scope) in [
        (1, Scope::LIVE),
        (2, Scope::RECORDINGS),
        (4, Scope::SNAPSHOT),
    ] {
        if bits & bit != 0 {
            s = s.with(scope);
        }
    }
    s
}

/// The fuzz target's body: `fuzz/fuzz_targets/viewer_token.rs` runs it under libFuzzer, and
/// `crates/camgate/tests/fuzz_corpus.rs` replays `fuzz/corpus/viewer_token/` through it.
pub fn run(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let keys = TokenKeys::fixed("fuzz token key");
    if mode & 1 == 0 {
        let token = String::from_utf8_lossy(rest);
        // Without the key nothing verifies, whatever its shape.
        assert!(keys.verify_at(&token, NOW).is_err(), "{token:?} verified");
        return;
    }
    let mut fields = rest.splitn(3, |&b| b == 0);
    let camera_id = String::from_utf8_lossy(fields.next().unwrap_or_default()).into_owned();
    let stream_path = String::from_utf8_lossy(fields.next().unwrap_or_default()).into_owned();
    let tail = fields.next().unwrap_or_default();
    let scope_bits = tail.first().copied().unwrap_or(1) & 7;
    let mut exp = [0u8; 8];
    for (i, b) in tail.iter().skip(1).take(8).enumerate() {
        exp[i] = *b;
    }
    let expires = u64::from_le_bytes(exp) % (2 * NOW);
    let alter_at = tail.get(9).copied().unwrap_or(0) as usize;
    let grant = Grant::Viewer {
        camera_id: camera_id.clone(),
        stream_path: stream_path.clone(),
        scope: scope_of(scope_bits),
    };
    let token = keys.issue(&grant, expires);
    match keys.verify_at(&token, NOW) {
        Ok(claims) => {
            assert_eq!(claims.grant, grant, "{token}");
            assert_eq!(claims.expires, expires);
            assert!(expires > NOW);
        }
        Err(TokenError::Expired) => assert!(expires <= NOW, "{token}"),
        // Names that hold the payload's separator, an empty camera id, no scope.
        Err(TokenError::Invalid) => assert!(
            camera_id.contains('|')
                || stream_path.contains('|')
                || camera_id.is_empty()
                || scope_bits == 0
                || token.len() > 512,
            "{grant:?} issued {token} which does not verify"
        ),
    }
    // Any one character changed, one removed or one added: refused.
    let bytes = token.as_bytes();
    let i = alter_at % bytes.len();
    let replacement = if bytes[i] == b'A' { 'B' } else { 'A' };
    let mut changed = token.clone();
    changed.replace_range(i..i + 1, &replacement.to_string());
    let mut cut = token.clone();
    cut.remove(i);
    let mut longer = token.clone();
    longer.insert(i, 'A');
    for altered in [changed, cut, longer] {
        assert!(
            keys.verify_at(&altered, NOW).is_err(),
            "{token} altered to {altered} still verifies"
        );
    }
    // Another key refuses it.
    assert!(
        TokenKeys::fixed("another key")
            .verify_at(&token, NOW)
            .is_err()
    );
}
