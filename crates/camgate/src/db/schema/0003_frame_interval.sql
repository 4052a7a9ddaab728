-- camgate schema version 3: per-camera frame messages.
-- Applied by db/schema.rs in one transaction together with `PRAGMA user_version = 3`.

-- Per-camera override of [nats] frame_interval, in milliseconds; NULL = use the config,
-- 0 = no {prefix}.camera.frame messages for this camera. A camera with one above zero is held
-- connected while NATS is configured (analytics needs its frames whether or not anyone watches).
ALTER TABLE cameras ADD COLUMN frame_interval_ms INTEGER
    CHECK (frame_interval_ms IS NULL OR frame_interval_ms >= 0);
