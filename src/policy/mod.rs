//! The acceptable-use policy as code: loading and validating policy files,
//! folding text against evasion, and scoring text into verdicts. Pure: the
//! only I/O is reading the policy directory.

pub mod cases;
pub mod dataset;
pub mod engine;
pub mod eval;
pub mod features;
#[cfg(test)]
mod golden;
pub mod load;
pub mod metrics;
pub mod model;
pub mod normalize;
pub mod train;

pub use engine::{Engine, Evidence, Flag, Verdict};
pub use load::{load_dir, Policy, PolicyError, PolicyErrors};

use std::path::Path;

/// The policy directory of this repository, which the service ships with:
/// tests that check the shipped policy itself load it from here.
#[cfg(test)]
pub(crate) fn shipped_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("policies")
}

/// Why a policy directory could not become an engine.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The files are invalid.
    #[error("{0}")]
    Invalid(#[from] PolicyErrors),
    /// The phrase automaton could not be built.
    #[error(transparent)]
    Compile(#[from] engine::CompileError),
}

/// Loads, validates and compiles the policy in `dir`.
pub fn load_engine(dir: &Path) -> Result<Engine, LoadError> {
    let policy = load_dir(dir)?;
    Ok(Engine::compile(policy)?)
}

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

/// The policy in force, swapped atomically on reload.
#[derive(Debug)]
pub struct PolicyHandle {
    dir: PathBuf,
    current: RwLock<Arc<Engine>>,
}

impl PolicyHandle {
    /// Loads the policy in `dir`; fails if it is invalid.
    pub fn load(dir: &Path) -> Result<Self, LoadError> {
        let engine = load_engine(dir)?;
        Ok(PolicyHandle {
            dir: dir.to_path_buf(),
            current: RwLock::new(Arc::new(engine)),
        })
    }

    /// The engine in force now.
    pub fn current(&self) -> Arc<Engine> {
        match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Reloads the policy from disk. An invalid policy is refused with its
    /// errors and the one in force stays.
    pub fn reload(&self) -> Result<Arc<Engine>, LoadError> {
        let engine = Arc::new(load_engine(&self.dir)?);
        let mut guard = match self.current.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        *guard = engine.clone();
        Ok(engine)
    }

    /// The directory the policy is loaded from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}
