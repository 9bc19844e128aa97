//! Per-principal byte-rate quotas on produce and fetch that throttle, the
//! Kafka way: the bytes are accepted, and [`Quotas::record`] says how long
//! the caller must delay its response (and stop reading from the
//! connection) so that the principal's rate comes back to its quota.
//!
//! Each principal has a token bucket per kind, holding at most one second
//! of its rate (the burst). A request takes its bytes from the bucket; a
//! bucket in debt gives a throttle time of debt / rate, so a client that
//! waits out its throttle times sends at the quota on average. The throttle
//! is capped at [`MAX_THROTTLE`] (debt beyond that is forgiven, so one huge
//! request does not silence a client for minutes). A quota of 0 throttles
//! every request by [`MAX_THROTTLE`].
//!
//! The state is sharded over mutexes for many connection threads, and a
//! principal idle for [`IDLE_EVICT`] is forgotten (its bucket would be full
//! again anyway), so memory follows the active principals.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::principal::Principal;

/// The longest throttle one request gets.
pub const MAX_THROTTLE: Duration = Duration::from_secs(10);
/// A principal not seen for this long is forgotten.
pub const IDLE_EVICT: Duration = Duration::from_secs(300);
/// How often each shard looks for idle principals, at most.
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// The burst: a full bucket holds this much of the rate.
const BURST: Duration = Duration::from_secs(1);
const SHARDS: usize = 16;

/// What the bytes were for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuotaKind {
    Produce,
    Fetch,
}

/// One principal's quotas; a `None` falls back to the default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuotaOverride {
    pub produce_bytes_per_sec: Option<u64>,
    pub fetch_bytes_per_sec: Option<u64>,
}

/// Default quotas (`None` = unlimited) and per-principal overrides.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QuotaConfig {
    pub produce_bytes_per_sec: Option<u64>,
    pub fetch_bytes_per_sec: Option<u64>,
    pub overrides: HashMap<Principal, QuotaOverride>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Bytes that may still be sent without throttling; negative is debt.
    balance: f64,
    last: Instant,
}

impl Bucket {
    fn take(&mut self, rate: u64, bytes: u64, now: Instant) -> Duration {
        if rate == 0 {
            return MAX_THROTTLE;
        }
        let rate = rate as f64;
        let burst = rate * BURST.as_secs_f64();
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        let max_debt = rate * MAX_THROTTLE.as_secs_f64();
        self.balance = ((self.balance + rate * elapsed).min(burst) - bytes as f64).max(-max_debt);
        if self.balance >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.balance / rate).min(MAX_THROTTLE)
        }
    }
}

#[derive(Debug)]
struct Entry {
    produce: Option<Bucket>,
    fetch: Option<Bucket>,
    last_seen: Instant,
}

struct Shard {
    entries: HashMap<Principal, Entry>,
    last_sweep: Option<Instant>,
}

/// The quota state of every active principal. Share it (`Arc<Quotas>`).
pub struct Quotas {
    config: QuotaConfig,
    hasher: RandomState,
    shards: Vec<Mutex<Shard>>,
}

impl Quotas {
    pub fn new(config: QuotaConfig) -> Self {
        Self {
            config,
            hasher: RandomState::new(),
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        entries: HashMap::new(),
                        last_sweep: None,
                    })
                })
                .collect(),
        }
    }

    pub fn config(&self) -> &QuotaConfig {
        &self.config
    }

    /// `principal`'s quota for `kind` in bytes per second; `None` is
    /// unlimited.
    pub fn quota(&self, principal: &Principal, kind: QuotaKind) -> Option<u64> {
        let o = self.config.overrides.get(principal);
        match kind {
            QuotaKind::Produce => o
                .and_then(|o| o.produce_bytes_per_sec)
                .or(self.config.produce_bytes_per_sec),
            QuotaKind::Fetch => o
                .and_then(|o| o.fetch_bytes_per_sec)
                .or(self.config.fetch_bytes_per_sec),
        }
    }

    /// Records `bytes` of `kind` for `principal` at `now`; returns how long
    /// the caller must delay its response (zero under the quota).
    pub fn record(
        &self,
        principal: &Principal,
        kind: QuotaKind,
        bytes: u64,
        now: Instant,
    ) -> Duration {
        let Some(rate) = self.quota(principal, kind) else {
            return Duration::ZERO;
        };
        let mut shard = self.shard(principal);
        shard.sweep(now);
        let entry = match shard.entries.get_mut(principal) {
            Some(e) => e,
            None => shard.entries.entry(principal.clone()).or_insert(Entry {
                produce: None,
                fetch: None,
                last_seen: now,
            }),
        };
        entry.last_seen = entry.last_seen.max(now);
        let bucket = match kind {
            QuotaKind::Produce => &mut entry.produce,
            QuotaKind::Fetch => &mut entry.fetch,
        };
        bucket
            .get_or_insert(Bucket {
                balance: rate as f64 * BURST.as_secs_f64(),
                last: now,
            })
            .take(rate, bytes, now)
    }

    /// Forgets every principal idle for [`IDLE_EVICT`] at `now` (`record`
    /// already does this per shard, at most once a minute).
    pub fn evict_idle(&self, now: Instant) {
        for shard in &self.shards {
            let mut shard = lock(shard);
            shard.last_sweep = None;
            shard.sweep(now);
        }
    }

    /// How many principals have quota state (tests, metrics).
    pub fn tracked_principals(&self) -> usize {
        self.shards.iter().map(|s| lock(s).entries.len()).sum()
    }

    fn shard_index(&self, principal: &Principal) -> usize {
        (self.hasher.hash_one(principal) % SHARDS as u64) as usize
    }

    fn shard(&self, principal: &Principal) -> MutexGuard<'_, Shard> {
        lock(&self.shards[self.shard_index(principal)])
    }
}

impl Shard {
    fn sweep(&mut self, now: Instant) {
        if self
            .last_sweep
            .is_some_and(|last| now.saturating_duration_since(last) < SWEEP_EVERY)
        {
            return;
        }
        self.last_sweep = Some(now);
        self.entries
            .retain(|_, e| now.saturating_duration_since(e.last_seen) < IDLE_EVICT);
    }
}

fn lock(m: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

#[cfg(test)]
#[path = "quota_tests.rs"]
mod tests;
