//! H14: a stale socket file — present at the path, refusing connections, bound by no live socket.

use super::facts::{no_socket_file, socket_file};
use crate::{per_run, ConnectResult, EventKind, Evidence, FileType, Finding, Probe, RunRecord, Status};

pub struct StaleSocket;

impl Probe for StaleSocket {
    fn id(&self) -> &'static str {
        "H14"
    }
    fn causal_rank(&self) -> u8 {
        170
    }
    fn title(&self) -> &'static str {
        "stale socket file from a dead server"
    }
    fn checks(&self) -> &'static str {
        "At the end of observation: the file at the expected path is a socket, a connect gets ECONNREFUSED, and no \
         live socket on the system has it as its bound file (sock_diag with UDIAG_SHOW_VFS matches the file's inode \
         against every Unix socket). Also notes a listener whose own file was unlinked or replaced."
    }
    fn fix(&self) -> &'static str {
        "At startup, connect to an existing socket file first: if it refuses, unlink it and bind; remove the file \
         on every exit path; keep one server per path."
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
    let Some((end, file_type, _)) = run.events.end_state() else {
        return Finding::new(
            Status::Inconclusive,
            "the end state was not recorded",
            vec![Evidence::run(id, "missing: the end state")],
        );
    };
    let mut evidence = vec![Evidence::at(id, end.t_us, end.kind.describe())];
    if file_type != Some(FileType::Socket) {
        return Finding::new(Status::RuledOut, format!("there is no socket file at {expected} to be stale"), evidence);
    }
    let holder = run.events.first(|k| match k {
        EventKind::PathHolder { path, file_inode, holder } if path == expected => Some((*file_inode, holder.clone())),
        _ => None,
    });
    let Some((held, (file_inode, holder))) = holder else {
        return Finding::new(
            Status::Inconclusive,
            format!("{expected} is a socket, but the kernel's socket table was not consulted"),
            vec![Evidence::run(id, "missing: a sock_diag lookup of the file's inode")],
        );
    };
    evidence.push(Evidence::at(id, held.t_us, held.kind.describe()));
    if let Some(h) = holder {
        return Finding::new(
            Status::RuledOut,
            format!(
                "{expected} (inode {file_inode}) belongs to live socket {} held by pids {:?}",
                h.socket_inode, h.pids
            ),
            evidence,
        );
    }
    let refused = run.events.iter().rev().find(
        |e| matches!(&e.kind, EventKind::Connect { path, result: ConnectResult::Refused, .. } if path == expected),
    );
    let Some(refused) = refused else {
        return Finding::new(
            Status::Inconclusive,
            format!("no live socket owns {expected} (inode {file_inode}), but no connect was refused"),
            evidence,
        );
    };
    evidence.push(Evidence::at(id, refused.t_us, refused.kind.describe()));
    for e in run.events.iter() {
        if let EventKind::ListenerFile { bound_file_inode, file_inode_now, .. } = &e.kind {
            if *file_inode_now != Some(*bound_file_inode) {
                evidence.push(Evidence::at(id, e.t_us, e.kind.describe()));
            }
        }
    }
    Finding::new(
        Status::Confirmed,
        format!("{expected} (inode {file_inode}) refuses connections and no live process holds a socket bound to it"),
        evidence,
    )
}

#[cfg(test)]
mod tests {
    use super::super::facts::record;
    use super::*;
    use crate::Holder;

    fn end(holder: Option<Holder>) -> Vec<EventKind> {
        vec![
            EventKind::Connect {
                path: "/d/w.sock".into(),
                result: ConnectResult::Refused,
                detail: "refused".into(),
                peer: None,
            },
            EventKind::PathHolder { path: "/d/w.sock".into(), file_inode: 42, holder },
            EventKind::EndState { path: "/d/w.sock".into(), file_type: Some(FileType::Socket), live_pids: vec![] },
        ]
    }

    #[test]
    fn a_refusing_file_owned_by_no_socket_is_stale() {
        let f = judge(&record(end(None)));
        assert_eq!(f.status, Status::Confirmed, "{}", f.summary);
        assert!(f.summary.contains("inode 42"));
    }

    #[test]
    fn a_file_owned_by_a_live_socket_is_not_stale() {
        let f = judge(&record(end(Some(Holder { socket_inode: 9, listening: true, pids: vec![7] }))));
        assert_eq!(f.status, Status::RuledOut, "{}", f.summary);
    }
}
