//! Limits kept in the store so that they hold across every replica, each
//! updated by compare-and-set: the per-reporter report rate limit (each
//! reporter's report times of the last hour in one record), the spacing of
//! fetches to one host (when the next fetch may start) and the places for
//! fetches under way to one host.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::{decode, Batch, Record, Result, SharedStore, Store, StoreError, Tree, Version};

/// A reporter's reports in the last hour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportRate {
    /// The reporter (token name).
    pub reporter: String,
    /// When each report of the last hour was filed.
    pub times: Vec<Timestamp>,
}

impl Record for ReportRate {
    const TREE: Tree = Tree::Meta;
    const VERSION: u32 = 1;
    fn key(&self) -> Vec<u8> {
        rate_key(&self.reporter)
    }
}

fn rate_key(reporter: &str) -> Vec<u8> {
    format!("report_rate/{reporter}").into_bytes()
}

/// Counts a report by `reporter` at `now` unless `per_hour` were filed in
/// the hour before; `false`: over the limit, nothing counted. A concurrent
/// report (on this replica or another) makes the commit conflict, and the
/// count is read again. Blocking.
pub fn take_report_slot(
    store: &SharedStore,
    reporter: &str,
    per_hour: u32,
    now: Timestamp,
) -> Result<bool> {
    let key = rate_key(reporter);
    let hour_ago = now - SignedDuration::from_hours(1);
    for _ in 0..32 {
        let (rate, version) = Version::read::<ReportRate>(&**store, key.clone())?;
        let mut rate = rate.unwrap_or_else(|| ReportRate {
            reporter: reporter.to_string(),
            times: Vec::new(),
        });
        rate.times.retain(|t| *t > hour_ago);
        if rate.times.len() >= per_hour as usize {
            return Ok(false);
        }
        rate.times.push(now);
        let mut batch = Batch::new();
        batch.expect_unchanged(&version);
        batch.put(&rate)?;
        match store.commit(batch) {
            Ok(_) => return Ok(true),
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::Backend(
        "the report rate kept changing under this report; try again".into(),
    ))
}

/// When the next fetch to one host may start, shared by every replica.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostPace {
    /// `host:port`.
    pub host: String,
    /// The earliest start of the next fetch.
    pub next_start: Timestamp,
}

impl Record for HostPace {
    const TREE: Tree = Tree::Meta;
    const VERSION: u32 = 1;
    fn key(&self) -> Vec<u8> {
        pace_key(&self.host)
    }
}

const PACE_PREFIX: &str = "host_pace/";

fn pace_key(host: &str) -> Vec<u8> {
    format!("{PACE_PREFIX}{host}").into_bytes()
}

/// Reserves the next start of a fetch to `host` (`host:port`): the later
/// of `now` and the start the last reservation left, which moves on by
/// `interval`. Reservations from any replica queue up `interval` apart; the
/// caller waits until the returned time, then fetches. A concurrent
/// reservation makes the commit conflict, and the record is read again.
/// Blocking.
pub fn reserve_fetch_start(
    store: &dyn Store,
    host: &str,
    interval: std::time::Duration,
    now: Timestamp,
) -> Result<Timestamp> {
    let key = pace_key(host);
    let step = SignedDuration::try_from(interval)
        .map_err(|e| StoreError::Backend(format!("fetch interval {interval:?}: {e}")))?;
    for _ in 0..64 {
        let (pace, version) = Version::read::<HostPace>(store, key.clone())?;
        let start = pace.map_or(now, |p| p.next_start.max(now));
        let mut batch = Batch::new();
        batch.expect_unchanged(&version);
        batch.put(&HostPace {
            host: host.to_string(),
            next_start: start.checked_add(step).unwrap_or(Timestamp::MAX),
        })?;
        match store.commit(batch) {
            Ok(_) => return Ok(start),
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::Backend(format!(
        "the fetch pace of {host} kept changing under this fetch; try again"
    )))
}

/// A fetch under way to one host, holding one of the host's places.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostFetch {
    /// `host:port`.
    pub host: String,
    /// Which place, below the host's concurrency.
    pub place: usize,
    /// Tells this holder from a later one of the same place.
    pub token: String,
    /// When the place is free again if never given back (the fetcher died).
    pub until: Timestamp,
}

impl Record for HostFetch {
    const TREE: Tree = Tree::Meta;
    const VERSION: u32 = 1;
    fn key(&self) -> Vec<u8> {
        host_fetch_key(&self.host, self.place)
    }
}

fn host_fetch_key(host: &str, place: usize) -> Vec<u8> {
    format!("host_fetch/{host}/{place}").into_bytes()
}

/// Takes one of `host`'s `places` for a fetch from any replica: one never
/// taken, given back, or whose holder's time ran out. The place is held
/// until `until` unless given back first ([`give_back_host_place`]).
/// `None`: every place is taken; wait and try again. Blocking.
pub fn take_host_place(
    store: &dyn Store,
    host: &str,
    places: usize,
    until: Timestamp,
    now: Timestamp,
) -> Result<Option<HostFetch>> {
    for place in 0..places.max(1) {
        let (held, version) = Version::read::<HostFetch>(store, host_fetch_key(host, place))?;
        if held.is_some_and(|h| h.until > now) {
            continue;
        }
        let mine = HostFetch {
            host: host.to_string(),
            place,
            token: format!("{:032x}", rand::random::<u128>()),
            until,
        };
        let mut batch = Batch::new();
        batch.expect_unchanged(&version);
        batch.put(&mine)?;
        match store.commit(batch) {
            Ok(_) => return Ok(Some(mine)),
            // Another fetch took it first: try the next place.
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

/// Gives back a place taken by [`take_host_place`], unless its time ran
/// out and another fetch holds it now. Blocking.
pub fn give_back_host_place(store: &dyn Store, taken: &HostFetch) -> Result<()> {
    let (held, version) = Version::read::<HostFetch>(store, taken.key())?;
    if held.as_ref() != Some(taken) {
        return Ok(());
    }
    let mut batch = Batch::new();
    batch.expect_unchanged(&version);
    batch.remove(taken);
    match store.commit(batch) {
        Ok(_) | Err(StoreError::Conflict(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Pace records looked at in one pass of [`forget_fetch_paces`].
const PACES_PER_PASS: usize = 4096;

/// Removes the pace records whose next start is before `before` (hosts not
/// fetched from since): nothing is waiting on them. A record reserved again
/// meanwhile is kept. Looks at most at [`PACES_PER_PASS`] records. Returns
/// how many went.
pub fn forget_fetch_paces(store: &dyn Store, before: Timestamp) -> Result<usize> {
    let mut forgotten = 0;
    for (key, raw) in store.scan_raw(Tree::Meta, PACE_PREFIX.as_bytes(), PACES_PER_PASS, false)? {
        if decode::<HostPace>(&raw)?.next_start >= before {
            continue;
        }
        let mut batch = Batch::new();
        batch.expect_raw(Tree::Meta, key.clone(), Some(raw));
        batch.delete_raw(Tree::Meta, key);
        match store.commit(batch) {
            Ok(_) => forgotten += 1,
            Err(StoreError::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(forgotten)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SledStore;
    use std::sync::Arc;

    #[test]
    fn a_hosts_places_are_taken_once_and_free_when_given_back_or_when_time_runs_out() {
        let dir = tempfile::tempdir().unwrap();
        let store: SharedStore = Arc::new(SledStore::open(dir.path()).unwrap());
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let until = now + SignedDuration::from_secs(20);
        // Two places, taken by eight threads at once: two get one.
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let store = store.clone();
                std::thread::spawn(move || take_host_place(&*store, "a:80", 2, until, now).unwrap())
            })
            .collect();
        let taken: Vec<HostFetch> = threads
            .into_iter()
            .filter_map(|t| t.join().unwrap())
            .collect();
        assert_eq!(taken.len(), 2);
        assert_ne!(taken[0].place, taken[1].place);
        assert!(take_host_place(&*store, "a:80", 2, until, now)
            .unwrap()
            .is_none());
        // Another host has its own places.
        assert!(take_host_place(&*store, "b:80", 2, until, now)
            .unwrap()
            .is_some());
        // Given back, a place is free again.
        give_back_host_place(&*store, &taken[0]).unwrap();
        let again = take_host_place(&*store, "a:80", 2, until, now)
            .unwrap()
            .unwrap();
        assert_eq!(again.place, taken[0].place);
        // A holder that never gives back loses its place when its time
        // runs out; its late give-back leaves the new holder alone.
        let later = until + SignedDuration::from_secs(1);
        let after = take_host_place(
            &*store,
            "a:80",
            2,
            later + SignedDuration::from_secs(20),
            later,
        )
        .unwrap()
        .unwrap();
        give_back_host_place(&*store, &taken[1]).unwrap();
        give_back_host_place(&*store, &again).unwrap();
        let held: Option<HostFetch> = store.get(&host_fetch_key("a:80", after.place)).unwrap();
        assert_eq!(held, Some(after));
    }

    #[test]
    fn the_limit_holds_for_reports_racing_on_two_replicas_and_frees_up_after_an_hour() {
        let dir = tempfile::tempdir().unwrap();
        let store: SharedStore = Arc::new(SledStore::open(dir.path()).unwrap());
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        // Two replicas, each filing ten reports for one reporter at once.
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let store = store.clone();
                std::thread::spawn(move || {
                    (0..10)
                        .filter(|_| take_report_slot(&store, "ana", 5, now).unwrap())
                        .count()
                })
            })
            .collect();
        let taken: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(taken, 5);
        assert!(
            take_report_slot(&store, "ben", 5, now).unwrap(),
            "another reporter has a limit of their own"
        );
        let later = now + SignedDuration::from_mins(61);
        assert!(take_report_slot(&store, "ana", 5, later).unwrap());
    }

    #[test]
    fn fetches_to_one_host_reserved_from_two_replicas_start_an_interval_apart() {
        let dir = tempfile::tempdir().unwrap();
        let store: SharedStore = Arc::new(SledStore::open(dir.path()).unwrap());
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let gap = std::time::Duration::from_millis(250);
        // Two replicas reserve eight starts each, all at the same moment.
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let store = store.clone();
                std::thread::spawn(move || {
                    (0..8)
                        .map(|_| reserve_fetch_start(store.as_ref(), "site:443", gap, now).unwrap())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut starts: Vec<Timestamp> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        starts.sort();
        let expected: Vec<Timestamp> = (0..16)
            .map(|i| now + SignedDuration::from_millis(250 * i))
            .collect();
        assert_eq!(starts, expected, "one start every interval, none shared");
        // Another host has its own pace; a later request starts at once.
        assert_eq!(
            reserve_fetch_start(store.as_ref(), "other:443", gap, now).unwrap(),
            now
        );
        let later = now + SignedDuration::from_secs(60);
        assert_eq!(
            reserve_fetch_start(store.as_ref(), "site:443", gap, later).unwrap(),
            later
        );

        // Only hosts with no start reserved past the cut-off are forgotten.
        let cutoff = later;
        assert_eq!(forget_fetch_paces(store.as_ref(), cutoff).unwrap(), 1);
        assert!(store
            .get_raw(Tree::Meta, &pace_key("other:443"))
            .unwrap()
            .is_none());
        assert!(store
            .get_raw(Tree::Meta, &pace_key("site:443"))
            .unwrap()
            .is_some());
    }
}
