//! Raw access to the on-disk layout, for tests that deliberately inspect
//! or corrupt it (a tampered audit log, a secret left in plain text by an
//! older build). The service itself never uses this module: everything
//! else goes through the repositories. Trees are named as on disk
//! (`events`, `meta`, `endpoints`, …).

use super::{Batch, Result, Store, StoreError, Tree};

fn tree(name: &str) -> Result<Tree> {
    Tree::ALL
        .into_iter()
        .find(|t| t.name() == name)
        .ok_or_else(|| StoreError::Backend(format!("no tree named {name}")))
}

/// The stored bytes at `key` in the tree named `tree_name`.
pub fn get(store: &dyn Store, tree_name: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
    store.get_raw(tree(tree_name)?, key)
}

/// Every stored record of the tree named `tree_name`, in key order.
pub fn records(store: &dyn Store, tree_name: &str) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    store.scan_raw(tree(tree_name)?, b"", usize::MAX, false)
}

/// Writes each `(tree name, key, bytes)` as given, bypassing
/// every check a repository makes, and flushes.
pub fn overwrite(store: &dyn Store, writes: &[(&str, Vec<u8>, Vec<u8>)]) -> Result<()> {
    let mut batch = Batch::new();
    for (name, key, value) in writes {
        batch.put_raw(tree(name)?, key.clone(), value.clone());
    }
    store.commit(batch)?;
    store.flush()
}
