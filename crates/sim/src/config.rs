//! What a simulator run looks like: the typed `SimConfig` a test builds in-process, the
//! `SimArgs` command line that `camgate sim` embeds, and the parsers for their values
//! (`1920x1080`, `2M`, `1s`). Owns no I/O.

use std::net::SocketAddr;
use std::time::Duration;

use crate::SimError;

/// Everything a `SimServer` needs. `SimConfig::default()` is four 320x240 cameras at 15 fps
/// on an ephemeral loopback port: cheap enough for tests; the CLI defaults are larger.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Cameras are served as `/cam1 ... /camN`.
    pub cameras: u32,
    /// Address of the RTSP listener; port 0 picks a free port (see `SimHandle::local_addr`).
    pub listen: SocketAddr,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    /// Time between IDR frames; rounded to whole frames (at least one).
    pub gop: Duration,
    /// Target bitrate in bits per second.
    pub bitrate: u32,
    /// Length of the looped clip; rounded up to whole GOPs. Ignored with `live`.
    pub clip: Duration,
    /// Encode continuously so the burned-in clock is current (latency tests), instead of
    /// looping a clip encoded once at start.
    pub live: bool,
    /// Require these credentials on every request but OPTIONS.
    pub credentials: Option<Credentials>,
    /// Which authentication schemes a 401 offers (and which are accepted).
    pub auth: AuthScheme,
    /// A session with no request (or RTCP) for this long is torn down.
    pub session_timeout: Duration,
    pub faults: Faults,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            cameras: 4,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            width: 320,
            height: 240,
            fps: 15,
            gop: Duration::from_secs(1),
            bitrate: 300_000,
            clip: Duration::from_secs(2),
            live: false,
            credentials: None,
            auth: AuthScheme::Any,
            session_timeout: Duration::from_secs(60),
            faults: Faults::default(),
        }
    }
}

impl SimConfig {
    /// Frames per GOP (IDR interval), at least one.
    pub fn gop_frames(&self) -> u32 {
        let frames = (self.gop.as_secs_f64() * f64::from(self.fps)).round();
        (frames as u32).max(1)
    }

    /// Frames in the looped clip: `clip` rounded up to whole GOPs, at least one GOP.
    pub fn clip_frames(&self) -> u32 {
        let gop = self.gop_frames();
        let wanted = (self.clip.as_secs_f64() * f64::from(self.fps)).ceil() as u32;
        wanted.div_ceil(gop).max(1) * gop
    }

    /// Rejects values that would make the encoder or the server misbehave.
    pub fn validate(&self) -> Result<(), SimError> {
        let bad = |msg: String| Err(SimError::Config(msg));
        if self.cameras == 0 || self.cameras > 10_000 {
            return bad(format!("cameras must be 1..=10000, got {}", self.cameras));
        }
        if self.width < 32 || self.height < 32 || self.width > 3840 || self.height > 2160 {
            return bad(format!(
                "size must be between 32x32 and 3840x2160, got {}x{}",
                self.width, self.height
            ));
        }
        if !self.width.is_multiple_of(2) || !self.height.is_multiple_of(2) {
            return bad(format!(
                "width and height must be even (4:2:0 video), got {}x{}",
                self.width, self.height
            ));
        }
        if self.fps == 0 || self.fps > 120 {
            return bad(format!("fps must be 1..=120, got {}", self.fps));
        }
        if self.bitrate < 10_000 {
            return bad(format!(
                "bitrate must be at least 10k bit/s, got {}",
                self.bitrate
            ));
        }
        if self.session_timeout < Duration::from_secs(1) {
            return bad("session timeout must be at least 1s".into());
        }
        if let (Some(_), None) | (None, Some(_)) = (self.faults.stall_every, self.faults.stall_for)
        {
            return bad("stall-every and stall-for go together".into());
        }
        for (name, d) in [
            ("drop-every", self.faults.drop_every),
            ("stall-every", self.faults.stall_every),
            ("garbage-every", self.faults.garbage_every),
            ("jump-every", self.faults.jump_every),
        ] {
            if d.is_some_and(|d| d < Duration::from_millis(100)) {
                return bad(format!("{name} must be at least 100ms"));
            }
        }
        Ok(())
    }
}

/// A user name and password the simulated cameras demand.
#[derive(Clone)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    // The password never reaches a log line, even through `{:?}` of the whole config.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"***")
            .finish()
    }
}

/// Which HTTP-style authentication the cameras offer in a 401.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum AuthScheme {
    /// Only `Basic` (password in clear base64, like many cheap cameras).
    Basic,
    /// Only `Digest` (RFC 2617, MD5).
    Digest,
    /// Offer both, Digest first; accept either.
    #[default]
    Any,
}

/// Misbehaviour on purpose, per session, timed from PLAY. All off by default.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Close the session's RTSP connection this long after PLAY.
    pub drop_every: Option<Duration>,
    /// After every `stall_every` of sending, send nothing for `stall_for` (connection open).
    pub stall_every: Option<Duration>,
    pub stall_for: Option<Duration>,
    /// Every this long, send a burst of malformed RTP packets on the video channel.
    pub garbage_every: Option<Duration>,
    /// Every this long, move the RTP timestamps back by `jump_by`.
    pub jump_every: Option<Duration>,
    pub jump_by: Duration,
}

/// Where `camgate sim` listens unless `--listen` says otherwise.
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8555);

/// `camgate sim` options. Embedded with `#[command(flatten)]` or as a subcommand's args.
#[derive(Clone, Debug, clap::Args)]
pub struct SimArgs {
    /// Number of cameras, served as /cam1 ... /camN.
    #[arg(long, default_value_t = 4)]
    pub cameras: u32,
    /// Address the RTSP server listens on. Not a flag of its own: `camgate` has a global
    /// `--listen` that it copies here for `camgate sim`, so the two cannot clash.
    #[arg(skip = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// Picture size, WIDTHxHEIGHT (even numbers).
    #[arg(long, default_value = "1920x1080", value_parser = parse_size)]
    pub size: (u32, u32),
    /// Frames per second.
    #[arg(long, default_value_t = 30)]
    pub fps: u32,
    /// Time between keyframes (IDR), e.g. 1s, 500ms, 2.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub gop: Duration,
    /// Target bitrate in bit/s, e.g. 2M, 500k, 800000.
    #[arg(long, default_value = "2M", value_parser = parse_bitrate)]
    pub bitrate: u32,
    /// Length of the clip encoded once and looped to every camera (whole GOPs).
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub clip: Duration,
    /// Encode live (one encoder shared by all cameras) so the burned-in clock is current.
    #[arg(long)]
    pub live: bool,
    /// Require this user name (with --password) on every request but OPTIONS.
    #[arg(long, requires = "password")]
    pub user: Option<String>,
    /// Password for --user. Prefer the environment variable to keep it out of `ps`.
    #[arg(long, env = "SIM_PASSWORD", requires = "user", hide_env_values = true)]
    pub password: Option<String>,
    /// Authentication schemes offered when --user is set.
    #[arg(long, value_enum, default_value_t = AuthScheme::Any)]
    pub auth: AuthScheme,
    /// Sessions with no request or RTCP for this long are torn down.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub session_timeout: Duration,
    /// Fault: close each session's connection this long after PLAY.
    #[arg(long, value_parser = parse_duration)]
    pub drop_every: Option<Duration>,
    /// Fault: after every this long of sending, stall (send nothing, keep the connection).
    #[arg(long, value_parser = parse_duration, requires = "stall_for")]
    pub stall_every: Option<Duration>,
    /// Fault: how long each stall lasts.
    #[arg(long, value_parser = parse_duration, requires = "stall_every")]
    pub stall_for: Option<Duration>,
    /// Fault: every this long, send a burst of malformed RTP packets.
    #[arg(long, value_parser = parse_duration)]
    pub garbage_every: Option<Duration>,
    /// Fault: every this long, make the RTP timestamps jump backwards by --jump-by.
    #[arg(long, value_parser = parse_duration)]
    pub jump_every: Option<Duration>,
    /// How far back each timestamp jump goes.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub jump_by: Duration,
}

impl SimArgs {
    pub fn to_config(&self) -> SimConfig {
        let credentials = match (&self.user, &self.password) {
            (Some(user), Some(password)) => Some(Credentials {
                user: user.clone(),
                password: password.clone(),
            }),
            _ => None,
        };
        SimConfig {
            cameras: self.cameras,
            listen: self.listen,
            width: self.size.0,
            height: self.size.1,
            fps: self.fps,
            gop: self.gop,
            bitrate: self.bitrate,
            clip: self.clip,
            live: self.live,
            credentials,
            auth: self.auth,
            session_timeout: self.session_timeout,
            faults: Faults {
                drop_every: self.drop_every,
                stall_every: self.stall_every,
                stall_for: self.stall_for,
                garbage_every: self.garbage_every,
                jump_every: self.jump_every,
                jump_by: self.jump_by,
            },
        }
    }
}

/// `1920x1080` -> (1920, 1080).
pub fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let (w, h) = s
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("expected WIDTHxHEIGHT, got {s:?}"))?;
    let w: u32 = w
        .trim()
        .parse()
        .map_err(|_| format!("bad width in {s:?}"))?;
    let h: u32 = h
        .trim()
        .parse()
        .map_err(|_| format!("bad height in {s:?}"))?;
    Ok((w, h))
}

/// `2M`, `500k`, `800000` -> bits per second.
pub fn parse_bitrate(s: &str) -> Result<u32, String> {
    let t = s.trim();
    let (num, mult) = match t.char_indices().last() {
        Some((i, 'k' | 'K')) => (&t[..i], 1_000.0),
        Some((i, 'm' | 'M')) => (&t[..i], 1_000_000.0),
        _ => (t, 1.0),
    };
    let v: f64 = num
        .parse()
        .map_err(|_| format!("expected a bitrate like 2M or 500k, got {s:?}"))?;
    let bps = v * mult;
    if !(bps.is_finite() && bps >= 1.0 && bps <= f64::from(u32::MAX)) {
        return Err(format!("bitrate out of range: {s:?}"));
    }
    Ok(bps as u32)
}

/// `30s`, `200ms`, `1m`, `1.5s` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let (num, unit) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = t.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (t, 1.0)
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("expected a duration like 1s, 200ms or 2m, got {s:?}"))?;
    let secs = v * unit;
    if !(secs.is_finite() && (0.0..=1e9).contains(&secs)) {
        return Err(format!("duration out of range: {s:?}"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        sim: SimArgs,
    }

    #[test]
    fn parses_values() {
        assert_eq!(parse_size("1920x1080"), Ok((1920, 1080)));
        assert!(parse_size("1920").is_err());
        assert_eq!(parse_bitrate("2M"), Ok(2_000_000));
        assert_eq!(parse_bitrate("500k"), Ok(500_000));
        assert_eq!(parse_bitrate("1.5M"), Ok(1_500_000));
        assert!(parse_bitrate("fast").is_err());
        assert!(parse_bitrate("-1M").is_err());
        assert_eq!(parse_duration("200ms"), Ok(Duration::from_millis(200)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn cli_defaults_and_flags() {
        let cli = Cli::try_parse_from(["x"]).unwrap();
        let c = cli.sim.to_config();
        assert_eq!((c.width, c.height, c.fps, c.cameras), (1920, 1080, 30, 4));
        assert_eq!(c.bitrate, 2_000_000);
        assert!(c.credentials.is_none());
        c.validate().unwrap();

        let cli = Cli::try_parse_from([
            "x",
            "--cameras",
            "500",
            "--size",
            "320x240",
            "--user",
            "u",
            "--password",
            "p",
            "--stall-every",
            "5s",
            "--stall-for",
            "2s",
            "--gop",
            "500ms",
            "--fps",
            "10",
        ])
        .unwrap();
        let c = cli.sim.to_config();
        assert_eq!(c.cameras, 500);
        assert_eq!(c.gop_frames(), 5);
        assert_eq!(c.clip_frames(), 20);
        assert_eq!(c.credentials.as_ref().unwrap().password, "p");
        assert!(!format!("{c:?}").contains("\"p\""));
        c.validate().unwrap();

        assert!(Cli::try_parse_from(["x", "--user", "u"]).is_err());
        assert!(Cli::try_parse_from(["x", "--stall-every", "1s"]).is_err());
        let odd = Cli::try_parse_from(["x", "--size", "321x240"]).unwrap();
        assert!(odd.sim.to_config().validate().is_err());
    }
}
