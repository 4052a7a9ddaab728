//! Profile streams: each camera's `{path}~{profile}` streams (the built-in `h264` and every
//! `[profiles.NAME]` that applies to it), each with its own hub and its own supervisor, run
//! exactly like a camera's (on demand, idle stop, stall, backoff, state, last error) with an
//! `ingest::ffmpeg::FfmpegSource` as the source.
//!
//! It owns the list of profiles (from the config file only) and the making of a camera's
//! profile streams. The input of a profile is the camera's own stream in the registry: a
//! session subscribes to its hub and holds it (so the camera is connected once, however many
//! profiles and viewers), and lets go when the profile goes idle.

use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, stream};

use super::LiveSettings;
use super::supervisor::Supervisor;
use crate::cameras::CameraSpec;
use crate::config::{ProfileConfig, ProfilesConfig, RESERVED_PROFILE};
use crate::events::EventBus;
use crate::hub::{HubLimits, LiveStream, StreamSpec, Variant, WeakStream};
use crate::ingest::SourceSpec;
use crate::ingest::ffmpeg::{Encoder, FfmpegSource, Profile, ProfileInput, Transcoder};
use crate::tasks::{TaskHandle, Tasks};

/// The separator of a profile stream's path (`cam_1~720p`); not a stream path character, so
/// no camera's own path can look like a profile.
pub const PROFILE_SEPARATOR: char = '~';

/// Bit rate of the built-in `h264` profile when it transcodes (an H.265 camera, up to 1080p).
const H264_PROFILE_KBPS: u32 = 4000;

/// Every profile and what runs them.
pub struct Profiles {
    pub transcoder: Arc<Transcoder>,
    list: Vec<(Profile, Vec<String>)>,
}

impl Profiles {
    /// The built-in `h264` first, then the config file's profiles by name.
    pub fn from_config(config: &ProfilesConfig, transcoder: Arc<Transcoder>) -> Profiles {
        let mut list = vec![(
            Profile {
                name: RESERVED_PROFILE.into(),
                height: 0,
                max_height: Some(1080),
                fps: 0,
                bitrate_kbps: H264_PROFILE_KBPS,
                gop: 0,
                encoder: None,
                passthrough_h264: true,
            },
            Vec::new(),
        )];
        for (name, p) in &config.0 {
            list.push((profile(name, p), p.cameras.clone()));
        }
        Profiles { transcoder, list }
    }

    /// The profiles `camera` has: the built-in `h264` always; then the ones its provisioning
    /// listed (`profiles`), or, when it listed none, those whose config `cameras` names it (or
    /// is empty). A listed name the config no longer has is skipped with a warning (the config
    /// file changed after the camera was provisioned).
    pub fn for_camera(&self, camera: &CameraSpec) -> Vec<Profile> {
        let id = &camera.camera_id;
        let Some(attached) = &camera.profiles else {
            return self
                .list
                .iter()
                .filter(|(_, cams)| cams.is_empty() || cams.iter().any(|c| c == id))
                .map(|(p, _)| p.clone())
                .collect();
        };
        let mut out = vec![self.list[0].0.clone()];
        for name in attached {
            match self.list.iter().find(|(p, _)| &p.name == name) {
                Some((p, _)) if p.name != RESERVED_PROFILE => out.push(p.clone()),
                Some(_) => {}
                None => tracing::warn!(
                    camera = %id,
                    profile = %name,
                    "camera lists a profile the config file does not have; not served"
                ),
            }
        }
        out
    }

    /// The first of `names` that is not a configured profile, if any (provisioning refuses it).
    pub fn unknown<'a>(&self, names: &'a [String]) -> Option<&'a str> {
        names
            .iter()
            .find(|n| !self.list.iter().any(|(p, _)| &p.name == *n))
            .map(String::as_str)
    }

    /// The configured profile names, built-in `h264` first.
    pub fn names(&self) -> Vec<String> {
        self.list.iter().map(|(p, _)| p.name.clone()).collect()
    }
}

fn profile(name: &str, p: &ProfileConfig) -> Profile {
    Profile {
        name: name.to_owned(),
        height: p.height,
        max_height: None,
        fps: p.fps,
        bitrate_kbps: p.bitrate.0,
        gop: p.gop,
        encoder: p.encoder.ffmpeg_name().and_then(Encoder::from_name),
        passthrough_h264: false,
    }
}

/// The path of a camera stream's profile.
pub fn profile_path(camera_path: &str, profile: &str) -> String {
    format!("{camera_path}{PROFILE_SEPARATOR}{profile}")
}

/// One running profile stream of a camera.
pub(super) struct ProfileRuntime {
    pub stream: LiveStream,
    pub supervisor: TaskHandle,
}

/// What a camera's profile streams are made with.
pub(super) struct Parts<'a> {
    pub profiles: &'a Profiles,
    pub settings: &'a LiveSettings,
    pub hub_limits: &'a HubLimits,
    pub events: &'a EventBus,
    pub tasks: &'a Tasks,
}

/// Makes and starts the profile streams of `camera` (whose own stream is `camera_stream`).
pub(super) fn start(
    parts: &Parts<'_>,
    camera: &CameraSpec,
    camera_stream: &LiveStream,
) -> Vec<ProfileRuntime> {
    parts
        .profiles
        .for_camera(camera)
        .into_iter()
        .map(|p| {
            let stream = LiveStream::new(
                StreamSpec {
                    camera_id: camera.camera_id.clone(),
                    path: profile_path(&camera.stream_path, &p.name),
                    record: false,
                    always_on: false,
                    grid: false,
                },
                parts.hub_limits.clone(),
                parts.settings.max_viewers_per_stream,
            );
            stream.set_variant(Variant {
                profile: p.name.clone(),
                bitrate_kbps: p.bitrate_kbps,
                height: p.height,
                fps: p.fps,
            });
            let name = format!("profile {}", stream.path());
            let source = FfmpegSource {
                transcoder: parts.profiles.transcoder.clone(),
                profile: p,
                input: opener(camera_stream.downgrade()),
                // The camera may need its whole start (connect, first keyframe) first.
                first_frame_timeout: parts.settings.start_timeout.max(Duration::from_secs(5)),
            };
            let run = Supervisor {
                stream: stream.clone(),
                source: Arc::new(source),
                source_spec: SourceSpec {
                    camera_id: camera.camera_id.clone(),
                    url: camera.rtsp_url.clone(),
                    transport: camera.transport,
                },
                always_on: false,
                idle_timeout: parts.settings.idle_timeout,
                settings: parts.settings.clone(),
                events: parts.events.clone(),
            };
            ProfileRuntime {
                supervisor: parts.tasks.spawn(name, run.run()),
                stream,
            }
        })
        .collect()
}

/// A profile session's input: the camera's frames from its cached keyframe, and a hold that
/// keeps the camera connected while the session lasts. Weak, so a profile never keeps a
/// deleted camera's stream alive.
fn opener(camera: WeakStream) -> Arc<dyn Fn() -> Option<ProfileInput> + Send + Sync> {
    Arc::new(move || {
        let s = camera.upgrade()?;
        let keep = s.hold();
        let consumer = s.subscribe();
        let frames = stream::unfold(consumer, |mut c| async move {
            let f = c.recv().await?;
            Some((f, c))
        });
        Some(ProfileInput {
            frames: frames.boxed(),
            keep: Box::new(keep),
        })
    })
}
