//! The acceptable-use policy as code: loading and validating policy files,
//! folding text against evasion, and scoring text into verdicts. Pure: the
//! only I/O is reading the policy directory.

pub mod cases;
pub mod crosssource;
pub mod dataset;
pub mod embeddings;
pub mod engine;
pub mod eval;
pub mod features;
#[cfg(test)]
mod golden;
pub mod labels;
pub mod ladder;
pub mod load;
pub mod metrics;
pub mod model;
pub mod normalize;
pub mod sync;
pub mod train;

pub use engine::{Engine, Evidence, Flag, Verdict};
pub use ladder::{LadderError, Ladders};
pub use load::{load_dir, Estimate, Policy, PolicyError, PolicyErrors};

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
    #[error(transparent)]
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

    /// Reloads the policy from disk: categories, escalation ladders and
    /// model files together, validated as one and swapped in as one. An
    /// invalid policy is refused with its errors and the one in force stays.
    pub fn reload(&self) -> Result<Arc<Engine>, LoadError> {
        let engine = Arc::new(load_engine(&self.dir)?);
        let mut guard = match self.current.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        *guard = engine.clone();
        Ok(engine)
    }

    /// Puts `engine` in force (one loaded from this handle's directory).
    pub fn install(&self, engine: Arc<Engine>) {
        let mut guard = match self.current.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        *guard = engine;
    }

    /// The directory the policy is loaded from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Copies a directory tree: policy tests edit a copy of the shipped policy.
#[cfg(test)]
pub(crate) fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What SIGHUP and `POST /v1/policy/reload` both call.
    #[test]
    fn reload_swaps_edited_ladders_in_and_keeps_the_policy_in_force_when_they_are_broken() {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&shipped_dir(), dir.path());
        let handle = PolicyHandle::load(dir.path()).unwrap();
        let ladders = dir.path().join("escalation/ladders.toml");
        let shipped = std::fs::read_to_string(&ladders).unwrap();
        let hours = |h| jiff::SignedDuration::from_hours(h);

        std::fs::write(&ladders, shipped.replacen("\"24h\"", "\"48h\"", 1)).unwrap();
        let edited = handle.reload().unwrap();
        assert_eq!(edited.policy().ladders.high.cure_window, hours(48));
        assert_eq!(handle.current().version(), edited.version());

        std::fs::write(&ladders, shipped.replacen("\"24h\"", "\"24\"", 1)).unwrap();
        let err = handle.reload().unwrap_err();
        assert!(err.to_string().contains("high.cure_window"), "{err}");
        assert_eq!(handle.current().version(), edited.version());
        assert_eq!(
            handle.current().policy().ladders.high.cure_window,
            hours(48)
        );
    }
}
