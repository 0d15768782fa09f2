//! Files the user names and sockdiag reads whole (a profile, its seed SQL, a saved report): only regular files (a FIFO would block
//! the read, a device such as /dev/zero never ends) and only up to a bound, so that a wrong or hostile path costs
//! an error naming it, not a hang or all of memory.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Largest profile read: the bundled ones are about a kilobyte; a megabyte is no profile.
pub(crate) const PROFILE_MAX: u64 = 1 << 20;
/// Largest `seed_sql` read: a schema and the rows a worker needs are kilobytes; a real database is copied through
/// SQLite's backup API instead. 16 MiB of SQL would already take seconds to run before each invocation.
pub(crate) const SEED_SQL_MAX: u64 = 16 << 20;
/// Largest saved JSON report read (`render`, `merge`, `check --baseline`): a run keeps at most a few MiB of
/// output and log lines, so a large matrix's report is tens of MiB; a gigabyte is not one to hold in memory.
pub(crate) const REPORT_MAX: u64 = 1 << 30;

/// The text of the regular file at `path`, if it holds at most `max` bytes.
pub(crate) fn read_text(path: &Path, max: u64) -> io::Result<String> {
    let file = open_regular(path)?;
    let len = file.metadata()?.len();
    if len > max {
        return Err(too_big(len, max));
    }
    let mut bytes = Vec::new();
    // A file that grows while it is read is cut at the bound, and refused.
    file.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(too_big(bytes.len() as u64, max));
    }
    String::from_utf8(bytes).map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 text"))
}

/// Opens without blocking (a FIFO with no writer would) and accepts only a regular file.
pub(crate) fn open_regular(path: &Path) -> io::Result<File> {
    regular(OpenOptions::new().read(true).custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits()).open(path)?)
}

/// The file, if it is a regular one: reading a FIFO, a socket or a device would block or never end.
pub(crate) fn regular(file: File) -> io::Result<File> {
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"));
    }
    Ok(file)
}

fn too_big(len: u64, max: u64) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("{len} bytes, over the limit of {max} bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_small_file_and_refuses_a_big_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, "abc").unwrap();
        assert_eq!(read_text(&path, 3).unwrap(), "abc");
        let err = read_text(&path, 2).unwrap_err().to_string();
        assert_eq!(err, "3 bytes, over the limit of 2 bytes");
    }

    #[test]
    fn refuses_what_is_not_a_regular_file_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRUSR | nix::sys::stat::Mode::S_IWUSR).unwrap();
        for path in [fifo.as_path(), Path::new("/dev/zero"), dir.path()] {
            assert!(read_text(path, PROFILE_MAX).is_err(), "{}", path.display());
        }
    }
}
