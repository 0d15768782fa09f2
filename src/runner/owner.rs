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

/// This invocation's hold on its lock file; the file is removed when the hold ends.
pub(crate) struct OwnerLock {
    path: PathBuf,
    _held: Flock<File>,
}

impl OwnerLock {
    /// Takes the lock for `token`; none where the temp dir is not writable (leftovers are then judged by pid).
    pub(crate) fn hold(token: &str) -> Option<OwnerLock> {
        let path = lock_path(token);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .ok()?;
        let held = Flock::lock(file, FlockArg::LockExclusiveNonblock).ok()?;
        Some(OwnerLock { path, _held: held })
    }
}

impl Drop for OwnerLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// What the lock file of `token` says about its owner: `Some(true)` while someone holds it, `Some(false)` once
/// nobody does, `None` when there is no lock file to ask (an invocation that could not make one).
pub(crate) fn lock_held(token: &str) -> Option<bool> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(lock_path(token))
        .ok()?;
    // A shared lock is granted only when no one holds the exclusive one; it is dropped at once.
    Some(Flock::lock(file, FlockArg::LockSharedNonblock).is_err())
}

/// Removes the lock file of a dead owner.
pub(crate) fn remove_stale_lock(token: &str) {
    if lock_held(token) == Some(false) {
        let _ = std::fs::remove_file(lock_path(token));
    }
}

fn lock_path(token: &str) -> PathBuf {
    std::env::temp_dir().join(format!("{SANDBOX_PREFIX}{token}.lock"))
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
        std::fs::write(lock_path(&token), "").unwrap();
        assert_eq!(lock_held(&token), Some(false), "a file nobody locks");
        remove_stale_lock(&token);
        assert!(!lock_path(&token).exists());
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
