//! H17: the socket's filesystem cannot host a socket file (9p, NFS, FUSE, vboxsf, cifs, drvfs...).

use super::facts::{errno_lines, last_dir_check, may_create, no_socket_file, socket_file, unexamined_dir};
use super::filesystems::{hosting, name, Hosting};
use crate::{per_run, BindTest, EventKind, Evidence, FileType, Finding, Probe, RunRecord, Status};

pub struct Filesystem;

/// The errnos a filesystem without socket support gives at bind.
const FS_ERRNOS: &[&str] = &["EOPNOTSUPP", "EPERM", "EIO"];

impl Probe for Filesystem {
    fn id(&self) -> &'static str {
        "H17"
    }
    fn causal_rank(&self) -> u8 {
        70
    }
    fn title(&self) -> &'static str {
        "filesystem cannot host the socket"
    }
    fn checks(&self) -> &'static str {
        "Reads the socket directory's filesystem type (statfs f_type), has the harness bind a test socket there, \
         and looks for EOPNOTSUPP / EPERM / EIO at bind (where the mode allows the worker's user) and for a \
         regular file at the expected path while the worker holds a listener bound to it. A directory that does not \
         exist has no filesystem to judge (see H15)."
    }
    fn fix(&self) -> &'static str {
        "Put the socket on a local filesystem (tmpfs such as $XDG_RUNTIME_DIR or /tmp, or ext4), not on a shared \
         folder, network or FUSE mount; keep the data elsewhere if it must stay there."
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
    if let Some(found) = regular_file_at_listener(run) {
        return Finding::new(
            Status::Confirmed,
            format!("a regular file, not a socket, stands at {expected} while the worker listens there"),
            found,
        );
    }
    let Some(check) = last_dir_check(run) else { return unexamined_dir(id) };
    let EventKind::DirChecked { dir, file_type, mode, owner, group, fs_magic, as_uid, as_gids, test_bind, .. } =
        &check.kind
    else {
        unreachable!("last_dir_check returns a DirChecked")
    };
    let mut evidence = vec![Evidence::at(id, check.t_us, check.kind.describe())];
    if *file_type != FileType::Dir {
        return Finding::new(
            Status::NotApplicable,
            format!("{dir} does not exist: no filesystem to judge (see H15)"),
            evidence,
        );
    }
    let fs = name(*fs_magic);
    let allowed = may_create(*mode, *owner, *group, *as_uid, as_gids);
    let hosts = hosting(*fs_magic);
    // Where the mode allows the user and the filesystem is not a plain local one, EPERM comes from the filesystem.
    let fs_refused = matches!(test_bind, BindTest::Failed { errno } if allowed && hosts != Hosting::Yes && FS_ERRNOS.contains(&errno.as_str()));
    let lines = if allowed { errno_lines(run, FS_ERRNOS) } else { errno_lines(run, &["EOPNOTSUPP", "EIO"]) };
    evidence.extend(lines.iter().map(|l| Evidence::at(id, l.t_us, l.kind.describe())));
    if fs_refused || (!lines.is_empty() && hosts != Hosting::Yes) {
        return Finding::new(Status::Confirmed, format!("{dir} is on {fs}, where a socket cannot be bound"), evidence);
    }
    let worker_bound = run.events.first(|k| match k {
        EventKind::SocketBound { path, listening: true, .. } if path == expected => Some(()),
        _ => None,
    });
    match (test_bind, hosts) {
        (BindTest::Bound, _) => {
            Finding::new(Status::RuledOut, format!("{dir} is on {fs}, and a test socket bound there"), evidence)
        }
        (_, Hosting::Yes) if worker_bound.is_some() => {
            let (e, _) = worker_bound.expect("checked");
            evidence.push(Evidence::at(id, e.t_us, e.kind.describe()));
            Finding::new(Status::RuledOut, format!("{dir} is on {fs}, and the worker bound its socket there"), evidence)
        }
        (_, Hosting::Yes) => {
            Finding::new(Status::RuledOut, format!("{dir} is on {fs}, a local filesystem that hosts sockets"), evidence)
        }
        (_, Hosting::No) => {
            Finding::new(Status::Confirmed, format!("{dir} is on {fs}, which cannot hold socket files"), evidence)
        }
        _ => Finding::new(
            Status::Inconclusive,
            format!("{dir} is on {fs}; the test bind did not decide whether it can host a socket"),
            evidence,
        ),
    }
}

/// A regular file at the expected path while a listener of the tree is bound to that path.
fn regular_file_at_listener(run: &RunRecord) -> Option<Vec<Evidence>> {
    let expected = socket_file(run)?;
    let (listener, _) = run.events.first(|k| match k {
        EventKind::SocketBound { path, listening: true, .. } if path == expected => Some(()),
        _ => None,
    })?;
    let file = run.events.iter().find(|e| match &e.kind {
        EventKind::FileCreated { path, file_type: FileType::File } => path == expected,
        EventKind::EndState { path, file_type: Some(FileType::File), .. } => path == expected,
        _ => false,
    })?;
    Some(vec![
        Evidence::at(run.id, listener.t_us, listener.kind.describe()),
        Evidence::at(run.id, file.t_us, file.kind.describe()),
    ])
}

#[cfg(test)]
mod tests {
    use super::super::facts::{dir_checked, dir_missing, record};
    use super::*;

    #[test]
    fn eperm_where_the_mode_allows_confirms_on_a_filesystem_without_sockets() {
        let failed = BindTest::Failed { errno: "EPERM".into() };
        let f = judge(&record(vec![dir_checked(0o1777, 0, 0x1980_0202, 1000, failed)]));
        assert_eq!(f.status, Status::Confirmed, "{}", f.summary);
    }

    #[test]
    fn a_permission_refusal_on_a_local_filesystem_rules_out() {
        let failed = BindTest::Failed { errno: "EACCES".into() };
        let f = judge(&record(vec![dir_checked(0o711, 0, 0xEF53, 65534, failed)]));
        assert_eq!(f.status, Status::RuledOut, "{}", f.summary);
    }

    #[test]
    fn a_missing_directory_leaves_the_runs_that_had_one_to_decide() {
        let missing = record(vec![dir_missing()]);
        assert_eq!(judge(&missing).status, Status::NotApplicable, "{}", judge(&missing).summary);
        let local = record(vec![dir_checked(0o700, 1000, 0xEF53, 1000, BindTest::Bound)]);
        assert_eq!(Filesystem.evaluate(&[local, missing]).status, Status::RuledOut);
    }

    #[test]
    fn a_regular_file_where_the_listener_is_bound_confirms() {
        let f = judge(&record(vec![
            EventKind::SocketBound { pid: 7, inode: 1, path: "/d/w.sock".into(), listening: true },
            EventKind::FileCreated { path: "/d/w.sock".into(), file_type: FileType::File },
        ]));
        assert_eq!(f.status, Status::Confirmed, "{}", f.summary);
    }
}
