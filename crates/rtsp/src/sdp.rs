//! The session description a DESCRIBE returns (RFC 4566), built from a source's tracks, and
//! the `Track` constructors for what cameras send: H.264 (RFC 6184 section 8), H.265
//! (RFC 7798 section 7), AAC (RFC 3640 `mpeg4-generic`) and G.711 (RFC 3551). Sans-IO.

use std::fmt::Write;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// `m=` media type of a track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    Video,
    Audio,
}

impl MediaKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Video => "video",
            MediaKind::Audio => "audio",
        }
    }
}

/// One media track as the SDP announces it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Track {
    pub kind: MediaKind,
    pub payload_type: u8,
    /// `a=rtpmap` encoding name: `H264`, `H265`, `mpeg4-generic`, `PCMA`...
    pub encoding: String,
    pub clock_rate: u32,
    /// Audio channels (`/2` in `a=rtpmap`); `None` for video and mono audio.
    pub channels: Option<u16>,
    /// `a=fmtp` parameters, without the `a=fmtp:PT ` prefix.
    pub fmtp: Option<String>,
    /// Further `a=` lines (without `a=`), after `a=fmtp`: `framerate:25`...
    pub attributes: Vec<String>,
}

impl Track {
    /// H.264 in packetization mode 1. `profile-level-id` comes from the SPS (bytes 1-3).
    pub fn h264(payload_type: u8, sps: &[u8], pps: &[u8]) -> Track {
        let profile_level_id = sps
            .get(1..4)
            .map(|b| format!("{:02X}{:02X}{:02X}", b[0], b[1], b[2]))
            .unwrap_or_else(|| "42C01F".into());
        Track {
            kind: MediaKind::Video,
            payload_type,
            encoding: "H264".into(),
            clock_rate: 90_000,
            channels: None,
            fmtp: Some(format!(
                "packetization-mode=1;profile-level-id={profile_level_id};\
                 sprop-parameter-sets={},{}",
                STANDARD.encode(sps),
                STANDARD.encode(pps)
            )),
            attributes: Vec::new(),
        }
    }

    /// H.265 with its parameter sets out of band.
    pub fn h265(payload_type: u8, vps: &[u8], sps: &[u8], pps: &[u8]) -> Track {
        Track {
            kind: MediaKind::Video,
            payload_type,
            encoding: "H265".into(),
            clock_rate: 90_000,
            channels: None,
            fmtp: Some(format!(
                "sprop-vps={};sprop-sps={};sprop-pps={}",
                STANDARD.encode(vps),
                STANDARD.encode(sps),
                STANDARD.encode(pps)
            )),
            attributes: Vec::new(),
        }
    }

    /// AAC in `mpeg4-generic` AAC-hbr mode; `config` is the AudioSpecificConfig.
    pub fn aac(payload_type: u8, sample_rate: u32, channels: u16, config: &[u8]) -> Track {
        let hex: String = config.iter().map(|b| format!("{b:02x}")).collect();
        Track {
            kind: MediaKind::Audio,
            payload_type,
            encoding: "mpeg4-generic".into(),
            clock_rate: sample_rate,
            channels: Some(channels),
            fmtp: Some(format!(
                "streamtype=5;profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;\
                 indexdeltalength=3;config={hex}"
            )),
            attributes: Vec::new(),
        }
    }

    /// G.711 A-law (`alaw`) or µ-law at 8 kHz mono, with its static payload type (8 or 0).
    pub fn g711(alaw: bool) -> Track {
        Track {
            kind: MediaKind::Audio,
            payload_type: if alaw { 8 } else { 0 },
            encoding: if alaw { "PCMA" } else { "PCMU" }.into(),
            clock_rate: 8_000,
            channels: None,
            fmtp: None,
            attributes: Vec::new(),
        }
    }

    pub fn with_attribute(mut self, attribute: impl Into<String>) -> Track {
        self.attributes.push(attribute.into());
        self
    }
}

/// Media-level control URL of track `index`, relative to the `Content-Base`
/// `rtsp://host/stream/`.
pub fn track_control(index: usize) -> String {
    format!("trackID={index}")
}

/// What the SDP of one stream says.
pub struct SessionInfo<'a> {
    /// The `s=` line.
    pub name: &'a str,
    /// Address of the server, for the `o=` line.
    pub server_ip: std::net::IpAddr,
    /// Identifies this server run in `o=`.
    pub session_id: u64,
    pub tracks: &'a [Track],
}

pub fn sdp(info: &SessionInfo<'_>) -> String {
    let (ip_kind, any) = if info.server_ip.is_ipv6() {
        ("IP6", "::")
    } else {
        ("IP4", "0.0.0.0")
    };
    // A name with a line break would end the line early and forge the next one.
    let name: String = info.name.chars().filter(|c| !c.is_control()).collect();
    let mut s = format!(
        "v=0\r\n\
         o=- {sid} 1 IN {ip_kind} {ip}\r\n\
         s={name}\r\n\
         c=IN {ip_kind} {any}\r\n\
         t=0 0\r\n\
         a=control:*\r\n\
         a=range:npt=0-\r\n",
        sid = info.session_id,
        ip = info.server_ip,
    );
    for (i, t) in info.tracks.iter().enumerate() {
        let pt = t.payload_type;
        // Writing to a String cannot fail.
        let _ = write!(s, "m={} 0 RTP/AVP {pt}\r\n", t.kind.as_str());
        let _ = write!(s, "a=rtpmap:{pt} {}/{}", t.encoding, t.clock_rate);
        if let Some(ch) = t.channels {
            let _ = write!(s, "/{ch}");
        }
        s.push_str("\r\n");
        if let Some(f) = &t.fmtp {
            let _ = write!(s, "a=fmtp:{pt} {f}\r\n");
        }
        for a in &t.attributes {
            let _ = write!(s, "a={a}\r\n");
        }
        let _ = write!(s, "a=control:{}\r\n", track_control(i));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carries_parameter_sets() {
        let tracks = [
            Track::h264(96, &[0x67, 0x42, 0xC0, 0x1E, 0xAA], &[0x68, 0xCE])
                .with_attribute("framerate:25")
                .with_attribute("x-dimensions:320,240"),
        ];
        let s = sdp(&SessionInfo {
            name: "camgate sim cam3",
            server_ip: [127, 0, 0, 1].into(),
            session_id: 42,
            tracks: &tracks,
        });
        assert_eq!(
            s,
            "v=0\r\no=- 42 1 IN IP4 127.0.0.1\r\ns=camgate sim cam3\r\nc=IN IP4 0.0.0.0\r\n\
             t=0 0\r\na=control:*\r\na=range:npt=0-\r\nm=video 0 RTP/AVP 96\r\n\
             a=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1;\
             profile-level-id=42C01E;sprop-parameter-sets=Z0LAHqo=,aM4=\r\n\
             a=framerate:25\r\na=x-dimensions:320,240\r\na=control:trackID=0\r\n"
        );
    }

    #[test]
    fn several_tracks_each_get_a_control() {
        let tracks = [
            Track::h265(96, &[0x40], &[0x42], &[0x44]),
            Track::aac(97, 48_000, 2, &[0x11, 0x90]),
            Track::g711(true),
        ];
        let s = sdp(&SessionInfo {
            name: "x\r\nb=evil",
            server_ip: "::1".parse().unwrap(),
            session_id: 1,
            tracks: &tracks,
        });
        assert!(
            s.contains("o=- 1 1 IN IP6 ::1\r\ns=xb=evil\r\nc=IN IP6 ::\r\n"),
            "{s}"
        );
        assert!(s.contains("a=rtpmap:96 H265/90000\r\na=fmtp:96 sprop-vps=QA==;"));
        assert!(s.contains("m=audio 0 RTP/AVP 97\r\na=rtpmap:97 mpeg4-generic/48000/2\r\n"));
        assert!(s.contains("config=1190\r\na=control:trackID=1\r\n"));
        assert!(
            s.ends_with("m=audio 0 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\na=control:trackID=2\r\n")
        );
    }
}
