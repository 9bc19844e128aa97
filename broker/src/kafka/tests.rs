//! The request decoder and handlers fed arbitrary and damaged bytes: no
//! input panics, hangs or is answered out of protocol.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};
use proptest::prelude::*;

use super::session::Session;
use super::{answer, versions, KafkaConfig, Shared};
use crate::security::Security;
use crate::{Broker, BrokerConfig};

fn shared(dir: &std::path::Path) -> Shared {
    let broker = Broker::open(BrokerConfig::new(dir)).unwrap();
    let mut cfg = KafkaConfig::new("127.0.0.1:0".parse().unwrap());
    cfg.initial_rebalance_delay = Duration::ZERO;
    let s = Shared::new(cfg, Arc::new(Mutex::new(broker)), Arc::new(Security::off()));
    // Set: every wait (long-poll fetch, acks=all, join) ends at once.
    s.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    s
}

fn run(s: &Shared, body: Vec<u8>) {
    let mut out = BytesMut::new();
    let mut session = Session::new(
        s,
        "127.0.0.1:1".parse().unwrap(),
        ("127.0.0.1".into(), 9092),
    );
    let _ = answer(s, &mut session, Bytes::from(body), &mut out);
}

/// Valid requests, encoded by the codec's client side, to damage.
fn samples() -> Vec<Vec<u8>> {
    let mut reqs: Vec<(ApiKey, i16, Vec<u8>)> = Vec::new();
    let mut push = |key: ApiKey, version: i16, body: &dyn Fn(&mut BytesMut)| {
        let mut b = BytesMut::new();
        b.extend_from_slice(&(key as i16).to_be_bytes());
        b.extend_from_slice(&version.to_be_bytes());
        b.extend_from_slice(&7i32.to_be_bytes());
        if key.request_header_version(version) >= 1 {
            b.extend_from_slice(&3i16.to_be_bytes());
            b.extend_from_slice(b"cli");
        }
        if key.request_header_version(version) >= 2 {
            b.extend_from_slice(&[0]);
        }
        body(&mut b);
        reqs.push((key, version, b.to_vec()));
    };
    let topic = TopicName(StrBytes::from_static_str("fz"));
    for v in [3, 9, 12] {
        let t = topic.clone();
        push(ApiKey::Produce, v, &move |b| {
            let mut r = ProduceRequest::default().with_acks(1).with_timeout_ms(10);
            let mut td = produce_request::TopicProduceData::default().with_name(t.clone());
            td.partition_data.push(
                produce_request::PartitionProduceData::default()
                    .with_records(Some(Bytes::from_static(&[0; 70]))),
            );
            r.topic_data.push(td);
            r.encode(b, v).unwrap();
        });
    }
    for v in [4, 12] {
        let t = topic.clone();
        push(ApiKey::Fetch, v, &move |b| {
            let mut r = FetchRequest::default()
                .with_max_wait_ms(10)
                .with_min_bytes(1);
            let mut ft = fetch_request::FetchTopic::default().with_topic(t.clone());
            ft.partitions.push(fetch_request::FetchPartition::default());
            r.topics.push(ft);
            r.encode(b, v).unwrap();
        });
    }
    for v in [0, 9, 12] {
        push(ApiKey::Metadata, v, &move |b| {
            MetadataRequest::default().encode(b, v).unwrap()
        });
    }
    for v in [0, 5, 9] {
        push(ApiKey::JoinGroup, v, &move |b| {
            let mut r = JoinGroupRequest::default()
                .with_group_id(GroupId(StrBytes::from_static_str("g")))
                .with_session_timeout_ms(10_000)
                .with_protocol_type(StrBytes::from_static_str("consumer"));
            r.protocols.push(
                join_group_request::JoinGroupRequestProtocol::default()
                    .with_name(StrBytes::from_static_str("range")),
            );
            r.encode(b, v).unwrap()
        });
    }
    for v in [2, 9] {
        let t = topic.clone();
        push(ApiKey::OffsetCommit, v, &move |b| {
            let mut r = OffsetCommitRequest::default()
                .with_group_id(GroupId(StrBytes::from_static_str("g")))
                .with_generation_id_or_member_epoch(-1);
            let mut ot =
                offset_commit_request::OffsetCommitRequestTopic::default().with_name(t.clone());
            ot.partitions
                .push(offset_commit_request::OffsetCommitRequestPartition::default());
            r.topics.push(ot);
            r.encode(b, v).unwrap()
        });
    }
    for v in [0, 4] {
        push(ApiKey::ApiVersions, v, &move |b| {
            ApiVersionsRequest::default().encode(b, v).unwrap()
        });
    }
    for v in [2, 7] {
        let t = topic.clone();
        push(ApiKey::CreateTopics, v, &move |b| {
            let mut r = CreateTopicsRequest::default();
            r.topics.push(
                create_topics_request::CreatableTopic::default()
                    .with_name(t.clone())
                    .with_num_partitions(2)
                    .with_replication_factor(1),
            );
            r.encode(b, v).unwrap()
        });
    }
    for (key, version, _) in &reqs {
        assert!(versions::is_supported(*key, *version), "{key:?} v{version}");
    }
    reqs.into_iter().map(|(_, _, b)| b).collect()
}

#[test]
fn every_sample_is_answered() {
    let dir = tempfile::tempdir().unwrap();
    let s = shared(dir.path());
    for body in samples() {
        let mut out = BytesMut::new();
        let mut session = Session::new(&s, "127.0.0.1:1".parse().unwrap(), ("h".into(), 1));
        let r = answer(&s, &mut session, Bytes::from(body.clone()), &mut out);
        assert!(
            matches!(r, Ok(true)),
            "{:?} for request {:?}",
            r,
            &body[..8]
        );
        assert_eq!(&out[..4], &7i32.to_be_bytes(), "correlation id echoed");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..600)) {
        let dir = tempfile::tempdir().unwrap();
        run(&shared(dir.path()), body);
    }

    #[test]
    fn any_served_key_and_version_with_a_random_body(
        which in 0..versions::SUPPORTED.len(),
        version_pick in any::<u16>(),
        tail in proptest::collection::vec(any::<u8>(), 0..400),
    ) {
        let (key, lo, hi) = versions::SUPPORTED[which];
        let version = lo + (version_pick % (hi - lo + 1) as u16) as i16;
        let mut body = Vec::new();
        body.extend_from_slice(&(key as i16).to_be_bytes());
        body.extend_from_slice(&version.to_be_bytes());
        body.extend_from_slice(&1i32.to_be_bytes());
        body.extend_from_slice(&tail);
        let dir = tempfile::tempdir().unwrap();
        run(&shared(dir.path()), body);
    }

    #[test]
    fn damaged_valid_requests_never_panic(
        which in 0usize..64,
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        cut in any::<usize>(),
    ) {
        let samples = samples();
        let mut body = samples[which % samples.len()].clone();
        for (at, x) in flips {
            let n = body.len();
            body[at % n] ^= x;
        }
        let keep = 8 + cut % (body.len() - 7);
        body.truncate(keep);
        let dir = tempfile::tempdir().unwrap();
        run(&shared(dir.path()), body);
    }
}

/// A request frame body (header v1/v2 with client id "cli") around `body`.
fn frame(key: ApiKey, version: i16, body: impl FnOnce(&mut BytesMut)) -> Bytes {
    let mut b = BytesMut::new();
    b.extend_from_slice(&(key as i16).to_be_bytes());
    b.extend_from_slice(&version.to_be_bytes());
    b.extend_from_slice(&7i32.to_be_bytes());
    b.extend_from_slice(&3i16.to_be_bytes());
    b.extend_from_slice(b"cli");
    if key.request_header_version(version) >= 2 {
        b.extend_from_slice(&[0]);
    }
    body(&mut b);
    b.freeze()
}

/// The response body after the 4-byte correlation id (header v0).
fn decode<T: kafka_protocol::protocol::Decodable>(out: &BytesMut, version: i16) -> T {
    let mut b = Bytes::copy_from_slice(&out[4..]);
    T::decode(&mut b, version).unwrap()
}

#[test]
fn before_sasl_only_api_versions_and_sasl_are_served() {
    use crate::security::{CredentialStore, Mechanism, SaslMechanism, ScramClient, SecurityConfig};
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("creds.json");
    let mut store = CredentialStore::empty(&creds);
    store.upsert("alice", "pw-alice", 4096).unwrap();
    store.save().unwrap();
    let sec = Security::open(&SecurityConfig {
        credentials: Some(creds),
        mechanisms: vec![SaslMechanism::Scram(Mechanism::ScramSha256)],
        kafka_sasl: true,
        ..Default::default()
    })
    .unwrap();
    let broker = Broker::open(BrokerConfig::new(dir.path().join("data"))).unwrap();
    let s = Shared::new(
        KafkaConfig::new("127.0.0.1:0".parse().unwrap()),
        Arc::new(Mutex::new(broker)),
        Arc::new(sec),
    );
    let mut session = Session::new(&s, "127.0.0.1:1".parse().unwrap(), ("h".into(), 1));
    let mut out = BytesMut::new();
    let metadata = || {
        frame(ApiKey::Metadata, 4, |b| {
            MetadataRequest::default().encode(b, 4).unwrap()
        })
    };
    // Metadata before authentication: refused, the connection closes.
    let r = answer(&s, &mut session, metadata(), &mut out);
    assert!(
        matches!(&r, Err(why) if why.contains("before SASL")),
        "{r:?}"
    );
    // ApiVersions is served.
    out.clear();
    let av = frame(ApiKey::ApiVersions, 0, |b| {
        ApiVersionsRequest::default().encode(b, 0).unwrap()
    });
    assert_eq!(answer(&s, &mut session, av, &mut out), Ok(true));
    // An unoffered mechanism: UNSUPPORTED_SASL_MECHANISM, with the list.
    out.clear();
    let hs = |m: &'static str| {
        frame(ApiKey::SaslHandshake, 1, move |b| {
            SaslHandshakeRequest::default()
                .with_mechanism(StrBytes::from_static_str(m))
                .encode(b, 1)
                .unwrap()
        })
    };
    assert_eq!(answer(&s, &mut session, hs("PLAIN"), &mut out), Ok(true));
    let r: SaslHandshakeResponse = decode(&out, 1);
    assert_eq!(
        r.error_code,
        crate::kafka_batch::code::UNSUPPORTED_SASL_MECHANISM
    );
    assert_eq!(
        r.mechanisms,
        vec![StrBytes::from_static_str("SCRAM-SHA-256")]
    );
    // SCRAM-SHA-256, then the two SaslAuthenticate rounds.
    out.clear();
    assert_eq!(
        answer(&s, &mut session, hs("SCRAM-SHA-256"), &mut out),
        Ok(true)
    );
    assert_eq!(decode::<SaslHandshakeResponse>(&out, 1).error_code, 0);
    let mut client = ScramClient::new(Mechanism::ScramSha256, "alice", "pw-alice").unwrap();
    let auth = |bytes: Vec<u8>| {
        frame(ApiKey::SaslAuthenticate, 1, move |b| {
            SaslAuthenticateRequest::default()
                .with_auth_bytes(Bytes::from(bytes))
                .encode(b, 1)
                .unwrap()
        })
    };
    out.clear();
    let first = client.client_first().unwrap();
    assert_eq!(answer(&s, &mut session, auth(first), &mut out), Ok(true));
    let r: SaslAuthenticateResponse = decode(&out, 1);
    assert_eq!(r.error_code, 0);
    let fin = client.handle_server_first(&r.auth_bytes).unwrap();
    out.clear();
    assert_eq!(answer(&s, &mut session, auth(fin), &mut out), Ok(true));
    let r: SaslAuthenticateResponse = decode(&out, 1);
    assert_eq!(r.error_code, 0);
    client.handle_server_final(&r.auth_bytes).unwrap();
    assert_eq!(session.principal.to_string(), "User:alice");
    // Now Metadata is served.
    out.clear();
    assert_eq!(answer(&s, &mut session, metadata(), &mut out), Ok(true));
    assert!(!session.close_after);

    // A wrong password on a new connection: SASL_AUTHENTICATION_FAILED and close.
    let mut other = Session::new(&s, "127.0.0.1:2".parse().unwrap(), ("h".into(), 1));
    out.clear();
    answer(&s, &mut other, hs("SCRAM-SHA-256"), &mut out).unwrap();
    let mut bad = ScramClient::new(Mechanism::ScramSha256, "alice", "wrong").unwrap();
    out.clear();
    answer(&s, &mut other, auth(bad.client_first().unwrap()), &mut out).unwrap();
    let r: SaslAuthenticateResponse = decode(&out, 1);
    let fin = bad.handle_server_first(&r.auth_bytes).unwrap();
    out.clear();
    answer(&s, &mut other, auth(fin), &mut out).unwrap();
    let r: SaslAuthenticateResponse = decode(&out, 1);
    assert_eq!(
        r.error_code,
        crate::kafka_batch::code::SASL_AUTHENTICATION_FAILED
    );
    assert!(other.close_after && !other.authenticated);
}
