//! H2: an attached spawn kills the worker (it shares its launcher's session and group).

use super::compare::{answer, launcher_left_first, Question};
use crate::{Dimension, Finding, Probe, RunRecord, SpawnMode};

pub struct AttachedSpawn;

impl Probe for AttachedSpawn {
    fn id(&self) -> &'static str {
        "H2"
    }
    fn causal_rank(&self) -> u8 {
        110
    }
    fn compares(&self) -> Option<Dimension> {
        Some(Dimension::Spawn)
    }
    fn title(&self) -> &'static str {
        "attached spawn kills the worker"
    }
    fn checks(&self) -> &'static str {
        "Compares runs whose configurations differ in the spawn mode only (attached: the launcher's session and \
         process group; detached: setsid). Confirmed when an attached configuration fails in a way its detached \
         twin never does while the twin is healthy (e.g. killed when the launcher exits); ruled out when outcomes \
         are equal across spawn modes."
    }
    fn fix(&self) -> &'static str {
        "Spawn the worker detached (a new session: `detached: true` and `unref()` in Node), so the launcher's exit, \
         its terminal's hang-up or a kill of its process group does not reach the worker."
    }
    fn evaluate(&self, runs: &[RunRecord]) -> Finding {
        answer(
            runs,
            &Question {
                dim: Dimension::Spawn,
                base: |c| c.spawn == SpawnMode::Detached,
                suspect: |c| c.spawn == SpawnMode::Attached,
                suspect_name: "an attached spawn",
                explain: launcher_left_first,
            },
        )
    }
}
