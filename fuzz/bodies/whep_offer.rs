//! Arbitrary bytes as the body of a WHEP request: the offer camgate reads before str0m does
//! (which video codecs it accepts, its ICE ufrag), str0m's own SDP parser that the POST calls
//! next, and a trickle-ICE fragment of a PATCH. Nothing panics, and what the reader reports
//! holds together: codec names are upper case and listed once, only an offer with a video
//! section names video codecs, and a fragment has both ICE credentials or neither.

use camgate::webrtc::sdp::{OfferVideo, SdpFrag};
use str0m::change::SdpOffer;

/// The fuzz target's body: `fuzz/fuzz_targets/whep_offer.rs` runs it under libFuzzer, and
/// `crates/camgate/tests/fuzz_corpus.rs` replays `fuzz/corpus/whep_offer/` through it.
pub fn run(data: &[u8]) {
    let Ok(body) = std::str::from_utf8(data) else {
        return;
    };
    let video = OfferVideo::parse(body);
    if !video.has_video {
        assert!(video.codecs.is_empty(), "{video:?}");
    }
    for (i, c) in video.codecs.iter().enumerate() {
        assert_eq!(*c, c.to_ascii_uppercase());
        assert!(!video.codecs[..i].contains(c), "{c} listed twice");
    }
    for c in video.media_codecs() {
        assert!(video.accepts(c));
    }
    let _ = SdpOffer::from_sdp_string(body);
    if let Ok(frag) = SdpFrag::parse(body)
        && let Some(creds) = &frag.creds
    {
        assert!(body.contains(&format!("a=ice-ufrag:{}", creds.ufrag)));
    }
}
