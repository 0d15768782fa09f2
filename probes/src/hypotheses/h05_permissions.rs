//! H5: the worker's user may not create its socket in the socket directory.

use super::facts::{errno_lines, last_dir_check, may_create, no_socket_file, socket_file, unexamined_dir};
use super::filesystems::{hosting, Hosting};
use crate::{per_run, BindTest, EventKind, Evidence, FileType, Finding, Probe, RunRecord, Status};

pub struct Permissions;

impl Probe for Permissions {
    fn id(&self) -> &'static str {
        "H5"
    }
    fn causal_rank(&self) -> u8 {
        30
    }
    fn title(&self) -> &'static str {
        "permissions on the socket directory"
    }
    fn checks(&self) -> &'static str {
        "Reads the socket directory's mode and owner against the worker's uid and groups, has the harness bind a \
         test socket there as that uid (a forked child that switches user first), and looks for EACCES / EPERM \
         about the socket path in the worker's output. A directory that does not exist has no permissions to judge \
         (see H15)."
    }
    fn fix(&self) -> &'static str {
        "Put the socket in a directory the worker's user owns (e.g. its data dir or $XDG_RUNTIME_DIR), or give \
         that directory to the user (chown) or to a group the worker is in, with write and search permission."
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
    let Some(check) = last_dir_check(run) else { return unexamined_dir(id) };
    let EventKind::DirChecked { dir, file_type, mode, owner, group, fs_magic, as_uid, as_gids, test_bind, .. } =
        &check.kind
    else {
        unreachable!("last_dir_check returns a DirChecked")
    };
    let mut evidence = vec![Evidence::at(id, check.t_us, check.kind.describe())];
    if *file_type != FileType::Dir {
        return missing_dir(run, dir, evidence);
    }
    let fs_hosts = hosting(*fs_magic) != Hosting::No;
    let allowed = may_create(*mode, *owner, *group, *as_uid, as_gids);
    // EPERM from a filesystem that cannot hold sockets is H17's, not a permission problem.
    let errnos: &[&str] = if fs_hosts { &["EACCES", "EPERM"] } else { &["EACCES"] };
    let lines = errno_lines(run, errnos);
    evidence.extend(lines.iter().map(|l| Evidence::at(id, l.t_us, l.kind.describe())));
    let bind_denied =
        matches!(test_bind, BindTest::Failed { errno } if errno == "EACCES" || (errno == "EPERM" && fs_hosts));
    if !allowed || bind_denied || !lines.is_empty() {
        let why = if !allowed {
            format!("uid {as_uid} may not create entries in {dir} (mode {mode:04o}, owner {owner}:{group})")
        } else if bind_denied {
            format!("the harness's test bind in {dir} as uid {as_uid} was refused")
        } else {
            format!("the worker reports a permission error about its socket in {dir}")
        };
        return Finding::new(Status::Confirmed, why, evidence);
    }
    let worker_bound = run.events.first(|k| match k {
        EventKind::SocketBound { path, listening: true, .. } if path == expected => Some(()),
        _ => None,
    });
    if let Some((e, _)) = worker_bound {
        evidence.push(Evidence::at(id, e.t_us, e.kind.describe()));
    }
    match test_bind {
        BindTest::Bound => Finding::new(
            Status::RuledOut,
            format!(
                "uid {as_uid} may create entries in {dir}, and the harness's test bind there as that uid succeeded"
            ),
            evidence,
        ),
        _ if worker_bound.is_some() => Finding::new(
            Status::RuledOut,
            format!("uid {as_uid} may create entries in {dir}, and the worker bound its socket there"),
            evidence,
        ),
        BindTest::NotTried { why } => Finding::new(
            Status::RuledOut,
            format!("the mode of {dir} (mode {mode:04o}, owner {owner}:{group}) lets uid {as_uid} create entries (no test bind: {why})"),
            evidence,
        ),
        BindTest::Failed { .. } if !fs_hosts => Finding::new(
            Status::RuledOut,
            format!("uid {as_uid} may create entries in {dir}; the bind fails because of its filesystem (see H17)"),
            evidence,
        ),
        _ => Finding::new(
            Status::Inconclusive,
            format!("the mode of {dir} allows uid {as_uid}, but the test bind did not confirm it"),
            evidence,
        ),
    }
}

/// No socket directory: nothing has permissions to judge (see H15), unless the worker says it was refused there
/// (creating the directory, say).
fn missing_dir(run: &RunRecord, dir: &str, mut evidence: Vec<Evidence>) -> Finding {
    let lines = errno_lines(run, &["EACCES"]);
    if lines.is_empty() {
        return Finding::new(
            Status::NotApplicable,
            format!("the socket directory {dir} does not exist: no permissions to judge (see H15)"),
            evidence,
        );
    }
    evidence.extend(lines.iter().map(|l| Evidence::at(run.id, l.t_us, l.kind.describe())));
    Finding::new(Status::Confirmed, format!("the worker reports a permission error about {dir}"), evidence)
}

#[cfg(test)]
mod tests {
    use super::super::facts::{dir_checked, dir_missing, record};
    use super::*;

    const EXT4: u64 = 0xEF53;
    const MQUEUE: u64 = 0x1980_0202;

    #[test]
    fn a_directory_the_user_may_not_write_confirms() {
        let failed = BindTest::Failed { errno: "EACCES".into() };
        let f = judge(&record(vec![dir_checked(0o711, 0, EXT4, 65534, failed)]));
        assert_eq!(f.status, Status::Confirmed, "{}", f.summary);
    }

    #[test]
    fn eperm_from_a_filesystem_without_sockets_is_not_a_permission_problem() {
        let failed = BindTest::Failed { errno: "EPERM".into() };
        let f = judge(&record(vec![dir_checked(0o1777, 0, MQUEUE, 0, failed)]));
        assert_eq!(f.status, Status::RuledOut, "{}", f.summary);
    }

    #[test]
    fn the_worker_reporting_eacces_about_its_socket_confirms() {
        let line = EventKind::Line {
            stream: crate::Stream::Stderr,
            text: "Error: listen EACCES: permission denied /d/w.sock".into(),
            markers: vec![],
        };
        let f = judge(&record(vec![dir_checked(0o755, 0, EXT4, 0, BindTest::Bound), line]));
        assert_eq!(f.status, Status::Confirmed, "{}", f.summary);
    }

    #[test]
    fn a_missing_directory_has_no_permissions_to_judge_unless_the_worker_was_refused() {
        let f = judge(&record(vec![dir_missing()]));
        assert_eq!(f.status, Status::NotApplicable, "{}", f.summary);
        let line = EventKind::Line {
            stream: crate::Stream::Stderr,
            text: "Error: mkdir /d: EACCES: permission denied".into(),
            markers: vec![],
        };
        let f = judge(&record(vec![dir_missing(), line]));
        assert_eq!(f.status, Status::Confirmed, "{}", f.summary);
    }

    #[test]
    fn a_successful_test_bind_rules_out() {
        let f = judge(&record(vec![dir_checked(0o700, 1000, EXT4, 1000, BindTest::Bound)]));
        assert_eq!(f.status, Status::RuledOut, "{}", f.summary);
    }
}
