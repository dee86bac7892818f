//! Learned linear classifier (interface; the trained implementation lands separately).

use std::path::Path;

use super::normalize::Normalized;

/// A logistic-regression model over hashed n-gram features.
#[derive(Debug, Clone)]
pub struct LinearModel {
    bias: f32,
}

/// Why a model file could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ModelError(String);

impl LinearModel {
    /// Loads a model file.
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        let bytes =
            std::fs::read(path).map_err(|e| ModelError(format!("{}: {e}", path.display())))?;
        Ok(LinearModel {
            bias: if bytes.is_empty() { 0.0 } else { -4.0 },
        })
    }

    /// Probability that the text belongs to the positive class.
    pub fn predict(&self, _text: &Normalized) -> f32 {
        1.0 / (1.0 + (-self.bias).exp())
    }

    /// Folded byte spans of the words that pushed the score up most.
    pub fn explain(&self, _text: &Normalized, _k: usize) -> Vec<(usize, usize, f32)> {
        Vec::new()
    }
}
