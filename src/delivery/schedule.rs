//! When to try a webhook message again.
//!
//! The schedule follows common practice for webhook services: roughly 5 s,
//! 5 min, 30 min, 2 h, 5 h, 10 h and 10 h after the previous attempt, each
//! with ±20% jitter so that a recovering receiver is not hit by every
//! message at once. A `Retry-After` on 429 or 503 replaces the next delay,
//! bounded so a receiver can neither hammer us nor park a message forever.

use std::time::Duration;

/// Delays after attempt 1, 2, … before the next one; after the last, the
/// message is dead.
pub const RETRY_DELAYS: [Duration; 7] = [
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];

/// Shortest delay a `Retry-After` may ask for.
pub const MIN_RETRY_AFTER: Duration = Duration::from_secs(1);
/// Longest delay a `Retry-After` may ask for.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(10 * 3600);

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Try again after this delay.
    RetryIn(Duration),
    /// No attempts left: the message is dead.
    Dead,
}

/// The delay after failed attempt number `attempts` (1-based), with jitter
/// from `unit` in [0, 1) (0.5 means none), or the server's `Retry-After`.
pub fn next_attempt(attempts: u32, retry_after: Option<Duration>, unit: f64) -> Next {
    let Some(base) = (attempts as usize)
        .checked_sub(1)
        .and_then(|i| RETRY_DELAYS.get(i))
    else {
        return Next::Dead;
    };
    if let Some(asked) = retry_after {
        return Next::RetryIn(asked.clamp(MIN_RETRY_AFTER, MAX_RETRY_AFTER));
    }
    let factor = 0.8 + 0.4 * unit.clamp(0.0, 1.0);
    Next::RetryIn(base.mul_f64(factor))
}

/// Parses a `Retry-After` header given in seconds (the HTTP-date form is
/// rare from webhook receivers and is ignored).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_has_seven_retries_then_dead() {
        let delays: Vec<Next> = (1..=8).map(|a| next_attempt(a, None, 0.5)).collect();
        assert_eq!(delays[0], Next::RetryIn(Duration::from_secs(5)));
        assert_eq!(delays[1], Next::RetryIn(Duration::from_secs(300)));
        assert_eq!(delays[6], Next::RetryIn(Duration::from_secs(36000)));
        assert_eq!(delays[7], Next::Dead);
        assert_eq!(next_attempt(0, None, 0.5), Next::Dead);
    }

    #[test]
    fn jitter_stays_within_twenty_percent() {
        let low = next_attempt(2, None, 0.0);
        let high = next_attempt(2, None, 0.999_999);
        assert_eq!(low, Next::RetryIn(Duration::from_secs(240)));
        match high {
            Next::RetryIn(d) => {
                assert!(d > Duration::from_secs(359) && d <= Duration::from_secs(360))
            }
            Next::Dead => panic!("not dead"),
        }
    }

    #[test]
    fn retry_after_is_honoured_within_bounds() {
        assert_eq!(
            next_attempt(1, Some(Duration::from_secs(42)), 0.5),
            Next::RetryIn(Duration::from_secs(42))
        );
        assert_eq!(
            next_attempt(1, Some(Duration::ZERO), 0.5),
            Next::RetryIn(MIN_RETRY_AFTER)
        );
        assert_eq!(
            next_attempt(1, Some(Duration::from_secs(999_999)), 0.5),
            Next::RetryIn(MAX_RETRY_AFTER)
        );
        assert_eq!(
            next_attempt(8, Some(Duration::from_secs(5)), 0.5),
            Next::Dead
        );
        assert_eq!(parse_retry_after(" 120 "), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }
}
