//! The run's spec: the profile resolved once, for one configuration in one sandbox, before anything is spawned —
//! placeholders expanded, paths absolute, the endpoint, the compiled markers and health check, the database in
//! place. Everything below reads the spec; nothing calls back into the profile.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use sockdiag_probes::{Endpoint, Expected, HealthCheck, RunAs, RunConfig, StdioMode};

use super::super::sandbox::Sandbox;
use super::super::{runtime, Plan};
use crate::error::UsageError;
use crate::identity::Identity;
use crate::observers::output::Markers;
use crate::profile::{EndpointTemplate, Health, Profile, Vars};

pub(super) struct RunSpec {
    pub(super) config: RunConfig,
    pub(super) session: u64,
    /// The program the launcher executes, and its arguments.
    pub(super) program: PathBuf,
    pub(super) args: Vec<String>,
    /// The worker's environment beyond the harness's: HOME and the profile's variables.
    pub(super) env: Vec<(String, String)>,
    /// What the run expects of the worker (written into its record).
    pub(super) expected: Expected,
    /// The socket file clients expect (none for a TCP endpoint).
    pub(super) socket_path: Option<PathBuf>,
    /// The names of the variables whose values the worker's view records.
    pub(super) env_keys: Vec<String>,
    pub(super) markers: Markers,
    pub(super) health: Option<Health>,
    /// The profile's session query, when it names a database.
    pub(super) session_query: Option<String>,
    pub(super) window: Duration,
    pub(super) settle: Duration,
    /// The production configuration is watched for the whole window (DESIGN §7 rule 7); the others may settle.
    pub(super) whole_window: bool,
    /// Bytes sent to a reachable worker to ask it to stop.
    pub(super) send: Option<String>,
    pub(super) pid_file: Option<PathBuf>,
    /// The sandbox's root, beneath which the harness opens what the worker may have planted (see `confine`).
    pub(super) sandbox: PathBuf,
    /// The worker's cwd: the sandbox's root.
    pub(super) cwd: PathBuf,
    /// Where stdout and stderr go in file mode.
    pub(super) output_files: (PathBuf, PathBuf),
    /// Files the run tails (stdout and stderr in file mode).
    pub(super) tailed: Vec<PathBuf>,
    /// Directories the fs observer watches: the sandbox, and the socket's directory when it lies outside.
    pub(super) watched: Vec<PathBuf>,
    /// Where the fs observer's sync file goes.
    pub(super) fs_barrier: PathBuf,
    /// The value of the run marker in the environment of this run's processes.
    pub(super) marker: String,
    /// Who the worker runs as: the directory checks are made as this user.
    pub(super) who: Identity,
    /// Whether the socket's directory is the harness's to write in (the test bind): only inside the sandbox.
    pub(super) may_write: bool,
}

impl RunSpec {
    /// Resolves the plan's profile for run `id` in `sandbox`: its port, its database, its user, its command.
    pub(super) fn resolve(plan: &Plan, id: usize, config: RunConfig, sandbox: &Sandbox) -> anyhow::Result<RunSpec> {
        let profile = plan.profile;
        let port = if profile.uses_port { plan.supervisor.ports.free_loopback()? } else { 0 };
        let vars = profile.sandbox_vars(plan.session, &sandbox.home, &sandbox.data, port);
        let database = sandbox.install_database(plan.database.as_ref(), profile, &vars)?;
        let who = match config.user {
            RunAs::Invoker => Identity::current(),
            RunAs::Uid(uid) => {
                let who = Identity::of_user(&uid.to_string()).with_context(|| format!("no user with uid {uid}"))?;
                sandbox.give_to(&who)?;
                who
            }
        };
        let argv: Vec<String> = profile.command.iter().map(|a| vars.expand(a)).collect();
        let (program, args) = runtime::command(&argv, config.runtime, profile.check_command(&vars)?, &plan.runtimes)?;
        let expected = expected(plan, &vars, sandbox, database.as_deref(), &argv, config)?;
        let socket_path = expected.socket_path().map(PathBuf::from);
        let output_files = (sandbox.root.join("stdout.log"), sandbox.root.join("stderr.log"));
        let tailed =
            if config.stdio == StdioMode::File { vec![output_files.0.clone(), output_files.1.clone()] } else { vec![] };
        let mut env: Vec<(String, String)> = vec![("HOME".into(), sandbox.home.display().to_string())];
        env.extend(expected.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        let mut env_keys: Vec<String> = expected.env.keys().cloned().collect();
        env_keys.push("HOME".into());
        Ok(RunSpec {
            config,
            session: plan.session,
            program,
            args,
            env,
            env_keys,
            markers: profile.markers.clone(),
            health: profile.health.clone(),
            session_query: profile.database.as_ref().map(|d| d.session_query.clone()),
            window: Duration::from_millis(profile.observe.window_ms),
            settle: Duration::from_millis(profile.observe.settle_ms),
            whole_window: config == profile.production,
            send: profile.observe.send.clone(),
            pid_file: expected.pid_file.as_ref().map(PathBuf::from),
            sandbox: sandbox.root.clone(),
            cwd: sandbox.root.clone(),
            output_files,
            tailed,
            watched: watched_roots(&sandbox.root, socket_path.as_deref()),
            fs_barrier: sandbox.root.join(".sockdiag-fs-sync"),
            marker: format!("{}-{id}", plan.supervisor.token),
            may_write: socket_path.as_deref().and_then(Path::parent).is_some_and(|d| d.starts_with(&sandbox.root)),
            socket_path,
            who,
            expected,
        })
    }

    /// The expected socket path as a string ("" for a TCP endpoint).
    pub(super) fn expected_path(&self) -> &str {
        self.expected.socket_path().unwrap_or_default()
    }
}

/// What the run expects of the worker, with the sandbox's placeholders resolved.
fn expected(
    plan: &Plan,
    vars: &Vars,
    sandbox: &Sandbox,
    database: Option<&Path>,
    argv: &[String],
    config: RunConfig,
) -> anyhow::Result<Expected> {
    let profile = plan.profile;
    Ok(Expected {
        database: database.map(|d| d.display().to_string()),
        sandbox: Some(sandbox.root.display().to_string()),
        health: profile
            .health
            .as_ref()
            .map(|h| HealthCheck { get: h.get.clone(), ready: h.ready.as_ref().map(|r| r.as_str().to_string()) }),
        logs: profile.observe.logs.iter().map(|g| vars.expand(g)).collect(),
        pid_file: profile.observe.pid_file.as_ref().map(|p| vars.expand(p)),
        runtimes: plan.runtimes.clone(),
        shebang: runtime::shebang(argv),
        window_ms: Some(profile.observe.window_ms),
        whole_window: config == profile.production,
        ..expected_endpoint(profile, vars, plan.session)?
    })
}

/// What any look at the worker expects, a run's or `inspect`'s: the session, the endpoint, the environment and
/// the markers, with `vars` resolved; nothing else is expected yet.
pub(crate) fn expected_endpoint(profile: &Profile, vars: &Vars, session: u64) -> anyhow::Result<Expected> {
    Ok(Expected {
        env: profile.env.iter().map(|(k, v)| (k.clone(), vars.expand(v))).collect(),
        markers: profile.markers.defined(),
        ..Expected::at(session, endpoint(profile, vars)?)
    })
}

/// The sandbox (the worker's cwd, home and data), and the socket's directory when it lies outside.
fn watched_roots(sandbox_root: &Path, socket_path: Option<&Path>) -> Vec<PathBuf> {
    let outside = socket_path.and_then(Path::parent).filter(|p| !p.starts_with(sandbox_root) && p.is_dir());
    std::iter::once(sandbox_root.to_path_buf()).chain(outside.map(Path::to_path_buf)).collect()
}

/// The run's endpoint with its placeholders resolved (`{port}` is the run's own port).
fn endpoint(profile: &Profile, vars: &Vars) -> anyhow::Result<Endpoint> {
    Ok(match &profile.endpoint {
        EndpointTemplate::Unix(path) => Endpoint::Unix { path: vars.expand_path(path) },
        EndpointTemplate::Tcp { host, port } => {
            let port = vars.expand(port);
            let port = port.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
                UsageError(format!("profile {}: socket.address: the port {port:?} is not a port", profile.source))
            })?;
            Endpoint::Tcp { host: host.clone(), port }
        }
    })
}
