//! Reading what clients send in WHEP bodies before str0m sees them: which video codecs an
//! offer accepts (for a clear 406 instead of an answer with the video rejected), and the
//! `application/trickle-ice-sdpfrag` of a PATCH (RFC 8840: ICE credentials and candidates).
//! Text in, plain values out; no session state.

use str0m::{Candidate, IceCreds};

/// The video side of an offer.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct OfferVideo {
    /// At least one `m=video` section.
    pub has_video: bool,
    /// Codec names of every `m=video` `a=rtpmap`, upper case (`H264`, `H265`, `VP8`, ...).
    pub codecs: Vec<String>,
    /// The offer's first `a=ice-ufrag`, to tell a trickle PATCH from an ICE restart.
    pub ice_ufrag: Option<String>,
}

impl OfferVideo {
    pub fn parse(sdp: &str) -> OfferVideo {
        let mut out = OfferVideo::default();
        let mut in_video = false;
        for line in sdp.lines() {
            let line = line.trim_end_matches('\r');
            if let Some(u) = line.strip_prefix("a=ice-ufrag:") {
                out.ice_ufrag.get_or_insert_with(|| u.to_owned());
            } else if let Some(m) = line.strip_prefix("m=") {
                in_video = m.starts_with("video ");
                out.has_video |= in_video;
            } else if in_video && let Some(map) = line.strip_prefix("a=rtpmap:") {
                // `a=rtpmap:102 H264/90000`
                if let Some(name) = map
                    .split_whitespace()
                    .nth(1)
                    .and_then(|e| e.split('/').next())
                {
                    let name = name.to_ascii_uppercase();
                    if !out.codecs.contains(&name) {
                        out.codecs.push(name);
                    }
                }
            }
        }
        out
    }

    /// Whether the offer accepts this codec (`H264`, `H265`).
    pub fn accepts(&self, name: &str) -> bool {
        self.codecs.iter().any(|c| c == name)
    }

    /// The offered codecs that carry video (not retransmission or FEC), for error messages.
    pub fn media_codecs(&self) -> Vec<&str> {
        self.codecs
            .iter()
            .map(String::as_str)
            .filter(|c| !matches!(*c, "RTX" | "RED" | "ULPFEC" | "FLEXFEC-03"))
            .collect()
    }
}

/// A trickle-ICE fragment (RFC 8840 §9): new remote credentials mean an ICE restart.
#[derive(Debug, Default)]
pub struct SdpFrag {
    pub creds: Option<IceCreds>,
    pub candidates: Vec<Candidate>,
    pub end_of_candidates: bool,
}

impl SdpFrag {
    /// Unparseable candidate lines are an error naming the line (they would otherwise be
    /// silently ignored and the client would wonder why its candidate is not used).
    pub fn parse(body: &str) -> Result<SdpFrag, String> {
        let mut frag = SdpFrag::default();
        let mut ufrag = None;
        let mut pwd = None;
        for line in body.lines() {
            let line = line.trim();
            if let Some(v) = line.strip_prefix("a=ice-ufrag:") {
                ufrag = Some(v.to_owned());
            } else if let Some(v) = line.strip_prefix("a=ice-pwd:") {
                pwd = Some(v.to_owned());
            } else if let Some(v) = line.strip_prefix("a=") {
                if v.starts_with("candidate:") {
                    let c = Candidate::from_sdp_string(v)
                        .map_err(|e| format!("bad ICE candidate {v:?}: {e}"))?;
                    frag.candidates.push(c);
                } else if v == "end-of-candidates" {
                    frag.end_of_candidates = true;
                }
            }
        }
        match (ufrag, pwd) {
            (Some(ufrag), Some(pass)) => frag.creds = Some(IceCreds { ufrag, pass }),
            (None, None) => {}
            _ => return Err("a=ice-ufrag and a=ice-pwd must come together".to_owned()),
        }
        Ok(frag)
    }
}

/// The sdpfrag answering an ICE restart: our new credentials and our candidates.
pub fn restart_answer(creds: &IceCreds, candidates: &[Candidate]) -> String {
    let mut s = format!(
        "a=ice-lite\r\na=ice-ufrag:{}\r\na=ice-pwd:{}\r\n",
        creds.ufrag, creds.pass
    );
    for c in candidates {
        s.push_str(&format!("a={}\r\n", c.to_sdp_string()));
    }
    s.push_str("a=end-of-candidates\r\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_video_codecs_of_an_offer() {
        let sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n\
                   m=video 9 UDP/TLS/RTP/SAVPF 96 97 98\r\na=rtpmap:96 VP8/90000\r\n\
                   a=rtpmap:97 rtx/90000\r\na=rtpmap:98 h264/90000\r\n";
        let v = OfferVideo::parse(sdp);
        assert!(v.has_video);
        assert_eq!(v.ice_ufrag, None);
        assert_eq!(v.codecs, ["VP8", "RTX", "H264"]);
        assert!(v.accepts("H264") && !v.accepts("OPUS"));
        assert_eq!(v.media_codecs(), ["VP8", "H264"]);
        assert!(!OfferVideo::parse("m=audio 9 x 0\r\n").has_video);
        assert_eq!(
            OfferVideo::parse("a=rtpmap:\r\nm=video\r\na=rtpmap:1"),
            OfferVideo::default()
        );
    }

    #[test]
    fn reads_trickle_fragments() {
        let f = SdpFrag::parse(
            "a=ice-ufrag:abcd\r\na=ice-pwd:0123456789012345678901\r\nm=video 9 UDP 0\r\n\
             a=mid:0\r\na=candidate:1 1 udp 2113929471 127.0.0.1 40000 typ host\r\n\
             a=end-of-candidates\r\n",
        )
        .unwrap();
        assert_eq!(f.creds.unwrap().ufrag, "abcd");
        assert_eq!(f.candidates.len(), 1);
        assert!(f.end_of_candidates);
        assert!(SdpFrag::parse("a=candidate:garbage").is_err());
        assert!(SdpFrag::parse("a=ice-ufrag:x").is_err());
        assert!(SdpFrag::parse("").unwrap().creds.is_none());
    }
}
