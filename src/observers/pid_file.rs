//! Pid file observer: the pid the profile's pid file names, whether it is alive, and whether it is the worker
//! (a process of this run) — or something else that happens to have that pid.

use std::path::Path;

use procfs::process::Process;
use sockdiag_probes::{EventKind, PidFileState};

/// More than any pid file holds: a link to /dev/zero or a huge file is read no further.
const MAX_BYTES: u64 = 4096;

/// Reads the pid file (beneath the sandbox, never a FIFO, bounded) and checks the pid it names; `ours` says
/// whether a live pid belongs to this run.
pub(crate) fn check(path: &Path, sandbox: &Path, ours: &dyn Fn(i32) -> bool) -> EventKind {
    let read = crate::confine::read_bounded(path, Some(sandbox), MAX_BYTES);
    let (pid, state, detail) = match read.map(|b| String::from_utf8_lossy(&b).into_owned()) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (None, PidFileState::Absent, "absent".to_string()),
        Err(e) => (None, PidFileState::Invalid, format!("unreadable: {e}")),
        Ok(text) => match text.split_whitespace().next().and_then(|t| t.parse::<i32>().ok()).filter(|p| *p > 0) {
            None => {
                (None, PidFileState::Invalid, format!("holds no pid: {:?}", text.chars().take(80).collect::<String>()))
            }
            Some(pid) => {
                let (state, detail) = judge(pid, ours);
                (Some(pid), state, detail)
            }
        },
    };
    EventKind::PidFile { path: path.display().to_string(), pid, state, detail }
}

fn judge(pid: i32, ours: &dyn Fn(i32) -> bool) -> (PidFileState, String) {
    let process = Process::new(pid).ok().filter(|p| p.stat().is_ok_and(|s| s.state != 'Z'));
    let Some(p) = process else {
        return (PidFileState::Gone, format!("names pid {pid}, which is not running"));
    };
    let (exe, cmdline) = (p.exe(), p.cmdline().map(|c| c.join(" ")).unwrap_or_default());
    // A process in the middle of exiting has already lost its exe and command line.
    let Ok(exe) =
        exe.map(|e| e.display().to_string()).or_else(|e| if cmdline.is_empty() { Err(e) } else { Ok("?".into()) })
    else {
        return (PidFileState::Gone, format!("names pid {pid}, which is exiting"));
    };
    if ours(pid) {
        (PidFileState::Worker, format!("names pid {pid} ({cmdline}), a live process of the worker's tree"))
    } else {
        (PidFileState::NotWorker, format!("names pid {pid} ({exe}: {cmdline}), alive but not a process of this run"))
    }
}
