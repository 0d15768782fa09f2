//! The database template seeded from the profile's `seed_sql`, bounded in size (`input::SEED_SQL_MAX`) and in
//! time: SQL that never ends (a recursive query with no stop) would otherwise hold the invocation before its first
//! run.

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;

use crate::error::UsageError;
use crate::input;
use crate::observers::database;

/// Longest the seed SQL may run: a schema and a few rows take milliseconds.
pub(crate) const SEED_TIME_MAX: Duration = Duration::from_secs(30);

/// Runs the seed SQL at `seed_path` (`{session}` substituted) into a new database at `target`.
pub(crate) fn seed(seed_path: &Path, session: u64, target: &Path) -> anyhow::Result<()> {
    let bad = |why: String| UsageError(format!("database.seed_sql {}: {why}", seed_path.display()));
    let sql = input::read_text(seed_path, input::SEED_SQL_MAX).map_err(|e| bad(e.to_string()))?;
    let conn = Connection::open(target)?;
    run_within(&conn, &sql.replace("{session}", &session.to_string()), SEED_TIME_MAX).map_err(bad)?;
    Ok(())
}

/// Runs `sql`, interrupted once `limit` has passed.
fn run_within(conn: &Connection, sql: &str, limit: Duration) -> Result<(), String> {
    database::within(conn, limit, |c| c.execute_batch(sql)).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sql_that_never_ends_is_interrupted() {
        let conn = Connection::open_in_memory().unwrap();
        let endless = "CREATE TABLE t AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) \
                       SELECT count(*) AS id FROM c;";
        let err = run_within(&conn, endless, Duration::from_millis(100)).unwrap_err();
        assert_eq!(err, "did not finish within 0.1 s");
        run_within(&conn, "CREATE TABLE s (id INTEGER); INSERT INTO s VALUES (28);", Duration::from_secs(30)).unwrap();
    }
}
