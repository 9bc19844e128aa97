//! Adaptive busy-poll back-off for poll loops.
//!
//! On these machines waking a thread blocked in the kernel costs 12–15 µs per
//! side, more than kernel bypass saves, so a loop that has work spins. A loop
//! that has had no work for a while must not burn a core (an idle broker, or a
//! test on two cores), so it steps down: spin, then yield the core, then block
//! in the backend's notifier ([`crate::Transport::wait`]) with a growing
//! timeout. Any event resets it to spinning.

use std::time::{Duration, Instant};

/// Tuning of the back-off ladder.
#[derive(Debug, Clone, Copy)]
pub struct BackoffConfig {
    /// Keep spinning this long after the last event.
    pub spin: Duration,
    /// Then yield the core between polls for this long.
    pub yield_for: Duration,
    /// Then block; the first timeout is `min_wait`, doubling up to `max_wait`.
    pub min_wait: Duration,
    pub max_wait: Duration,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        Self {
            spin: Duration::from_micros(200),
            yield_for: Duration::from_millis(2),
            min_wait: Duration::from_micros(500),
            max_wait: Duration::from_millis(50),
        }
    }
}

/// What the poll loop should do after an empty poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idle {
    Spin,
    Yield,
    /// Block in the transport's notifier for at most this long.
    Wait(Duration),
}

/// The back-off state of one poll loop.
#[derive(Debug)]
pub struct Backoff {
    cfg: BackoffConfig,
    idle_since: Option<Instant>,
    stage: Idle,
    next_wait: Duration,
    checks: u32,
}

impl Backoff {
    pub fn new(cfg: BackoffConfig) -> Self {
        Self {
            cfg,
            idle_since: None,
            stage: Idle::Spin,
            next_wait: cfg.min_wait,
            checks: 0,
        }
    }

    /// Call after a poll that delivered work.
    pub fn reset(&mut self) {
        self.idle_since = None;
        self.stage = Idle::Spin;
        self.next_wait = self.cfg.min_wait;
        self.checks = 0;
    }

    /// Call after an empty poll; says how to idle. While spinning it reads the
    /// clock only every 64 empty polls, so spinning stays cheap.
    pub fn idle(&mut self) -> Idle {
        let Some(since) = self.idle_since else {
            self.idle_since = Some(Instant::now());
            return Idle::Spin;
        };
        match self.stage {
            Idle::Spin => {
                self.checks = self.checks.wrapping_add(1);
                if self.checks.is_multiple_of(64) && since.elapsed() >= self.cfg.spin {
                    self.stage = Idle::Yield;
                }
                Idle::Spin
            }
            Idle::Yield => {
                if since.elapsed() >= self.cfg.spin + self.cfg.yield_for {
                    self.stage = Idle::Wait(self.cfg.min_wait);
                }
                Idle::Yield
            }
            Idle::Wait(_) => {
                let wait = self.next_wait;
                self.next_wait = (wait * 2).min(self.cfg.max_wait);
                Idle::Wait(wait)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_down_to_waiting_and_resets() {
        let cfg = BackoffConfig {
            spin: Duration::ZERO,
            yield_for: Duration::ZERO,
            min_wait: Duration::from_millis(1),
            max_wait: Duration::from_millis(4),
        };
        let mut b = Backoff::new(cfg);
        assert_eq!(b.idle(), Idle::Spin, "first empty poll always spins");
        let mut waits = Vec::new();
        for _ in 0..400 {
            if let Idle::Wait(d) = b.idle() {
                waits.push(d);
            }
        }
        assert_eq!(&waits[..3], &[1, 2, 4].map(Duration::from_millis));
        assert!(waits[3..].iter().all(|d| *d == Duration::from_millis(4)));
        b.reset();
        assert_eq!(b.idle(), Idle::Spin);
    }
}
