//! Provisioning orchestrated once: store the camera, then bring the live path in line, then
//! tell the event bus, in that order, for every caller (the API, `camgate demo`, start-up).
//! A failure to store changes nothing live; the live path never holds a camera the store
//! does not.
//!
//! It owns no state of its own: the store (`db`), the live path (`live`) and the bus
//! (`events`) do. It must not import HTTP or outputs.

use std::sync::Arc;

use crate::cameras::{Camera, CameraSpec, default_stream_path};
use crate::db::{Db, DbError, Upserted};
use crate::events::{CameraAction, CameraEvent, Event, EventBus, now};
use crate::live::Live;

pub struct Provisioning {
    db: Db,
    live: Arc<Live>,
    bus: EventBus,
}

impl Provisioning {
    pub fn new(db: Db, live: Arc<Live>, bus: EventBus) -> Arc<Provisioning> {
        Arc::new(Provisioning { db, live, bus })
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Creates or updates a camera: stored, then (re)started on the live path, then announced.
    /// `origin` names the caller in the log line ("api", "demo").
    pub async fn provision(
        &self,
        spec: CameraSpec,
        origin: &'static str,
    ) -> Result<(Camera, Upserted), DbError> {
        let (camera, how) = self.db.upsert_camera(spec).await?;
        tracing::info!(
            camera_id = %camera.spec.camera_id,
            stream_path = %camera.spec.stream_path,
            rtsp_url = %camera.spec.rtsp_url,
            created = how == Upserted::Created,
            origin,
            "camera provisioned"
        );
        tracing::debug!(?camera, "provisioned camera record");
        self.live.upsert(camera.spec.clone());
        self.bus.publish(Event::Camera(CameraEvent {
            action: match how {
                Upserted::Created => CameraAction::Provisioned,
                Upserted::Updated => CameraAction::Updated,
            },
            camera_id: camera.spec.camera_id.clone(),
            stream_path: camera.spec.stream_path.clone(),
            ts: now(),
        }));
        Ok((camera, how))
    }

    /// Deletes a camera: removed from the store, stopped, announced. False if unknown.
    pub async fn delete(&self, camera_id: &str) -> Result<bool, DbError> {
        let stream_path = self.live.get(camera_id).map(|s| s.path());
        if !self.db.delete_camera(camera_id).await? {
            return Ok(false);
        }
        self.live.remove(camera_id);
        self.bus.publish(Event::Camera(CameraEvent {
            action: CameraAction::Deleted,
            stream_path: stream_path.unwrap_or_else(|| default_stream_path(camera_id)),
            camera_id: camera_id.to_owned(),
            ts: now(),
        }));
        tracing::info!(camera_id = %camera_id, "camera deleted");
        Ok(true)
    }

    /// Gives every stored camera its live runtime (start-up): always-on ones connect now,
    /// on-demand ones wait for their first viewer. Returns how many there are.
    pub async fn load_all(&self) -> Result<usize, DbError> {
        let cameras = self.db.cameras().await?;
        for c in &cameras {
            self.live.upsert(c.spec.clone());
        }
        Ok(cameras.len())
    }
}
