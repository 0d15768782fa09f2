//! `sockdiag probes` and `sockdiag explain H<n>`: the hypotheses, what each one checks, which evidence decides it
//! and how to fix its usual causes, wrapped to the terminal.

use sockdiag_probes::all_probes;

use crate::error::{usage, EXIT_HEALTHY};
use crate::report::Style;

/// Lists every hypothesis with its title.
pub(crate) fn list(style: Style) -> i32 {
    let width = style.width as usize;
    for p in all_probes() {
        let options = textwrap::Options::new(width).initial_indent("").subsequent_indent("      ");
        println!("{}", textwrap::fill(&format!("{:<5} {}", p.id(), p.title()), options));
    }
    println!();
    println!(
        "{}",
        textwrap::fill(
            "`sockdiag explain H<n>` says what is checked, which evidence decides it and how to fix the usual causes.",
            width
        )
    );
    EXIT_HEALTHY
}

/// Explains one hypothesis; an unknown id is a usage error naming the known ones.
pub(crate) fn one(id: &str, style: Style) -> anyhow::Result<i32> {
    let probes = all_probes();
    let Some(p) = probes.iter().find(|p| p.id().eq_ignore_ascii_case(id)) else {
        let known: Vec<&str> = probes.iter().map(|p| p.id()).collect();
        return usage(format!("unknown hypothesis {id:?}; known: {}", known.join(", ")));
    };
    let para = |text: &str| {
        textwrap::fill(text, textwrap::Options::new(style.width as usize).initial_indent("  ").subsequent_indent("  "))
    };
    println!("{}: {}\n", p.id(), p.title());
    println!("What is checked, and which evidence decides it:\n{}\n", para(p.checks()));
    println!("How to fix the usual causes:\n{}\n", para(p.fix()));
    println!(
        "Verdicts:\n{}",
        para(
            "confirmed or ruled out cite the events (run and time) that decided them, and are decided by the runs \
             that hold evidence for the hypothesis (a run that never bound says nothing of where it would have); \
             inconclusive says which evidence is missing; n/a means no run held any (or the profile gives the \
             hypothesis nothing to check)."
        )
    );
    Ok(EXIT_HEALTHY)
}
