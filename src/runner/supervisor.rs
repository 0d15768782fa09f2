//! The supervisor of one invocation, made once in `main` and passed down in the plan: the reaper (who each
//! process belongs to), the temporary directories in use, the ports handed out, and the invocation's token. An
//! interrupt stops everything through it; nothing about supervision lives in a process-wide static.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::cgroup::Cgroup;
use super::escalation::{self, Escalation, Members};
use super::port::Ports;
use super::reaper::Reaper;
use crate::context::Source;

pub(crate) struct Supervisor {
    /// Identifies this invocation's processes (with the run id) in their environment: `SOCKDIAG_RUN=<token>-…`.
    pub(crate) token: String,
    pub(crate) reaper: Reaper,
    pub(crate) temp_dirs: Arc<TempDirs>,
    pub(crate) ports: Ports,
    /// The invocation's cgroup, or why there is none (then membership is the subreaper's and the marker's).
    pub(crate) cgroup: Result<Cgroup, String>,
    /// Held while this invocation lives: what tells a later one that our leftovers are not leftovers yet.
    owner: Mutex<Option<super::owner::OwnerLock>>,
    keep_sandbox: bool,
    /// Written once a second interrupt asks to skip the grace periods: every wait of the shutdown polls it.
    hurry: (OwnedFd, OwnedFd),
    hurried: AtomicBool,
}

impl Supervisor {
    /// Starts supervising: from here on every child of this process is reaped by the supervisor's reaper.
    pub(crate) fn start(token: String, keep_sandbox: bool) -> anyhow::Result<Arc<Supervisor>> {
        // Before anything that carries the token exists.
        let owner = super::owner::OwnerLock::hold(&token);
        let cgroup = Cgroup::create_for(&token);
        if let Ok(root) = &cgroup {
            super::keeper::start(&root.dir)?;
        }
        Ok(Arc::new(Supervisor {
            cgroup,
            token: token.clone(),
            reaper: Reaper::start(),
            temp_dirs: Arc::new(TempDirs::new(token.clone())),
            owner: Mutex::new(owner),
            ports: Ports::default(),
            keep_sandbox,
            // Close-on-exec: no launcher or worker inherits it.
            hurry: nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?,
            hurried: AtomicBool::new(false),
        }))
    }

    /// A cgroup for run `id`, where the invocation has one.
    pub(crate) fn run_cgroup(&self, id: usize) -> Option<Cgroup> {
        self.cgroup.as_ref().ok().and_then(|root| root.run(id).ok())
    }

    /// What watched the runs' processes, and why a source did not run.
    pub(crate) fn sources(&self) -> Vec<Source> {
        let cgroup = match &self.cgroup {
            Ok(root) => Source::new("cgroup v2", true, format!("one cgroup per run under {}", root.dir.display())),
            Err(why) => {
                Source::new("cgroup v2", false, format!("{why}: membership by the subreaper and the run marker"))
            }
        };
        vec![
            cgroup,
            Source::new("subreaper", true, "every orphan of a run comes back to sockdiag with its exit status"),
            Source::new("inotify", true, "the sandbox and the socket's directory"),
            Source::new("/proc", true, "the tree, its fds and sockets, looked at on every event"),
            Source::new("sock_diag", true, "the kernel's Unix and TCP socket tables"),
        ]
    }

    /// Stops every process of this invocation, wherever it is (a last sweep after the runs): those carrying its
    /// marker, and those in its cgroup.
    pub(crate) fn stop_all(&self, how: Escalation) {
        let prefix = format!("{}-", self.token);
        let marked = || super::marker::processes_everywhere(|m| m.starts_with(&prefix));
        let cgroup = self.cgroup.as_ref().ok();
        escalation::stop(&mut Members { marked: &marked, cgroup, hurry: Some(self.hurry.0.as_fd()) }, how);
    }

    /// After the runs: nothing is left, so the invocation's cgroup goes (the keeper then finds nothing to do).
    pub(crate) fn finish(&self) {
        self.stop_all(Escalation::Polite);
        if let Ok(root) = &self.cgroup {
            root.remove();
        }
    }

    /// The interrupt: nothing more is made or spawned, every process is stopped, every temporary directory removed
    /// (unless kept).
    pub(crate) fn shut_down(&self) {
        let dirs = self.temp_dirs.close();
        self.reaper.freeze_spawning();
        self.stop_all(Escalation::Polite);
        if !self.keep_sandbox {
            for dir in dirs {
                let _ = super::removal::remove_tree(&dir);
            }
        }
        self.release_owner();
    }

    /// Every run is over and every temporary directory gone: the owner lock (and its file) can go too.
    pub(crate) fn release_owner(&self) {
        self.owner.lock().expect("owner lock").take();
    }

    /// `result`, unless it failed while an interrupt stops everything: then the failure is the interrupt's doing
    /// (it removed the directory being written, killed the process being waited for), and the interrupt's thread
    /// ends the process with 128 + its signal; this thread waits for that instead of exiting with an error first.
    pub(crate) fn unless_stopping<T>(&self, result: anyhow::Result<T>) -> anyhow::Result<T> {
        if result.is_err() && self.temp_dirs.closed() {
            loop {
                std::thread::park();
            }
        }
        result
    }

    /// Skips what is left of the shutdown's grace periods (a second interrupt).
    pub(crate) fn hurry(&self) {
        if !self.hurried.swap(true, Ordering::SeqCst) {
            let _ = nix::unistd::write(&self.hurry.1, b"!");
        }
    }
}

/// The temporary directories of this invocation (sandboxes, the database template), registered before they are
/// made so that an interrupt never misses one; closed (`None`) once stopping.
pub(crate) struct TempDirs {
    dirs: Mutex<Option<Vec<PathBuf>>>,
    /// The invocation's token, which every directory's name starts with (after the prefix).
    pub(crate) token: String,
}

impl TempDirs {
    pub(crate) fn new(token: String) -> TempDirs {
        TempDirs { dirs: Mutex::new(Some(Vec::new())), token }
    }

    /// Makes a directory under the registry's lock, so an interrupt never misses one being made.
    pub(crate) fn create(
        &self,
        make: impl FnOnce() -> anyhow::Result<tempfile::TempDir>,
    ) -> anyhow::Result<tempfile::TempDir> {
        let mut list = self.dirs.lock().expect("temp dir list");
        let Some(list) = list.as_mut() else { anyhow::bail!("stopping") };
        let dir = make()?;
        list.push(dir.path().to_path_buf());
        Ok(dir)
    }

    /// The directory is no longer ours to clean (removed, or kept on purpose).
    pub(crate) fn forget(&self, dir: &Path) {
        if let Some(list) = self.dirs.lock().expect("temp dir list").as_mut() {
            list.retain(|d| d != dir);
        }
    }

    /// True once stopping: no directory is made any more.
    fn closed(&self) -> bool {
        self.dirs.lock().expect("temp dir list").is_none()
    }

    /// No directory is made from here on; returns those in use.
    fn close(&self) -> Vec<PathBuf> {
        self.dirs.lock().expect("temp dir list").take().unwrap_or_default()
    }
}
