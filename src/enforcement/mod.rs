//! Enforcement: the case state machine, escalation ladders, deadlines and
//! approvals. Pure: it decides, the store commits, workers carry out effects.

pub mod decide;
pub mod statements;
/// The ladders are policy data, loaded and versioned with the categories;
/// enforcement reads them from there.
pub use crate::policy::ladder;

pub use decide::{decide, DecisionError};
pub use ladder::{Ladder, LadderError, Ladders, OnMiss, Opening};

#[cfg(test)]
mod tests;
