//! Tests of the quotas, on a simulated clock.

use std::sync::Arc;

use super::*;

const MB: u64 = 1_000_000;

fn user(name: &str) -> Principal {
    Principal::user(name).unwrap()
}

fn quotas(produce: Option<u64>, fetch: Option<u64>) -> Quotas {
    Quotas::new(QuotaConfig {
        produce_bytes_per_sec: produce,
        fetch_bytes_per_sec: fetch,
        overrides: HashMap::new(),
    })
}

/// A client that wants to send `chunk` bytes every `interval`, and waits
/// out each throttle before its next request (as Kafka clients do).
/// Returns the bytes per second it achieved over `duration`.
fn simulate(
    q: &Quotas,
    who: &Principal,
    kind: QuotaKind,
    chunk: u64,
    interval: Duration,
    duration: Duration,
) -> f64 {
    let start = Instant::now();
    let mut now = start;
    let mut sent = 0;
    while now < start + duration {
        sent += chunk;
        let throttle = q.record(who, kind, chunk, now);
        now += interval.max(throttle);
    }
    sent as f64 / now.duration_since(start).as_secs_f64()
}

#[test]
fn under_quota_is_never_throttled() {
    let q = quotas(Some(MB), Some(MB));
    let alice = user("alice");
    let start = Instant::now();
    // Half the quota, steadily, for 20 s.
    for i in 0..400u32 {
        let now = start + Duration::from_millis(50) * i;
        assert_eq!(
            q.record(&alice, QuotaKind::Produce, 25_000, now),
            Duration::ZERO
        );
    }
    // A burst of up to one second of quota is free too.
    let later = start + Duration::from_secs(60);
    assert_eq!(
        q.record(&alice, QuotaKind::Fetch, MB, later),
        Duration::ZERO
    );
    assert!(q.record(&alice, QuotaKind::Fetch, 1, later) > Duration::ZERO);
}

#[test]
fn twice_the_rate_is_held_to_the_quota() {
    for kind in [QuotaKind::Produce, QuotaKind::Fetch] {
        for (chunk, interval_ms) in [(100_000, 50), (10_000, 5), (500_000, 250), (2 * MB, 1000)] {
            let q = quotas(Some(MB), Some(MB));
            let rate = simulate(
                &q,
                &user("bob"),
                kind,
                chunk,
                Duration::from_millis(interval_ms),
                Duration::from_secs(20),
            );
            let ratio = rate / MB as f64;
            assert!(
                (0.9..=1.1).contains(&ratio),
                "{kind:?} chunk {chunk}: {ratio:.3} of the quota"
            );
        }
    }
}

#[test]
fn throttle_is_the_time_to_repay_and_is_capped() {
    let q = quotas(Some(MB), None);
    let carol = user("carol");
    let t = Instant::now();
    // The burst (1 s) is free; 0.5 s of debt more is a 0.5 s throttle.
    assert_eq!(q.record(&carol, QuotaKind::Produce, MB, t), Duration::ZERO);
    let d = q.record(&carol, QuotaKind::Produce, MB / 2, t);
    assert!((d.as_secs_f64() - 0.5).abs() < 1e-6, "{d:?}");
    // Half a second later the debt is repaid.
    let t = t + Duration::from_millis(500);
    assert_eq!(q.record(&carol, QuotaKind::Produce, 0, t), Duration::ZERO);
    // One huge request: capped.
    assert_eq!(
        q.record(&carol, QuotaKind::Produce, 100 * MB, t),
        MAX_THROTTLE
    );
    // ... and the debt beyond the cap is forgiven.
    let t = t + MAX_THROTTLE;
    assert_eq!(q.record(&carol, QuotaKind::Produce, 0, t), Duration::ZERO);
    // A client that ignores throttles stays throttled, never beyond the cap.
    let mut now = t;
    for _ in 0..1000 {
        now += Duration::from_millis(10);
        assert!(q.record(&carol, QuotaKind::Produce, 100_000, now) <= MAX_THROTTLE);
    }
    assert_eq!(
        q.record(&carol, QuotaKind::Produce, 100_000, now),
        MAX_THROTTLE
    );
}

#[test]
fn overrides_apply_per_principal() {
    let mut overrides = HashMap::new();
    overrides.insert(
        user("vip"),
        QuotaOverride {
            produce_bytes_per_sec: Some(4 * MB),
            fetch_bytes_per_sec: None,
        },
    );
    overrides.insert(
        user("batch"),
        QuotaOverride {
            produce_bytes_per_sec: Some(u64::MAX),
            fetch_bytes_per_sec: Some(MB / 10),
        },
    );
    let q = Quotas::new(QuotaConfig {
        produce_bytes_per_sec: Some(MB),
        fetch_bytes_per_sec: Some(MB),
        overrides,
    });
    let (vip, batch, other) = (user("vip"), user("batch"), user("other"));
    assert_eq!(q.quota(&vip, QuotaKind::Produce), Some(4 * MB));
    assert_eq!(
        q.quota(&vip, QuotaKind::Fetch),
        Some(MB),
        "None falls back to the default"
    );
    assert_eq!(q.quota(&other, QuotaKind::Produce), Some(MB));

    let at_2mb = |who: &Principal, kind| {
        simulate(
            &q,
            who,
            kind,
            100_000,
            Duration::from_millis(50),
            Duration::from_secs(20),
        ) / MB as f64
    };
    assert!(
        (1.9..=2.1).contains(&at_2mb(&vip, QuotaKind::Produce)),
        "vip is under its quota"
    );
    assert!((0.9..=1.1).contains(&at_2mb(&other, QuotaKind::Produce)));
    assert!((1.9..=2.1).contains(&at_2mb(&batch, QuotaKind::Produce)));
    let batch_fetch = simulate(
        &q,
        &batch,
        QuotaKind::Fetch,
        10_000,
        Duration::from_millis(50),
        Duration::from_secs(20),
    );
    assert!((0.09e6..=0.11e6).contains(&batch_fetch), "{batch_fetch}");
}

#[test]
fn no_quota_is_never_throttled_and_keeps_no_state() {
    let q = quotas(None, None);
    let t = Instant::now();
    for i in 0..100 {
        assert_eq!(
            q.record(&user(&format!("u{i}")), QuotaKind::Produce, u64::MAX, t),
            Duration::ZERO
        );
    }
    assert_eq!(q.tracked_principals(), 0);

    let zero = quotas(Some(0), None);
    assert_eq!(
        zero.record(&user("z"), QuotaKind::Produce, 1, t),
        MAX_THROTTLE
    );
}

#[test]
fn idle_principals_are_forgotten() {
    let q = quotas(Some(MB), None);
    let t = Instant::now();
    let names: Vec<_> = (0..200).map(|i| user(&format!("u{i}"))).collect();
    for who in &names {
        q.record(who, QuotaKind::Produce, 10, t);
    }
    assert_eq!(q.tracked_principals(), 200);
    // u1 stays active; the others go idle.
    let u1 = &names[1];
    q.record(u1, QuotaKind::Produce, 10, t + IDLE_EVICT / 2);
    let later = t + IDLE_EVICT + Duration::from_secs(1);

    // A record sweeps its own shard: the idle principals there are gone.
    let same_shard = names
        .iter()
        .filter(|p| *p != u1 && q.shard_index(p) == q.shard_index(u1))
        .count();
    q.record(u1, QuotaKind::Produce, 10, later);
    assert_eq!(q.tracked_principals(), 200 - same_shard);

    // evict_idle sweeps every shard.
    q.evict_idle(later);
    assert_eq!(q.tracked_principals(), 1);
    // A forgotten principal starts again with a full bucket.
    assert_eq!(
        q.record(&names[0], QuotaKind::Produce, MB, later),
        Duration::ZERO
    );
}

#[test]
fn shared_between_threads() {
    let q = Arc::new(quotas(Some(MB), Some(MB)));
    let start = Instant::now();
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let q = Arc::clone(&q);
            std::thread::spawn(move || {
                let who = user("shared");
                let mut throttled = Duration::ZERO;
                for i in 0..1000u32 {
                    let now = start + Duration::from_millis(u64::from(i));
                    throttled += q.record(&who, QuotaKind::Produce, 1000 + t, now);
                }
                throttled
            })
        })
        .collect();
    let total: Duration = handles.into_iter().map(|h| h.join().unwrap()).sum();
    // 4 threads x 1 MB/s for 1 s of simulated time: 4x the quota, so some
    // requests are throttled.
    assert!(total > Duration::ZERO);
    assert_eq!(q.tracked_principals(), 1);
}
