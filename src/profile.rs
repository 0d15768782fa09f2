//! The profile: what the worker is and where it should put things (DESIGN §4), read from TOML, with
//! placeholders checked at load time so that a typo names its key and line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use regex::Regex;
use serde::Deserialize;
use sockdiag_probes::{Lifecycle, RunConfig, Runtime, SpawnMode, StdioMode};

use crate::error::{usage, UsageError};
use crate::observers::output::Markers;

const DEFAULT_PROFILE: &str = include_str!("default_profile.toml");
const PLACEHOLDERS: &[&str] = &["session", "data_dir", "home", "profile_dir", "plugin_root", "port"];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    name: String,
    data_dir: Option<String>,
    worker: WorkerSection,
    socket: SocketSection,
    #[serde(default)]
    markers: MarkersSection,
    database: Option<DatabaseSection>,
    health: Option<HealthSection>,
    #[serde(default)]
    observe: ObserveSection,
    #[serde(default)]
    production: ProductionSection,
}

/// `[production]`: how the worker is launched in real life, when not the way a hook launches it (detached, the
/// launcher exits, stdio ignored, one launch). The matrix varies around it and the answer leads with it.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
struct ProductionSection {
    spawn: Option<SpawnMode>,
    lifecycle: Option<Lifecycle>,
    stdio: Option<StdioMode>,
    launches: Option<u8>,
}

impl ProductionSection {
    fn config(&self, source: &str) -> anyhow::Result<RunConfig> {
        let base = RunConfig::PRODUCTION;
        let launches = self.launches.unwrap_or(base.launches);
        if !(1..=2).contains(&launches) {
            return usage(format!("profile {source}: production.launches must be 1 or 2, not {launches}"));
        }
        Ok(RunConfig {
            spawn: self.spawn.unwrap_or(base.spawn),
            lifecycle: self.lifecycle.unwrap_or(base.lifecycle),
            stdio: self.stdio.unwrap_or(base.stdio),
            launches,
            ..base
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkerSection {
    command: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    runtimes: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SocketSection {
    path: Option<String>,
    address: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HealthSection {
    get: String,
    ready: Option<String>,
    #[serde(default = "default_health_timeout_ms")]
    timeout_ms: u64,
}

/// Where the worker should serve, with placeholders still in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum EndpointTemplate {
    /// `[socket] path`: a Unix socket file.
    Unix(String),
    /// `[socket] address = "tcp://HOST:PORT"`; the port may be `{port}`.
    Tcp { host: String, port: String },
}

/// `[health]`: the HTTP request that tells whether a TCP worker is ready.
#[derive(Clone)]
pub(crate) struct Health {
    /// The path requested with GET.
    pub(crate) get: String,
    /// The body must match this to count as ready; absent: any 2xx is ready.
    pub(crate) ready: Option<Regex>,
    pub(crate) timeout_ms: u64,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct MarkersSection {
    entry: Option<String>,
    listening: Option<String>,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(crate) struct DatabaseSection {
    pub(crate) path: String,
    pub(crate) session_query: String,
    pub(crate) seed_sql: Option<String>,
}

/// `[observe]`: how long and how a run is watched.
#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(crate) struct ObserveSection {
    /// The longest a run is watched after the spawn.
    #[serde(default = "default_window_ms")]
    pub(crate) window_ms: u64,
    /// How long the socket must stay reachable, with nothing else happening, before a run counts as settled.
    #[serde(default = "default_settle_ms")]
    pub(crate) settle_ms: u64,
    /// Bytes sent once the run has settled, to ask the worker to stop (e.g. a finalize message).
    pub(crate) send: Option<String>,
    /// Globs of log files the worker writes, whose new lines join the timeline.
    #[serde(default)]
    pub(crate) logs: Vec<String>,
    /// The pid file the worker keeps.
    pub(crate) pid_file: Option<String>,
}

impl Default for ObserveSection {
    fn default() -> Self {
        ObserveSection {
            window_ms: default_window_ms(),
            settle_ms: default_settle_ms(),
            send: None,
            logs: vec![],
            pid_file: None,
        }
    }
}

fn default_window_ms() -> u64 {
    3000
}
fn default_settle_ms() -> u64 {
    200
}
fn default_health_timeout_ms() -> u64 {
    1000
}

/// A loaded, validated profile. Templates keep their placeholders until a run's sandbox resolves them.
#[derive(Clone)]
pub(crate) struct Profile {
    pub(crate) name: String,
    /// Where the profile came from (`built-in` for the default).
    pub(crate) source: String,
    pub(crate) dir: PathBuf,
    /// Where the worker keeps its data in real life: the source of the database copy.
    pub(crate) data_dir: String,
    pub(crate) command: Vec<String>,
    pub(crate) env: BTreeMap<String, String>,
    /// The runtimes to put in place of the command's own (`[worker] runtimes`), in the profile's order.
    pub(crate) runtimes: Vec<Runtime>,
    pub(crate) endpoint: EndpointTemplate,
    pub(crate) health: Option<Health>,
    pub(crate) markers: Markers,
    pub(crate) database: Option<DatabaseSection>,
    pub(crate) observe: ObserveSection,
    /// The configuration the worker runs in for real (`[production]`), first in the matrix.
    pub(crate) production: RunConfig,
    /// Some template uses `{port}`: each run needs a free port of its own.
    pub(crate) uses_port: bool,
}

/// The values placeholders stand for, in one context (the real system, or a run's sandbox).
#[derive(Clone)]
pub(crate) struct Vars {
    pub(crate) session: u64,
    pub(crate) data_dir: PathBuf,
    pub(crate) home: PathBuf,
    pub(crate) profile_dir: PathBuf,
    pub(crate) plugin_root: Option<PathBuf>,
    /// The run's free loopback port (`{port}`); 0 outside a run.
    pub(crate) port: u16,
}

impl Vars {
    /// Replaces every `{placeholder}` (all were checked at load time).
    pub(crate) fn expand(&self, template: &str) -> String {
        placeholder_re()
            .replace_all(template, |c: &regex::Captures| match &c[1] {
                "session" => self.session.to_string(),
                "data_dir" => self.data_dir.display().to_string(),
                "home" => self.home.display().to_string(),
                "profile_dir" => self.profile_dir.display().to_string(),
                "plugin_root" => self.plugin_root.as_ref().map_or(String::new(), |p| p.display().to_string()),
                "port" => self.port.to_string(),
                other => format!("{{{other}}}"),
            })
            .into_owned()
    }
}

impl Vars {
    /// Expands a path template and resolves `.` and `..` lexically, as a worker's path.resolve() would: the
    /// kernel, inotify and clients all see the resolved path.
    pub(crate) fn expand_path(&self, template: &str) -> String {
        let mut parts: Vec<std::path::Component> = Vec::new();
        let expanded = self.expand(template);
        for c in Path::new(&expanded).components() {
            match c {
                std::path::Component::CurDir => {}
                std::path::Component::ParentDir if matches!(parts.last(), Some(std::path::Component::Normal(_))) => {
                    parts.pop();
                }
                other => parts.push(other),
            }
        }
        parts.iter().collect::<PathBuf>().display().to_string()
    }
}

fn placeholder_re() -> &'static Regex {
    static RE: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| Regex::new(r"\{([A-Za-z_][A-Za-z0-9_]*)\}").expect("valid regex"))
}

impl Profile {
    /// Loads `--profile FILE`, or the built-in claude-mem profile.
    pub(crate) fn load(path: Option<&Path>) -> anyhow::Result<Profile> {
        match path {
            Some(path) => {
                let text = crate::input::read_text(path, crate::input::PROFILE_MAX)
                    .map_err(|e| UsageError(format!("cannot read profile {}: {e}", path.display())))?;
                let dir = path.canonicalize().ok().and_then(|p| p.parent().map(Path::to_path_buf)).unwrap_or_default();
                Self::parse(&text, &path.display().to_string(), dir)
            }
            None => {
                let profile = Self::parse(DEFAULT_PROFILE, "built-in", std::env::current_dir()?)?;
                profile.check_default_worker()?;
                Ok(profile)
            }
        }
    }

    fn parse(text: &str, source: &str, dir: PathBuf) -> anyhow::Result<Profile> {
        let file: ProfileFile =
            toml::from_str(text).map_err(|e| UsageError(format!("profile {source}: {}", one_line(&e.to_string()))))?;
        check_placeholders(&file, text, source)?;
        if file.worker.command.is_empty() || file.worker.command[0].is_empty() {
            return usage(format!("profile {source}: worker.command is empty"));
        }
        let markers = Markers {
            entry: compile(&file.markers.entry, "markers.entry", source)?,
            listening: compile(&file.markers.listening, "markers.listening", source)?,
        };
        let endpoint = endpoint(&file.socket, source)?;
        let health = match (file.health, &endpoint) {
            (None, _) => None,
            (Some(_), EndpointTemplate::Unix(_)) => {
                return usage(format!("profile {source}: [health] needs a TCP endpoint (socket.address)"))
            }
            (Some(h), EndpointTemplate::Tcp { .. }) => {
                if !h.get.starts_with('/') {
                    return usage(format!("profile {source}: health.get must be a path starting with /: {:?}", h.get));
                }
                Some(Health { ready: compile(&h.ready, "health.ready", source)?, get: h.get, timeout_ms: h.timeout_ms })
            }
        };
        let uses_port = text.contains("{port}");
        let runtimes = parse_runtimes(&file.worker.runtimes, text, source)?;
        let data_dir = file.data_dir.unwrap_or_else(|| "{home}/.{name}".replace("{name}", &file.name));
        let production = file.production.config(source)?;
        Ok(Profile {
            name: file.name,
            source: source.to_string(),
            dir,
            data_dir,
            command: file.worker.command,
            env: file.worker.env,
            runtimes,
            endpoint,
            health,
            markers,
            database: file.database,
            observe: file.observe,
            production,
            uses_port,
        })
    }

    /// The built-in profile needs the plugin; without it, say what was looked for and where to go instead.
    fn check_default_worker(&self) -> anyhow::Result<()> {
        let hint = "or try the demo: --profile fixtures/profiles/crash-cleanup.toml";
        let Some(root) = std::env::var_os("CLAUDE_PLUGIN_ROOT") else {
            return usage(format!("default profile: cannot find the claude-mem worker: CLAUDE_PLUGIN_ROOT is not set (looked for $CLAUDE_PLUGIN_ROOT/scripts/hooks/worker.js); set it, pass --profile FILE, {hint}"));
        };
        let worker = Path::new(&root).join("scripts/hooks/worker.js");
        if !worker.is_file() {
            return usage(format!(
                "default profile: cannot find the claude-mem worker at {}; pass --profile FILE, {hint}",
                worker.display()
            ));
        }
        Ok(())
    }

    /// Placeholder values on the real system: the user's home and the profile's real data dir.
    pub(crate) fn real_vars(&self, session: u64) -> Vars {
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/"));
        let mut vars = Vars {
            session,
            data_dir: PathBuf::new(),
            home,
            profile_dir: self.dir.clone(),
            plugin_root: plugin_root(),
            port: 0,
        };
        vars.data_dir = PathBuf::from(vars.expand(&self.data_dir));
        vars
    }

    /// The placeholder values inside a sandbox, with the run's own port.
    pub(crate) fn sandbox_vars(&self, session: u64, home: &Path, data_dir: &Path, port: u16) -> Vars {
        Vars {
            session,
            data_dir: data_dir.to_path_buf(),
            home: home.to_path_buf(),
            profile_dir: self.dir.clone(),
            plugin_root: plugin_root(),
            port,
        }
    }

    /// True when the endpoint is a TCP address with a fixed port, the same for every run.
    pub(crate) fn fixed_tcp_port(&self) -> bool {
        matches!(&self.endpoint, EndpointTemplate::Tcp { port, .. } if port != "{port}")
    }

    /// The worker's argv[0], resolved against PATH; a clear error when it is missing or not executable.
    pub(crate) fn check_command(&self, vars: &Vars) -> anyhow::Result<PathBuf> {
        let program = vars.expand(&self.command[0]);
        let Some(path) = find_program(&program) else {
            return usage(format!("profile {}: worker.command[0] not found: {program}", self.source));
        };
        if nix::unistd::access(&path, nix::unistd::AccessFlags::X_OK).is_err() || path.is_dir() {
            return usage(format!("profile {}: worker.command[0] is not executable: {}", self.source, path.display()));
        }
        Ok(path)
    }
}

/// A program as `execvp` would find it: a path as given, a bare name on PATH.
pub(crate) fn find_program(program: &str) -> Option<PathBuf> {
    let found = if program.contains('/') {
        Some(PathBuf::from(program))
    } else {
        std::env::var_os("PATH").and_then(|p| std::env::split_paths(&p).map(|d| d.join(program)).find(|c| c.is_file()))
    };
    found.filter(|p| p.exists())
}

/// `[worker] runtimes`: known runtime names only, each once.
fn parse_runtimes(names: &[String], text: &str, source: &str) -> anyhow::Result<Vec<Runtime>> {
    let mut out = Vec::new();
    for name in names {
        let Some((runtime, _)) = Runtime::SUBSTITUTES.iter().find(|(_, n)| n == name) else {
            let line = text
                .lines()
                .position(|l| l.trim_start().starts_with("runtimes"))
                .map_or(String::new(), |n| format!(" (line {})", n + 1));
            let known: Vec<&str> = Runtime::SUBSTITUTES.iter().map(|(_, n)| *n).collect();
            return usage(format!(
                "profile {source}: unknown runtime {name:?} in worker.runtimes{line}; known: {}",
                known.join(", ")
            ));
        };
        if !out.contains(runtime) {
            out.push(*runtime);
        }
    }
    Ok(out)
}

fn plugin_root() -> Option<PathBuf> {
    std::env::var_os("CLAUDE_PLUGIN_ROOT").map(PathBuf::from)
}

fn compile(re: &Option<String>, key: &str, source: &str) -> anyhow::Result<Option<Regex>> {
    re.as_deref()
        .map(|r| {
            Regex::new(r).map_err(|e| {
                UsageError(format!("profile {source}: {key} is not a valid regex: {}", one_line(&e.to_string()))).into()
            })
        })
        .transpose()
}

/// `[socket]`: exactly one of `path` and `address`; an address is `tcp://HOST:PORT`.
fn endpoint(socket: &SocketSection, source: &str) -> anyhow::Result<EndpointTemplate> {
    match (&socket.path, &socket.address) {
        (Some(path), None) => Ok(EndpointTemplate::Unix(path.clone())),
        (None, Some(address)) => parse_address(address)
            .map_err(|why| UsageError(format!("profile {source}: socket.address {address:?}: {why}")).into()),
        _ => usage(format!("profile {source}: [socket] needs exactly one of socket.path and socket.address")),
    }
}

/// `tcp://127.0.0.1:{port}`, `tcp://[::1]:37777`, `tcp://localhost:8080`.
fn parse_address(address: &str) -> Result<EndpointTemplate, String> {
    let rest = address.strip_prefix("tcp://").ok_or("must start with tcp://")?;
    let (host, port) = rest.rsplit_once(':').ok_or("must be tcp://HOST:PORT")?;
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    if host.is_empty() || (host != "localhost" && host.parse::<std::net::IpAddr>().is_err()) {
        return Err(format!("the host {host:?} is not an IP address or localhost"));
    }
    if port != "{port}" && !port.parse::<u16>().is_ok_and(|p| p > 0) {
        return Err(format!("the port {port:?} is neither {{port}} nor a number from 1 to 65535"));
    }
    Ok(EndpointTemplate::Tcp { host: host.to_string(), port: port.to_string() })
}

/// Every templated string must use known placeholders only.
fn check_placeholders(file: &ProfileFile, text: &str, source: &str) -> anyhow::Result<()> {
    // The kernel's environment format: NAME=value, the name neither empty nor holding '=' or a NUL.
    if let Some(key) = file.worker.env.keys().find(|k| k.is_empty() || k.contains(['=', '\0'])) {
        return usage(format!(
            "profile {source}: worker.env has the variable name {key:?}: a name must be non-empty, with no '=' \
             and no NUL byte"
        ));
    }
    let mut fields: Vec<(String, &str)> = Vec::new();
    if let Some(path) = &file.socket.path {
        fields.push(("socket.path".into(), path));
    }
    if let Some(address) = &file.socket.address {
        fields.push(("socket.address".into(), address));
    }
    fields.extend(file.observe.logs.iter().enumerate().map(|(i, l)| (format!("observe.logs[{i}]"), l.as_str())));
    if let Some(pid_file) = &file.observe.pid_file {
        fields.push(("observe.pid_file".into(), pid_file));
    }
    fields.extend(file.worker.command.iter().enumerate().map(|(i, a)| (format!("worker.command[{i}]"), a.as_str())));
    fields.extend(file.worker.env.iter().map(|(k, v)| (format!("worker.env.{k}"), v.as_str())));
    if let Some(d) = &file.data_dir {
        fields.push(("data_dir".into(), d));
    }
    if let Some(db) = &file.database {
        fields.push(("database.path".into(), &db.path));
        if let Some(seed) = &db.seed_sql {
            fields.push(("database.seed_sql".into(), seed));
        }
    }
    for (key, value) in fields {
        if value.contains('\0') {
            return usage(format!("profile {source}: {key} contains a NUL byte"));
        }
        for cap in placeholder_re().captures_iter(value) {
            let name = &cap[1];
            if !PLACEHOLDERS.contains(&name) {
                let line = text
                    .lines()
                    .position(|l| l.contains(&cap[0]))
                    .map_or(String::new(), |n| format!(" (line {})", n + 1));
                return usage(format!(
                    "profile {source}: unknown placeholder {{{name}}} in {key}{line}; known: {}",
                    PLACEHOLDERS.join(", ")
                ));
            }
        }
    }
    Ok(())
}

/// toml's messages span several lines with a source excerpt; we keep one line with the position.
fn one_line(msg: &str) -> String {
    let excerpt = |l: &str| l.split_once('|').is_some_and(|(n, _)| n.trim().chars().all(|c| c.is_ascii_digit()));
    msg.lines().map(str::trim).filter(|l| !l.is_empty() && !excerpt(l)).collect::<Vec<_>>().join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> anyhow::Result<Profile> {
        Profile::parse(text, "test.toml", PathBuf::from("/p"))
    }

    const MINIMAL: &str =
        "name = \"w\"\n[worker]\ncommand = [\"w\", \"{session}\"]\n[socket]\npath = \"{data_dir}/w-{session}.sock\"\n";

    #[test]
    fn expands_placeholders() {
        let p = parse(MINIMAL).unwrap();
        let vars = p.sandbox_vars(28, Path::new("/s/home"), Path::new("/s/data"), 0);
        let EndpointTemplate::Unix(path) = &p.endpoint else { panic!("a Unix endpoint") };
        assert_eq!(vars.expand(path), "/s/data/w-28.sock");
        assert_eq!(vars.expand(&p.data_dir), "/s/home/.w");
    }

    #[test]
    fn production_is_the_hooks_launch_unless_the_profile_names_its_own() {
        assert_eq!(parse(MINIMAL).unwrap().production, RunConfig::PRODUCTION);
        let own = parse(&format!("{MINIMAL}[production]\nlifecycle = \"stays\"\nstdio = \"pipe-drained\"\n")).unwrap();
        assert_eq!(
            own.production,
            RunConfig { lifecycle: Lifecycle::Stays, stdio: StdioMode::PipeDrained, ..RunConfig::PRODUCTION }
        );
        for (bad, named) in [("launches = 3", "launches"), ("stdio = \"tty\"", "tty"), ("shell = true", "shell")] {
            let err = parse(&format!("{MINIMAL}[production]\n{bad}\n")).err().unwrap().to_string();
            assert!(err.contains(named), "{bad}: {err}");
        }
    }

    const TCP: &str = concat!(
        "name = \"w\"\n[worker]\ncommand = [\"w\"]\nenv = { PORT = \"{port}\" }\n",
        "[socket]\naddress = \"tcp://127.0.0.1:{port}\"\n",
        "[health]\nget = \"/api/health\"\nready = \"ok\"\n",
        "[observe]\nlogs = [\"{data_dir}/logs/*.log\"]\npid_file = \"{data_dir}/w.pid\"\n",
    );

    #[test]
    fn tcp_address_health_and_port() {
        let p = parse(TCP).unwrap();
        assert_eq!(p.endpoint, EndpointTemplate::Tcp { host: "127.0.0.1".into(), port: "{port}".into() });
        assert!(p.uses_port && p.health.is_some());
        let vars = p.sandbox_vars(28, Path::new("/s/home"), Path::new("/s/data"), 41234);
        assert_eq!(vars.expand(&p.env["PORT"]), "41234");
        assert_eq!(vars.expand(&p.observe.logs[0]), "/s/data/logs/*.log");
        let v6 = parse(&TCP.replace("127.0.0.1:{port}", "[::1]:37777")).unwrap();
        assert_eq!(v6.endpoint, EndpointTemplate::Tcp { host: "::1".into(), port: "37777".into() });
    }

    #[test]
    fn bad_endpoints_name_the_key() {
        for (from, to) in [("tcp://127.0.0.1:{port}", "http://127.0.0.1:1"), ("{port}\"\n[h", "99999\"\n[h")] {
            let err = parse(&TCP.replace(from, to)).err().unwrap().to_string();
            assert!(err.contains("socket.address"), "{err}");
        }
        let both = TCP.replace("[socket]\n", "[socket]\npath = \"/x.sock\"\n");
        assert!(parse(&both).err().unwrap().to_string().contains("socket.path and socket.address"));
        let unix_health = format!("{MINIMAL}[health]\nget = \"/h\"\n");
        assert!(parse(&unix_health).err().unwrap().to_string().contains("[health]"));
        let bad_ready = TCP.replace("ready = \"ok\"", "ready = \"(\"");
        assert!(parse(&bad_ready).err().unwrap().to_string().contains("health.ready"));
        let bad_glob = TCP.replace("logs/*.log", "{logdir}/*.log");
        assert!(parse(&bad_glob).err().unwrap().to_string().contains("observe.logs[0]"));
    }

    #[test]
    fn socket_paths_are_resolved_lexically() {
        let p = parse(&MINIMAL.replace("{data_dir}/w-", "{home}/../x/./w-")).unwrap();
        let vars = p.sandbox_vars(28, Path::new("/s/home"), Path::new("/s/data"), 0);
        let EndpointTemplate::Unix(path) = &p.endpoint else { panic!("a Unix endpoint") };
        assert_eq!(vars.expand_path(path), "/s/x/w-28.sock");
    }

    #[test]
    fn unknown_key_names_the_key() {
        let err = parse(&format!("{MINIMAL}bogus = 1\n")).err().unwrap().to_string();
        assert!(err.contains("bogus"), "{err}");
    }

    #[test]
    fn unknown_placeholder_names_key_and_line() {
        let err = parse(&MINIMAL.replace("{session}.sock", "{sesion}.sock")).err().unwrap().to_string();
        assert!(err.contains("{sesion}") && err.contains("socket.path") && err.contains("line 5"), "{err}");
    }

    #[test]
    fn empty_command_is_an_error() {
        let err = parse(&MINIMAL.replace("[\"w\", \"{session}\"]", "[]")).err().unwrap().to_string();
        assert!(err.contains("worker.command is empty"), "{err}");
    }

    proptest::proptest! {
        #[test]
        fn any_text_is_a_profile_or_a_usage_error(text in "\\PC{0,400}") {
            if let Err(e) = parse(&text) {
                proptest::prop_assert!(e.downcast_ref::<UsageError>().is_some(), "{e}");
            }
        }

        #[test]
        fn any_socket_path_is_accepted_or_named(path in "[ -~]{0,80}") {
            let text = MINIMAL.replace("{data_dir}/w-{session}.sock", &path.replace(['\\', '"'], ""));
            if let Err(e) = parse(&text) {
                proptest::prop_assert!(e.to_string().contains("socket.path") || e.to_string().contains("profile"), "{e}");
            }
        }
    }

    #[test]
    fn shipped_http_profile_parses() {
        let text = include_str!("../docs/profiles/claude-mem-http.toml");
        let p = Profile::parse(text, "claude-mem-http.toml", PathBuf::from("/")).unwrap();
        assert!(p.uses_port && p.health.is_some() && p.observe.pid_file.is_some());
    }

    #[test]
    fn runtimes_are_known_names() {
        let text = MINIMAL.replace("[socket]", "runtimes = [\"bun\", \"node\", \"bun\"]\n[socket]");
        assert_eq!(parse(&text).unwrap().runtimes, vec![Runtime::Bun, Runtime::Node]);
        let err = parse(&text.replace("\"node\"", "\"deno\"")).err().unwrap().to_string();
        assert!(err.contains("\"deno\"") && err.contains("worker.runtimes") && err.contains("line 4"), "{err}");
    }

    #[test]
    fn default_profile_parses() {
        let p = Profile::parse(DEFAULT_PROFILE, "built-in", PathBuf::from("/")).unwrap();
        assert_eq!(p.name, "claude-mem");
        assert!(p.markers.listening.is_some());
    }
}
