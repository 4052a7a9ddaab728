//! The `Transport` header of SETUP (RFC 2326 section 12.39): which of the client's offered
//! transports we serve (unicast RTP over TCP-interleaved or UDP) and the answer we send.

/// A transport the simulator can serve, as the client asked for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportRequest {
    /// `RTP/AVP/TCP;unicast;interleaved=a-b`; channels picked by us when absent.
    Tcp { interleaved: Option<(u8, u8)> },
    /// `RTP/AVP[/UDP];unicast;client_port=a-b`.
    Udp { client_rtp: u16, client_rtcp: u16 },
}

/// The first spec in a `Transport` header we support, or `None` (answer 461).
pub fn parse_transport(header: &str) -> Option<TransportRequest> {
    header.split(',').find_map(parse_spec)
}

fn parse_spec(spec: &str) -> Option<TransportRequest> {
    let mut parts = spec.split(';').map(str::trim);
    let proto = parts.next()?.to_ascii_uppercase();
    let mut interleaved = None;
    let mut client_port = None;
    for p in parts {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        match k.to_ascii_lowercase().as_str() {
            "multicast" => return None,
            "mode" if !v.trim_matches('"').eq_ignore_ascii_case("play") => return None,
            "interleaved" => interleaved = Some(parse_pair::<u8>(v)?),
            "client_port" => client_port = Some(parse_pair::<u16>(v)?),
            _ => {}
        }
    }
    match proto.as_str() {
        "RTP/AVP/TCP" => Some(TransportRequest::Tcp { interleaved }),
        "RTP/AVP" | "RTP/AVP/UDP" => {
            let (a, b) = client_port?;
            (a != 0).then_some(TransportRequest::Udp {
                client_rtp: a,
                client_rtcp: b,
            })
        }
        _ => None,
    }
}

/// `a-b` -> (a, b); a single `a` -> (a, a+1).
fn parse_pair<T>(v: &str) -> Option<(T, T)>
where
    T: std::str::FromStr + Copy + TryFrom<u32> + Into<u32>,
{
    match v.split_once('-') {
        Some((a, b)) => Some((a.trim().parse().ok()?, b.trim().parse().ok()?)),
        None => {
            let a: T = v.trim().parse().ok()?;
            let b = T::try_from(a.into() + 1).ok()?;
            Some((a, b))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_first_supported() {
        assert_eq!(
            parse_transport("RTP/AVP/TCP;unicast;interleaved=2-3"),
            Some(TransportRequest::Tcp {
                interleaved: Some((2, 3))
            })
        );
        assert_eq!(
            parse_transport("RTP/AVP/TCP;unicast"),
            Some(TransportRequest::Tcp { interleaved: None })
        );
        assert_eq!(
            parse_transport("RTP/AVP;multicast, RTP/AVP;unicast;client_port=5000-5001"),
            Some(TransportRequest::Udp {
                client_rtp: 5000,
                client_rtcp: 5001
            })
        );
        assert_eq!(
            parse_transport("RTP/AVP/UDP;unicast;client_port=7000;mode=\"PLAY\""),
            Some(TransportRequest::Udp {
                client_rtp: 7000,
                client_rtcp: 7001
            })
        );
    }

    #[test]
    fn rejects_unsupported() {
        for h in [
            "",
            "RTP/AVP;multicast",
            "RTP/AVP;unicast",
            "RTP/AVP;unicast;client_port=0-1",
            "RTP/AVP;unicast;client_port=70000-70001",
            "RTP/AVP/TCP;interleaved=300-301",
            "RTP/SAVP;unicast;client_port=1-2",
            "RTP/AVP/TCP;unicast;mode=record",
            "RTP/AVP;unicast;client_port=65535",
        ] {
            assert_eq!(parse_transport(h), None, "{h}");
        }
    }
}
