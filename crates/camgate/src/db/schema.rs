//! Schema versions and their migration. The version lives in `PRAGMA user_version`; each step
//! runs in its own transaction together with the version bump, so a crash mid-upgrade leaves
//! the previous version intact. A database newer than this binary is refused, never touched.

use rusqlite::Connection;

use super::DbError;

/// Step `i` upgrades version `i` to `i + 1`. Append only: a shipped step is never edited.
pub const MIGRATIONS: &[&str] = &[include_str!("schema/0001_cameras.sql")];

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
