//! What `/readyz` needs beyond the store and the policy: whether each
//! background worker is still going round its loop (a heartbeat per loop),
//! and whether the service has begun shutting down.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Heartbeats of the background workers and the draining flag.
#[derive(Debug)]
pub struct Readiness {
    started: Instant,
    workers: Mutex<Vec<(&'static str, Heartbeat)>>,
    draining: AtomicBool,
}

/// One worker's heartbeat: it calls `beat` each time round its loop.
#[derive(Debug, Clone)]
pub struct Heartbeat {
    started: Instant,
    /// Milliseconds since `started` at the last beat.
    last_ms: Arc<AtomicU64>,
    stale_after: Duration,
}

impl Heartbeat {
    /// A heartbeat that is never registered (callers that need none).
    pub fn detached() -> Self {
        Heartbeat {
            started: Instant::now(),
            last_ms: Arc::new(AtomicU64::new(0)),
            stale_after: Duration::MAX,
        }
    }

    /// Records that the worker is alive now.
    pub fn beat(&self) {
        let ms = self.started.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// Time since the last beat.
    pub fn age(&self) -> Duration {
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(last)
    }
}

impl Default for Readiness {
    fn default() -> Self {
        Readiness {
            started: Instant::now(),
            workers: Mutex::new(Vec::new()),
            draining: AtomicBool::new(false),
        }
    }
}

impl Readiness {
    /// Registers a worker that is stale when it has not beaten for
    /// `stale_after` (a multiple of its tick, with room for its slowest job).
    pub fn register(&self, name: &'static str, stale_after: Duration) -> Heartbeat {
        let heartbeat = Heartbeat {
            started: self.started,
            last_ms: Arc::new(AtomicU64::new(self.started.elapsed().as_millis() as u64)),
            stale_after,
        };
        let mut workers = self.workers.lock().unwrap_or_else(|p| p.into_inner());
        workers.retain(|(n, _)| *n != name);
        workers.push((name, heartbeat.clone()));
        heartbeat
    }

    /// Forgets a worker that stopped on purpose.
    pub fn unregister(&self, name: &str) {
        let mut workers = self.workers.lock().unwrap_or_else(|p| p.into_inner());
        workers.retain(|(n, _)| *n != name);
    }

    /// Each registered worker and the time since its last beat.
    pub fn ages(&self) -> Vec<(&'static str, Duration)> {
        let workers = self.workers.lock().unwrap_or_else(|p| p.into_inner());
        workers.iter().map(|(n, h)| (*n, h.age())).collect()
    }

    /// Workers whose last beat is older than they allow, with that age.
    pub fn stale(&self) -> Vec<(&'static str, Duration)> {
        let workers = self.workers.lock().unwrap_or_else(|p| p.into_inner());
        workers
            .iter()
            .filter(|(_, h)| h.age() > h.stale_after)
            .map(|(n, h)| (*n, h.age()))
            .collect()
    }

    /// Marks the service as shutting down: no longer ready for new work.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    /// Whether shutdown has begun.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_that_stops_beating_goes_stale() {
        let r = Readiness::default();
        let quick = r.register("quick", Duration::from_millis(30));
        let patient = r.register("patient", Duration::from_secs(60));
        quick.beat();
        patient.beat();
        assert!(r.stale().is_empty());
        std::thread::sleep(Duration::from_millis(60));
        let stale: Vec<_> = r.stale().into_iter().map(|(n, _)| n).collect();
        assert_eq!(stale, vec!["quick"]);
        quick.beat();
        assert!(r.stale().is_empty());
        r.unregister("patient");
        assert_eq!(r.ages().len(), 1);
    }

    #[test]
    fn draining_is_remembered() {
        let r = Readiness::default();
        assert!(!r.is_draining());
        r.start_draining();
        assert!(r.is_draining());
    }
}
