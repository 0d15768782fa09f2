//! Whether the sockdiag that made a leftover is still running. Its pid alone cannot tell: a sockdiag in another
//! pid namespace (a container sharing the temp dir) has a pid that means nothing here, and a killed sockdiag that
//! its parent has not reaped yet still has a `/proc` entry. So every invocation holds an exclusive `flock` on
//! `$TMPDIR/sockdiag-<token>.lock` for as long as it lives: the kernel releases it when the process dies (a zombie
//! holds no descriptors), in whatever namespace it ran.

use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use super::leftovers::SANDBOX_PREFIX;

/// This invocation's hold on its lock files; the files are removed when the hold ends.
pub(crate) struct OwnerLock {
    held: Vec<(PathBuf, Flock<File>)>,
}

impl OwnerLock {
    /// Takes the lock for `token` in every lock directory that is writable; none at all where none is (leftovers
    /// are then judged by pid).
    pub(crate) fn hold(token: &str) -> Option<OwnerLock> {
        let held: Vec<(PathBuf, Flock<File>)> =
            lock_paths(token).into_iter().filter_map(|p| take(&p).map(|lock| (p, lock))).collect();
        (!held.is_empty()).then_some(OwnerLock { held })
    }
}

/// Creates the lock file at `path` and locks it.
fn take(path: &Path) -> Option<Flock<File>> {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .ok()?;
    Flock::lock(file, FlockArg::LockExclusiveNonblock).ok()
}

impl Drop for OwnerLock {
    fn drop(&mut self) {
        for (path, _) in &self.held {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// What the lock file of `token` says about its owner: `Some(true)` while someone holds it, `Some(false)` once
/// nobody does, `None` when there is no lock file to ask (an invocation that could not make one).
pub(crate) fn lock_held(token: &str) -> Option<bool> {
    let answers: Vec<bool> = lock_paths(token).iter().filter_map(|p| held_at(p)).collect();
    (!answers.is_empty()).then(|| answers.contains(&true))
}

fn held_at(path: &Path) -> Option<bool> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    // A shared lock is granted only when no one holds the exclusive one; it is dropped at once.
    Some(Flock::lock(file, FlockArg::LockSharedNonblock).is_err())
}

/// Removes the lock files of a dead owner.
pub(crate) fn remove_stale_lock(token: &str) {
    for path in lock_paths(token) {
        if held_at(&path) == Some(false) {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Where the lock files of `token` are: the temp dir (what a container sharing it sees) and /tmp (what every
/// invocation on this machine sees, whatever its TMPDIR: cgroups and processes are machine-wide).
fn lock_paths(token: &str) -> Vec<PathBuf> {
    let name = format!("{SANDBOX_PREFIX}{token}.lock");
    lock_dirs().into_iter().map(|d| d.join(&name)).collect()
}

/// The directories lock files are in.
pub(crate) fn lock_dirs() -> Vec<PathBuf> {
    let mut dirs = vec![std::env::temp_dir(), PathBuf::from("/tmp")];
    dirs.dedup();
    dirs
}

/// The invocation token (`<pid>-<start time in hex>`) at the start of a tag (`<token>-run3-…`, `<token>-3`).
pub(crate) fn token_of(tag: &str) -> Option<&str> {
    let mut parts = tag.splitn(3, '-');
    let (pid, start) = (parts.next()?, parts.next()?);
    let valid = !pid.is_empty()
        && pid.bytes().all(|b| b.is_ascii_digit())
        && !start.is_empty()
        && start.bytes().all(|b| b.is_ascii_hexdigit());
    valid.then(|| &tag[..pid.len() + 1 + start.len()])
}

/// True when the process `pid` (in our pid namespace) is alive: it exists and is not a zombie.
pub(crate) fn pid_alive(pid: i32) -> bool {
    let stat = std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("stat")).unwrap_or_default();
    // The state follows the command name's closing parenthesis (which may itself contain one).
    let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next());
    matches!(state, Some(s) if s != "Z" && s != "X")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_says_alive_and_a_released_one_dead() {
        let token = format!("{}-{:x}", std::process::id(), line!());
        assert_eq!(lock_held(&token), None, "no lock file yet");
        let lock = OwnerLock::hold(&token).expect("the temp dir is writable");
        assert_eq!(lock_held(&token), Some(true));
        // What a killed owner leaves: the file, with nobody holding it.
        drop(lock);
        for path in lock_paths(&token) {
            std::fs::write(path, "").unwrap();
        }
        assert_eq!(lock_held(&token), Some(false), "a file nobody locks");
        remove_stale_lock(&token);
        assert!(lock_paths(&token).iter().all(|p| !p.exists()));
    }

    #[test]
    fn tokens_are_read_from_tags() {
        assert_eq!(token_of("4711-18a2f-run3-XyZ"), Some("4711-18a2f"));
        assert_eq!(token_of("4711-18a2f-3"), Some("4711-18a2f"));
        assert_eq!(token_of("4711-18a2f"), Some("4711-18a2f"));
        assert_eq!(token_of("4711-run3-abc"), None, "an old sandbox name carries no start time");
        assert_eq!(token_of("x-1"), None);
    }

    #[test]
    fn a_zombie_is_not_alive() {
        let child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        // Exited but not reaped: waitid with WNOWAIT returns at the exit and leaves the zombie.
        let flags = nix::sys::wait::WaitPidFlag::WEXITED | nix::sys::wait::WaitPidFlag::WNOWAIT;
        nix::sys::wait::waitid(nix::sys::wait::Id::Pid(nix::unistd::Pid::from_raw(pid)), flags).unwrap();
        assert!(!pid_alive(pid), "a zombie");
        assert!(Path::new(&format!("/proc/{pid}")).exists(), "still listed: a zombie");
        drop(child);
        assert!(pid_alive(std::process::id() as i32));
    }
}
