//! Small records the service keeps about itself: the cursors of event
//! consumers, the policy version the cluster wants, and the markers of
//! one-off upgrades of an existing store.

use super::{Batch, Record, Result, SharedStore, Store, Tree, Version};
use crate::policy::sync::WantedPolicy;

/// A consumer's position in the event log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cursor {
    /// Opening cases from crossed evidence thresholds.
    Evidence,
    /// Raising operator alerts from overdue receipts.
    DeliveryAlerts,
}

impl Cursor {
    fn key(self) -> &'static [u8] {
        match self {
            Cursor::Evidence => b"cursor.evidence",
            Cursor::DeliveryAlerts => b"cursor.delivery_alerts",
        }
    }
}

/// The sequence number of the last event `cursor` consumed (0 before the
/// first), and the version read, so the write that advances it commits
/// only if no other consumer moved it meanwhile.
pub fn cursor(store: &dyn Store, cursor: Cursor) -> Result<(u64, Version)> {
    let key = cursor.key().to_vec();
    let raw = store.get_raw(Tree::Meta, &key)?;
    let seq = raw
        .as_deref()
        .and_then(|v| v.try_into().ok().map(u64::from_be_bytes))
        .unwrap_or(0);
    Ok((
        seq,
        Version {
            tree: Tree::Meta,
            key,
            raw,
        },
    ))
}

/// Moves `cursor` to `seq` in `batch`; returns the version it will have
/// once the batch commits (the precondition for the next move).
pub fn set_cursor(batch: &mut Batch, cursor: Cursor, seq: u64) -> Version {
    let key = cursor.key().to_vec();
    let raw = seq.to_be_bytes().to_vec();
    batch.put_raw(Tree::Meta, key.clone(), raw.clone());
    Version {
        tree: Tree::Meta,
        key,
        raw: Some(raw),
    }
}

/// Key of the wanted policy version.
const WANTED_KEY: &[u8] = b"policy/wanted";

impl Record for WantedPolicy {
    const TREE: Tree = Tree::Meta;
    const VERSION: u32 = 1;
    fn key(&self) -> Vec<u8> {
        WANTED_KEY.to_vec()
    }
}

/// The policy version the cluster wants, if a reload recorded one, and the
/// version read (to tell whether it changed since).
pub fn wanted_policy(store: &dyn Store) -> Result<(Option<WantedPolicy>, Version)> {
    Version::read::<WantedPolicy>(store, WANTED_KEY.to_vec())
}

/// One read of the store, as the readiness probe makes it.
pub fn probe(store: &dyn Store) -> Result<()> {
    store.get_raw(Tree::Meta, b"readyz").map(drop)
}

/// A one-off upgrade of a store written by an older build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upgrade {
    /// Webhook secrets sealed at rest.
    WebhookSecretsSealed,
}

impl Upgrade {
    fn marker(self) -> &'static [u8] {
        match self {
            Upgrade::WebhookSecretsSealed => b"webhook_secrets_sealed",
        }
    }
}

/// Runs `upgrade` once per store (see [`super::build_once`]).
pub fn run_once(
    store: &SharedStore,
    upgrade: Upgrade,
    run: impl FnOnce() -> Result<()>,
) -> Result<()> {
    super::build_once(store, upgrade.marker(), run)
}

/// Forgets that `upgrade` ran, as in a store written before it existed.
/// For tests of the upgrade.
#[doc(hidden)]
pub fn forget_upgrade(store: &dyn Store, upgrade: Upgrade) -> Result<()> {
    let mut batch = Batch::new();
    batch.delete_raw(Tree::Meta, upgrade.marker().to_vec());
    store.commit(batch)?;
    store.flush()
}

/// Key of the value sealed with the webhook sealing key of the first
/// replica that started on this store.
const KEY_CHECK_KEY: &[u8] = b"webhook_key_check";

/// The value the first replica sealed with its webhook sealing key, if one
/// did.
pub fn key_check(store: &dyn Store) -> Result<Option<String>> {
    Ok(store
        .get_raw(Tree::Meta, KEY_CHECK_KEY)?
        .map(|v| String::from_utf8_lossy(&v).into_owned()))
}

/// Records `sealed` as the key check unless another replica recorded one
/// first (then nothing is written and `Ok(false)` says to read theirs).
pub fn record_key_check(store: &dyn Store, sealed: &str) -> Result<bool> {
    let mut batch = Batch::new();
    batch.expect_raw(Tree::Meta, KEY_CHECK_KEY.to_vec(), None);
    batch.put_raw(
        Tree::Meta,
        KEY_CHECK_KEY.to_vec(),
        sealed.as_bytes().to_vec(),
    );
    match store.commit(batch) {
        Ok(_) => {
            store.flush()?;
            Ok(true)
        }
        Err(super::StoreError::Conflict(_)) => Ok(false),
        Err(e) => Err(e),
    }
}
