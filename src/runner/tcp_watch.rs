//! What a run watches on a TCP endpoint, beside the common observers: the worker tree's listeners, another
//! process on the expected address, and the health check. Each look returns the events to record and what they
//! mean for the run (something changed; the worker now serves).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;

use sockdiag_probes::{Endpoint, EventKind};

use crate::observers::sockets::FdScan;
use crate::observers::{address_holder, health, tcp_sockets};
use crate::profile::Health;

/// The TCP side of one run's observation.
pub(super) struct TcpWatch {
    endpoint: Endpoint,
    health: Option<Health>,
    listeners: tcp_sockets::TcpTable,
    /// Listeners on the expected address already attributed (to another process, or to this run).
    attributed: HashSet<u64>,
    /// Listeners whose holder could not be identified at the last look (their process may have been between
    /// its exit and the kernel's table update, or the worker's own, not yet scanned): recorded when seen again.
    unidentified: HashSet<u64>,
    /// The health check answered ready: it is not asked again.
    ready: bool,
    last_answer: Option<(Option<u16>, bool, String)>,
}

/// What one look found.
#[derive(Default)]
pub(super) struct Found {
    pub(super) events: Vec<EventKind>,
    /// A listener appeared or closed, or the health answer changed.
    pub(super) changed: bool,
    /// The worker now serves: it listens (without a health check), or the health check answered ready.
    pub(super) serving: bool,
}

impl TcpWatch {
    /// A watch for a TCP endpoint; none for a Unix socket.
    pub(super) fn new(endpoint: &Endpoint, health: Option<Health>) -> Option<TcpWatch> {
        matches!(endpoint, Endpoint::Tcp { .. }).then(|| TcpWatch {
            endpoint: endpoint.clone(),
            health,
            listeners: tcp_sockets::TcpTable::default(),
            attributed: HashSet::new(),
            unidentified: HashSet::new(),
            ready: false,
            last_answer: None,
        })
    }

    /// With a health check, accepting a connection is not yet serving.
    pub(super) fn serves_on_connect(&self) -> bool {
        self.health.is_none()
    }

    /// The tree's listeners (from its descriptors and `netns_pid`'s tables), then foreign holders of the address.
    pub(super) fn look(&mut self, netns_pid: i32, scan: &FdScan, ours: &dyn Fn(i32) -> bool) -> Found {
        let table = tcp_sockets::listening(netns_pid);
        let mut events = self.listeners.update(&table, scan);
        let changed = !events.is_empty();
        events.extend(self.holders(&table, ours, false));
        Found { events, changed, serving: changed && self.serves_on_connect() }
    }

    /// Before the spawn: whoever already listens on the address (in our own network namespace).
    pub(super) fn before_spawn(&mut self) -> Vec<EventKind> {
        let table = tcp_sockets::listening(std::process::id() as i32);
        self.holders(&table, &|_| false, true)
    }

    /// Listeners on the expected address that belong to no process of this run, each with its holder, once.
    /// `at_once`: an unidentified holder is recorded at its first sighting (before the spawn, nothing of the run
    /// can be mistaken for it).
    fn holders(
        &mut self,
        table: &HashMap<u64, SocketAddr>,
        ours: &dyn Fn(i32) -> bool,
        at_once: bool,
    ) -> Vec<EventKind> {
        let Endpoint::Tcp { host, port } = &self.endpoint else { return vec![] };
        let held = self.listeners.inodes();
        let skip = |inode: u64| held.contains(&inode) || self.attributed.contains(&inode);
        let found = address_holder::holders(table, host, *port, &skip);
        let mut events = Vec::new();
        for (inode, holder) in found {
            match &holder {
                // The worker's own listener, seen in the table before its descriptor scan: not a holder.
                Some(h) if ours(h.pid) => {}
                // sockdiag's own moment on the port (another run's pick of a free port): not a holder either.
                Some(h) if h.pid == std::process::id() as i32 => continue,
                None if !at_once && self.unidentified.insert(inode) => continue,
                _ => events.push(address_holder::event(&self.endpoint.target(), inode, holder)),
            }
            self.attributed.insert(inode);
        }
        events
    }

    /// Asks the health check (once connected, until it answers ready); reports the answer when it changed.
    pub(super) fn ask_health(&mut self) -> Found {
        let Some(check) = self.health.as_ref().filter(|_| !self.ready) else { return Found::default() };
        let answer = health::check(&self.endpoint, check);
        let EventKind::Health { status, ready, body, .. } = &answer else { unreachable!("check returns Health") };
        self.ready = *ready;
        let key = (*status, *ready, body.clone());
        if self.last_answer.as_ref() == Some(&key) {
            return Found { serving: self.ready, ..Found::default() };
        }
        self.last_answer = Some(key);
        Found { events: vec![answer], changed: true, serving: self.ready }
    }

    /// Forgets the listeners of a process that exited (its descriptors are closed with it).
    pub(super) fn forget_pid(&mut self, pid: i32) -> Vec<EventKind> {
        self.listeners.forget_pid(pid)
    }
}
