//! Ctrl-C and SIGTERM in the middle of a matrix: every process of this invocation gets SIGTERM, then SIGKILL
//! after a grace period, the sandboxes are removed (unless kept), and sockdiag exits 130 or 143.

use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use signal_hook::consts::{SIGINT, SIGTERM};

/// How long workers get between SIGTERM and SIGKILL; the whole stop stays well under 2 s.
const TERM_GRACE: Duration = Duration::from_millis(1000);
const KILL_GRACE: Duration = Duration::from_millis(500);

/// Sandboxes in use, removed on interrupt unless `--keep-sandbox`; `None` once stopping.
static SANDBOXES: Mutex<Option<Vec<PathBuf>>> = Mutex::new(Some(Vec::new()));

/// Creates a sandbox directory under the registry's lock, so an interrupt never misses one being made.
pub(crate) fn create_sandbox(
    make: impl FnOnce() -> anyhow::Result<tempfile::TempDir>,
) -> anyhow::Result<tempfile::TempDir> {
    let mut list = SANDBOXES.lock().expect("sandbox list");
    let Some(list) = list.as_mut() else { anyhow::bail!("stopping") };
    let dir = make()?;
    list.push(dir.path().to_path_buf());
    Ok(dir)
}

pub(crate) fn unregister_sandbox(dir: &Path) {
    if let Some(list) = SANDBOXES.lock().expect("sandbox list").as_mut() {
        list.retain(|d| d != dir);
    }
}

/// Installs the handler for this invocation: its processes carry `SOCKDIAG_RUN=<token>-…`.
pub(crate) fn install(token: String, keep_sandbox: bool) -> anyhow::Result<()> {
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    std::thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            eprintln!("sockdiag: {}, stopping every worker", if sig == SIGINT { "interrupted" } else { "terminated" });
            // From here on no sandbox is made and nothing is spawned; the locks are held until exit.
            let mut sandboxes = SANDBOXES.lock().expect("sandbox list");
            let dirs = sandboxes.take().unwrap_or_default();
            super::reaper::freeze_spawning();
            stop_all(&token);
            if !keep_sandbox {
                for dir in dirs {
                    let _ = std::fs::remove_dir_all(dir);
                }
            }
            std::process::exit(128 + sig);
        }
    });
    Ok(())
}

/// SIGTERM to every marked process, SIGKILL to those still there after the grace period.
pub(crate) fn stop_all(token: &str) {
    for (signal, grace) in [(Signal::SIGTERM, TERM_GRACE), (Signal::SIGKILL, KILL_GRACE)] {
        let pids = marked(token);
        if pids.is_empty() {
            return;
        }
        for &pid in &pids {
            let _ = kill(Pid::from_raw(pid), signal);
        }
        wait_gone(&pids, grace);
    }
}

/// Live (non-zombie) processes whose environment carries a marker of this invocation, wherever they are.
pub(crate) fn marked(token: &str) -> Vec<i32> {
    let prefix = format!("{token}-");
    super::marker::processes_everywhere(|m| m.starts_with(&prefix))
}

/// Waits, on pidfds, until every pid has exited or the grace period ends.
pub(crate) fn wait_gone(pids: &[i32], grace: Duration) {
    let deadline = Instant::now() + grace;
    let mut fds: Vec<OwnedFd> = pids.iter().filter_map(|&p| pidfd_open(p)).collect();
    while !fds.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        let mut polled: Vec<PollFd> = fds.iter().map(|f| PollFd::new(f.as_fd(), PollFlags::POLLIN)).collect();
        let timeout = PollTimeout::try_from(left.as_millis().min(60_000) as i32).unwrap_or(PollTimeout::ZERO);
        if poll(&mut polled, timeout).unwrap_or(0) == 0 {
            return;
        }
        let done: Vec<bool> = polled.iter().map(|p| p.revents().is_some_and(|r| !r.is_empty())).collect();
        let mut i = 0;
        fds.retain(|_| {
            i += 1;
            !done[i - 1]
        });
    }
}

/// A pidfd becomes readable when the process exits: an event to wait on instead of polling /proc.
fn pidfd_open(pid: i32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open(2) with no flags; a non-negative return is a new descriptor we own.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as i32) })
}
