//! Work leases: which replica does the work that must run once per cluster
//! (the evidence intake, webhook delivery), built on nothing but the
//! store's compare-and-set (`Expect`), so it holds on any backend.
//!
//! A lease is a record `lease/<name>` in [`Tree::Meta`]: who holds it, a
//! random token and when it expires. A replica takes it when it is absent,
//! expired or already its own, and renews it by moving the expiry on. The
//! token is new on each acquisition and also kept alone under
//! `fence/<name>`; work done under the lease commits with a precondition
//! that the fence still holds the token ([`Fence::guard`]). A renewal leaves
//! the fence as it is, so work in flight survives it; a takeover by another
//! replica changes it, so the old holder's later commits fail with
//! [`StoreError::Conflict`] and it stops.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::{decode, Batch, Record, Result, SharedStore, StoreError, Tree};
use crate::clock::Clock;

/// The lease of the enforcement loop's once-per-cluster work (evidence
/// intake, resumed cure verifications); due deadlines are claimed one by
/// one by every replica instead.
pub const ENFORCEMENT: &str = "enforcement";
/// The lease of webhook delivery (fan-out, alert watcher, sends).
pub const DELIVERY: &str = "delivery";

/// Who holds a lease, until when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeaseRecord {
    /// The lease's name.
    pub name: String,
    /// The replica holding it.
    pub holder: String,
    /// Random, new on each acquisition; the fence holds the same.
    pub token: String,
    /// When it lapses unless renewed.
    pub expires_at: Timestamp,
}

impl Record for LeaseRecord {
    const TREE: Tree = Tree::Meta;
    const VERSION: u32 = 1;
    fn key(&self) -> Vec<u8> {
        lease_key(&self.name)
    }
}

fn lease_key(name: &str) -> Vec<u8> {
    format!("lease/{name}").into_bytes()
}

fn fence_key(name: &str) -> Vec<u8> {
    format!("fence/{name}").into_bytes()
}

/// Proof of holding a lease at some moment: added to a batch, it makes the
/// batch commit only while no other replica has taken the lease since.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    name: String,
    token: String,
}

impl Fence {
    /// Adds the precondition that the lease was not taken over.
    pub fn guard(&self, batch: &mut Batch) {
        batch.expect_raw(
            Tree::Meta,
            fence_key(&self.name),
            Some(self.token.as_bytes().to_vec()),
        );
    }

    /// The token of the acquisition this fence belongs to.
    pub fn token(&self) -> &str {
        &self.token
    }
}

/// Adds `fence`'s precondition to `batch`, if there is a fence (work not
/// under a lease has none).
pub fn guard(batch: &mut Batch, fence: Option<&Fence>) {
    if let Some(f) = fence {
        f.guard(batch);
    }
}

#[derive(Debug, Default)]
struct Held {
    token: Option<String>,
    expires_at: Option<Timestamp>,
    renewed_at: Option<Timestamp>,
}

/// One replica's view of one lease.
#[derive(Debug)]
pub struct Lease {
    store: SharedStore,
    name: String,
    holder: String,
    ttl: Duration,
    clock: Arc<dyn Clock>,
    held: Mutex<Held>,
}

impl Lease {
    /// `holder`'s handle on the lease `name`, lasting `ttl` per renewal.
    pub fn new(
        store: SharedStore,
        name: &str,
        holder: &str,
        ttl: Duration,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Lease {
            store,
            name: name.to_string(),
            holder: holder.to_string(),
            ttl,
            clock,
            held: Mutex::new(Held::default()),
        }
    }

    /// How long the lease lasts per renewal.
    pub fn lasts(&self) -> Duration {
        self.ttl
    }

    /// The lease's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// This replica's id.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Held> {
        match self.held.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    fn ttl(&self) -> SignedDuration {
        SignedDuration::try_from(self.ttl).unwrap_or(SignedDuration::from_secs(15))
    }

    /// Takes the lease when it is free, lapsed or ours, and renews it when
    /// ours; returns the fence while held. Blocking.
    pub fn acquire_or_renew(&self) -> Result<Option<Fence>> {
        let key = lease_key(&self.name);
        let raw = self.store.get_raw(Tree::Meta, &key)?;
        let current: Option<LeaseRecord> = raw.as_deref().map(decode).transpose()?;
        let now = self.clock.now();
        let expires_at = now.checked_add(self.ttl()).unwrap_or(Timestamp::MAX);
        let mine = self.held().token.clone();
        let renewing = match (&current, &mine) {
            (Some(r), Some(token)) => r.holder == self.holder && &r.token == token,
            _ => false,
        };
        let free = match &current {
            None => true,
            // Lapsed, or left behind by an earlier process with this id.
            Some(r) => r.expires_at <= now || r.holder == self.holder,
        };
        if !renewing && !free {
            self.lost();
            return Ok(None);
        }
        let token = match (renewing, mine) {
            (true, Some(token)) => token,
            _ => uuid::Uuid::new_v4().simple().to_string(),
        };
        let record = LeaseRecord {
            name: self.name.clone(),
            holder: self.holder.clone(),
            token: token.clone(),
            expires_at,
        };
        let mut batch = Batch::new();
        batch.expect_raw(Tree::Meta, key, raw);
        batch.put(&record)?;
        if !renewing {
            batch.put_raw(Tree::Meta, fence_key(&self.name), token.as_bytes().to_vec());
        }
        match self.store.commit(batch) {
            Ok(_) => {}
            Err(StoreError::Conflict(_)) => {
                self.lost();
                return Ok(None);
            }
            Err(e) => return Err(e),
        }
        if !renewing {
            tracing::info!(lease = %self.name, replica = %self.holder, "lease acquired");
        }
        {
            let mut held = self.held();
            held.token = Some(token.clone());
            held.expires_at = Some(expires_at);
            held.renewed_at = Some(now);
        }
        crate::metrics::lease_held(&self.name, true);
        Ok(Some(Fence {
            name: self.name.clone(),
            token,
        }))
    }

    /// The fence, renewing first when a third of the lease time has passed
    /// since the last renewal (or it is not held): what a worker calls at
    /// the top of each pass. `None`: another replica does this work.
    pub fn ensure(&self) -> Result<Option<Fence>> {
        let now = self.clock.now();
        let due = {
            let held = self.held();
            match (&held.token, held.renewed_at) {
                (Some(_), Some(at)) => now.duration_since(at) >= self.ttl() / 3,
                _ => true,
            }
        };
        if due {
            match self.acquire_or_renew() {
                Ok(f) => Ok(f),
                Err(e) => {
                    // Cannot tell whether it is still ours: stop working
                    // once the time it was granted for has passed.
                    if self.fence().is_none() {
                        crate::metrics::lease_held(&self.name, false);
                    }
                    Err(e)
                }
            }
        } else {
            Ok(self.fence())
        }
    }

    /// The fence while this replica believes it holds the lease (taken and
    /// not yet lapsed by its own clock); no store access.
    pub fn fence(&self) -> Option<Fence> {
        let now = self.clock.now();
        let held = self.held();
        match (&held.token, held.expires_at) {
            (Some(token), Some(until)) if until > now => Some(Fence {
                name: self.name.clone(),
                token: token.clone(),
            }),
            _ => None,
        }
    }

    /// Forgets the lease after a fenced commit failed: another replica took
    /// it over. The next [`Self::ensure`] looks again.
    pub fn lost(&self) {
        let was = self.held().token.take().is_some();
        if was {
            tracing::warn!(lease = %self.name, replica = %self.holder, "lease lost to another replica");
        }
        crate::metrics::lease_held(&self.name, false);
    }

    /// Whether the fence still holds `fence`'s token (a conflict on a fenced
    /// commit may have other causes). Blocking.
    pub fn still_holds(&self, fence: &Fence) -> Result<bool> {
        Ok(self
            .store
            .get_raw(Tree::Meta, &fence_key(&self.name))?
            .as_deref()
            == Some(fence.token.as_bytes()))
    }

    /// Gives the lease up (at shutdown), so another replica takes the work
    /// over at once rather than after the lease time. Blocking.
    pub fn release(&self) -> Result<()> {
        let Some(token) = self.held().token.take() else {
            return Ok(());
        };
        crate::metrics::lease_held(&self.name, false);
        let key = lease_key(&self.name);
        let Some(raw) = self.store.get_raw(Tree::Meta, &key)? else {
            return Ok(());
        };
        let record: LeaseRecord = decode(&raw)?;
        if record.holder != self.holder || record.token != token {
            return Ok(());
        }
        let mut batch = Batch::new();
        batch.expect_raw(Tree::Meta, key.clone(), Some(raw));
        batch.delete_raw(Tree::Meta, key);
        match self.store.commit(batch) {
            Ok(_) | Err(StoreError::Conflict(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Who holds the lease according to the store, if anyone does now.
    pub fn holder_in_store(&self) -> Result<Option<LeaseRecord>> {
        let now = self.clock.now();
        Ok(self
            .store
            .get_raw(Tree::Meta, &lease_key(&self.name))?
            .as_deref()
            .map(decode::<LeaseRecord>)
            .transpose()?
            .filter(|r| r.expires_at > now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::store::SledStore;

    fn two_replicas() -> (tempfile::TempDir, Arc<ManualClock>, Lease, Lease) {
        let dir = tempfile::tempdir().unwrap();
        let store: SharedStore = Arc::new(SledStore::open(dir.path()).unwrap());
        let clock = Arc::new(ManualClock::new(
            Timestamp::from_second(1_800_000_000).unwrap(),
        ));
        let ttl = Duration::from_secs(15);
        let a = Lease::new(store.clone(), "work", "replica-a", ttl, clock.clone());
        let b = Lease::new(store, "work", "replica-b", ttl, clock.clone());
        (dir, clock, a, b)
    }

    fn fenced_write(lease: &Lease, fence: &Fence, value: &[u8]) -> Result<Vec<u64>> {
        let mut batch = Batch::new();
        fence.guard(&mut batch);
        batch.put_raw(Tree::Meta, b"work-output".to_vec(), value.to_vec());
        lease.store.commit(batch)
    }

    #[test]
    fn only_one_replica_holds_a_lease_and_renewing_keeps_work_in_flight_valid() {
        let (_dir, clock, a, b) = two_replicas();
        let fa = a
            .acquire_or_renew()
            .unwrap()
            .expect("a takes the free lease");
        assert_eq!(b.acquire_or_renew().unwrap(), None, "b must not share it");
        assert!(b.fence().is_none());

        clock.advance(SignedDuration::from_secs(10));
        let renewed = a.acquire_or_renew().unwrap().expect("a renews its own");
        assert_eq!(renewed, fa, "a renewal keeps the token");
        clock.advance(SignedDuration::from_secs(10));
        assert_eq!(
            b.acquire_or_renew().unwrap(),
            None,
            "20 s after taking it, a's renewed lease has not lapsed"
        );
        // Work a started before the renewal still commits.
        fenced_write(&a, &fa, b"a").unwrap();
        assert_eq!(
            a.holder_in_store().unwrap().map(|r| r.holder),
            Some("replica-a".to_string())
        );
    }

    #[test]
    fn a_takeover_after_expiry_fences_out_the_old_holders_commits() {
        let (_dir, clock, a, b) = two_replicas();
        let fa = a.acquire_or_renew().unwrap().unwrap();
        // a stalls (a long pause, a partition) past its lease time.
        clock.advance(SignedDuration::from_secs(16));
        assert!(a.fence().is_none(), "a knows by its clock that it lapsed");
        let fb = b
            .acquire_or_renew()
            .unwrap()
            .expect("b takes the lapsed lease");
        assert_ne!(fa.token(), fb.token());

        let err = fenced_write(&a, &fa, b"a").unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err}");
        assert!(!a.still_holds(&fa).unwrap());
        fenced_write(&b, &fb, b"b").unwrap();
        assert_eq!(
            b.store.get_raw(Tree::Meta, b"work-output").unwrap(),
            Some(b"b".to_vec())
        );
        // a comes back: the lease is b's now.
        assert_eq!(a.acquire_or_renew().unwrap(), None);
        assert!(b.still_holds(&fb).unwrap());
    }

    #[test]
    fn a_released_lease_is_taken_over_at_once() {
        let (_dir, _clock, a, b) = two_replicas();
        a.acquire_or_renew().unwrap().unwrap();
        assert_eq!(b.acquire_or_renew().unwrap(), None);
        a.release().unwrap();
        assert!(b.acquire_or_renew().unwrap().is_some());
        assert_eq!(a.ensure().unwrap(), None);
    }

    #[test]
    fn two_replicas_racing_for_a_free_lease_end_with_one_holder() {
        let (_dir, _clock, a, b) = two_replicas();
        let (a, b) = (Arc::new(a), Arc::new(b));
        let threads: Vec<_> = [a.clone(), b.clone()]
            .into_iter()
            .map(|l| std::thread::spawn(move || l.acquire_or_renew().unwrap()))
            .collect();
        let won: Vec<Option<Fence>> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(won.iter().filter(|f| f.is_some()).count(), 1, "{won:?}");
        // The loser sees the winner's token in the fence, not its own.
        let fence = won.into_iter().flatten().next().unwrap();
        assert!(a.still_holds(&fence).unwrap());
    }
}
