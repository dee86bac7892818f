//! Policy reloads across replicas. A reload (`POST /v1/policy/reload` or
//! SIGHUP) on one replica validates and swaps the policy there, then records
//! the version it put in force as the one the cluster wants, and announces
//! it (on PostgreSQL a `NOTIFY`, so the other replicas look at once). Every
//! replica looks at that record when woken and every
//! `cluster.policy_poll_ms` regardless (the record is the truth; a lost
//! wake-up only delays a reload to the next poll); when it names
//! another version than its own, the replica reloads from its own policy
//! directory, and swaps the result in only if its files hash to the wanted
//! version. If they do not (its copy of the files differs, or has not
//! caught up yet), it keeps the policy in force, logs an error, sets
//! `aupd_policy_out_of_step` and tries again a little later.

use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{load_engine, PolicyHandle};
use crate::store::{meta, Batch, SharedStore, Topic, Version};

/// While out of step, the files are loaded again every this many looks.
const RETRY_EVERY: u32 = 5;

/// The policy version the cluster wants, as the last reload recorded it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WantedPolicy {
    /// The content hash of the policy put in force.
    pub version: String,
    /// The replica that reloaded it.
    pub by: String,
    /// When.
    pub at: Timestamp,
}

/// Records `version` as the policy every replica should have. Blocking.
pub fn record_wanted(store: &SharedStore, version: &str, by: &str) -> crate::store::Result<()> {
    let mut batch = Batch::new();
    batch.put(&WantedPolicy {
        version: version.to_string(),
        by: by.to_string(),
        at: Timestamp::now(),
    })?;
    store.commit(batch)?;
    store.flush()?;
    if let Err(e) = store.announce(Topic::Policy) {
        tracing::warn!(error = %e, "cannot wake the other replicas; they reload at their next poll");
    }
    Ok(())
}

/// What one look found.
#[derive(Debug, Clone, PartialEq)]
pub enum Look {
    /// Nothing to do.
    InStep,
    /// Reloaded to the wanted version.
    Reloaded(String),
    /// The files here hash to `found`, not the `wanted` version: the policy
    /// in force stays.
    OutOfStep {
        /// What the cluster wants.
        wanted: String,
        /// What this replica's files give.
        found: String,
    },
}

#[derive(Debug, Default)]
struct Seen {
    /// The wanted record as last acted on.
    version: Option<Version>,
    /// The wanted version this replica could not reach, if any.
    failing: Option<String>,
    looks_since_try: u32,
}

/// One replica's follower of the wanted policy version.
#[derive(Debug)]
pub struct PolicySync {
    store: SharedStore,
    policy: Arc<PolicyHandle>,
    replica: String,
    seen: Mutex<Seen>,
}

impl PolicySync {
    /// A follower for `replica`. The wanted record found now is taken as
    /// already handled: at start a replica follows its own files, and
    /// acts on the next reload anyone asks for. Blocking.
    pub fn new(store: SharedStore, policy: Arc<PolicyHandle>, replica: &str) -> Self {
        let (wanted, version) = match meta::wanted_policy(&*store) {
            Ok((wanted, version)) => (wanted, Some(version)),
            Err(_) => (None, None),
        };
        if let Some(wanted) = wanted {
            let own = policy.current().version().to_string();
            if wanted.version != own {
                tracing::info!(
                    wanted = %wanted.version,
                    version = %own,
                    "the policy files here differ from the last reload's; following them until the next reload"
                );
            }
        }
        PolicySync {
            store,
            policy,
            replica: replica.to_string(),
            seen: Mutex::new(Seen {
                version,
                ..Seen::default()
            }),
        }
    }

    /// This replica's id.
    pub fn replica(&self) -> &str {
        &self.replica
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        match self.seen.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// After a reload here: records the version in force as the wanted one.
    /// Blocking.
    pub fn reloaded_here(&self) -> crate::store::Result<()> {
        let version = self.policy.current().version().to_string();
        record_wanted(&self.store, &version, &self.replica)?;
        let mut seen = self.seen();
        seen.version = Some(meta::wanted_policy(&*self.store)?.1);
        seen.failing = None;
        crate::metrics::policy_out_of_step(false);
        Ok(())
    }

    /// One look at the wanted version; reloads when it changed. Blocking.
    pub fn look(&self) -> crate::store::Result<Look> {
        let (wanted, version) = meta::wanted_policy(&*self.store)?;
        let Some(wanted) = wanted else {
            return Ok(Look::InStep);
        };
        let own = self.policy.current().version().to_string();
        let mut seen = self.seen();
        if wanted.version == own {
            seen.version = Some(version);
            if seen.failing.take().is_some() {
                tracing::info!(version = %own, "the policy is in step again");
            }
            crate::metrics::policy_out_of_step(false);
            return Ok(Look::InStep);
        }
        let changed = seen.version.as_ref() != Some(&version);
        if !changed && seen.failing.is_none() {
            return Ok(Look::InStep);
        }
        if !changed {
            seen.looks_since_try += 1;
            if seen.looks_since_try < RETRY_EVERY {
                return Ok(Look::OutOfStep {
                    wanted: wanted.version,
                    found: own,
                });
            }
        }
        seen.looks_since_try = 0;
        seen.version = Some(version);
        let found = match load_engine(self.policy.dir()) {
            Ok(engine) if engine.version() == wanted.version => {
                self.policy.install(Arc::new(engine));
                seen.failing = None;
                crate::metrics::policy_out_of_step(false);
                tracing::info!(
                    from = %own,
                    to = %wanted.version,
                    by = %wanted.by,
                    "policy reloaded, as another replica asked"
                );
                return Ok(Look::Reloaded(wanted.version));
            }
            Ok(engine) => engine.version().to_string(),
            Err(e) => format!("invalid: {e}"),
        };
        if seen.failing.as_deref() != Some(wanted.version.as_str()) {
            tracing::error!(
                wanted = %wanted.version,
                found = %found,
                version = %own,
                by = %wanted.by,
                "the policy files on this replica do not give the version a reload asked for; the policy in force stays (every replica must mount the same policy files)"
            );
        }
        seen.failing = Some(wanted.version.clone());
        crate::metrics::policy_out_of_step(true);
        Ok(Look::OutOfStep {
            wanted: wanted.version,
            found,
        })
    }

    /// Looks when another replica announces a reload, and every `every`
    /// in any case, until `stop` turns true.
    pub async fn run(
        self: Arc<Self>,
        every: std::time::Duration,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        let wake = self.store.wakeups(Topic::Policy);
        loop {
            let woken = async {
                match &wake {
                    Some(w) => w.notified().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = woken => {}
                _ = stop.changed() => {
                    if *stop.borrow() { return; }
                }
            }
            let this = self.clone();
            match tokio::task::spawn_blocking(move || this.look()).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "cannot read the wanted policy version"),
                Err(e) => tracing::error!(error = %e, "policy follower task failed"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{copy_dir, shipped_dir};
    use crate::store::SledStore;

    fn replica(
        store: &SharedStore,
        name: &str,
    ) -> (tempfile::TempDir, Arc<PolicyHandle>, PolicySync) {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&shipped_dir(), dir.path());
        let handle = Arc::new(PolicyHandle::load(dir.path()).unwrap());
        let sync = PolicySync::new(store.clone(), handle.clone(), name);
        (dir, handle, sync)
    }

    fn edit(dir: &std::path::Path, to: &str) {
        let ladders = dir.join("escalation/ladders.toml");
        let shipped = std::fs::read_to_string(&ladders).unwrap();
        std::fs::write(&ladders, shipped.replacen("\"24h\"", to, 1)).unwrap();
    }

    #[test]
    fn a_reload_on_one_replica_reaches_another_with_the_same_files_and_not_one_with_others() {
        let store_dir = tempfile::tempdir().unwrap();
        let store: SharedStore = Arc::new(SledStore::open(store_dir.path()).unwrap());
        let (dir_a, a, sync_a) = replica(&store, "a");
        let (dir_b, b, sync_b) = replica(&store, "b");
        let (dir_c, c, sync_c) = replica(&store, "c");
        let shipped = a.current().version().to_string();
        assert_eq!(sync_b.look().unwrap(), Look::InStep);

        // The files change on every replica (a ConfigMap update), except c's.
        edit(dir_a.path(), "\"48h\"");
        edit(dir_b.path(), "\"48h\"");
        edit(dir_c.path(), "\"36h\"");
        assert_eq!(b.current().version(), shipped, "nothing reloads by itself");
        let wanted = a.reload().unwrap().version().to_string();
        sync_a.reloaded_here().unwrap();
        assert_eq!(sync_a.look().unwrap(), Look::InStep);

        assert_eq!(sync_b.look().unwrap(), Look::Reloaded(wanted.clone()));
        assert_eq!(b.current().version(), wanted);
        assert_eq!(sync_b.look().unwrap(), Look::InStep);

        match sync_c.look().unwrap() {
            Look::OutOfStep { wanted: w, found } => {
                assert_eq!(w, wanted);
                assert_ne!(found, wanted);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            c.current().version(),
            shipped,
            "c keeps the policy in force"
        );
        // c's files catch up: a later look reloads.
        std::fs::copy(
            dir_a.path().join("escalation/ladders.toml"),
            dir_c.path().join("escalation/ladders.toml"),
        )
        .unwrap();
        let mut reloaded = false;
        for _ in 0..RETRY_EVERY {
            if sync_c.look().unwrap() == Look::Reloaded(wanted.clone()) {
                reloaded = true;
            }
        }
        assert!(reloaded);
        assert_eq!(c.current().version(), wanted);
    }
}
