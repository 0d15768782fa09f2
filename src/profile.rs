//! The profile: what the worker is and where it should put things (DESIGN §4), read from TOML, with
//! placeholders checked at load time so that a typo names its key and line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use regex::Regex;
use serde::Deserialize;

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
    #[serde(default)]
    observe: ObserveSection,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkerSection {
    command: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    #[expect(dead_code, reason = "accepted now; the runtime dimension of the matrix will read it")]
    runtimes: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SocketSection {
    path: String,
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
}

impl Default for ObserveSection {
    fn default() -> Self {
        ObserveSection { window_ms: default_window_ms(), settle_ms: default_settle_ms(), send: None }
    }
}

fn default_window_ms() -> u64 {
    3000
}
fn default_settle_ms() -> u64 {
    200
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
    pub(crate) socket_path: String,
    pub(crate) markers: Markers,
    pub(crate) database: Option<DatabaseSection>,
    pub(crate) observe: ObserveSection,
}

/// The values placeholders stand for, in one context (the real system, or a run's sandbox).
#[derive(Clone)]
pub(crate) struct Vars {
    pub(crate) session: u64,
    pub(crate) data_dir: PathBuf,
    pub(crate) home: PathBuf,
    pub(crate) profile_dir: PathBuf,
    pub(crate) plugin_root: Option<PathBuf>,
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
                other => format!("{{{other}}}"),
            })
            .into_owned()
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
                let text = std::fs::read_to_string(path)
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
        let data_dir = file.data_dir.unwrap_or_else(|| "{home}/.{name}".replace("{name}", &file.name));
        Ok(Profile {
            name: file.name,
            source: source.to_string(),
            dir,
            data_dir,
            command: file.worker.command,
            env: file.worker.env,
            socket_path: file.socket.path,
            markers,
            database: file.database,
            observe: file.observe,
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
        let mut vars =
            Vars { session, data_dir: PathBuf::new(), home, profile_dir: self.dir.clone(), plugin_root: plugin_root() };
        vars.data_dir = PathBuf::from(vars.expand(&self.data_dir));
        vars
    }

    /// The placeholder values inside a sandbox.
    pub(crate) fn sandbox_vars(&self, session: u64, home: &Path, data_dir: &Path) -> Vars {
        Vars {
            session,
            data_dir: data_dir.to_path_buf(),
            home: home.to_path_buf(),
            profile_dir: self.dir.clone(),
            plugin_root: plugin_root(),
        }
    }

    /// The worker's argv[0], resolved against PATH; a clear error when it is missing or not executable.
    pub(crate) fn check_command(&self, vars: &Vars) -> anyhow::Result<PathBuf> {
        let program = vars.expand(&self.command[0]);
        let found = if program.contains('/') {
            Some(PathBuf::from(&program))
        } else {
            std::env::var_os("PATH")
                .and_then(|p| std::env::split_paths(&p).map(|d| d.join(&program)).find(|c| c.is_file()))
        };
        let Some(path) = found.filter(|p| p.exists()) else {
            return usage(format!("profile {}: worker.command[0] not found: {program}", self.source));
        };
        if nix::unistd::access(&path, nix::unistd::AccessFlags::X_OK).is_err() || path.is_dir() {
            return usage(format!("profile {}: worker.command[0] is not executable: {}", self.source, path.display()));
        }
        Ok(path)
    }
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

/// Every templated string must use known placeholders only.
fn check_placeholders(file: &ProfileFile, text: &str, source: &str) -> anyhow::Result<()> {
    let mut fields: Vec<(String, &str)> = vec![("socket.path".into(), &file.socket.path)];
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
        let vars = p.sandbox_vars(28, Path::new("/s/home"), Path::new("/s/data"));
        assert_eq!(vars.expand(&p.socket_path), "/s/data/w-28.sock");
        assert_eq!(vars.expand(&p.data_dir), "/s/home/.w");
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
    fn default_profile_parses() {
        let p = Profile::parse(DEFAULT_PROFILE, "built-in", PathBuf::from("/")).unwrap();
        assert_eq!(p.name, "claude-mem");
        assert!(p.markers.listening.is_some());
    }
}
