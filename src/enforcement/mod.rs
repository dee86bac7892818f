//! Enforcement: the case state machine, escalation ladders, deadlines and
//! approvals. Pure: it decides, the store commits, workers carry out effects.

pub mod ladder;

pub use ladder::{Ladder, LadderError, Ladders, OnMiss, Opening};
