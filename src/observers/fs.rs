//! Filesystem observer: inotify (through `notify`) on the sandbox and the socket's directory, armed before the
//! spawn, so a socket file that lives for a microsecond is still seen.

use std::collections::HashSet;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use notify::event::{ModifyKind, RenameMode};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use sockdiag_probes::{EventKind, FileType};

use super::{Msg, Sink};

/// What the watcher should report beyond sockets and directories.
pub(crate) struct Interest {
    /// The socket path clients expect (none for a TCP endpoint).
    pub(crate) expected: Option<PathBuf>,
    /// Files the run loop tails (stdio in file mode): growth is forwarded, not recorded. The flag is raised when
    /// a notification is on its way and lowered by the reader, so a flood of writes makes one message, not millions.
    pub(crate) tailed: Vec<(PathBuf, Arc<AtomicBool>)>,
    /// The profile's log files: their creation and growth are forwarded (one flag for them all), not recorded.
    pub(crate) logs: (Vec<glob::Pattern>, Arc<AtomicBool>),
    /// The harness's sync file: its creation means every earlier event has been delivered.
    pub(crate) barrier: PathBuf,
}

impl Interest {
    fn is_expected(&self, path: &Path) -> bool {
        self.expected.as_deref() == Some(path)
    }

    fn is_log(&self, path: &Path) -> bool {
        self.logs.0.iter().any(|p| p.matches_path(path))
    }
}

thread_local! {
    /// Made on the watcher's thread at its first event: from then on it runs promptly when an event is due.
    static PROMPT: () = run_promptly();
}

/// A socket file's creation is stamped when this thread reads the event. On two busy cores an ordinary thread may
/// wait a whole time slice (milliseconds) for a CPU; asking the scheduler for a short slice (EEVDF, Linux ≥ 6.12)
/// gives it an early deadline, so it preempts promptly when every CPU is busy, yet is still woken on an idle CPU
/// when there is one (a real-time thread would preempt the worker itself). Needs no privilege; older kernels
/// ignore the slice and the thread stays an ordinary one.
fn run_promptly() {
    /// `struct sched_attr` (SCHED_ATTR_SIZE_VER1); the libc crate has the system call but not the struct.
    #[repr(C)]
    struct SchedAttr {
        size: u32,
        policy: u32,
        flags: u64,
        nice: i32,
        priority: u32,
        /// For SCHED_OTHER: the slice requested, in ns (0.1 ms is the shortest the kernel takes).
        runtime: u64,
        deadline: u64,
        period: u64,
        util_min: u32,
        util_max: u32,
    }
    // SAFETY: getpriority reads the calling thread's nice value; -1 is also a valid value, kept as is.
    let nice = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
    let attr = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        policy: libc::SCHED_OTHER as u32,
        flags: 0,
        nice,
        priority: 0,
        runtime: 100_000,
        deadline: 0,
        period: 0,
        util_min: 0,
        util_max: 0,
    };
    // SAFETY: sched_setattr(2) on the calling thread (pid 0) with a struct of the size it declares.
    unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) };
}

/// Starts watching `roots` recursively. Dropping the watcher stops it. Until its first event (see `PROMPT`),
/// its thread is an ordinary one: the run makes one (`sync_fs`) before the worker starts.
pub(crate) fn watch(roots: &[PathBuf], interest: Interest, sink: Sink) -> anyhow::Result<RecommendedWatcher> {
    let mut recorded: HashSet<PathBuf> = HashSet::new();
    let handler = move |res: notify::Result<notify::Event>| {
        let at = Instant::now();
        PROMPT.with(|_| ());
        let Ok(event) = res else { return };
        for path in &event.paths {
            if let Some(msg) = translate(&event.kind, path, &interest, &mut recorded) {
                let msg = match msg {
                    Msg::Event(e) => Msg::Event(sink.clock.stamp_at(at, e.kind)),
                    other => other,
                };
                sink.send(msg);
            }
        }
    };
    // A symlink the worker plants (to `/`, or a loop) is a file to the watcher, not a tree to watch.
    let config = notify::Config::default().with_follow_symlinks(false);
    let mut watcher = RecommendedWatcher::new(handler, config).context("cannot start inotify")?;
    for root in roots {
        // notify ignores a failure to start its event loop's thread (a worker used up the process limit) and then
        // panics on the first watch, and again when dropped: that watcher is forgotten, the run fails.
        let added =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| watcher.watch(root, RecursiveMode::Recursive)));
        let Ok(added) = added else {
            std::mem::forget(watcher);
            anyhow::bail!("cannot start inotify: no thread for its event loop (is the process limit reached?)");
        };
        added.map_err(|e| {
            crate::error::UsageError(format!("socket directory {} cannot be watched: {e}", root.display()))
        })?;
    }
    Ok(watcher)
}

fn translate(
    kind: &notify::EventKind,
    path: &Path,
    interest: &Interest,
    recorded: &mut HashSet<PathBuf>,
) -> Option<Msg> {
    use notify::EventKind as K;
    let event = |kind| Some(Msg::Event(sockdiag_probes::Event { t_us: 0, kind }));
    match kind {
        K::Create(_) if path == interest.barrier => Some(Msg::FsSynced),
        _ if path == interest.barrier => None,
        K::Create(_) | K::Modify(_) if interest.is_log(path) => {
            (!interest.logs.1.swap(true, Ordering::AcqRel)).then(|| Msg::Grew(path.to_path_buf()))
        }
        K::Create(_) | K::Modify(ModifyKind::Name(RenameMode::To)) => {
            // A file that lived for microseconds is gone before this look: its name is the fact, its type unknown.
            let file_type = match file_type(path) {
                FileType::Gone => FileType::Unknown,
                t => t,
            };
            if !worth_recording(path, file_type, interest) {
                return None;
            }
            recorded.insert(path.to_path_buf());
            event(EventKind::FileCreated { path: path.display().to_string(), file_type })
        }
        K::Remove(_) if recorded.contains(path) || interest.is_expected(path) || is_watched_dir(path, interest) => {
            event(EventKind::FileRemoved { path: path.display().to_string() })
        }
        K::Modify(ModifyKind::Name(RenameMode::From)) if recorded.contains(path) || interest.is_expected(path) => {
            event(EventKind::FileRenamed { from: path.display().to_string(), to: None })
        }
        K::Modify(ModifyKind::Data(_)) | K::Modify(ModifyKind::Any) => {
            let (_, pending) = interest.tailed.iter().find(|(t, _)| t == path)?;
            (!pending.swap(true, Ordering::AcqRel)).then(|| Msg::Grew(path.to_path_buf()))
        }
        _ => None,
    }
}

/// The socket's own directory: its removal is evidence (H15).
fn is_watched_dir(path: &Path, interest: &Interest) -> bool {
    interest.expected.as_deref().and_then(Path::parent) == Some(path)
}

/// Sockets, directories, `*.sock` names and the expected path; not the worker's ordinary files, nor the
/// harness's own test binds.
fn worth_recording(path: &Path, file_type: FileType, interest: &Interest) -> bool {
    let test_bind =
        path.file_name().is_some_and(|n| n.to_string_lossy().starts_with(super::test_bind::TEST_BIND_PREFIX));
    !test_bind
        && (interest.is_expected(path)
            || matches!(file_type, FileType::Socket | FileType::Dir)
            || path.extension().is_some_and(|e| e == "sock"))
}

/// The type of what is at `path` now, without following a symlink.
pub(crate) fn file_type(path: &Path) -> FileType {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => FileType::Socket,
        Ok(m) if m.is_dir() => FileType::Dir,
        Ok(m) if m.file_type().is_symlink() => FileType::Symlink,
        Ok(m) if m.is_file() => FileType::File,
        Ok(_) => FileType::Other,
        Err(_) => FileType::Gone,
    }
}

/// What is at `path` now, as an event: looked at right after a "listening" line (did the file exist yet?).
pub(crate) fn file_check(path: &Path) -> EventKind {
    let file_type = Some(file_type(path)).filter(|t| *t != FileType::Gone);
    EventKind::FileChecked { path: path.display().to_string(), file_type }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observers::Clock;

    fn sink() -> (Sink, crossbeam_channel::Receiver<Msg>) {
        let (tx, rx) = crossbeam_channel::unbounded();
        (Sink { clock: Clock::start(), tx }, rx)
    }

    #[test]
    fn a_socket_in_a_new_directory_is_seen_and_the_reader_asks_for_short_slices() {
        let dir = tempfile::tempdir().unwrap();
        let expected = dir.path().join("data/worker-1.sock");
        let barrier = dir.path().join("barrier");
        let interest = Interest {
            expected: Some(expected.clone()),
            tailed: vec![],
            logs: (vec![], Arc::new(AtomicBool::new(false))),
            barrier: barrier.clone(),
        };
        let (sink, rx) = sink();
        let _watcher = watch(&[dir.path().to_path_buf()], interest, sink).unwrap();
        std::fs::File::create(&barrier).unwrap();
        let deadline = Instant::now() + std::time::Duration::from_secs(5);
        assert!(matches!(rx.recv_deadline(deadline), Ok(Msg::FsSynced)));
        // The kernel shows a thread's slice in its sched file (Linux ≥ 6.12); older ones have no slice to ask for.
        let slices: Vec<Option<u64>> = procfs::process::Process::myself()
            .unwrap()
            .tasks()
            .unwrap()
            .flatten()
            .filter(|t| t.stat().is_ok_and(|s| s.comm.starts_with("notify-rs")))
            .map(|t| {
                let sched = std::fs::read_to_string(format!("/proc/self/task/{}/sched", t.tid)).unwrap_or_default();
                let slice = sched.lines().find_map(|l| l.strip_prefix("se.slice"))?;
                slice.trim_start_matches([' ', ':']).trim().parse().ok()
            })
            .collect();
        if slices.iter().any(Option::is_some) {
            assert!(
                slices.contains(&Some(100_000)),
                "after its first event the reader asks for 0.1 ms slices: {slices:?}"
            );
        }
        let created = |path: &Path| {
            std::iter::from_fn(|| rx.recv_deadline(deadline).ok()).find_map(|m| match m {
                Msg::Event(e) => match e.kind {
                    EventKind::FileCreated { path: p, file_type } if p == path.display().to_string() => Some(file_type),
                    _ => None,
                },
                _ => None,
            })
        };
        // The new directory is watched once its creation has been reported.
        std::fs::create_dir(dir.path().join("data")).unwrap();
        assert_eq!(created(&dir.path().join("data")), Some(FileType::Dir));
        let _listener = std::os::unix::net::UnixListener::bind(&expected).unwrap();
        assert_eq!(created(&expected), Some(FileType::Socket));
    }

    #[test]
    fn a_symlinked_directory_is_not_watched_through() {
        let (dir, elsewhere) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        std::os::unix::fs::symlink(elsewhere.path(), dir.path().join("out")).unwrap();
        let expected = dir.path().join("out/w.sock");
        let barrier = dir.path().join("barrier");
        let logs = (vec![], Arc::new(AtomicBool::new(false)));
        let interest = Interest { expected: Some(expected.clone()), tailed: vec![], logs, barrier: barrier.clone() };
        let (sink, rx) = sink();
        let _watcher = watch(&[dir.path().to_path_buf()], interest, sink).unwrap();
        let _listener = std::os::unix::net::UnixListener::bind(elsewhere.path().join("w.sock")).unwrap();
        std::fs::File::create(&barrier).unwrap();
        let deadline = Instant::now() + std::time::Duration::from_secs(5);
        let mut synced = false;
        let before_sync: Vec<Msg> = std::iter::from_fn(|| rx.recv_deadline(deadline).ok())
            .take_while(|m| {
                synced = matches!(m, Msg::FsSynced);
                !synced
            })
            .collect();
        assert!(synced, "the barrier was seen");
        let through_link =
            before_sync.iter().any(|m| matches!(m, Msg::Event(e) if e.kind.describe().contains("out/w.sock")));
        assert!(!through_link, "nothing is seen through the symlink");
    }
}
