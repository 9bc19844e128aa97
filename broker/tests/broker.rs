//! The broker over real TCP sockets: topics, produce/fetch with every codec,
//! long-poll, offsets lookups, idempotence across a restart, and typed errors
//! for bad requests (after which the broker keeps serving).

mod common;

use std::time::Duration;

use common::{admin, cfg, tcp, topic, TestBroker};
use neo_accel::CodecId;
use neo_broker::client::{
    Admin, ClientError, Consumer, ConsumerConfig, Producer, ProducerConfig, StartAt,
};
use neo_broker::protocol::*;
use neo_broker::records::BatchBuilder;
use neo_transports::tcp::TcpTransport;

fn produce_raw(
    a: &mut Admin<TcpTransport>,
    topic: &str,
    partition: u32,
    values: &[&[u8]],
    ident: (i64, i16, i32),
) -> Result<Produced, ClientError> {
    let mut b = BatchBuilder::new();
    for v in values {
        // Now: producer state older than a day is not replayed on open.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        b.push(None, v, now).unwrap();
    }
    let req = Produce {
        topic,
        partition,
        acks: Acks::All,
        producer_id: ident.0,
        producer_epoch: ident.1,
        base_sequence: ident.2,
        record_count: b.count(),
        codec: 0,
        first_timestamp: b.first_timestamp(),
        max_timestamp: b.max_timestamp(),
        records: b.bytes(),
    };
    a.connection().call(method::PRODUCE, &req)
}

fn broker_err<T: std::fmt::Debug>(r: Result<T, ClientError>) -> BrokerError {
    match r {
        Err(ClientError::Broker(e)) => e,
        other => panic!("expected a typed broker error, got {other:?}"),
    }
}

#[test]
fn topics_are_created_listed_described_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestBroker::start(dir.path());
    let mut a = admin(b.addr);
    a.create_topic("orders", topic(3, Fsync::Always)).unwrap();
    a.create_topic("logs", topic(1, Fsync::Never)).unwrap();
    assert_eq!(a.list_topics().unwrap(), vec!["logs", "orders"]);
    let d = a.describe_topic("orders").unwrap();
    assert_eq!(d.partitions.len(), 3);
    assert_eq!(d.config.fsync, Fsync::Always);
    assert!(matches!(
        broker_err(a.create_topic("orders", topic(1, Fsync::Never))),
        BrokerError::TopicExists(_)
    ));
    assert!(matches!(
        broker_err(a.create_topic("bad/name", topic(1, Fsync::Never))),
        BrokerError::InvalidTopicName { .. }
    ));
    assert!(matches!(
        broker_err(a.create_topic("__internal", topic(1, Fsync::Never))),
        BrokerError::InvalidTopicName { .. }
    ));
    assert!(matches!(
        broker_err(a.create_topic("zero", topic(0, Fsync::Never))),
        BrokerError::InvalidConfig(_)
    ));
    a.delete_topic("logs").unwrap();
    assert!(matches!(
        broker_err(a.describe_topic("logs")),
        BrokerError::UnknownTopic(_)
    ));
    assert!(matches!(
        broker_err(a.delete_topic("logs")),
        BrokerError::UnknownTopic(_)
    ));
    drop(b);
    // Topics survive a restart; the deleted one stays deleted.
    let b = TestBroker::start(dir.path());
    assert_eq!(admin(b.addr).list_topics().unwrap(), vec!["orders"]);
}

#[test]
fn produce_and_consume_with_every_codec_and_list_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestBroker::start(dir.path());
    let mut a = admin(b.addr);
    for codec in [CodecId::None, CodecId::Lz4, CodecId::Zstd, CodecId::Deflate] {
        let name = format!("t-{}", codec.name());
        a.create_topic(
            &name,
            TopicConfig {
                codec: codec.name().into(),
                ..topic(2, Fsync::IntervalMs(2))
            },
        )
        .unwrap();
        let mut p = Producer::connect(
            tcp(),
            cfg(b.addr),
            ProducerConfig {
                batch_bytes: 4096,
                ..Default::default()
            },
        )
        .unwrap();
        for i in 0..500u32 {
            let key = format!("k{}", i % 7);
            let n = i.to_string();
            // Every third record carries headers, one without a value.
            let headers: Vec<(&[u8], Option<&[u8]>)> = match i % 3 {
                0 => vec![(b"seq", Some(n.as_bytes())), (b"flag", None)],
                _ => vec![],
            };
            p.send_with_headers(
                &name,
                None,
                Some(key.as_bytes()),
                format!("value-{i}-{}", "x".repeat(i as usize % 50)).as_bytes(),
                &headers,
            )
            .unwrap();
        }
        p.flush(Duration::from_secs(20)).unwrap();
        let deliveries = p.take_deliveries();
        assert!(
            deliveries.iter().all(|d| d.result.is_ok()),
            "{deliveries:?}"
        );
        assert_eq!(deliveries.iter().map(|d| d.records).sum::<u32>(), 500);
        let mut c = Consumer::assign(
            tcp(),
            cfg(b.addr),
            ConsumerConfig::default(),
            &[(&name, 0, StartAt::Earliest), (&name, 1, StartAt::Earliest)],
        )
        .unwrap();
        let mut got = Vec::new();
        for _ in 0..200 {
            if got.len() >= 500 {
                break;
            }
            got.extend(c.poll(Duration::from_millis(200)).unwrap());
        }
        assert_eq!(got.len(), 500, "{codec:?}: every record once");
        got.sort_by_key(|r| {
            std::str::from_utf8(&r.value)
                .unwrap()
                .split('-')
                .nth(1)
                .unwrap()
                .parse::<u32>()
                .unwrap()
        });
        for (i, r) in got.iter().enumerate() {
            assert!(
                r.value.starts_with(format!("value-{i}-").as_bytes()),
                "{codec:?} record {i}"
            );
            let want: Vec<(Vec<u8>, Option<Vec<u8>>)> = match i % 3 {
                0 => vec![
                    (b"seq".to_vec(), Some(i.to_string().into_bytes())),
                    (b"flag".to_vec(), None),
                ],
                _ => vec![],
            };
            assert_eq!(r.headers, want, "{codec:?} record {i} headers");
            // Same key, same partition.
            assert_eq!(
                r.partition,
                crc32c::crc32c(format!("k{}", i % 7).as_bytes()) % 2
            );
        }
        let end0 = a
            .list_offset(&name, 0, OffsetSpec::Latest)
            .unwrap()
            .unwrap();
        let end1 = a
            .list_offset(&name, 1, OffsetSpec::Latest)
            .unwrap()
            .unwrap();
        assert_eq!(end0 + end1, 500);
        assert_eq!(
            a.list_offset(&name, 0, OffsetSpec::Earliest).unwrap(),
            Some(0)
        );
        assert_eq!(
            a.list_offset(&name, 0, OffsetSpec::Timestamp(0)).unwrap(),
            Some(0)
        );
        assert_eq!(
            a.list_offset(&name, 0, OffsetSpec::Timestamp(i64::MAX))
                .unwrap(),
            None
        );
    }
}

#[test]
fn a_long_poll_fetch_is_woken_by_a_produce() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestBroker::start(dir.path());
    let mut a = admin(b.addr);
    a.create_topic("wait", topic(1, Fsync::Never)).unwrap();
    let addr = b.addr;
    let waiter = std::thread::spawn(move || {
        let cc = ConsumerConfig {
            max_wait: Duration::from_secs(30),
            ..Default::default()
        };
        let mut c =
            Consumer::assign(tcp(), cfg(addr), cc, &[("wait", 0, StartAt::Earliest)]).unwrap();
        c.poll(Duration::from_secs(30)).unwrap()
    });
    // Produce only once the fetch is held on the broker.
    let t = std::time::Instant::now();
    while b.live_stats().fetches_held == 0 {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the fetch was never held"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    produce_raw(&mut a, "wait", 0, &[b"wake up"], (-1, -1, -1)).unwrap();
    let got = waiter.join().unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].value, b"wake up");
    let stats = b.stop();
    assert!(
        stats.fetches_held >= 1,
        "the fetch was held, not answered empty: {stats:?}"
    );
}

#[test]
fn a_retried_batch_gets_its_original_offsets_even_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestBroker::start(dir.path());
    let mut a = admin(b.addr);
    a.create_topic("idem", topic(1, Fsync::Always)).unwrap();
    let id: ProducerIdentity = a.connection().call(method::INIT_PRODUCER, &()).unwrap();
    let pid = id.producer_id;
    let first = produce_raw(&mut a, "idem", 0, &[b"a", b"b"], (pid, 0, 0)).unwrap();
    let second = produce_raw(&mut a, "idem", 0, &[b"c"], (pid, 0, 2)).unwrap();
    assert_eq!(
        (first.base_offset, first.last_offset, first.duplicate),
        (0, 1, false)
    );
    let retry = produce_raw(&mut a, "idem", 0, &[b"a", b"b"], (pid, 0, 0)).unwrap();
    assert_eq!(
        (retry.base_offset, retry.last_offset, retry.duplicate),
        (0, 1, true)
    );
    match broker_err(produce_raw(&mut a, "idem", 0, &[b"gap"], (pid, 0, 7))) {
        BrokerError::OutOfOrderSequence {
            expected: 3,
            got: 7,
            ..
        } => {}
        e => panic!("{e:?}"),
    }
    drop(a);
    drop(b);
    let b = TestBroker::start(dir.path());
    let mut a = admin(b.addr);
    let again = produce_raw(&mut a, "idem", 0, &[b"c"], (pid, 0, 2)).unwrap();
    assert_eq!(
        (again.base_offset, again.duplicate),
        (second.base_offset, true)
    );
    // A new epoch fences the old one.
    produce_raw(&mut a, "idem", 0, &[b"d"], (pid, 1, 0)).unwrap();
    assert!(matches!(
        broker_err(produce_raw(&mut a, "idem", 0, &[b"e"], (pid, 0, 3))),
        BrokerError::InvalidProducerEpoch { .. }
    ));
    assert_eq!(
        a.list_offset("idem", 0, OffsetSpec::Latest).unwrap(),
        Some(4),
        "a, b, c, d once each"
    );
    let fresh: ProducerIdentity = a.connection().call(method::INIT_PRODUCER, &()).unwrap();
    assert_ne!(
        fresh.producer_id, pid,
        "producer ids are not reused after a restart"
    );
}

#[test]
fn bad_requests_get_typed_errors_and_the_broker_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestBroker::start(dir.path());
    let mut a = admin(b.addr);
    a.create_topic(
        "t",
        TopicConfig {
            max_batch_bytes: 1024,
            ..topic(2, Fsync::Never)
        },
    )
    .unwrap();
    assert!(matches!(
        broker_err(produce_raw(&mut a, "nope", 0, &[b"x"], (-1, -1, -1))),
        BrokerError::UnknownTopic(_)
    ));
    assert!(matches!(
        broker_err(produce_raw(&mut a, "t", 9, &[b"x"], (-1, -1, -1))),
        BrokerError::UnknownPartition {
            partition: 9,
            count: 2,
            ..
        }
    ));
    let big = vec![0u8; 2000];
    assert!(matches!(
        broker_err(produce_raw(&mut a, "t", 0, &[&big], (-1, -1, -1))),
        BrokerError::BatchTooLarge { max: 1024, .. }
    ));
    // Records that do not match the declared count, or garbage compressed data.
    let mut bb = BatchBuilder::new();
    bb.push(None, b"one", 5).unwrap();
    for (count, codec, records) in [
        (2u32, 0u8, bb.bytes().to_vec()),
        (1, CodecId::Lz4 as u8, vec![9, 0, 0, 0, 1, 2, 3]),
        (1, 77, bb.bytes().to_vec()),
    ] {
        let req = Produce {
            topic: "t",
            partition: 0,
            acks: Acks::Leader,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            record_count: count,
            codec,
            first_timestamp: 5,
            max_timestamp: 5,
            records: &records,
        };
        let r: Result<Produced, _> = a.connection().call(method::PRODUCE, &req);
        assert!(
            matches!(broker_err(r), BrokerError::CorruptBatch(_)),
            "count {count} codec {codec}"
        );
    }
    // A body that is not a request at all.
    let mut out = Vec::new();
    a.connection()
        .call_raw(
            method::PRODUCE,
            &[0xff; 3],
            Duration::from_secs(5),
            &mut out,
        )
        .unwrap();
    assert!(matches!(
        neo_broker::client::decode_answer::<Produced>(&out),
        Err(ClientError::Broker(BrokerError::InvalidRequest(_)))
    ));
    // Fetch beyond the end, and an over-long wait.
    let fetch = |offset, wait| Fetch {
        max_wait_ms: wait,
        min_bytes: 1,
        max_bytes: 1 << 20,
        partitions: vec![FetchPartition {
            topic: "t".into(),
            partition: 0,
            offset,
        }],
    };
    let c = a.connection();
    c.call_raw(
        method::FETCH,
        &postcard::to_stdvec(&fetch(1000, 0)).unwrap(),
        Duration::from_secs(5),
        &mut out,
    )
    .unwrap();
    let (head, _) = postcard::take_from_bytes::<Result<FetchHead, BrokerError>>(&out).unwrap();
    assert!(matches!(
        head.unwrap().partitions[0].error,
        Some(BrokerError::OffsetOutOfRange {
            offset: 1000,
            start: 0,
            end: 0
        })
    ));
    c.call_raw(
        method::FETCH,
        &postcard::to_stdvec(&fetch(0, 10_000_000)).unwrap(),
        Duration::from_secs(5),
        &mut out,
    )
    .unwrap();
    assert!(matches!(
        postcard::from_bytes::<Result<FetchHead, BrokerError>>(&out).unwrap(),
        Err(BrokerError::InvalidRequest(_))
    ));
    // Group errors: unknown member, wrong generation.
    let stranger = MemberRef {
        group: "g".into(),
        member_id: "nobody".into(),
        generation: 1,
    };
    assert!(matches!(
        broker_err(a.connection().call::<_, ()>(method::HEARTBEAT, &stranger)),
        BrokerError::UnknownMember(_)
    ));
    a.create_topic("gt", topic(1, Fsync::Never)).unwrap();
    let join = JoinGroup {
        group: "g".into(),
        member_id: String::new(),
        topics: vec!["gt".into()],
        assignor: Assignor::Range,
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 10_000,
    };
    let joined: Joined = a.connection().call(method::JOIN_GROUP, &join).unwrap();
    let stale = MemberRef {
        group: "g".into(),
        member_id: joined.member_id.clone(),
        generation: joined.generation - 1,
    };
    assert!(matches!(
        broker_err(a.connection().call::<_, ()>(method::HEARTBEAT, &stale)),
        BrokerError::IllegalGeneration { .. }
    ));
    assert!(matches!(
        broker_err(
            a.connection()
                .call::<_, Assignment>(method::SYNC_GROUP, &stale)
        ),
        BrokerError::IllegalGeneration { .. }
    ));
    let commit = CommitOffsets {
        member: stale.clone(),
        offsets: vec![CommittedOffset {
            topic: "gt".into(),
            partition: 0,
            offset: 0,
            metadata: String::new(),
        }],
    };
    assert!(matches!(
        broker_err(
            a.connection()
                .call::<_, ()>(method::COMMIT_OFFSETS, &commit)
        ),
        BrokerError::IllegalGeneration { .. }
    ));
    let bad_timeout = JoinGroup {
        session_timeout_ms: 1,
        ..join.clone()
    };
    assert!(matches!(
        broker_err(
            a.connection()
                .call::<_, Joined>(method::JOIN_GROUP, &bad_timeout)
        ),
        BrokerError::InvalidRequest(_)
    ));
    // Still serving.
    let ok = produce_raw(&mut a, "t", 1, &[b"fine"], (-1, -1, -1)).unwrap();
    assert_eq!(ok.base_offset, 0);
}

#[test]
fn a_producer_describes_a_new_topic_while_batches_are_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestBroker::start(dir.path());
    let mut a = admin(b.addr);
    a.create_topic("first", topic(1, Fsync::Always)).unwrap();
    a.create_topic("second", topic(1, Fsync::Always)).unwrap();
    let pcfg = ProducerConfig {
        batch_bytes: 512,
        linger: Duration::ZERO,
        ..Default::default()
    };
    let mut p = Producer::connect(tcp(), cfg(b.addr), pcfg).unwrap();
    for i in 0..300u32 {
        p.send("first", None, None, format!("a{i}").as_bytes())
            .unwrap();
    }
    // Batches of `first` wait for fsync while the producer asks the broker
    // about `second`: their answers must not be lost meanwhile.
    for i in 0..300u32 {
        p.send("second", None, None, format!("b{i}").as_bytes())
            .unwrap();
    }
    p.flush(Duration::from_secs(20)).unwrap();
    let d = p.take_deliveries();
    assert!(d.iter().all(|d| d.result.is_ok()), "{d:?}");
    assert_eq!(d.iter().map(|d| d.records).sum::<u32>(), 600);
    assert_eq!(
        a.list_offset("first", 0, OffsetSpec::Latest).unwrap(),
        Some(300)
    );
    assert_eq!(
        a.list_offset("second", 0, OffsetSpec::Latest).unwrap(),
        Some(300)
    );
}

#[test]
fn random_bodies_to_every_method_get_answers_and_the_broker_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestBroker::start(dir.path());
    let mut a = admin(b.addr);
    a.create_topic("t", topic(2, Fsync::Never)).unwrap();
    let mut x = 0x2545_f491u32;
    let mut rng = move || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x
    };
    let mut out = Vec::new();
    let mut typed = 0;
    for m in method::ALL {
        for i in 0..300 {
            let len = (rng() % 64) as usize + (i % 3) * 200;
            let body: Vec<u8> = (0..len).map(|_| rng() as u8).collect();
            // Every call is answered (no hang, no dropped connection); most
            // answers are typed InvalidRequest, a few random bodies decode
            // into a valid request and get a real answer.
            a.connection()
                .call_raw(m, &body, Duration::from_secs(10), &mut out)
                .unwrap_or_else(|e| panic!("{m}: {e}"));
            let r: Result<postcard::Result<Result<serde::de::IgnoredAny, BrokerError>>, _> =
                Ok::<_, ()>(postcard::from_bytes(&out));
            if let Ok(Ok(Err(BrokerError::InvalidRequest(_)))) = r {
                typed += 1;
            }
        }
    }
    assert!(typed > 1000, "only {typed} typed refusals");
    // Still serving, state intact.
    assert_eq!(a.list_topics().unwrap(), vec!["t"]);
    assert!(produce_raw(&mut a, "t", 0, &[b"after the storm"], (-1, -1, -1)).is_ok());
}
