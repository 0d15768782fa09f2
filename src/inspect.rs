//! `sockdiag inspect`: one look at the live system, nothing spawned and nothing written — the processes running
//! the profile's worker for the session, the Unix sockets they hold, the expected path (socket? connectable?
//! whose?), its directory, the session row — recorded as one run so the same probes judge it.

use std::path::{Path, PathBuf};

use procfs::process::Process;
use sockdiag_probes::{
    ConnectResult, Endpoint, EventKind, Expected, FileType, Outcome, RunConfig, RunRecord, Timeline,
};

use crate::identity::Identity;
use crate::observers::directory;
use crate::observers::{connect, database, fs, kernel_sockets, namespaces, sockets, worker_view, Clock};
use crate::profile::{EndpointTemplate, Profile};

/// Looks at the system as the profile describes it for `session`, resolved against the real home and data dir.
pub(crate) fn look(profile: &Profile, session: u64) -> anyhow::Result<RunRecord> {
    let vars = profile.real_vars(session);
    let EndpointTemplate::Unix(template) = &profile.endpoint else {
        return crate::error::usage(format!(
            "profile {}: inspect looks at a socket file; this profile names a TCP address (use sockdiag run)",
            profile.source
        ));
    };
    let path = vars.expand_path(template);
    let db = profile.database.as_ref().map(|d| PathBuf::from(vars.expand(&d.path))).filter(|p| p.is_file());
    let expected = Expected {
        session,
        endpoint: Endpoint::Unix { path: path.clone() },
        env: profile.env.iter().map(|(k, v)| (k.clone(), vars.expand(v))).collect(),
        database: db.as_ref().map(|d| d.display().to_string()),
        health: None,
        logs: vec![],
        pid_file: None,
        runtimes: vec![],
        markers: profile.markers.defined(),
        shebang: None,
        // The real system: no sandbox to abbreviate.
        sandbox: None,
    };
    let clock = Clock::start();
    let mut events = Vec::new();
    let mut record = |kind: EventKind| events.push(clock.stamp(kind));

    let args: Vec<String> = profile.command[1..].iter().map(|a| vars.expand(a)).collect();
    let program = vars.expand(&profile.command[0]);
    let workers = matching_processes(&program, &args, session);
    let mut env_keys: Vec<String> = expected.env.keys().cloned().collect();
    env_keys.push("HOME".into());
    let mut tree: Vec<i32> = Vec::new();
    for &pid in &workers {
        record(EventKind::Note { text: format!("pid {pid} runs the worker for session {session}") });
        for p in sockets::tree(pid) {
            if !tree.contains(&p) {
                tree.push(p);
            }
        }
    }
    for &pid in &tree {
        worker_view::view(pid, &env_keys, None).into_iter().for_each(&mut record);
        namespaces::compare(pid, &path).into_iter().for_each(&mut record);
    }
    let scan = sockets::scan_fds(&tree);
    let mut table = sockets::SocketTable::default();
    if let Some(&first) = tree.first() {
        table.update(first, &scan).into_iter().for_each(&mut record);
    }
    let mut looked_up: Vec<PathBuf> = Vec::new();
    if let Some(section) = &profile.database {
        for (pid, file) in &scan.files {
            if !looked_up.contains(file) && database::is_sqlite(file) {
                looked_up.push(file.clone());
                record(EventKind::DatabaseOpened { pid: *pid, path: file.display().to_string() });
                record(database::lookup(file, &section.session_query, session));
            }
        }
        if let Some(db) = db.as_ref().filter(|d| !looked_up.contains(d)) {
            record(database::lookup(db, &section.session_query, session));
        }
    }
    // Linux's sun_path holds 108 bytes with the terminating NUL.
    record(EventKind::Note { text: format!("{path} is {} bytes long; sun_path holds 107", path.len()) });
    let connected = connect::attempt(&expected.endpoint);
    let reachable = matches!(connected, EventKind::Connect { result: ConnectResult::Connected, .. });
    let result = match &connected {
        EventKind::Connect { detail, .. } => detail.clone(),
        _ => String::new(),
    };
    record(connected);
    let who = workers
        .first()
        .and_then(|&pid| Process::new(pid).and_then(|p| p.uid()).ok())
        .and_then(|uid| Identity::of_user(&uid.to_string()))
        .unwrap_or_else(Identity::current);
    let dir = Path::new(&path).parent().unwrap_or(Path::new("/"));
    record(directory::check(dir, &who, false));
    for &pid in &tree {
        directory::newer_than_process(dir, pid).into_iter().for_each(&mut record);
    }
    let listeners = table.listeners();
    let inodes: Vec<u64> = listeners.iter().map(|(_, inode, _)| *inode).collect();
    let found = kernel_sockets::by_inode(&inodes).and_then(|known| {
        let files = kernel_sockets::listener_files(&listeners, &known);
        let is_socket = fs::file_type(Path::new(&path)) == FileType::Socket;
        let held = if is_socket { kernel_sockets::path_holder(Path::new(&path), &known, &tree)? } else { None };
        Ok(files.into_iter().chain(held))
    });
    match found {
        Ok(events) => events.for_each(&mut record),
        Err(e) => record(EventKind::Note { text: format!("sock_diag unavailable: {e}") }),
    }
    let file_type = Some(fs::file_type(Path::new(&path))).filter(|t| *t != FileType::Gone);
    record(EventKind::EndState { path: path.clone(), file_type, live_pids: tree.clone() });
    let label = match workers.as_slice() {
        [] => format!("no worker process for session {session}; {path}: {result}"),
        pids => format!("worker pid(s) {pids:?}; {path}: {result}"),
    };
    let outcome = Outcome { reachable, healthy: reachable, exit: None, label };
    let clock_origin_ns = clock.origin_ns();
    Ok(RunRecord {
        id: 1,
        clock_origin_ns,
        config: RunConfig::PRODUCTION,
        expected,
        outcome,
        events: Timeline::new(events),
    })
}

/// Live processes whose command line runs the profile's worker for this session: the profile's arguments, in
/// order, after argv[0] (whatever the runtime), or, for a worker without arguments, its program name and the
/// session anywhere in the line.
fn matching_processes(program: &str, args: &[String], session: u64) -> Vec<i32> {
    let me = std::process::id() as i32;
    let name = Path::new(program).file_name().map(|n| n.to_os_string());
    let Ok(all) = procfs::process::all_processes() else { return vec![] };
    all.flatten()
        .filter(|p| p.pid() != me)
        .filter(|p| p.stat().is_ok_and(|s| s.state != 'Z'))
        .filter(|p| {
            let Ok(cmd) = p.cmdline() else { return false };
            let Some((argv0, rest)) = cmd.split_first() else { return false };
            if args.is_empty() {
                return Path::new(argv0).file_name().map(|n| n.to_os_string()) == name
                    && rest.iter().any(|a| a.contains(&session.to_string()));
            }
            rest.windows(args.len()).any(|w| w == args)
        })
        .map(|p| p.pid())
        .collect()
}
