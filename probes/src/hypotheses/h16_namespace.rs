//! H16: the socket lives in another namespace — an abstract name, or a private mount namespace (private /tmp).

use super::facts::{no_socket_file, socket_file};
use crate::{per_run, EventKind, Evidence, FileType, Finding, Probe, RunRecord, Status};

pub struct OtherNamespace;

impl Probe for OtherNamespace {
    fn id(&self) -> &'static str {
        "H16"
    }
    fn causal_rank(&self) -> u8 {
        60
    }
    fn title(&self) -> &'static str {
        "socket in another namespace"
    }
    fn checks(&self) -> &'static str {
        "Looks for an abstract `@name` among the worker's bound sockets (its own net/unix), compares its \
         /proc/<pid>/ns/mnt and ns/net with the harness's, and looks at the expected path through \
         /proc/<pid>/root: a socket there that is absent outside means a private mount namespace (PrivateTmp, \
         bwrap, snap, containers)."
    }
    fn fix(&self) -> &'static str {
        "Bind a filesystem path (not an abstract name) when clients look for a file; put the socket outside any \
         private /tmp (e.g. $XDG_RUNTIME_DIR or the data dir), or run the clients in the same namespace."
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
    let abstract_listener = run
        .events
        .iter()
        .find(|e| matches!(&e.kind, EventKind::SocketBound { path, listening: true, .. } if path.starts_with('@')));
    if let Some(a) = abstract_listener.filter(|_| !expected.starts_with('@')) {
        let EventKind::SocketBound { path, .. } = &a.kind else { unreachable!("matched above") };
        return Finding::new(
            Status::Confirmed,
            format!("the worker listens on the abstract name {path}, which no file shows"),
            vec![Evidence::at(id, a.t_us, a.kind.describe())],
        );
    }
    let views: Vec<_> = run.events.iter().filter(|e| matches!(e.kind, EventKind::Namespaces { .. })).collect();
    let hidden = views.iter().rev().find(|e| {
        matches!(&e.kind, EventKind::Namespaces { same_mnt: false, inside: FileType::Socket, outside, .. } if *outside != FileType::Socket)
    });
    if let Some(h) = hidden {
        let EventKind::Namespaces { pid, path, .. } = &h.kind else { unreachable!("matched above") };
        return Finding::new(
            Status::Confirmed,
            format!("{path} is a socket in pid {pid}'s private mount namespace, but not in the harness's"),
            vec![Evidence::at(id, h.t_us, h.kind.describe())],
        );
    }
    let differs = views.iter().find(|e| matches!(e.kind, EventKind::Namespaces { same_mnt: false, .. }));
    if let Some(d) = differs {
        return Finding::new(
            Status::Inconclusive,
            "the worker runs in another mount namespace, but its socket was not seen inside it",
            vec![Evidence::at(id, d.t_us, d.kind.describe())],
        );
    }
    if let Some(last) = views.last() {
        return Finding::new(
            Status::RuledOut,
            "the worker shares the harness's mount namespace and bound no abstract name",
            vec![Evidence::at(id, last.t_us, last.kind.describe())],
        );
    }
    // A spawned worker starts in the harness's namespaces; one that exits before a look cannot have left them
    // unseen while serving, since it never listened anywhere.
    let spawned = run.events.iter().find(|e| matches!(e.kind, EventKind::Spawned { .. }));
    match spawned {
        Some(s) if run.events.listeners().is_empty() => Finding::new(
            Status::RuledOut,
            "the worker started in the harness's namespaces and never listened anywhere",
            vec![Evidence::at(id, s.t_us, s.kind.describe())],
        ),
        Some(_) => Finding::new(
            Status::Inconclusive,
            "the worker's namespaces were not compared",
            vec![Evidence::run(id, "missing: a look at /proc/<pid>/ns of the worker")],
        ),
        None => Finding::new(
            Status::Inconclusive,
            "no live process of the worker was seen, so its namespaces were not compared",
            vec![Evidence::run(id, "missing: a process of the worker to look at")],
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::super::facts::record;
    use super::*;

    #[test]
    fn an_abstract_listener_confirms() {
        let f = judge(&record(vec![EventKind::SocketBound {
            pid: 7,
            inode: 1,
            path: "@/d/w.sock".into(),
            listening: true,
        }]));
        assert_eq!(f.status, Status::Confirmed, "{}", f.summary);
    }

    #[test]
    fn a_socket_only_inside_a_private_mount_namespace_confirms() {
        let ns = |same_mnt, inside| EventKind::Namespaces {
            pid: 7,
            same_mnt,
            same_net: true,
            path: "/d/w.sock".into(),
            inside,
            outside: FileType::Gone,
        };
        assert_eq!(judge(&record(vec![ns(false, FileType::Socket)])).status, Status::Confirmed);
        assert_eq!(judge(&record(vec![ns(true, FileType::Gone)])).status, Status::RuledOut);
    }
}
