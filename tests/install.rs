//! Installed like a Rust tool: shell completions and man pages come from the clap definitions, so they name every
//! command and flag the binary has.

mod common;

use common::sockdiag;

#[test]
fn completions_for_every_shell_name_the_commands_and_flags() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = sockdiag(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}: {}", String::from_utf8_lossy(&out.stderr));
        let script = String::from_utf8_lossy(&out.stdout);
        for word in ["sockdiag", "merge", "check", "--shard", "--baseline"] {
            assert!(script.contains(word), "{shell} completion lacks {word}");
        }
    }
    let out = sockdiag(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2), "an unknown shell is bad input");
}

#[test]
fn man_pages_for_sockdiag_and_each_command() {
    let out = sockdiag(&["man"]);
    assert_eq!(out.status.code(), Some(0));
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(page.contains(".TH sockdiag 1"), "{page}");
    assert!(page.contains("merge") && page.contains("completions"), "{page}");

    let dir = tempfile::tempdir().unwrap();
    let pages = dir.path().join("man1");
    let out = sockdiag(&["man", "--dir", pages.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    for command in ["sockdiag", "sockdiag-run", "sockdiag-check", "sockdiag-merge", "sockdiag-render"] {
        let text =
            std::fs::read_to_string(pages.join(format!("{command}.1"))).unwrap_or_else(|e| panic!("{command}.1: {e}"));
        assert!(text.contains(&format!(".TH {command} 1")), "{command}.1");
    }
    let run = std::fs::read_to_string(pages.join("sockdiag-run.1")).unwrap();
    assert!(run.contains("\\-\\-shard"), "sockdiag-run.1 documents --shard");
    assert!(!pages.join("sockdiag-__launch.1").exists(), "no page for the hidden launcher");
}
