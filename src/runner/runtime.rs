//! The runtime dimension: which runtimes of the profile are installed, what the command runs as written (its
//! argv[0], or its script's `#!` line), and the command with another runtime put in its place.

use std::io::Read;
use std::path::{Path, PathBuf};

use sockdiag_probes::{Runtime, RuntimeInstall, Shebang};

use crate::profile::{find_program, Profile, Vars};

/// Looks each runtime of the profile up on PATH, as the launcher will.
pub(crate) fn find_installed(profile: &Profile) -> Vec<RuntimeInstall> {
    profile
        .runtimes
        .iter()
        .map(|&runtime| RuntimeInstall { runtime, path: find_program(runtime.name()).map(|p| p.display().to_string()) })
        .collect()
}

/// The runtimes worth a run of their own: installed, and not the one the command already runs as written.
pub(crate) fn substitutes(profile: &Profile, vars: &Vars, installed: &[RuntimeInstall]) -> Vec<Runtime> {
    let argv: Vec<String> = profile.command.iter().map(|a| vars.expand(a)).collect();
    let written = as_written(&argv);
    installed.iter().filter(|i| i.path.is_some() && Some(i.runtime) != written).map(|i| i.runtime).collect()
}

/// The runtime the command runs as written: its argv[0] when that is a runtime, else its script's `#!` line.
fn as_written(argv: &[String]) -> Option<Runtime> {
    Runtime::of_program(&argv[0]).or_else(|| shebang(argv).and_then(|s| Runtime::of_program(&s.interpreter)))
}

/// The program and arguments of one run: the command as written, or with `runtime` in place of argv[0] when
/// argv[0] is a runtime, in front of it when argv[0] is the script itself.
pub(crate) fn command(
    argv: &[String],
    runtime: Runtime,
    written: PathBuf,
    installed: &[RuntimeInstall],
) -> anyhow::Result<(PathBuf, Vec<String>)> {
    if runtime == Runtime::AsWritten {
        return Ok((written, argv[1..].to_vec()));
    }
    let path = installed
        .iter()
        .find(|i| i.runtime == runtime)
        .and_then(|i| i.path.clone())
        .ok_or_else(|| anyhow::anyhow!("{} is not installed", runtime.name()))?;
    let rest = if Runtime::of_program(&argv[0]).is_some() { &argv[1..] } else { argv };
    Ok((PathBuf::from(path), rest.to_vec()))
}

/// The `#!` line of the script the command runs: argv[0] itself, or the first argument that names a file.
pub(crate) fn shebang(argv: &[String]) -> Option<Shebang> {
    let path = if Runtime::of_program(&argv[0]).is_some() {
        PathBuf::from(argv[1..].iter().find(|a| Path::new(a).is_file())?)
    } else {
        find_program(&argv[0])?
    };
    let mut head = [0u8; 256];
    let n = std::fs::File::open(&path).and_then(|mut f| f.read(&mut head)).ok()?;
    let first = std::str::from_utf8(&head[..n]).ok()?.lines().next()?.strip_prefix("#!")?;
    Some(Shebang { script: path.display().to_string(), interpreter: interpreter(first)? })
}

/// `/usr/bin/env -S node --flag` → `node`; `/usr/local/bin/bun` → `bun`.
fn interpreter(line: &str) -> Option<String> {
    let mut words = line.split_whitespace();
    let first = words.next()?;
    if !first.ends_with("/env") {
        return Some(first.rsplit('/').next()?.to_string());
    }
    words.find(|w| !w.starts_with('-') && !w.contains('=')).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn reads_the_interpreter_of_a_shebang() {
        assert_eq!(interpreter("/usr/bin/env node").as_deref(), Some("node"));
        assert_eq!(interpreter("/usr/bin/env -S bun --smol").as_deref(), Some("bun"));
        assert_eq!(interpreter(" /usr/local/bin/node --max-old-space-size=100").as_deref(), Some("node"));
    }

    #[test]
    fn replaces_a_runtime_and_prefixes_a_script() {
        let installed = vec![RuntimeInstall { runtime: Runtime::Bun, path: Some("/opt/bun".into()) }];
        let (p, args) =
            command(&argv(&["node", "w.mjs", "28"]), Runtime::Bun, "/usr/bin/node".into(), &installed).unwrap();
        assert_eq!((p, args), (PathBuf::from("/opt/bun"), argv(&["w.mjs", "28"])));
        let (p, args) = command(&argv(&["/x/w.mjs", "28"]), Runtime::Bun, "/x/w.mjs".into(), &installed).unwrap();
        assert_eq!((p, args), (PathBuf::from("/opt/bun"), argv(&["/x/w.mjs", "28"])));
        assert!(command(&argv(&["node", "w.mjs"]), Runtime::Node, "/usr/bin/node".into(), &installed).is_err());
    }

    #[test]
    fn finds_the_script_shebang() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("w.mjs");
        std::fs::write(&script, "#!/usr/bin/env node\nconsole.log(1)\n").unwrap();
        let s = script.display().to_string();
        let found = shebang(&argv(&["bun", &s, "28"])).unwrap();
        assert_eq!((found.script.as_str(), found.interpreter.as_str()), (s.as_str(), "node"));
        assert_eq!(shebang(&argv(&[&s, "28"])).unwrap().interpreter, "node");
        assert_eq!(as_written(&argv(&[&s, "28"])), Some(Runtime::Node));
        assert_eq!(as_written(&argv(&["bun", &s])), Some(Runtime::Bun));
    }
}
