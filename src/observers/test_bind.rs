//! The harness's own test bind: a forked child becomes the worker's user, binds a uniquely named socket in a
//! directory, removes it and reports the errno through a pipe.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use sockdiag_probes::BindTest;

use crate::identity::Identity;

/// Names of the harness's test sockets; the fs observer leaves them out of the timeline.
pub(crate) const TEST_BIND_PREFIX: &str = ".sockdiag-testbind-";
/// How long the test bind may take (a network filesystem may hang).
const TEST_BIND_DEADLINE_MS: u16 = 2000;

/// Binds a uniquely named socket in `dir` as `who`, then removes it.
pub(crate) fn test_bind(dir: &Path, who: &Identity) -> BindTest {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let name = format!("{TEST_BIND_PREFIX}{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
    let path = dir.join(name);
    let bytes = path.as_os_str().as_bytes();
    // SAFETY: sockaddr_un is plain data; all-zero is a valid value.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    if bytes.len() >= addr.sun_path.len() {
        return BindTest::NotTried { why: format!("{} is longer than sun_path", path.display()) };
    }
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (d, s) in addr.sun_path.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    let Ok(cpath) = CString::new(bytes) else { return BindTest::NotTried { why: "NUL in the path".into() } };
    let me = Identity::current();
    let errno = if me.uid != who.uid || me.gid != who.gid {
        bind_in_child(&addr, &cpath, &path, who)
    } else {
        bind_on_thread(path)
    };
    match errno {
        Ok(0) => BindTest::Bound,
        Ok(e) => BindTest::Failed { errno: format!("{:?}", nix::errno::Errno::from_raw(e)) },
        Err(why) => BindTest::NotTried { why },
    }
}

/// As the harness itself: a thread binds (a hung filesystem holds the thread, not the run) and reports the errno.
fn bind_on_thread(path: std::path::PathBuf) -> Result<i32, String> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        let errno = match std::os::unix::net::UnixListener::bind(&path) {
            Ok(_) => {
                let _ = std::fs::remove_file(&path);
                0
            }
            Err(e) => e.raw_os_error().unwrap_or(libc::EIO),
        };
        let _ = tx.send(errno);
    });
    rx.recv_timeout(std::time::Duration::from_millis(TEST_BIND_DEADLINE_MS.into()))
        .map_err(|_| format!("the test bind did not finish in {TEST_BIND_DEADLINE_MS} ms"))
}

/// As another user: a forked child switches to `who`. It only makes system calls (the harness has threads) and
/// reports the errno through a pipe, so whoever reaps it (the subreaper thread, or us) does not matter.
fn bind_in_child(addr: &libc::sockaddr_un, cpath: &CString, path: &Path, who: &Identity) -> Result<i32, String> {
    let Ok((read_end, write_end)) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) else {
        return Err("no pipe".into());
    };
    // SAFETY: the child calls only async-signal-safe functions on data prepared before the fork, then _exit.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: as above; every pointer refers to memory that lives until _exit.
        unsafe { child_bind(addr, cpath, who, std::os::fd::AsRawFd::as_raw_fd(&write_end)) }
    }
    drop(write_end);
    if pid < 0 {
        return Err("fork failed".into());
    }
    let errno = read_errno(&read_end);
    if errno.is_none() {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        let _ = std::fs::remove_file(path);
    }
    // The subreaper thread may have reaped it already: ECHILD is fine.
    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
    errno.ok_or_else(|| format!("the test bind did not finish in {TEST_BIND_DEADLINE_MS} ms"))
}

/// In the forked child: become `who`, bind, unlink, report the errno (0 on success), exit.
unsafe fn child_bind(addr: &libc::sockaddr_un, path: &CString, who: &Identity, report: i32) -> ! {
    let errno = || *libc::__errno_location();
    // Hold nothing of the harness's (its sockets, other runs' pipes) but the report pipe.
    let report_fd = report as libc::c_uint;
    libc::syscall(libc::SYS_close_range, 3 as libc::c_uint, report_fd.saturating_sub(1), 0 as libc::c_uint);
    libc::syscall(libc::SYS_close_range, report_fd + 1, libc::c_uint::MAX, 0 as libc::c_uint);
    let mut result = match who.become_it() {
        Ok(()) => 0,
        Err(e) => e.raw_os_error().unwrap_or(libc::EPERM),
    };
    if result == 0 {
        let fd = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        let len = std::mem::size_of::<libc::sockaddr_un>() as u32;
        if fd < 0 || libc::bind(fd, (addr as *const libc::sockaddr_un).cast(), len) != 0 {
            result = errno();
        } else {
            libc::unlink(path.as_ptr());
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
        assert_eq!(test_bind(&not_a_dir, &Identity::current()), BindTest::Failed { errno: "ENOTDIR".into() });
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "nothing is left behind");
    }
}
