//! Every live stream of the process, by stream path, and the outputs that attach to streams.
//!
//! `live/` inserts and removes streams as cameras are provisioned and deleted; outputs look
//! streams up by path (or camera id, the API's alias) and may register an [`Output`] that is
//! told about every stream as it appears, so an output that follows every stream (the LL-HLS
//! segmenter, a recorder) needs no polling. It owns no task and no source.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use super::demand::ByProtocol;
use super::stream::LiveStream;
use crate::cameras::StreamState;

/// An output that wants to know about every stream. `attach` runs once per stream, when it
/// is added (or, for streams already there, when the output registers); it must not block:
/// spawn what takes time. The output ends its own work when the stream's hub closes.
pub trait Output: Send + Sync + 'static {
    fn attach(&self, stream: &LiveStream);
}

/// A camera's transcode profile (`{path}~{profile}`) shares the camera's id; lookups by id
/// mean the camera's own stream. `~` is not a stream path character, so this cannot misfire.
fn is_profile(s: &LiveStream) -> bool {
    s.is_profile()
}

#[derive(Default)]
pub struct Registry {
    streams: RwLock<HashMap<String, LiveStream>>,
    outputs: RwLock<Vec<Arc<dyn Output>>>,
    /// Bytes sent to viewers over every protocol, for `/stats`.
    bytes_sent: AtomicU64,
}

impl Registry {
    pub fn new() -> Arc<Registry> {
        Arc::new(Registry::default())
    }

    /// Tells `output` about every stream from now on (and about those already here).
    pub fn add_output(&self, output: Arc<dyn Output>) {
        self.outputs
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(output.clone());
        for s in self.list() {
            output.attach(&s);
        }
    }

    /// Adds a stream under its path (replacing any stream of that path) and tells every
    /// output about it.
    pub fn insert(&self, stream: LiveStream) {
        self.streams
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(stream.path(), stream.clone());
        let outputs = self
            .outputs
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for o in outputs {
            o.attach(&stream);
        }
    }

    /// Moves a stream to a new path (its camera's `stream_path` changed); outputs keep it.
    pub fn rename(&self, old: &str, stream: &LiveStream) {
        let mut map = self.streams.write().unwrap_or_else(|p| p.into_inner());
        if map.get(old).is_some_and(|s| s.same(stream)) {
            map.remove(old);
        }
        map.insert(stream.path(), stream.clone());
    }

    pub fn remove(&self, path: &str) -> Option<LiveStream> {
        self.streams
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(path)
    }

    /// By stream path, else by camera id (the API accepts either).
    pub fn get(&self, path_or_id: &str) -> Option<LiveStream> {
        let map = self.streams.read().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = map.get(path_or_id) {
            return Some(s.clone());
        }
        map.values()
            .find(|s| s.camera_id() == path_or_id && !is_profile(s))
            .cloned()
    }

    /// The camera's own stream (not a profile of it), by camera id.
    pub fn by_camera(&self, camera_id: &str) -> Option<LiveStream> {
        let map = self.streams.read().unwrap_or_else(|p| p.into_inner());
        map.values()
            .find(|s| s.camera_id() == camera_id && !is_profile(s))
            .cloned()
    }

    /// Every camera's own stream (no profile streams, no grids), by camera id: what
    /// per-camera consumers (status events, NATS) iterate.
    pub fn cameras(&self) -> Vec<LiveStream> {
        let mut v = self.list();
        v.retain(|s| !is_profile(s) && !s.is_grid());
        v
    }

    /// Every stream, by camera id then path.
    pub fn list(&self) -> Vec<LiveStream> {
        let mut v: Vec<LiveStream> = self
            .streams
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        v.sort_by_cached_key(|s| (s.camera_id(), s.path()));
        v
    }

    pub fn len(&self) -> usize {
        self.streams.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Streams whose frames are flowing (`/health` and `/stats` `active_streams`).
    pub fn active_streams(&self) -> usize {
        self.list()
            .iter()
            .filter(|s| s.state().state == StreamState::Live)
            .count()
    }

    /// Viewers of every stream, by protocol.
    pub fn viewers(&self) -> ByProtocol {
        let mut by = ByProtocol::default();
        for s in self.list() {
            by.add(&s.viewer_counts());
        }
        by
    }

    pub fn total_viewers(&self) -> u32 {
        self.viewers().total()
    }

    pub fn total_bytes_received(&self) -> u64 {
        self.list()
            .iter()
            .map(|s| s.hub().stats().bytes_received)
            .sum()
    }

    /// Counts bytes sent to viewers (any protocol), for `/stats`.
    pub fn add_bytes_sent(&self, n: u64) {
        self.bytes_sent.fetch_add(n, Ordering::Relaxed);
    }

    pub fn total_bytes_sent(&self) -> u64 {
        self.bytes_sent.load(Ordering::Relaxed)
    }
}
