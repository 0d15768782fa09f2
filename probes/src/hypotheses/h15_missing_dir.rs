//! H15: the socket's directory is missing, removed, or not a directory.

use super::facts::{
    errno_lines, first_dir_check, in_other_mount_ns, last_dir_check, no_socket_file, socket_dir, socket_file,
    unexamined_dir,
};
use crate::{per_run, EventKind, Evidence, FileType, Finding, Probe, RunRecord, Status};

pub struct MissingDir;

impl Probe for MissingDir {
    fn id(&self) -> &'static str {
        "H15"
    }
    fn causal_rank(&self) -> u8 {
        40
    }
    fn title(&self) -> &'static str {
        "socket directory missing or not a directory"
    }
    fn checks(&self) -> &'static str {
        "Looks at the socket's directory when the worker starts (which path component is missing or not a \
         directory), watches for its removal during the run (inotify), and looks for ENOENT / ENOTDIR about the \
         socket path in the worker's output."
    }
    fn fix(&self) -> &'static str {
        "Create the socket directory (mkdir -p, with the right owner) before binding, in the worker itself; do \
         not let cleanup code remove a directory a live worker uses."
    }
    fn live_look(&self) -> bool {
        true
    }
    fn evaluate(&self, runs: &[RunRecord]) -> Finding {
        per_run(runs, judge)
    }
}

fn judge(run: &RunRecord) -> Finding {
    let id = run.id;
    let Some(expected) = socket_file(run) else { return no_socket_file() };
    let dir = socket_dir(expected);
    let Some(check) = first_dir_check(run) else { return unexamined_dir(id) };
    let EventKind::DirChecked { file_type, missing_from, .. } = &check.kind else {
        unreachable!("first_dir_check returns a DirChecked")
    };
    let mut evidence = vec![Evidence::at(id, check.t_us, check.kind.describe())];
    let lines = errno_lines(run, &["ENOENT", "ENOTDIR"]);
    evidence.extend(lines.iter().map(|l| Evidence::at(id, l.t_us, l.kind.describe())));
    let removed = run.events.iter().find(|e| {
        run.events.before_stop(e)
            && matches!(&e.kind, EventKind::FileRemoved { path } | EventKind::FileRenamed { from: path, .. } if path == dir)
    });
    if let Some(r) = removed {
        evidence.push(Evidence::at(id, r.t_us, r.kind.describe()));
        return Finding::new(Status::Confirmed, format!("{dir} was removed while the worker ran"), evidence);
    }
    if let Some(found) = recreated_under_listener(run, dir) {
        evidence.extend(found);
        return Finding::new(
            Status::Confirmed,
            format!("{dir} was re-created after the worker started, and its listener's file is gone with the old one"),
            evidence,
        );
    }
    let bound = run.events.first(|k| match k {
        EventKind::SocketBound { path, listening: true, .. } if path == expected => Some(()),
        _ => None,
    });
    // A directory the worker created itself (it exists at the last look) was not missing for it.
    let exists_at_end =
        last_dir_check(run).is_some_and(|e| matches!(&e.kind, EventKind::DirChecked { file_type: FileType::Dir, .. }));
    if *file_type != FileType::Dir && bound.is_none() && !exists_at_end {
        let what = missing_from.as_deref().unwrap_or(dir);
        return Finding::new(
            Status::Confirmed,
            format!(
                "{what} was missing or not a directory when the worker started, and the worker never bound {expected}"
            ),
            evidence,
        );
    }
    if !lines.is_empty() {
        return Finding::new(Status::Confirmed, format!("the worker reports that {dir} does not exist"), evidence);
    }
    if let Some((b, _)) = bound {
        evidence.push(Evidence::at(id, b.t_us, b.kind.describe()));
    }
    let summary = if *file_type == FileType::Dir {
        format!("{dir} existed from the first look on and was not removed")
    } else {
        format!("{dir} was missing at the start, but the worker created it")
    };
    Finding::new(Status::RuledOut, summary, evidence)
}

/// A directory born after a process started, whose listener's file is no longer at its path.
fn recreated_under_listener(run: &RunRecord, dir: &str) -> Option<Vec<Evidence>> {
    run.events.iter().find_map(|newer| {
        let EventKind::DirNewerThanProcess { dir: d, pid, .. } = &newer.kind else { return None };
        // A worker in a mount namespace of its own sees another directory there (H16), not a re-created one.
        if in_other_mount_ns(run, *pid) {
            return None;
        }
        let lost = run.events.iter().find(|e| {
            // The listener's own file, in this very directory (not a truncated or detoured name elsewhere).
            matches!(&e.kind, EventKind::ListenerFile { pid: p, path, bound_file_inode, file_inode_now, .. }
                if p == pid && socket_dir(path) == dir && *file_inode_now != Some(*bound_file_inode))
        })?;
        (d == dir).then(|| {
            vec![
                Evidence::at(run.id, newer.t_us, newer.kind.describe()),
                Evidence::at(run.id, lost.t_us, lost.kind.describe()),
            ]
        })
    })
}
