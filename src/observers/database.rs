//! Database observer: looks the session row up in a SQLite file, read-only, without disturbing the worker, and
//! within a deadline: the file is the worker's, and a view it defines may never finish.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use sockdiag_probes::{EventKind, RowLookup};

/// Runs the profile's session query against `db`, read-only.
pub(crate) fn lookup(db: &Path, query: &str, session: u64) -> EventKind {
    EventKind::SessionRow { database: db.display().to_string(), row: query_row(db, query, session) }
}

/// Longest a session lookup may take: a row by its key takes microseconds; more is a lock or a hostile view.
const LOOKUP_TIME_MAX: Duration = Duration::from_secs(1);

fn query_row(db: &Path, query: &str, session: u64) -> RowLookup {
    match std::fs::metadata(db) {
        Err(_) => return RowLookup::Error("no such file".to_string()),
        // Opening a FIFO would block.
        Ok(m) if !m.is_file() => return RowLookup::Error("not a regular file".to_string()),
        Ok(_) => {}
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = match Connection::open_with_flags(db, flags) {
        Ok(c) => c,
        Err(e) => return RowLookup::Error(e.to_string()),
    };
    let _ = conn.busy_timeout(Duration::from_millis(250));
    match within(&conn, LOOKUP_TIME_MAX, |c| c.query_row(query, [session as i64], |_| Ok(()))) {
        Ok(()) => RowLookup::Found,
        Err(Late::Error(rusqlite::Error::QueryReturnedNoRows)) => RowLookup::Missing,
        Err(e) => RowLookup::Error(e.to_string()),
    }
}

/// Why a statement run [`within`] a deadline failed.
#[derive(Debug)]
pub(crate) enum Late {
    /// Interrupted at the deadline.
    TimedOut(Duration),
    Error(rusqlite::Error),
}

impl std::fmt::Display for Late {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Late::TimedOut(limit) => write!(f, "did not finish within {} s", limit.as_secs_f64()),
            Late::Error(e) => e.fmt(f),
        }
    }
}

/// Runs `work` on `conn`, interrupted (SQLite's own interrupt, from a timer thread) once `limit` has passed.
pub(crate) fn within<T>(
    conn: &Connection,
    limit: Duration,
    work: impl FnOnce(&Connection) -> rusqlite::Result<T>,
) -> Result<T, Late> {
    let interrupt = conn.get_interrupt_handle();
    let (done, finished) = std::sync::mpsc::channel::<()>();
    let timer = std::thread::spawn(move || {
        // The sender is dropped when the work ends: a disconnect, not a timeout.
        let timed_out = finished.recv_timeout(limit) == Err(std::sync::mpsc::RecvTimeoutError::Timeout);
        if timed_out {
            interrupt.interrupt();
        }
        timed_out
    });
    let result = work(conn);
    drop(done);
    let timed_out = timer.join().unwrap_or(false);
    match result {
        Err(_) if timed_out => Err(Late::TimedOut(limit)),
        Err(e) => Err(Late::Error(e)),
        Ok(v) => Ok(v),
    }
}

/// True when the file is a regular one that starts with SQLite's magic header (a FIFO the worker holds open
/// would block the read).
pub(crate) fn is_sqlite(path: &Path) -> bool {
    use std::io::Read;
    let mut header = [0u8; 16];
    crate::input::open_regular(path).and_then(|mut f| f.read_exact(&mut header)).is_ok()
        && &header == b"SQLite format 3\0"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_view_that_never_ends_is_interrupted() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("w.db");
        let endless = "CREATE VIEW sessions AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) \
                       SELECT count(*) AS id FROM c;";
        Connection::open(&db).unwrap().execute_batch(endless).unwrap();
        let row = query_row(&db, "SELECT 1 FROM sessions WHERE id = ?1", 28);
        assert!(matches!(&row, RowLookup::Error(e) if e.contains("did not finish")), "{row:?}");
    }

    #[test]
    fn a_fifo_is_neither_opened_nor_read() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("w.db");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        // A writer that never writes: a blocking read would wait for ever.
        let _writer = std::fs::OpenOptions::new().read(true).write(true).open(&fifo).unwrap();
        assert!(!is_sqlite(&fifo));
        assert!(matches!(query_row(&fifo, "SELECT 1", 28), RowLookup::Error(e) if e == "not a regular file"));
    }
}
