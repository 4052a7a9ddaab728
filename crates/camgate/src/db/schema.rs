//! Schema versions and their migration. The version lives in `PRAGMA user_version`; each step
//! runs in its own transaction together with the version bump, so a crash mid-upgrade leaves
//! the previous version intact. A database newer than this binary is refused, never touched.

use rusqlite::Connection;

use super::DbError;

/// A migration file and its text; the file is named `NNNN_what.sql`, `NNNN` = the version it
/// upgrades to.
macro_rules! migration {
    ($file:literal) => {
        ($file, include_str!(concat!("schema/", $file)))
    };
}

/// Step `i` upgrades version `i` to `i + 1`. Append only: a shipped step is never edited.
/// Features developed in parallel take the next free number when they merge; the test
/// `files_are_numbered_in_order` holds file names and order together.
pub const MIGRATION_FILES: &[(&str, &str)] = &[
    migration!("0001_cameras.sql"),
    migration!("0002_recordings.sql"),
    migration!("0003_frame_interval.sql"),
    migration!("0004_camera_profiles.sql"),
];

/// The migrations' SQL, in order.
pub const MIGRATIONS: [&str; MIGRATION_FILES.len()] = {
    let mut out = [""; MIGRATION_FILES.len()];
    let mut i = 0;
    while i < MIGRATION_FILES.len() {
        out[i] = MIGRATION_FILES[i].1;
        i += 1;
    }
    out
};

/// The schema version this binary writes.
pub const CURRENT_VERSION: u32 = MIGRATIONS.len() as u32;

pub fn version(conn: &Connection) -> Result<u32, DbError> {
    Ok(conn.pragma_query_value(None, "user_version", |row| row.get(0))?)
}

/// Brings the database to [`CURRENT_VERSION`].
pub fn migrate(conn: &mut Connection) -> Result<(), DbError> {
    migrate_to(conn, CURRENT_VERSION)
}

/// Applies the steps up to `target`, one transaction each. Tests use it to build old versions.
pub fn migrate_to(conn: &mut Connection, target: u32) -> Result<(), DbError> {
    let found = version(conn)?;
    if found > CURRENT_VERSION {
        return Err(DbError::TooNew {
            found,
            supported: CURRENT_VERSION,
        });
    }
    for step in found..target.min(CURRENT_VERSION) {
        let tx = conn.transaction()?;
        tx.execute_batch(MIGRATIONS[step as usize])?;
        tx.pragma_update(None, "user_version", step + 1)?;
        tx.commit()?;
        tracing::info!(version = step + 1, "database schema migrated");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_numbered_in_order() {
        for (i, (file, _)) in MIGRATION_FILES.iter().enumerate() {
            let want = format!("{:04}_", i + 1);
            assert!(
                file.starts_with(&want),
                "migration {file} should start with {want}"
            );
            assert!(file.ends_with(".sql"), "{file}");
        }
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/db/schema");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        on_disk.sort();
        let listed: Vec<&str> = MIGRATION_FILES.iter().map(|(f, _)| *f).collect();
        assert_eq!(on_disk, listed, "every schema file is listed, in order");
    }

    fn schema_of(conn: &Connection) -> Vec<(String, String, Option<String>)> {
        let mut stmt = conn
            .prepare("SELECT type, name, sql FROM sqlite_schema ORDER BY type, name")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn upgraded_schema_equals_fresh_schema() {
        let mut fresh = Connection::open_in_memory().unwrap();
        migrate(&mut fresh).unwrap();
        assert_eq!(version(&fresh).unwrap(), CURRENT_VERSION);
        for start in 0..CURRENT_VERSION {
            let mut old = Connection::open_in_memory().unwrap();
            migrate_to(&mut old, start).unwrap();
            assert_eq!(version(&old).unwrap(), start);
            migrate(&mut old).unwrap();
            assert_eq!(schema_of(&old), schema_of(&fresh), "upgraded from {start}");
        }
    }

    #[test]
    fn migrating_twice_changes_nothing() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        let before = schema_of(&conn);
        migrate(&mut conn).unwrap();
        assert_eq!(schema_of(&conn), before);
    }

    #[test]
    fn newer_database_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", CURRENT_VERSION + 1)
            .unwrap();
        assert!(matches!(migrate(&mut conn), Err(DbError::TooNew { .. })));
    }
}
