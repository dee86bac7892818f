//! The acceptable-use policy as code.
pub mod normalize;
