//! Per-run cgroups (v2): membership a worker cannot shed. Each run's launcher moves itself into the run's cgroup
//! before it spawns anything, so every process of the run is in it, whatever it does to its environment, session
//! or parentage; `cgroup.kill` stops them all at once. Where the unified hierarchy is not writable (not root, no
//! delegated subtree), the runner falls back to the subreaper and the run marker.

use std::path::{Path, PathBuf};

/// Prefix of every invocation's cgroup, followed by the sockdiag pid that made it.
pub(crate) const PREFIX: &str = "sockdiag-";

/// A cgroup: an invocation's (one child per run) or a run's.
#[derive(Clone, Debug)]
pub(crate) struct Cgroup {
    pub(crate) dir: PathBuf,
}

impl Cgroup {
    /// Makes this invocation's cgroup below our own in the unified hierarchy; says why not when it cannot.
    pub(crate) fn create_for(token: &str) -> Result<Cgroup, String> {
        let mount = unified_mount().ok_or("no cgroup v2 hierarchy is mounted")?;
        let own = own_cgroup().ok_or("this process's cgroup v2 path is unknown")?;
        let dir = mount.join(own.trim_start_matches('/')).join(format!("{PREFIX}{token}"));
        std::fs::create_dir(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        Ok(Cgroup { dir })
    }

    /// A cgroup for run `id`, below this one.
    pub(crate) fn run(&self, id: usize) -> std::io::Result<Cgroup> {
        let dir = self.dir.join(format!("run{id}"));
        std::fs::create_dir(&dir)?;
        Ok(Cgroup { dir })
    }

    /// The pids in this cgroup and the cgroups below it, now.
    pub(crate) fn procs(&self) -> Vec<i32> {
        let mut all = procs(&self.dir);
        for child in child_dirs(&self.dir) {
            all.extend(Cgroup { dir: child }.procs());
        }
        all
    }

    /// SIGKILL to every process in the cgroup and below, by the kernel (Linux ≥ 5.14).
    pub(crate) fn kill(&self) {
        let _ = std::fs::write(self.dir.join("cgroup.kill"), "1");
    }

    /// Removes the cgroup and the cgroups below it, deepest first (a cgroup with live processes stays).
    pub(crate) fn remove(&self) {
        for child in child_dirs(&self.dir) {
            Cgroup { dir: child }.remove();
        }
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Moves the calling process into the cgroup at `dir` (the launcher does this before it spawns anything).
pub(crate) fn join(dir: &Path) -> std::io::Result<()> {
    std::fs::write(dir.join("cgroup.procs"), "0")
}

fn procs(dir: &Path) -> Vec<i32> {
    let text = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
    text.lines().filter_map(|l| l.trim().parse().ok()).collect()
}

fn child_dirs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return vec![] };
    entries.flatten().filter(|e| e.file_type().is_ok_and(|t| t.is_dir())).map(|e| e.path()).collect()
}

/// Where the cgroup v2 (unified) hierarchy is mounted, from /proc/self/mountinfo: `/sys/fs/cgroup` on a
/// unified system, `/sys/fs/cgroup/unified` on a hybrid one.
fn unified_mount() -> Option<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|line| {
        let (before, after) = line.split_once(" - ")?;
        let mount_point = before.split_whitespace().nth(4)?;
        (after.split_whitespace().next() == Some("cgroup2")).then(|| PathBuf::from(mount_point))
    })
}

/// This process's path in the unified hierarchy (`0::/path` in /proc/self/cgroup).
fn own_cgroup() -> Option<String> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    text.lines().find_map(|l| l.strip_prefix("0::")).map(str::to_string)
}

/// The cgroups of invocations whose sockdiag is gone (`dead` judges the tag after the prefix), anywhere below the
/// unified hierarchy's root, a few levels deep.
pub(crate) fn orphans(dead: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let Some(mount) = unified_mount() else { return vec![] };
    let mut found = Vec::new();
    let mut level = vec![mount];
    for _ in 0..6 {
        let mut next = Vec::new();
        for dir in level {
            for child in child_dirs(&dir) {
                let name = child.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                match name.strip_prefix(PREFIX) {
                    Some(tag) if dead(tag) => found.push(child),
                    Some(_) => {}
                    None => next.push(child),
                }
            }
        }
        level = next;
    }
    found
}

/// Kills what is left in an orphaned invocation's cgroup and removes it; returns the pids it killed.
pub(crate) fn kill_orphan(dir: &Path) -> Vec<i32> {
    let cgroup = Cgroup { dir: dir.to_path_buf() };
    let pids = cgroup.procs();
    cgroup.kill();
    super::escalation::wait_gone(&pids, super::escalation::GRACE, None);
    cgroup.remove();
    pids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_unified_mount() {
        // Every Linux machine this runs on has cgroup v2 somewhere; the path comes from mountinfo, not a guess.
        let mount = unified_mount().expect("a cgroup2 mount");
        assert!(mount.join("cgroup.procs").exists(), "{}", mount.display());
    }

    #[test]
    fn a_run_cgroup_holds_its_processes_and_kills_them() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: creating cgroups needs root or a delegated subtree");
            return;
        }
        let root = match Cgroup::create_for(&format!("{}-test", std::process::id())) {
            Ok(root) => root,
            Err(why) => return eprintln!("skipped: {why}"),
        };
        let run = root.run(1).unwrap();
        let dir = run.dir.clone();
        // A child that joins the cgroup itself, as the launcher does, forks a grandchild into a new session, then
        // says so.
        let script = format!("echo 0 > {}/cgroup.procs; setsid sleep 30 & echo ready; exec sleep 30", dir.display());
        let mut child = std::process::Command::new("sh")
            .args(["-c", &script])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
        assert_eq!(line.trim(), "ready");
        let members = run.procs();
        assert!(members.len() >= 2 && members.contains(&(child.id() as i32)), "{members:?}");
        run.kill();
        child.wait().unwrap();
        crate::runner::escalation::wait_gone(&members, std::time::Duration::from_secs(10), None);
        assert!(run.procs().is_empty());
        root.remove();
        assert!(!dir.exists());
    }
}
