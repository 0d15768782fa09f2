//! `sockdiag inspect`: one look at the live system, nothing spawned and nothing written — the processes running
//! the profile's worker for the session, the Unix sockets they hold, the expected path (socket? connectable?
//! whose?), its directory, the session row — recorded as one run so the same probes judge it.

use std::path::{Path, PathBuf};

use procfs::process::Process;
use sockdiag_probes::{ConnectResult, EventKind, Expected, Outcome, RunConfig, RunRecord, Timeline};

use sockdiag_probes::hypotheses::h13_path_too_long::SUN_PATH_BYTES;

use crate::identity::Identity;
use crate::observers::{connect, database, directory, end_state, sockets, worker_view, Clock};
use crate::profile::{EndpointTemplate, Profile};
use crate::runner;

/// Looks at the system as the profile describes it for `session`, resolved against the real home and data dir.
pub(crate) fn look(profile: &Profile, session: u64) -> anyhow::Result<RunRecord> {
    let vars = profile.real_vars(session);
    if !matches!(profile.endpoint, EndpointTemplate::Unix(_)) {
        return crate::error::usage(format!(
            "profile {}: inspect looks at a socket file; this profile names a TCP address (use sockdiag run)",
            profile.source
        ));
    }
    let db = profile.database.as_ref().map(|d| PathBuf::from(vars.expand(&d.path))).filter(|p| p.is_file());
    // The real system: no sandbox to abbreviate.
    let expected = Expected {
        database: db.as_ref().map(|d| d.display().to_string()),
        ..runner::expected_endpoint(profile, &vars, session)?
    };
    let path = PathBuf::from(expected.socket_path().unwrap_or_default());
    let clock = Clock::start();
    let mut events = Vec::new();
    let mut record = |kind: EventKind| events.push(clock.stamp(kind));

    let args: Vec<String> = profile.command[1..].iter().map(|a| vars.expand(a)).collect();
    let workers = matching_processes(&vars.expand(&profile.command[0]), &args, session);
    for &pid in &workers {
        record(EventKind::Note { text: format!("pid {pid} runs the worker for session {session}") });
    }
    let tree = end_state::tree_of(&workers);
    let mut env_keys: Vec<String> = expected.env.keys().cloned().collect();
    env_keys.push("HOME".into());
    for &pid in &tree {
        worker_view::view(pid, &env_keys, None).into_iter().for_each(&mut record);
    }
    let scan = sockets::scan_fds(&tree);
    let mut table = sockets::SocketTable::default();
    if let Some(&first) = tree.first() {
        table.update(first, &scan).into_iter().for_each(&mut record);
    }
    if let Some(section) = &profile.database {
        session_rows(&scan.files, db.as_deref(), &section.session_query, session).into_iter().for_each(&mut record);
    }
    let shown = path.display();
    record(EventKind::Note {
        text: format!("{shown} is {} bytes long; sun_path holds {SUN_PATH_BYTES}", shown.to_string().len()),
    });
    let connected = connect::attempt(&expected.endpoint);
    let reachable = matches!(connected, EventKind::Connect { result: ConnectResult::Connected, .. });
    let result = match &connected {
        EventKind::Connect { detail, .. } => detail.clone(),
        _ => String::new(),
    };
    record(connected);
    let dir = path.parent().unwrap_or(Path::new("/"));
    record(directory::check(dir, &worker_identity(&workers), None));
    end_state::evidence(&path, &tree, &table.listeners()).into_iter().for_each(&mut record);
    record(end_state::end_state(shown.to_string(), Some(&path), tree.clone()));
    let label = match workers.as_slice() {
        [] => format!("no worker process for session {session}; {shown}: {result}"),
        pids => format!("worker pid(s) {pids:?}; {shown}: {result}"),
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

/// The session row in every SQLite file the tree holds open, and in the profile's database if none of them is.
fn session_rows(files: &[(i32, PathBuf)], db: Option<&Path>, query: &str, session: u64) -> Vec<EventKind> {
    let mut events = Vec::new();
    let mut looked_up: Vec<&Path> = Vec::new();
    for (pid, file) in files {
        if !looked_up.contains(&file.as_path()) && database::is_sqlite(file) {
            looked_up.push(file);
            events.push(EventKind::DatabaseOpened { pid: *pid, path: file.display().to_string() });
            events.push(database::lookup(file, query, session));
        }
    }
    if let Some(db) = db.filter(|d| !looked_up.contains(d)) {
        events.push(database::lookup(db, query, session));
    }
    events
}

/// The user the worker runs as (the first one's), or ours when none runs.
fn worker_identity(workers: &[i32]) -> Identity {
    workers
        .first()
        .and_then(|&pid| Process::new(pid).and_then(|p| p.uid()).ok())
        .and_then(|uid| Identity::of_user(&uid.to_string()))
        .unwrap_or_else(Identity::current)
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
