//! The session description a DESCRIBE returns (RFC 4566, H.264 per RFC 6184 section 8).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// What the SDP of one camera says.
pub struct SdpInfo<'a> {
    pub camera: u32,
    pub sps: &'a [u8],
    pub pps: &'a [u8],
    pub fps: u32,
    pub width: u32,
    pub height: u32,
    /// Address of the server, for the `o=` line.
    pub server_ip: std::net::IpAddr,
    /// Identifies this server run in `o=`.
    pub session_id: u64,
}

/// Media-level control URL, relative to the `Content-Base` `rtsp://host/camN/`.
pub const TRACK: &str = "trackID=0";

pub fn sdp(info: &SdpInfo<'_>) -> String {
    let profile_level_id = info
        .sps
        .get(1..4)
        .map(|b| format!("{:02X}{:02X}{:02X}", b[0], b[1], b[2]))
        .unwrap_or_else(|| "42C01F".into());
    let ip_kind = if info.server_ip.is_ipv6() {
        "IP6"
    } else {
        "IP4"
    };
    format!(
        "v=0\r\n\
         o=- {sid} 1 IN {ip_kind} {ip}\r\n\
         s=camgate sim cam{cam}\r\n\
         c=IN {ip_kind} {any}\r\n\
         t=0 0\r\n\
         a=control:*\r\n\
         a=range:npt=0-\r\n\
         m=video 0 RTP/AVP 96\r\n\
         a=rtpmap:96 H264/90000\r\n\
         a=fmtp:96 packetization-mode=1;profile-level-id={profile_level_id};sprop-parameter-sets={sps},{pps}\r\n\
         a=framerate:{fps}\r\n\
         a=x-dimensions:{w},{h}\r\n\
         a=control:{TRACK}\r\n",
        sid = info.session_id,
        ip = info.server_ip,
        any = if info.server_ip.is_ipv6() {
            "::"
        } else {
            "0.0.0.0"
        },
        cam = info.camera,
        sps = STANDARD.encode(info.sps),
        pps = STANDARD.encode(info.pps),
        fps = info.fps,
        w = info.width,
        h = info.height,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carries_parameter_sets() {
        let s = sdp(&SdpInfo {
            camera: 3,
            sps: &[0x67, 0x42, 0xC0, 0x1E, 0xAA],
            pps: &[0x68, 0xCE],
            fps: 25,
            width: 320,
            height: 240,
            server_ip: [127, 0, 0, 1].into(),
            session_id: 42,
        });
        assert!(s.contains("profile-level-id=42C01E;"));
        assert!(s.contains("sprop-parameter-sets=Z0LAHqo=,aM4=\r\n"));
        assert!(s.contains("a=framerate:25\r\n"));
        assert!(s.contains("a=range:npt=0-\r\n"));
        assert!(s.contains("a=control:trackID=0\r\n"));
        assert!(s.starts_with("v=0\r\no=- 42 1 IN IP4 127.0.0.1\r\n"));
    }
}
