//! `sockdiag merge`: the JSON reports of the shards of one matrix, joined into the report of the whole matrix and
//! judged again (the cross-configuration hypotheses need runs that different shards made). Shards of different
//! sessions, profiles, matrices or options are refused, naming both files; a shard given twice too. Missing shards
//! are bad input unless `--partial`, which merges what there is and records it (a partial merge can be merged with
//! the rest later).

use std::path::{Path, PathBuf};

use sockdiag_probes::RunRecord;

use crate::diagnosis::{Diagnosis, Look, Saved};
use crate::error::UsageError;
use crate::shard::{Matrix, Shard, Shards};

/// One input file, read.
struct Part {
    path: PathBuf,
    saved: Saved,
    matrix: Matrix,
    shards: Shards,
    /// The command without `--shard`: the same for every shard of one invocation.
    command: String,
}

/// Joins the files into one diagnosis of the whole matrix (or, with `partial`, of the shards there are).
/// `count`: the number of shards the files must be of.
pub(crate) fn merge(files: &[PathBuf], count: Option<u32>, partial: bool) -> anyhow::Result<Diagnosis> {
    let parts: Vec<Part> = files.iter().map(|f| read(f)).collect::<anyhow::Result<_>>()?;
    let first = &parts[0];
    for part in &parts[1..] {
        agree(first, part)?;
    }
    parts.iter().try_for_each(runs_are_the_shards)?;
    if let Some(n) = count.filter(|n| *n != first.shards.count) {
        return usage(format!("{}: a shard of {}, not of {n} (--shards {n})", name(first), first.shards.count));
    }
    let mut ran: Vec<(u32, &Part)> = Vec::new();
    for part in &parts {
        for &index in &part.shards.ran {
            if let Some((_, other)) = ran.iter().find(|(i, _)| *i == index) {
                let shard = Shard { index, count: first.shards.count };
                return usage(format!("shard {shard} is in both {} and {}", name(other), name(part)));
            }
            ran.push((index, part));
        }
    }
    let mut indices: Vec<u32> = ran.iter().map(|(i, _)| *i).collect();
    indices.sort_unstable();
    let matrix = Matrix { shards: Some(Shards { count: first.shards.count, ran: indices }), ..first.matrix.clone() };
    let missing = matrix.missing();
    if !missing.is_empty() {
        let message = missing_message(&matrix, &missing);
        if !partial {
            return usage(format!("{message}: merge them too, or pass --partial"));
        }
        eprintln!("sockdiag: partial merge: {}", crate::visible::visible(&message));
    }
    let command = first.command.clone();
    let (session, profile, environment) =
        (first.saved.session, first.saved.profile.clone(), first.saved.environment.clone());
    let mut runs: Vec<RunRecord> = parts.into_iter().flat_map(|p| p.saved.runs).collect();
    runs.sort_by_key(|r| r.id);
    Ok(Diagnosis::new(session, profile, command, environment, Some(matrix), runs))
}

fn usage<T>(msg: String) -> anyhow::Result<T> {
    Err(UsageError(msg).into())
}

fn name(part: &Part) -> std::path::Display<'_> {
    part.path.display()
}

/// Reads one shard's report.
fn read(path: &Path) -> anyhow::Result<Part> {
    let shown = path.display();
    let text =
        crate::input::read_text(path, crate::input::REPORT_MAX).map_err(|e| UsageError(format!("{shown}: {e}")))?;
    let saved: Saved =
        serde_json::from_str(&text).map_err(|e| UsageError(format!("{shown}: not a sockdiag JSON report: {e}")))?;
    if saved.look != Look::Run {
        return usage(format!("{shown}: a live look (sockdiag inspect), not a shard of runs"));
    }
    let Some(matrix) = saved.matrix.clone() else {
        return usage(format!("{shown}: records no matrix (saved by an older sockdiag): not a shard"));
    };
    let Some(shards) = matrix.shards.clone() else {
        return usage(format!("{shown}: the whole matrix, not a shard (run it with --shard I/N)"));
    };
    let command = without_shard(&saved.command);
    Ok(Part { path: path.to_path_buf(), saved, matrix, shards, command })
}

/// Refuses a file whose runs are not its shards' runs of its matrix.
fn runs_are_the_shards(part: &Part) -> anyhow::Result<()> {
    let (shown, matrix, shards) = (name(part), &part.matrix, &part.shards);
    if matrix.runs != matrix.configurations.len() * matrix.repeat {
        return usage(format!(
            "{shown}: its matrix says {} runs, not {} configuration(s) × {}",
            matrix.runs,
            matrix.configurations.len(),
            matrix.repeat
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for r in &part.saved.runs {
        if !seen.insert(r.id) {
            return usage(format!("{shown}: run {} is there twice", r.id));
        }
        let holds =
            r.id <= matrix.runs && shards.ran.iter().any(|&index| Shard { index, count: shards.count }.holds(r.id));
        if !holds {
            return usage(format!("{shown}: run {} is not one of its shards' ({} runs in all)", r.id, matrix.runs));
        }
        if matrix.all_runs().nth(r.id - 1).map(|(_, c)| c) != Some(r.config) {
            return usage(format!("{shown}: run {} ({}) is not the matrix's run {}", r.id, r.config, r.id));
        }
    }
    Ok(())
}

/// Refuses two files that are not shards of one invocation, naming what differs.
fn agree(a: &Part, b: &Part) -> anyhow::Result<()> {
    let (an, bn) = (name(a), name(b));
    if a.saved.session != b.saved.session {
        return usage(format!(
            "{an} is session {}, {bn} session {}: shards of different sessions",
            a.saved.session, b.saved.session
        ));
    }
    if a.saved.profile != b.saved.profile {
        return usage(format!(
            "{an} ran profile {}, {bn} profile {}: shards of different profiles",
            a.saved.profile, b.saved.profile
        ));
    }
    if a.shards.count != b.shards.count {
        return usage(format!(
            "{an} is a shard of {}, {bn} of {}: shards of different splits",
            a.shards.count, b.shards.count
        ));
    }
    if (&a.matrix.configurations, a.matrix.repeat) != (&b.matrix.configurations, b.matrix.repeat) {
        return usage(format!(
            "{an} ran {} configuration(s) × {}, {bn} {} × {}: shards of different matrices",
            a.matrix.configurations.len(),
            a.matrix.repeat,
            b.matrix.configurations.len(),
            b.matrix.repeat
        ));
    }
    if a.command != b.command {
        return usage(format!("{an} and {bn} were run with different options: `{}` and `{}`", a.command, b.command));
    }
    Ok(())
}

/// `shard(s) 2/4, 4/4 missing (runs 2, 4, 6 of 8)`.
fn missing_message(matrix: &Matrix, missing: &[Shard]) -> String {
    let shards: Vec<String> = missing.iter().map(Shard::to_string).collect();
    let runs = matrix.missing_runs();
    let mut ids: Vec<String> = runs.iter().take(10).map(usize::to_string).collect();
    if runs.len() > ids.len() {
        ids.push("…".to_string());
    }
    let word = if missing.len() == 1 { "shard" } else { "shards" };
    format!("{word} {} missing ({} run(s): {} of {})", shards.join(", "), runs.len(), ids.join(", "), matrix.runs)
}

/// The command with its `--shard I/N` left out: the command of the whole matrix.
fn without_shard(command: &str) -> String {
    let Some(words) = shlex::split(command) else { return command.to_string() };
    let mut kept: Vec<&str> = Vec::with_capacity(words.len());
    let mut it = words.iter();
    while let Some(w) = it.next() {
        match w.as_str() {
            "--shard" => {
                it.next();
            }
            w if w.starts_with("--shard=") => {}
            w => kept.push(w),
        }
    }
    shlex::try_join(kept).unwrap_or_else(|_| command.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shard_is_left_out_of_the_command() {
        assert_eq!(
            without_shard("sockdiag run --session 28 --profile 'a b.toml' --shard 2/4"),
            "sockdiag run --session 28 --profile 'a b.toml'"
        );
        assert_eq!(without_shard("sockdiag run --session 28"), "sockdiag run --session 28");
    }

    #[test]
    fn missing_shards_are_named_with_their_runs() {
        let configurations = vec![sockdiag_probes::RunConfig::PRODUCTION; 1];
        let matrix = Matrix { shards: Some(Shards { count: 4, ran: vec![1, 3] }), ..Matrix::new(configurations, 8) };
        assert_eq!(missing_message(&matrix, &matrix.missing()), "shards 2/4, 4/4 missing (4 run(s): 2, 4, 6, 8 of 8)");
    }
}
