//! The matrix: which configurations to run. The production configuration always comes first.

use sockdiag_probes::{RunConfig, SpawnMode, StdioMode};

/// `--matrix`: production plus one change at a time, or every combination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum MatrixKind {
    Quick,
    Full,
}

/// The configurations of a matrix, production first, each repeated `repeat` times in a row.
pub(crate) fn expand(kind: MatrixKind, repeat: usize) -> Vec<RunConfig> {
    let configs = match kind {
        MatrixKind::Quick => quick(),
        MatrixKind::Full => full(),
    };
    configs.into_iter().flat_map(|c| std::iter::repeat_n(c, repeat.max(1))).collect()
}

/// The seed's own method: production, then one factor changed at a time.
fn quick() -> Vec<RunConfig> {
    let prod = RunConfig::PRODUCTION;
    vec![
        prod,
        RunConfig { spawn: SpawnMode::Attached, stdio: StdioMode::Pipe },
        RunConfig { stdio: StdioMode::Pipe, ..prod },
        RunConfig { stdio: StdioMode::File, ..prod },
    ]
}

/// Every combination of the dimensions, production first.
fn full() -> Vec<RunConfig> {
    let mut all = vec![RunConfig::PRODUCTION];
    for spawn in [SpawnMode::Detached, SpawnMode::Attached] {
        for stdio in [StdioMode::Ignore, StdioMode::Pipe, StdioMode::File] {
            let c = RunConfig { spawn, stdio };
            if !all.contains(&c) {
                all.push(c);
            }
        }
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quick_is_production_then_one_change_at_a_time() {
        let q = expand(MatrixKind::Quick, 1);
        assert_eq!(q[0], RunConfig::PRODUCTION);
        assert_eq!(q.len(), 4);
        assert_eq!(q[1], RunConfig { spawn: SpawnMode::Attached, stdio: StdioMode::Pipe });
    }

    #[test]
    fn full_is_the_product_without_duplicates() {
        let f = expand(MatrixKind::Full, 1);
        assert_eq!(f.len(), 6);
        assert_eq!(f[0], RunConfig::PRODUCTION);
        for (i, a) in f.iter().enumerate() {
            assert!(!f[i + 1..].contains(a));
        }
    }

    #[test]
    fn repeat_keeps_runs_of_a_configuration_together() {
        let r = expand(MatrixKind::Quick, 3);
        assert_eq!(r.len(), 12);
        assert!(r[..3].iter().all(|c| *c == RunConfig::PRODUCTION));
    }
}
