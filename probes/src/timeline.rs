//! The timeline of a run: every observation as one event on one monotonic clock (microseconds since spawn).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// One observation, stamped with microseconds since the worker was spawned.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event {
    pub t_us: u64,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// Which stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    Stdout,
    Stderr,
}

/// A profile marker that a line matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Marker {
    Entry,
    Listening,
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitStatus {
    Code(i32),
    Signal(i32),
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitStatus::Code(c) => write!(f, "exited {c}"),
            ExitStatus::Signal(s) => write!(f, "killed by {}", crate::signal_label(*s)),
        }
    }
}

/// What kind of file is at a path (looked up when the event arrived). A file that appeared is `unknown` when it
/// had already vanished by then (its type is only known from the bind that made it); `gone` is for a path looked
/// at and found absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileType {
    Socket,
    File,
    Dir,
    /// A symlink: never followed by the harness.
    Symlink,
    Other,
    Gone,
    /// Created, and gone before anyone could look: the name is known, not the type.
    Unknown,
}

/// What a client got when it tried the expected endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectResult {
    Connected,
    NotFound,
    Refused,
    /// No answer before the connect deadline.
    TimedOut,
    Other,
}

/// The address family of a TCP socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IpFamily {
    Ipv4,
    Ipv6,
}

/// A process found holding a socket: who it is and how long it has been running.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressHolder {
    pub pid: i32,
    pub exe: String,
    pub cmdline: String,
    /// How long the process had been running when it was seen, in milliseconds.
    pub age_ms: u64,
    /// When it started, in seconds since the Unix epoch (boot time plus its start in clock ticks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_unix_s: Option<u64>,
}

/// What the pid file said, checked against the live system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PidFileState {
    /// There is no pid file.
    Absent,
    /// The file holds no pid.
    Invalid,
    /// The pid it names is not running (or is a zombie).
    Gone,
    /// The pid it names is a process of this run's worker tree.
    Worker,
    /// The pid it names is alive but is not a process of this run.
    NotWorker,
}

/// What the session lookup found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "lookup", content = "detail", rename_all = "snake_case")]
pub enum RowLookup {
    Found,
    Missing,
    Error(String),
}

/// The harness's own test bind of a socket in a directory, as the worker's user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum BindTest {
    /// A socket was bound (and removed at once).
    Bound,
    /// bind(2) or the switch to the worker's user failed with this errno (`EACCES`...).
    Failed { errno: String },
    /// Not attempted, and why (the directory is missing, the path is too long...).
    NotTried { why: String },
}

/// The live socket whose bound file is the one at a path, found system-wide (sock_diag, UDIAG_SHOW_VFS).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub socket_inode: u64,
    pub listening: bool,
    /// The processes holding the socket open (empty when none could be seen).
    pub pids: Vec<i32>,
}

/// Every kind of observation. Observers produce them; probes read them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    /// The harness started a launcher: the process that spawns the worker the way a hook or script would.
    LauncherStarted { pid: i32 },
    /// The launcher ended (on its own when the configuration says it exits after spawning).
    LauncherExited { pid: i32, status: ExitStatus },
    /// A worker was started (by the launcher, which reported its pid).
    Spawned { pid: i32, argv: Vec<String> },
    /// A process of the worker's tree ended (reaped by the harness, the child subreaper).
    Exited { pid: i32, status: ExitStatus },
    /// A line the worker wrote.
    Line { stream: Stream, text: String, markers: Vec<Marker> },
    /// Output that was not kept, to bound memory.
    OutputDropped { stream: Stream, bytes: u64 },
    /// A directory entry appeared (inotify).
    FileCreated { path: String, file_type: FileType },
    /// A directory entry was removed (inotify).
    FileRemoved { path: String },
    /// A directory entry was renamed away (inotify).
    FileRenamed { from: String, to: Option<String> },
    /// The kernel shows a Unix socket of the worker's tree bound to a name (`@name` when abstract).
    SocketBound { pid: i32, inode: u64, path: String, listening: bool },
    /// A bound socket seen before is no longer held by the tree.
    SocketClosed { pid: i32, inode: u64, path: String },
    /// The kernel shows a TCP socket of the worker's tree listening on an address.
    TcpListening { pid: i32, inode: u64, address: String, port: u16, family: IpFamily },
    /// A TCP listener seen before is no longer held by the tree.
    TcpClosed { pid: i32, inode: u64, address: String, port: u16 },
    /// Another process, outside the worker's tree, listens on the expected address.
    AddressHeld { address: String, inode: u64, holder: Option<AddressHolder> },
    /// The HTTP health request after connecting: the status line's code (none if no response) and the body.
    Health { url: String, status: Option<u16>, ready: bool, body: String, detail: String },
    /// A line the worker wrote to one of the profile's log files.
    LogLine { file: String, text: String, markers: Vec<Marker> },
    /// The profile's pid file, and whether the pid it names is alive and is the worker.
    PidFile { path: String, pid: Option<i32>, state: PidFileState, detail: String },
    /// How late the fs observer delivered a file the harness made (at the end of the run): inotify events may be
    /// stamped this much after they happened.
    FsLag { us: u64 },
    /// What was at a path when the harness looked (right after a "listening" line arrived).
    FileChecked { path: String, file_type: Option<FileType> },
    /// How a worker's threads stood (while its socket refused connections, and at the end): `busy` when a thread
    /// was running or runnable (R) or in an uninterruptible wait (D) — on its way, not waiting for something —
    /// with each thread's state letter, and `wchan`: where in the kernel the main thread waits (`pipe_write`...).
    ThreadStates { pid: i32, busy: bool, states: String, wchan: Option<String> },
    /// A client attempt at the expected endpoint.
    /// `peer`: the pid of the server that accepted (SO_PEERCRED), when connected.
    Connect {
        path: String,
        result: ConnectResult,
        detail: String,
        #[serde(default)]
        peer: Option<i32>,
    },
    /// What the worker itself sees: its executable, cwd, uid and the environment variables that matter.
    WorkerView { pid: i32, exe: String, cwd: String, uid: u32, env: BTreeMap<String, String> },
    /// A database file the worker holds open.
    DatabaseOpened { pid: i32, path: String },
    /// The session row looked up in a database file.
    SessionRow { database: String, row: RowLookup },
    /// The harness asked the worker to stop (sent the profile's message, or a signal): what follows is not the worker's doing.
    HarnessStop { how: String },
    /// The state when observation ended.
    EndState { path: String, file_type: Option<FileType>, live_pids: Vec<i32> },
    /// An observer could not see something; the probes that need it say inconclusive.
    Note { text: String },
    /// The socket's directory as the worker's user meets it: what is there (`missing_from`: the first component
    /// of the path that is not a directory), mode, owner, filesystem (statfs magic), and the harness's own test
    /// bind there with the worker's uid and groups.
    DirChecked {
        dir: String,
        file_type: FileType,
        #[serde(skip_serializing_if = "Option::is_none")]
        missing_from: Option<String>,
        mode: u32,
        owner: u32,
        group: u32,
        fs_magic: u64,
        as_uid: u32,
        as_gids: Vec<u32>,
        test_bind: BindTest,
    },
    /// A process's mount and network namespaces compared with the harness's, and the expected path as seen
    /// inside its mount namespace (`/proc/<pid>/root/<path>`) and outside.
    Namespaces { pid: i32, same_mnt: bool, same_net: bool, path: String, inside: FileType, outside: FileType },
    /// The socket file at a path, and the live socket whose bound file it is, if any, system-wide.
    PathHolder { path: String, file_inode: u64, holder: Option<Holder> },
    /// The socket's directory came into being after a process of the worker's tree started (statx birth time
    /// against the process's start time): it was created, or re-created, under the running worker.
    DirNewerThanProcess { dir: String, pid: i32, after_ms: u64 },
    /// A listener of the worker's tree: the inode of the file it bound, and of the file at its path now.
    ListenerFile { pid: i32, inode: u64, path: String, bound_file_inode: u64, file_inode_now: Option<u64> },
}

impl EventKind {
    /// A one-line description for evidence and plain-text timelines.
    pub fn describe(&self) -> String {
        match self {
            EventKind::LauncherStarted { pid } => format!("launcher pid {pid} started"),
            EventKind::LauncherExited { pid, status } => format!("launcher pid {pid} {status}"),
            EventKind::Spawned { pid, argv } => format!("spawned pid {pid}: {}", argv.join(" ")),
            EventKind::Exited { pid, status } => format!("pid {pid} {status}"),
            EventKind::Line { stream, text, .. } => format!("{}: {}", stream_name(*stream), crate::quotable(text)),
            EventKind::OutputDropped { stream, bytes } => format!("{}: {bytes} bytes not kept", stream_name(*stream)),
            EventKind::FileCreated { path, file_type } => format!("created {path} ({})", file_type_name(*file_type)),
            EventKind::FileRemoved { path } => format!("removed {path}"),
            EventKind::FileRenamed { from, to } => match to {
                Some(to) => format!("renamed {from} -> {to}"),
                None => format!("renamed {from} away"),
            },
            EventKind::SocketBound { pid, inode, path, listening } => {
                let state = if *listening { "listening" } else { "bound, not listening" };
                format!("pid {pid} holds socket inode {inode} at {path} ({state})")
            }
            EventKind::SocketClosed { pid, inode, path } => {
                format!("pid {pid} no longer holds socket inode {inode} at {path}")
            }
            EventKind::TcpListening { pid, inode, address, port, .. } => {
                format!("pid {pid} listens on TCP {} (socket inode {inode})", host_port(address, *port))
            }
            EventKind::TcpClosed { pid, inode, address, port } => {
                format!("pid {pid} no longer listens on TCP {} (socket inode {inode})", host_port(address, *port))
            }
            EventKind::AddressHeld { address, inode, holder } => match holder {
                Some(h) => format!(
                    "{address} is held by pid {} ({}), running for {}, socket inode {inode}",
                    h.pid,
                    h.cmdline,
                    fmt_age(h.age_ms)
                ),
                None => format!("{address} is held by a process that could not be identified (socket inode {inode})"),
            },
            EventKind::Health { url, status, body, detail, .. } => match status {
                Some(code) => format!("GET {url}: {code}, body {}", clip(body, 200)),
                None => format!("GET {url}: {detail}"),
            },
            EventKind::LogLine { file, text, .. } => format!("{file}: {}", crate::quotable(text)),
            EventKind::PidFile { path, detail, .. } => format!("pid file {path}: {detail}"),
            EventKind::FsLag { us } => {
                format!("the fs observer ran {} behind", crate::fmt_ms(*us).trim_start_matches('+'))
            }
            EventKind::FileChecked { path, file_type } => {
                let file = file_type.map_or("absent".to_string(), |t| file_type_name(t).to_string());
                format!("looked at {path}: {file}")
            }
            EventKind::ThreadStates { pid, busy, states, wchan } => {
                let what = match (busy, wchan) {
                    (true, _) => "busy (running, runnable or paging in)".to_string(),
                    (false, Some(w)) => format!("waiting in the kernel in {w}"),
                    (false, None) => "waiting in the kernel".to_string(),
                };
                format!("pid {pid} {what} (thread states: {states})")
            }
            EventKind::Connect { path, detail, peer: Some(pid), .. } => {
                format!("connect {path}: {detail} (served by pid {pid})")
            }
            EventKind::Connect { path, detail, .. } => format!("connect {path}: {detail}"),
            EventKind::WorkerView { pid, exe, cwd, uid, .. } => format!("pid {pid} runs {exe} as uid {uid} in {cwd}"),
            EventKind::DatabaseOpened { pid, path } => format!("pid {pid} has database {path} open"),
            EventKind::SessionRow { database, row } => match row {
                RowLookup::Found => format!("session row found in {database}"),
                RowLookup::Missing => format!("no session row in {database}"),
                RowLookup::Error(e) => format!("session lookup in {database} failed: {e}"),
            },
            EventKind::HarnessStop { how } => format!("harness stop: {how}"),
            EventKind::EndState { path, file_type, live_pids } => {
                // A TCP address (HOST:PORT) has no file to be absent.
                let is_file = path.starts_with('/') || path.starts_with('@');
                let file = match file_type {
                    Some(t) => format!(" {}", file_type_name(*t)),
                    None if is_file => " absent".to_string(),
                    None => String::new(),
                };
                format!("end of observation: {path}{file}; live pids {live_pids:?}")
            }
            EventKind::Note { text } => format!("note: {text}"),
            EventKind::DirChecked { dir, file_type, missing_from, mode, owner, group, fs_magic, as_uid, test_bind, .. } => {
                if let Some(from) = missing_from {
                    return format!("socket directory {dir}: {from} is missing or not a directory");
                }
                let fs = crate::hypotheses::filesystems::name(*fs_magic);
                let bind = match test_bind {
                    BindTest::Bound => format!("test bind as uid {as_uid} succeeded"),
                    BindTest::Failed { errno } => {
                        format!("test bind as uid {as_uid} failed: {}", crate::errno_label(errno))
                    }
                    BindTest::NotTried { why } => format!("no test bind: {why}"),
                };
                let what = file_type_name(*file_type);
                format!("socket directory {dir} ({what}, mode {mode:04o}, owner {owner}:{group}, {fs}): {bind}")
            }
            EventKind::Namespaces { pid, same_mnt, same_net, path, inside, outside } => {
                let ns = |same: bool| if same { "same" } else { "different" };
                let seen = |t: FileType| if t == FileType::Gone { "absent" } else { file_type_name(t) };
                format!(
                    "pid {pid}: {} mount namespace, {} network namespace; {path} is {} inside it, {} outside",
                    ns(*same_mnt),
                    ns(*same_net),
                    seen(*inside),
                    seen(*outside)
                )
            }
            EventKind::PathHolder { path, file_inode, holder } => match holder {
                Some(h) => format!(
                    "{path} (inode {file_inode}) is the bound file of socket {} ({}) held by pids {:?}",
                    h.socket_inode,
                    if h.listening { "listening" } else { "not listening" },
                    h.pids
                ),
                None => format!("{path} (inode {file_inode}) is the bound file of no live socket on this system"),
            },
            EventKind::DirNewerThanProcess { dir, pid, after_ms } => {
                format!("{dir} was created {after_ms} ms after pid {pid} started")
            }
            EventKind::ListenerFile { pid, inode, path, bound_file_inode, file_inode_now } => match file_inode_now {
                Some(now) if now == bound_file_inode => {
                    format!("pid {pid}'s listener {inode} still owns {path} (inode {now})")
                }
                Some(now) => format!(
                    "pid {pid}'s listener {inode} bound inode {bound_file_inode}, but {path} is now inode {now}: replaced"
                ),
                None => format!("pid {pid}'s listener {inode} bound inode {bound_file_inode}, but {path} is gone: unlinked"),
            },
        }
    }
}

/// How long a process has been running, as people say it: `850 ms`, `12.3 s`, `4 min 10 s`, `3 h 2 min`.
pub fn fmt_age(ms: u64) -> String {
    match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..120_000 => format!("{:.1} s", ms as f64 / 1000.0),
        120_000..7_200_000 => format!("{} min {} s", ms / 60_000, ms / 1000 % 60),
        _ => format!("{} h {} min", ms / 3_600_000, ms / 60_000 % 60),
    }
}

/// `HOST:PORT`, with brackets around an IPv6 host.
pub(crate) fn host_port(address: &str, port: u16) -> String {
    if address.contains(':') {
        format!("[{address}]:{port}")
    } else {
        format!("{address}:{port}")
    }
}

/// At most `max` characters, with an ellipsis when cut, quoted.
fn clip(text: &str, max: usize) -> String {
    let cut: String = text.chars().take(max).collect();
    if cut.len() < text.len() {
        format!("{cut:?}…")
    } else {
        format!("{cut:?}")
    }
}

fn stream_name(s: Stream) -> &'static str {
    match s {
        Stream::Stdout => "stdout",
        Stream::Stderr => "stderr",
    }
}

pub(crate) fn file_type_name(t: FileType) -> &'static str {
    match t {
        FileType::Socket => "socket",
        FileType::File => "regular file",
        FileType::Dir => "directory",
        FileType::Symlink => "symlink, not followed",
        FileType::Other => "other",
        FileType::Gone => "already gone",
        FileType::Unknown => "type unknown: gone before it could be looked at",
    }
}

/// The events of one run, in time order, with the questions probes ask of them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timeline(Vec<Event>);

impl Timeline {
    pub fn new(mut events: Vec<Event>) -> Self {
        events.sort_by_key(|e| e.t_us);
        Timeline(events)
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Event> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The first event that `pick` accepts.
    pub fn first<'a, T>(&'a self, pick: impl Fn(&'a EventKind) -> Option<T>) -> Option<(&'a Event, T)> {
        self.0.iter().find_map(|e| pick(&e.kind).map(|t| (e, t)))
    }

    /// Events strictly after `t_us`.
    pub fn after(&self, t_us: u64) -> impl Iterator<Item = &Event> {
        self.0.iter().filter(move |e| e.t_us > t_us)
    }

    /// When the harness began stopping the worker, if it did: later exits and removals are not the worker's own.
    pub fn harness_stop_us(&self) -> Option<u64> {
        self.first(|k| matches!(k, EventKind::HarnessStop { .. }).then_some(())).map(|(e, _)| e.t_us)
    }

    /// True when the event happened before the harness intervened.
    pub fn before_stop(&self, e: &Event) -> bool {
        self.harness_stop_us().is_none_or(|s| e.t_us < s)
    }

    /// The first line (output or log file) matching a marker.
    pub fn marker(&self, marker: Marker) -> Option<&Event> {
        self.0.iter().find(|e| match &e.kind {
            EventKind::Line { markers, .. } | EventKind::LogLine { markers, .. } => markers.contains(&marker),
            _ => false,
        })
    }

    /// Listening TCP sockets the kernel showed, one per inode: (event, pid, inode, address, port).
    pub fn tcp_listeners(&self) -> Vec<(&Event, i32, u64, &str, u16)> {
        let mut seen = Vec::new();
        let mut out = Vec::new();
        for e in &self.0 {
            if let EventKind::TcpListening { pid, inode, address, port, .. } = &e.kind {
                if !seen.contains(inode) {
                    seen.push(*inode);
                    out.push((e, *pid, *inode, address.as_str(), *port));
                }
            }
        }
        out
    }

    /// Listeners on the expected TCP address that belong to another process: an `AddressHeld` whose socket is
    /// not one the worker's tree was seen listening on (a look can read the kernel's table while the worker's own
    /// listener is not yet, or no longer, attributable to it).
    pub fn foreign_holders(&self) -> impl Iterator<Item = &Event> {
        let own: Vec<u64> = self.tcp_listeners().iter().map(|l| l.2).collect();
        self.0.iter().filter(move |e| matches!(&e.kind, EventKind::AddressHeld { inode, .. } if !own.contains(inode)))
    }

    /// Listening Unix sockets the kernel showed, one per inode.
    pub fn listeners(&self) -> Vec<(&Event, i32, u64, &str)> {
        let mut seen = Vec::new();
        let mut out = Vec::new();
        for e in &self.0 {
            if let EventKind::SocketBound { pid, inode, path, listening: true } = &e.kind {
                if !seen.contains(inode) {
                    seen.push(*inode);
                    out.push((e, *pid, *inode, path.as_str()));
                }
            }
        }
        out
    }

    /// Exits that happened on the worker's own account (before any harness stop).
    pub fn own_exits(&self) -> impl Iterator<Item = (&Event, i32, ExitStatus)> {
        let stop = self.harness_stop_us();
        self.0.iter().filter_map(move |e| match &e.kind {
            EventKind::Exited { pid, status } if stop.is_none_or(|s| e.t_us < s) => Some((e, *pid, *status)),
            _ => None,
        })
    }

    /// The pids the harness spawned.
    pub fn spawned_pids(&self) -> Vec<i32> {
        self.0
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Spawned { pid, .. } => Some(*pid),
                _ => None,
            })
            .collect()
    }

    /// How far apart events from different observers may be stamped: at least `floor_us`, more when the fs
    /// observer was measured running late.
    pub fn skew_us(&self, floor_us: u64) -> u64 {
        let lag = self.0.iter().filter_map(|e| match e.kind {
            EventKind::FsLag { us } => Some(us),
            _ => None,
        });
        lag.map(|us| 2 * us).fold(floor_us, u64::max)
    }

    /// When the launcher exited, if it did.
    pub fn launcher_exit(&self) -> Option<(&Event, ExitStatus)> {
        self.first(|k| match k {
            EventKind::LauncherExited { status, .. } => Some(*status),
            _ => None,
        })
    }

    /// The first socket-or-file creation at `path`.
    pub fn created(&self, path: &str) -> Option<&Event> {
        self.0.iter().find(
            |e| matches!(&e.kind, EventKind::FileCreated { path: p, file_type } if p == path && *file_type != FileType::Dir),
        )
    }

    /// The state recorded when observation ended.
    pub fn end_state(&self) -> Option<(&Event, Option<FileType>, &[i32])> {
        self.0.iter().rev().find_map(|e| match &e.kind {
            EventKind::EndState { file_type, live_pids, .. } => Some((e, *file_type, live_pids.as_slice())),
            _ => None,
        })
    }
}
