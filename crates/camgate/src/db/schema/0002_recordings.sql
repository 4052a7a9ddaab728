-- camgate schema version 2: continuous recording.
-- Applied by db/schema.rs in one transaction together with `PRAGMA user_version = 2`.

-- Per-camera overrides of [record] retain and camera_max_bytes; NULL = use the config.
-- record_retain_ms 0 = no age limit for this camera; record_max_bytes 0 = unlimited.
ALTER TABLE cameras ADD COLUMN record_retain_ms INTEGER
    CHECK (record_retain_ms IS NULL OR record_retain_ms >= 0);
ALTER TABLE cameras ADD COLUMN record_max_bytes INTEGER
    CHECK (record_max_bytes IS NULL OR record_max_bytes >= 0);

-- One row per recording file on disk ({record dir}/{stream_path}/{file_name}): what playback
-- lists and seeks in, and what retention counts. Written by the recorder after the file's
-- bytes are fsynced (so a row never promises more than the disk holds), reconciled against the
-- directory at start-up. Not tied to `cameras` by a foreign key: recordings outlive a deleted
-- camera until retention removes them.
CREATE TABLE recording_files (
    id              INTEGER PRIMARY KEY,
    -- The stream the file belongs to (a camera's stream_path, or a profile's path~name).
    stream_path     TEXT NOT NULL,
    -- The camera it came from, for per-camera limits after a rename.
    camera_id       TEXT NOT NULL,
    -- The file's name inside the stream's folder: `{start_ms}.mp4`.
    file_name       TEXT NOT NULL,
    -- Wall-clock time (Unix ms, UTC) of the first frame, and just after the last frame that
    -- is flushed (start + the decode-time span of the flushed samples).
    start_ms        INTEGER NOT NULL,
    end_ms          INTEGER NOT NULL CHECK (end_ms >= start_ms),
    -- Bytes of the file that are flushed and indexed (init segment + whole fragments).
    bytes           INTEGER NOT NULL CHECK (bytes >= 0),
    -- Length of the init segment (ftyp + moov) at the start of the file: the EXT-X-MAP range.
    init_bytes      INTEGER NOT NULL CHECK (init_bytes >= 0),
    -- Video samples (frames) in the flushed fragments.
    samples         INTEGER NOT NULL CHECK (samples >= 0),
    -- RFC 6381 codec string and picture size; a change of either starts a new file.
    codec           TEXT NOT NULL,
    width           INTEGER NOT NULL,
    height          INTEGER NOT NULL,
    -- writing: the recorder appends to it; complete: closed; deleting: retention marked it and
    -- is unlinking it (a row left in this state at start-up is finished off).
    state           TEXT NOT NULL CHECK (state IN ('writing', 'complete', 'deleting')),
    UNIQUE (stream_path, file_name)
) STRICT;

-- Playback and retention walk a stream's files in time order, and all files oldest first.
CREATE INDEX recording_files_by_stream ON recording_files (stream_path, start_ms);
CREATE INDEX recording_files_by_start ON recording_files (start_ms);
