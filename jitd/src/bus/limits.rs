//! Per-uid limits on the `Manager` interface, checked before anything costly — an audit row, a
//! name lookup, polkit, the core's lock — so that no local user can make jitd busy for others.
//!
//! Each uid gets a token bucket (`calls_per_sec`, burst `calls_burst` in jitd.toml; defaults
//! [`RATE_PER_SEC`], [`BURST`]) and at most `calls_in_flight` ([`MAX_IN_FLIGHT`]) calls at
//! once. A refused call costs one counter increment; the refusals of
//! a uid are audited as one summary per [`SUMMARY_EVERY`], not one row per call, so a flood adds
//! at most one row per window to the audit trail (plus at most the allowed rate of ordinary
//! records). Root is not limited: it is the admin, and its tools may loop.

#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Sustained calls per second per uid: people type, scripts that poll get slowed.
pub const RATE_PER_SEC: f64 = 5.0;
/// Calls a uid may make at once after a quiet spell.
pub const BURST: f64 = 20.0;
/// Calls of one uid being served at the same time.
pub const MAX_IN_FLIGHT: u32 = 4;
/// How often refused calls of a uid are summarised in the audit trail.
pub const SUMMARY_EVERY: Duration = Duration::from_secs(10);
/// Uids remembered at most; an idle bucket is full again, so the oldest are simply forgotten.
const MAX_TRACKED: usize = 10_000;

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
    in_flight: u32,
    /// Refusals not yet summarised, and when the last summary went out.
    refused: u64,
    summarised: Option<Instant>,
}

/// Why a call was refused, and whether the audit should hear of it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub message: String,
    /// `Some(n)`: write one summary record now, for `n` refusals since the last one.
    pub summary: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct Limits {
    rate: f64,
    burst: f64,
    in_flight: u32,
    buckets: Arc<Mutex<HashMap<u32, Bucket>>>,
}

impl Default for Limits {
    fn default() -> Self {
        Self::new(RATE_PER_SEC, BURST as u32, MAX_IN_FLIGHT)
    }
}

/// A call admitted; dropping it frees its in-flight slot.
#[derive(Debug)]
pub struct Permit {
    limits: Limits,
    uid: u32,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut buckets = self.limits.lock();
        if let Some(b) = buckets.get_mut(&self.uid) {
            b.in_flight = b.in_flight.saturating_sub(1);
        }
    }
}

impl Limits {
    pub fn new(rate_per_sec: f64, burst: u32, in_flight: u32) -> Self {
        Self {
            rate: rate_per_sec.max(0.01),
            burst: f64::from(burst.max(1)),
            in_flight: in_flight.max(1),
            buckets: Arc::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u32, Bucket>> {
        self.buckets.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Admits a call of `uid` at `now`, or says why not.
    pub fn admit(&self, uid: u32, now: Instant) -> Result<Option<Permit>, Refusal> {
        if uid == 0 {
            return Ok(None);
        }
        let mut buckets = self.lock();
        if buckets.len() >= MAX_TRACKED && !buckets.contains_key(&uid) {
            buckets.retain(|_, b| b.in_flight > 0 || b.refused > 0);
        }
        let b = buckets.entry(uid).or_insert(Bucket {
            tokens: self.burst,
            last: now,
            in_flight: 0,
            refused: 0,
            summarised: None,
        });
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.rate).min(self.burst);
        b.last = now;
        let why = if b.in_flight >= self.in_flight {
            format!(
                "uid {uid} already has {} calls in progress; wait for them",
                self.in_flight
            )
        } else if b.tokens < 1.0 {
            format!(
                "uid {uid} is calling jitd faster than {} times a second; slow down",
                self.rate
            )
        } else {
            b.tokens -= 1.0;
            b.in_flight += 1;
            return Ok(Some(Permit {
                limits: self.clone(),
                uid,
            }));
        };
        b.refused += 1;
        let due = b
            .summarised
            .is_none_or(|at| now.saturating_duration_since(at) >= SUMMARY_EVERY);
        let summary = due.then(|| {
            b.summarised = Some(now);
            std::mem::take(&mut b.refused)
        });
        Err(Refusal {
            message: why,
            summary,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_served_then_the_rate_holds_and_refusals_are_summarised_per_window() {
        let limits = Limits::default();
        let t0 = Instant::now();
        for _ in 0..BURST as usize {
            // Sequential calls: each permit is dropped at once, nothing stays in flight.
            assert!(limits.admit(1001, t0).is_ok());
        }
        let first = limits.admit(1001, t0).unwrap_err();
        assert_eq!(
            first.summary,
            Some(1),
            "the first refusal is on record at once"
        );
        for _ in 0..1000 {
            assert_eq!(limits.admit(1001, t0).unwrap_err().summary, None);
        }
        assert!(limits.admit(1002, t0).is_ok(), "others are not affected");
        assert!(
            limits.admit(0, t0).unwrap().is_none(),
            "root is not limited"
        );
        // A second later the bucket has RATE_PER_SEC tokens again.
        let t1 = t0 + Duration::from_secs(1);
        for _ in 0..RATE_PER_SEC as usize {
            assert!(limits.admit(1001, t1).is_ok());
        }
        assert!(limits.admit(1001, t1).is_err());
        // The next summary comes a window later and counts everything refused meanwhile.
        let t2 = t0 + SUMMARY_EVERY;
        let mut summary = None;
        for _ in 0..(BURST as usize + 1) {
            if let Err(r) = limits.admit(1001, t2) {
                summary = r.summary;
            }
        }
        assert_eq!(summary, Some(1000 + 1 + 1));
    }

    #[test]
    fn calls_in_progress_are_capped_and_freed_when_done() {
        let limits = Limits::default();
        let t0 = Instant::now();
        let permits: Vec<_> = (0..MAX_IN_FLIGHT)
            .map(|_| limits.admit(7, t0).unwrap())
            .collect();
        assert!(
            limits
                .admit(7, t0)
                .unwrap_err()
                .message
                .contains("in progress")
        );
        drop(permits);
        assert!(limits.admit(7, t0).is_ok());
    }
}
