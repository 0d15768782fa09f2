//! The matrix: which configurations to run. The production configuration always comes first.

use sockdiag_probes::{Dimension, Lifecycle, RunAs, RunConfig, Runtime, SpawnMode, StdioMode};

/// `--matrix`: production plus one change at a time, or every combination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum MatrixKind {
    Quick,
    Full,
}

/// `--vary` parses dimension names (`spawn,stdio`).
pub(crate) fn parse_dimension(s: &str) -> Result<Dimension, String> {
    Dimension::ALL.into_iter().find(|d| d.name() == s).ok_or_else(|| {
        let names: Vec<&str> = Dimension::ALL.iter().map(|d| d.name()).collect();
        format!("unknown dimension {s:?}; known: {}", names.join(", "))
    })
}

/// The configurations of a matrix over the dimensions in `vary` (all when empty), production first, each repeated
/// `repeat` times in a row. When the runtime is varied, every configuration is also run under each of `runtimes`
/// (after all the runs of the command as written): a runtime changes what every other dimension does, so it
/// multiplies them rather than being one more single change. With another user (`--user`), the permission
/// dimension is {as invoked, that user}: quick adds production as that user, full runs every configuration as both.
#[cfg(test)]
pub(crate) fn expand(
    kind: MatrixKind,
    vary: &[Dimension],
    repeat: usize,
    runtimes: &[Runtime],
    user: Option<u32>,
) -> Vec<RunConfig> {
    let configurations = configurations(kind, vary, runtimes, user, RunConfig::PRODUCTION);
    crate::shard::Matrix::new(configurations, repeat).all_runs().map(|(_, c)| c).collect()
}

/// The distinct configurations of a matrix around `production` (the profile's, or the hook's launch), in the
/// order [`expand`] runs them (before the repeats).
pub(crate) fn configurations(
    kind: MatrixKind,
    vary: &[Dimension],
    runtimes: &[Runtime],
    user: Option<u32>,
    production: RunConfig,
) -> Vec<RunConfig> {
    let dims: Vec<Dimension> = if vary.is_empty() {
        Dimension::ALL.to_vec()
    } else {
        Dimension::ALL.into_iter().filter(|d| vary.contains(d)).collect()
    };
    let configs = match kind {
        MatrixKind::Quick => quick(&dims, production),
        MatrixKind::Full => full(&dims, production),
    };
    let runtimes = if dims.contains(&Dimension::Runtime) { runtimes } else { &[] };
    let under = |runtime| configs.iter().map(move |c| RunConfig { runtime, ..*c });
    let mut all: Vec<RunConfig> =
        std::iter::once(Runtime::AsWritten).chain(runtimes.iter().copied()).flat_map(under).collect();
    if let Some(uid) = user {
        let as_user: Vec<RunConfig> = match kind {
            MatrixKind::Quick => vec![RunConfig { user: RunAs::Uid(uid), ..production }],
            MatrixKind::Full => all.iter().map(|c| RunConfig { user: RunAs::Uid(uid), ..*c }).collect(),
        };
        all.extend(as_user);
    }
    all
}

/// The values of a dimension, `config`'s own first.
fn variants(config: RunConfig, dim: Dimension) -> Vec<RunConfig> {
    let mut all = values(config, dim);
    if let Some(own) = all.iter().position(|c| *c == config) {
        all[..=own].rotate_right(1);
    }
    all
}

/// The values of a dimension, in matrix order.
fn values(config: RunConfig, dim: Dimension) -> Vec<RunConfig> {
    match dim {
        Dimension::Spawn => {
            [SpawnMode::Detached, SpawnMode::Attached].map(|spawn| RunConfig { spawn, ..config }).to_vec()
        }
        Dimension::Lifecycle => {
            [Lifecycle::Exits, Lifecycle::Stays].map(|lifecycle| RunConfig { lifecycle, ..config }).to_vec()
        }
        Dimension::Stdio => [StdioMode::Ignore, StdioMode::PipeDrained, StdioMode::PipeUndrained, StdioMode::File]
            .map(|stdio| RunConfig { stdio, ..config })
            .to_vec(),
        Dimension::Launches => [1, 2].map(|launches| RunConfig { launches, ..config }).to_vec(),
        // Its values are the installed runtimes: `expand` multiplies by them.
        Dimension::Runtime => vec![config],
    }
}

/// The seed's own method: production, then one factor changed at a time.
fn quick(dims: &[Dimension], prod: RunConfig) -> Vec<RunConfig> {
    let mut all = vec![prod];
    for &dim in dims {
        all.extend(variants(prod, dim).into_iter().filter(|c| *c != prod));
    }
    all
}

/// Every combination of the dimensions, production first (it is the first value of each).
fn full(dims: &[Dimension], production: RunConfig) -> Vec<RunConfig> {
    let mut all = vec![production];
    for &dim in dims {
        all = all.into_iter().flat_map(|c| variants(c, dim)).collect();
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(spawn: SpawnMode, lifecycle: Lifecycle, stdio: StdioMode, launches: u8) -> RunConfig {
        RunConfig { spawn, lifecycle, stdio, launches, runtime: Runtime::AsWritten, user: RunAs::Invoker }
    }

    #[test]
    fn quick_is_production_then_one_change_at_a_time() {
        use {Lifecycle::*, SpawnMode::*, StdioMode::*};
        assert_eq!(
            expand(MatrixKind::Quick, &[], 1, &[], None),
            vec![
                RunConfig::PRODUCTION,
                c(Attached, Exits, Ignore, 1),
                c(Detached, Stays, Ignore, 1),
                c(Detached, Exits, PipeDrained, 1),
                c(Detached, Exits, PipeUndrained, 1),
                c(Detached, Exits, File, 1),
                c(Detached, Exits, Ignore, 2),
            ]
        );
        assert_eq!(RunConfig::PRODUCTION, c(Detached, Exits, Ignore, 1));
    }

    #[test]
    fn full_is_the_product_in_a_fixed_order() {
        use {Lifecycle::*, SpawnMode::*, StdioMode::*};
        let f = expand(MatrixKind::Full, &[], 1, &[], None);
        assert_eq!(f.len(), 2 * 2 * 4 * 2);
        assert_eq!(f[0], RunConfig::PRODUCTION);
        // The last dimension varies fastest.
        assert_eq!(
            &f[..3],
            &[c(Detached, Exits, Ignore, 1), c(Detached, Exits, Ignore, 2), c(Detached, Exits, PipeDrained, 1)]
        );
        assert_eq!(f[31], c(Attached, Stays, File, 2));
        for (i, a) in f.iter().enumerate() {
            assert!(!f[i + 1..].contains(a), "{a} twice");
        }
    }

    #[test]
    fn vary_picks_the_dimensions() {
        use {Lifecycle::*, SpawnMode::*, StdioMode::*};
        assert_eq!(
            expand(MatrixKind::Full, &[Dimension::Spawn, Dimension::Lifecycle], 1, &[], None),
            vec![
                c(Detached, Exits, Ignore, 1),
                c(Detached, Stays, Ignore, 1),
                c(Attached, Exits, Ignore, 1),
                c(Attached, Stays, Ignore, 1),
            ]
        );
        assert_eq!(
            expand(MatrixKind::Quick, &[Dimension::Launches], 1, &[], None),
            vec![RunConfig::PRODUCTION, c(Detached, Exits, Ignore, 2)]
        );
        assert!(parse_dimension("stdoi").unwrap_err().contains("spawn, lifecycle, stdio, launches"));
    }

    #[test]
    fn another_user_adds_the_permission_dimension() {
        let q = expand(MatrixKind::Quick, &[], 1, &[], Some(65534));
        assert_eq!(q.len(), 8);
        assert_eq!(q[7], RunConfig { user: RunAs::Uid(65534), ..RunConfig::PRODUCTION });
        let f = expand(MatrixKind::Full, &[], 1, &[], Some(65534));
        assert_eq!(f.len(), 64);
        assert_eq!(f.iter().filter(|c| c.user == RunAs::Invoker).count(), 32);
        assert!(!f[0].differs_only_in(&f[33], Dimension::Launches), "a change of user is a difference too");
    }

    #[test]
    fn repeat_keeps_runs_of_a_configuration_together() {
        let r = expand(MatrixKind::Quick, &[], 3, &[], None);
        assert_eq!(r.len(), 21);
        assert!(r[..3].iter().all(|c| *c == RunConfig::PRODUCTION));
    }

    #[test]
    fn each_runtime_reruns_the_whole_matrix_after_the_command_as_written() {
        let r = expand(MatrixKind::Quick, &[], 1, &[Runtime::Bun], None);
        assert_eq!(r.len(), 14);
        assert_eq!(r[0], RunConfig::PRODUCTION);
        assert!(r[..7].iter().all(|c| c.runtime == Runtime::AsWritten));
        for (a, b) in r[..7].iter().zip(&r[7..]) {
            assert!(a.differs_only_in(b, Dimension::Runtime), "{a} / {b}");
            assert_eq!(b.runtime, Runtime::Bun);
        }
        assert_eq!(expand(MatrixKind::Quick, &[Dimension::Stdio], 1, &[Runtime::Bun], None).len(), 4);
    }

    #[test]
    fn a_profile_production_comes_first_and_the_matrix_varies_around_it() {
        let production = c(SpawnMode::Attached, Lifecycle::Stays, StdioMode::File, 1);
        let quick = configurations(MatrixKind::Quick, &[], &[], None, production);
        assert_eq!(quick[0], production);
        assert!(quick[1..].iter().all(|q| q.differences(&production).len() == 1), "{quick:?}");
        let full = configurations(MatrixKind::Full, &[], &[], None, production);
        assert_eq!(full[0], production);
        let mut unique = full.clone();
        unique.sort_by_key(|c| format!("{c}"));
        unique.dedup();
        assert_eq!((full.len(), unique.len()), (32, 32), "every combination once");
    }
}
