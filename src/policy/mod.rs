//! The acceptable-use policy as code.
pub mod dataset;
pub mod features;
pub mod metrics;
pub mod model;
pub mod normalize;
pub mod train;
