//! Database observer: looks the session row up in a SQLite file, read-only, without disturbing the worker.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use sockdiag_probes::{EventKind, RowLookup};

/// Runs the profile's session query against `db`, read-only.
pub(crate) fn lookup(db: &Path, query: &str, session: u64) -> EventKind {
    EventKind::SessionRow { database: db.display().to_string(), row: query_row(db, query, session) }
}

fn query_row(db: &Path, query: &str, session: u64) -> RowLookup {
    if !db.exists() {
        return RowLookup::Error("no such file".to_string());
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = match Connection::open_with_flags(db, flags) {
        Ok(c) => c,
        Err(e) => return RowLookup::Error(e.to_string()),
    };
    let _ = conn.busy_timeout(Duration::from_millis(250));
    match conn.query_row(query, [session as i64], |_| Ok(())) {
        Ok(()) => RowLookup::Found,
        Err(rusqlite::Error::QueryReturnedNoRows) => RowLookup::Missing,
        Err(e) => RowLookup::Error(e.to_string()),
    }
}

/// True when the file starts with SQLite's magic header.
pub(crate) fn is_sqlite(path: &Path) -> bool {
    use std::io::Read;
    let mut header = [0u8; 16];
    std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut header)).is_ok() && &header == b"SQLite format 3\0"
}
