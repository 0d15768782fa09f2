//! The harness's own test bind: a forked child becomes the worker's user, binds a uniquely named socket in a
//! directory, removes it and reports the errno through a pipe.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use sockdiag_probes::BindTest;

use crate::identity::Identity;

/// Names of the harness's test sockets; the fs observer leaves them out of the timeline.
pub(crate) const TEST_BIND_PREFIX: &str = ".sockdiag-testbind-";
/// How long the test bind may take (a network filesystem may hang).
const TEST_BIND_DEADLINE_MS: u16 = 2000;

/// Binds a uniquely named socket in `dir` as `who`, then removes it. The directory is opened first, beneath
/// `sandbox` (a symlink planted on the way out of it is refused), and the bind and the removal are made relative
/// to that descriptor: whatever is renamed or linked meanwhile, the socket goes where the harness looked.
pub(crate) fn test_bind(dir: &Path, sandbox: &Path, who: &Identity) -> BindTest {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let name = format!("{TEST_BIND_PREFIX}{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
    let full = dir.join(&name);
    // SAFETY: sockaddr_un is plain data; all-zero is a valid value.
    let addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    if full.as_os_str().len() >= addr.sun_path.len() {
        return BindTest::NotTried { why: format!("{} is longer than sun_path", full.display()) };
    }
    let dir_fd = match crate::confine::open_dir(dir, Some(sandbox)) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
            return BindTest::NotTried { why: format!("{} leads out of the sandbox", dir.display()) }
        }
        Err(e) => return errno_of(e.raw_os_error().unwrap_or(libc::EIO)),
    };
    let me = Identity::current();
    let errno = if me.uid != who.uid || me.gid != who.gid {
        bind_in_child(&dir_fd, &name, who)
    } else {
        bind_on_thread(dir_fd, name)
    };
    match errno {
        Ok(e) => errno_of(e),
        Err(why) => BindTest::NotTried { why },
    }
}

fn errno_of(errno: i32) -> BindTest {
    match errno {
        0 => BindTest::Bound,
        e => BindTest::Failed { errno: format!("{:?}", nix::errno::Errno::from_raw(e)) },
    }
}

/// As the harness itself: a thread binds (a hung filesystem holds the thread, not the run) and reports the errno.
/// It binds through the descriptor's /proc/self/fd entry, which names the directory it was opened on.
fn bind_on_thread(dir: OwnedFd, name: String) -> Result<i32, String> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    // A worker that used up the process limit leaves no thread to spare: then the test is not tried.
    let spawned = std::thread::Builder::new().name("test-bind".into()).spawn(move || {
        let via_fd = format!("/proc/self/fd/{}/{name}", dir.as_raw_fd());
        let errno = match std::os::unix::net::UnixListener::bind(via_fd) {
            Ok(_) => {
                let _ = nix::unistd::unlinkat(&dir, name.as_str(), nix::unistd::UnlinkatFlags::NoRemoveDir);
                0
            }
            Err(e) => e.raw_os_error().unwrap_or(libc::EIO),
        };
        let _ = tx.send(errno);
    });
    spawned.map_err(|e| format!("no thread for the test bind: {e}"))?;
    rx.recv_timeout(std::time::Duration::from_millis(TEST_BIND_DEADLINE_MS.into()))
        .map_err(|_| format!("the test bind did not finish in {TEST_BIND_DEADLINE_MS} ms"))
}

/// As another user: a forked child switches to `who`, enters the directory by its descriptor and binds the bare
/// name. It only makes system calls (the harness has threads) and reports the errno through a pipe, so whoever
/// reaps it (the subreaper thread, or us) does not matter.
fn bind_in_child(dir: &OwnedFd, name: &str, who: &Identity) -> Result<i32, String> {
    // SAFETY: sockaddr_un is plain data; all-zero is a valid value.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (d, s) in addr.sun_path.iter_mut().zip(name.as_bytes()) {
        *d = *s as libc::c_char;
    }
    let cname = CString::new(name).map_err(|_| "NUL in the name".to_string())?;
    let Ok((read_end, write_end)) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) else {
        return Err("no pipe".into());
    };
    // SAFETY: the child calls only async-signal-safe functions on data prepared before the fork, then _exit.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: as above; every pointer refers to memory that lives until _exit.
        unsafe { child_bind(&addr, &cname, dir.as_raw_fd(), who, write_end.as_raw_fd()) }
    }
    drop(write_end);
    if pid < 0 {
        return Err("fork failed".into());
    }
    let errno = read_errno(&read_end);
    if errno.is_none() {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        let _ = nix::unistd::unlinkat(dir, name, nix::unistd::UnlinkatFlags::NoRemoveDir);
    }
    // The subreaper thread may have reaped it already: ECHILD is fine.
    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
    errno.ok_or_else(|| format!("the test bind did not finish in {TEST_BIND_DEADLINE_MS} ms"))
}

/// In the forked child: become `who`, enter the directory, bind, unlink, report the errno (0 on success), exit.
unsafe fn child_bind(addr: &libc::sockaddr_un, name: &CString, dir: i32, who: &Identity, report: i32) -> ! {
    let errno = || *libc::__errno_location();
    // Hold nothing of the harness's (its sockets, other runs' pipes) but the report pipe and the directory.
    let (low, high) = (dir.min(report) as libc::c_uint, dir.max(report) as libc::c_uint);
    libc::syscall(libc::SYS_close_range, 3 as libc::c_uint, low.saturating_sub(1), 0 as libc::c_uint);
    if high > low + 1 {
        libc::syscall(libc::SYS_close_range, low + 1, high - 1, 0 as libc::c_uint);
    }
    libc::syscall(libc::SYS_close_range, high + 1, libc::c_uint::MAX, 0 as libc::c_uint);
    let mut result = match who.become_it() {
        Ok(()) => 0,
        Err(e) => e.raw_os_error().unwrap_or(libc::EPERM),
    };
    if result == 0 && libc::fchdir(dir) != 0 {
        result = errno();
    }
    if result == 0 {
        let fd = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        let len = std::mem::size_of::<libc::sockaddr_un>() as u32;
        if fd < 0 || libc::bind(fd, (addr as *const libc::sockaddr_un).cast(), len) != 0 {
            result = errno();
        } else {
            libc::unlink(name.as_ptr());
        }
    }
    let bytes = result.to_ne_bytes();
    libc::write(report, bytes.as_ptr().cast(), bytes.len());
    libc::_exit(0)
}

/// The child's errno, or None if it did not answer in time.
fn read_errno(fd: &std::os::fd::OwnedFd) -> Option<i32> {
    let mut fds = [PollFd::new(std::os::fd::AsFd::as_fd(fd), PollFlags::POLLIN)];
    if poll(&mut fds, PollTimeout::from(TEST_BIND_DEADLINE_MS)).ok()? == 0 {
        return None;
    }
    let mut bytes = [0u8; 4];
    let n = nix::unistd::read(fd, &mut bytes).ok()?;
    (n == 4).then(|| i32::from_ne_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_bind_reports_its_errno() {
        let dir = tempfile::tempdir().unwrap();
        let not_a_dir = dir.path().join("file");
        std::fs::write(&not_a_dir, b"").unwrap();
        let me = Identity::current();
        assert_eq!(test_bind(&not_a_dir, dir.path(), &me), BindTest::Failed { errno: "ENOTDIR".into() });
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "nothing is left behind");
    }

    #[test]
    fn binds_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(test_bind(dir.path(), dir.path(), &Identity::current()), BindTest::Bound);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "nothing is left behind");
    }

    #[test]
    fn never_binds_through_a_symlink_out_of_the_sandbox() {
        let sandbox = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let data = sandbox.path().join("data");
        std::os::unix::fs::symlink(outside.path(), &data).unwrap();
        let tested = test_bind(&data, sandbox.path(), &Identity::current());
        assert!(matches!(tested, BindTest::NotTried { .. }), "{tested:?}");
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0, "nothing was made outside");
    }
}
