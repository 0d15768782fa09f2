//! Opening paths that a worker may have planted things at (its pid file, its logs, the files the harness itself
//! creates in the sandbox). Inside the sandbox, resolution stays beneath the sandbox's directory (`openat2` with
//! RESOLVE_BENEATH: an absolute symlink or `..` out of it fails; so does a mount made inside it); outside, the last
//! component is never a symlink. Opening never blocks (a FIFO) and reading only takes regular files, up to a bound.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;

/// Opens a regular file for reading. `beneath`: the sandbox, when the path may lie inside it.
pub(crate) fn open_file(path: &Path, beneath: Option<&Path>) -> io::Result<File> {
    let flags = OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    crate::input::regular(File::from(open(path, beneath, flags, Mode::empty())?))
}

/// Reads at most `max` bytes of a regular file.
pub(crate) fn read_bounded(path: &Path, beneath: Option<&Path>, max: u64) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    open_file(path, beneath)?.take(max).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Creates a new file (0600), failing if anything is already there, a symlink included: nothing is truncated.
pub(crate) fn create_new(path: &Path, beneath: Option<&Path>) -> io::Result<File> {
    let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    Ok(File::from(open(path, beneath, flags, Mode::from_bits_truncate(0o600))?))
}

/// Opens a directory (O_PATH: to bind or look in, not to read), never through a symlink out of `beneath`.
pub(crate) fn open_dir(path: &Path, beneath: Option<&Path>) -> io::Result<OwnedFd> {
    open(path, beneath, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
}

fn open(path: &Path, beneath: Option<&Path>, flags: OFlag, mode: Mode) -> io::Result<OwnedFd> {
    let inside = beneath.and_then(|root| Some((root, path.strip_prefix(root).ok()?)));
    let Some((root, relative)) = inside else {
        return Ok(nix::fcntl::open(path, flags | OFlag::O_NOFOLLOW, mode)?);
    };
    let dir = nix::fcntl::open(root, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())?;
    let relative = if relative.as_os_str().is_empty() { Path::new(".") } else { relative };
    let resolve = ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS | ResolveFlag::RESOLVE_NO_XDEV;
    match nix::fcntl::openat2(&dir, relative, OpenHow::new().flags(flags).mode(mode).resolve(resolve)) {
        // Kernels before 5.6: no symlink at all below the sandbox.
        Err(Errno::ENOSYS) => Ok(walk_without_symlinks(dir, relative, flags, mode)?),
        other => Ok(other?),
    }
}

/// Opens `relative` under `dir` one component at a time, refusing every symlink and `..`.
fn walk_without_symlinks(mut dir: OwnedFd, relative: &Path, flags: OFlag, mode: Mode) -> nix::Result<OwnedFd> {
    let parts: Vec<_> = relative.components().collect();
    let step = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    for (i, part) in parts.iter().enumerate() {
        let std::path::Component::Normal(name) = part else { return Err(Errno::EXDEV) };
        let last = i + 1 == parts.len();
        let next = nix::fcntl::openat(&dir, *name, if last { flags | OFlag::O_NOFOLLOW } else { step }, mode)?;
        if last {
            return Ok(next);
        }
        dir = next;
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sandbox() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("data")).unwrap();
        dir
    }

    #[test]
    fn a_symlink_out_of_the_sandbox_is_not_followed() {
        let dir = sandbox();
        let link = dir.path().join("data/worker.pid");
        std::os::unix::fs::symlink("/etc/hostname", &link).unwrap();
        assert!(read_bounded(&link, Some(dir.path()), 100).is_err());
        std::os::unix::fs::symlink("/etc", dir.path().join("etc")).unwrap();
        assert!(read_bounded(&dir.path().join("etc/hostname"), Some(dir.path()), 100).is_err());
        // Outside any sandbox, only the last component is guarded.
        assert!(read_bounded(&link, None, 100).is_err());
    }

    #[test]
    fn a_symlink_within_the_sandbox_is_followed() {
        let dir = sandbox();
        std::fs::write(dir.path().join("data/2026.log"), "one\n").unwrap();
        std::os::unix::fs::symlink("2026.log", dir.path().join("data/current.log")).unwrap();
        assert_eq!(read_bounded(&dir.path().join("data/current.log"), Some(dir.path()), 100).unwrap(), b"one\n");
    }

    #[test]
    fn a_fifo_neither_blocks_nor_is_read() {
        let dir = sandbox();
        let fifo = dir.path().join("data/worker.pid");
        nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o600)).unwrap();
        let err = read_bounded(&fifo, Some(dir.path()), 100).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn reads_are_bounded() {
        let dir = sandbox();
        let big = dir.path().join("data/big");
        std::fs::write(&big, vec![b'7'; 10_000]).unwrap();
        assert_eq!(read_bounded(&big, Some(dir.path()), 64).unwrap().len(), 64);
    }

    #[test]
    fn creating_never_truncates_what_a_link_points_at() {
        let dir = sandbox();
        let target = dir.path().join("precious");
        std::fs::write(&target, "keep me").unwrap();
        let link = dir.path().join("data/.sync");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(create_new(&link, Some(dir.path())).is_err());
        assert!(create_new(&link, None).is_err());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me");
        let made = create_new(&dir.path().join("data/new"), Some(dir.path())).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(made.metadata().unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn the_fallback_walk_refuses_every_symlink() {
        let dir = sandbox();
        std::fs::write(dir.path().join("data/2026.log"), "one\n").unwrap();
        std::os::unix::fs::symlink("data", dir.path().join("alias")).unwrap();
        let root = || nix::fcntl::open(dir.path(), OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty()).unwrap();
        let flags = OFlag::O_RDONLY;
        assert!(walk_without_symlinks(root(), Path::new("data/2026.log"), flags, Mode::empty()).is_ok());
        assert!(walk_without_symlinks(root(), Path::new("alias/2026.log"), flags, Mode::empty()).is_err());
        assert!(walk_without_symlinks(root(), Path::new("../x"), flags, Mode::empty()).is_err());
    }
}
