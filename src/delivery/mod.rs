//! The delivery room: Standard Webhooks signing, the retry schedule, and the
//! dispatcher that drains the outbox.

pub mod schedule;
pub mod signing;
