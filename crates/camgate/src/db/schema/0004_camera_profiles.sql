-- camgate schema version 4: transcode profiles attached per camera.
-- Applied by db/schema.rs in one transaction together with `PRAGMA user_version = 4`.

-- The `[profiles.NAME]` names a camera is served with (`{path}~NAME`), as a JSON array of
-- strings, from provisioning's `profiles`. NULL = not given: each profile's own `cameras`
-- list in the config file decides. The built-in `h264` is never stored (every camera has it).
ALTER TABLE cameras ADD COLUMN profiles TEXT
    CHECK (profiles IS NULL OR json_valid(profiles));
