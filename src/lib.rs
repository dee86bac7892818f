//! aupd: a cloud provider's acceptable-use policy enforcement service.
//!
//! The rooms follow the house plan: `policy` scores text, `api` serves HTTP,
//! `app` wires them together, `config` holds typed settings.

pub mod api;
pub mod app;
pub mod cli;
pub mod clock;
pub mod config;
pub mod console;
pub mod delivery;
pub mod domain;
pub mod enforcement;
pub mod metrics;
pub mod policy;
pub mod readiness;
pub mod review;
pub mod sampling;
pub mod service;
pub mod store;
pub mod telemetry;
#[cfg(test)]
mod test_rng;
pub mod workers;
