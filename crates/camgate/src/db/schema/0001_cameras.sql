-- camgate schema version 1: the camera registry.
-- Applied by db/schema.rs in one transaction together with `PRAGMA user_version = 1`.
-- Later versions go in new files (0002_*.sql); a shipped file is never edited.

-- One row per provisioned camera: the source of truth for which cameras exist, read at
-- start-up and by the API, written only by provision (upsert) and delete.
CREATE TABLE cameras (
    -- The id clients use in URLs: 1-64 characters [A-Za-z0-9_-], checked by the API.
    camera_id       TEXT PRIMARY KEY NOT NULL,
    -- Display name; defaults to the camera id.
    name            TEXT NOT NULL,
    -- rtsp:// or rtsps:// URL, credentials inline. Never returned or logged as stored (see
    -- redact.rs); the database file is created with mode 0600 because of this column.
    rtsp_url        TEXT NOT NULL,
    -- The path in /hls/{stream_path}/..., /webrtc/{stream_path}/... Unique: two cameras
    -- cannot share a playback URL.
    stream_path     TEXT NOT NULL UNIQUE,
    -- 1: connect only while someone watches. 0: always connected.
    on_demand       INTEGER NOT NULL CHECK (on_demand IN (0, 1)),
    -- 1: record continuously (implies always connected).
    record          INTEGER NOT NULL CHECK (record IN (0, 1)),
    -- How RTP is carried from the camera.
    transport       TEXT NOT NULL CHECK (transport IN ('auto', 'tcp', 'udp')),
    -- Per-camera override of [streams] idle_timeout, in milliseconds; NULL = use the config.
    idle_timeout_ms INTEGER CHECK (idle_timeout_ms IS NULL OR idle_timeout_ms >= 0),
    -- Unix time in milliseconds (UTC). created_at survives updates; updated_at does not.
    created_at_ms   INTEGER NOT NULL,
    updated_at_ms   INTEGER NOT NULL
) STRICT;

-- A single row rewritten by GET /health, proving the database still accepts writes
-- (a full disk or a read-only mount shows up as "degraded" instead of failing later).
CREATE TABLE health_probe (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    checked_at_ms   INTEGER NOT NULL
) STRICT;
