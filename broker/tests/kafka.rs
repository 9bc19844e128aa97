//! The Kafka listener over real TCP, spoken to with raw frames (encoded by
//! `kafka-protocol`'s client side): unsupported keys and versions, bad
//! frames, idempotent retries, acks=0, auto-creation switched off. Real
//! Kafka clients (kcat, confluent-kafka, aiokafka) run in `ci/kafka.sh`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use neo_broker::kafka::{KafkaConfig, KafkaListener};
use neo_broker::{Broker, BrokerConfig};

struct Fixture {
    listener: KafkaListener,
    _dir: tempfile::TempDir,
}

fn start(auto_create: bool) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let broker = Arc::new(Mutex::new(
        Broker::open(BrokerConfig::new(dir.path())).unwrap(),
    ));
    let mut cfg = KafkaConfig::new("127.0.0.1:0".parse().unwrap());
    cfg.auto_create_topics = auto_create;
    cfg.max_request_bytes = 1 << 20;
    Fixture {
        listener: KafkaListener::start(
            cfg,
            broker,
            std::sync::Arc::new(neo_broker::security::Security::off()),
        )
        .unwrap(),
        _dir: dir,
    }
}

fn connect(f: &Fixture) -> TcpStream {
    let s = TcpStream::connect(f.listener.local_addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s
}

/// Sends one request; returns the response body after its header.
fn call<Req: Encodable>(s: &mut TcpStream, api: ApiKey, v: i16, req: &Req) -> Option<Bytes> {
    let mut b = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(v)
        .with_correlation_id(42)
        .with_client_id(Some(StrBytes::from_static_str("test")))
        .encode(&mut b, api.request_header_version(v))
        .unwrap();
    req.encode(&mut b, v).unwrap();
    send_raw(s, &b);
    read_response(s, api.response_header_version(v))
}

fn send_raw(s: &mut TcpStream, body: &[u8]) {
    s.write_all(&(body.len() as i32).to_be_bytes()).unwrap();
    s.write_all(body).unwrap();
}

/// The response body, or `None` when the broker closed the connection.
fn read_response(s: &mut TcpStream, header_version: i16) -> Option<Bytes> {
    let mut len = [0u8; 4];
    if s.read_exact(&mut len).is_err() {
        return None;
    }
    let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).unwrap();
    let mut body = Bytes::from(body);
    let h = ResponseHeader::decode(&mut body, header_version).unwrap();
    assert_eq!(h.correlation_id, 42);
    Some(body)
}

fn closed(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 1];
    matches!(s.read(&mut b), Ok(0) | Err(_))
}

fn batch(producer_id: i64, base_sequence: i32, values: &[&str]) -> Bytes {
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(i, v)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id,
            producer_epoch: 0,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: base_sequence + i as i32,
            timestamp: 1_700_000_000_000,
            key: None,
            value: Some(Bytes::from(v.to_string())),
            headers: Default::default(),
        })
        .collect();
    let mut out = BytesMut::new();
    let opts = RecordEncodeOptions {
        version: 2,
        compression: Compression::Zstd,
    };
    RecordBatchEncoder::encode(&mut out, records.iter(), &opts).unwrap();
    out.freeze()
}

fn produce_req(topic: &str, acks: i16, records: Bytes) -> ProduceRequest {
    let p = produce_request::PartitionProduceData::default()
        .with_index(0)
        .with_records(Some(records));
    let t = produce_request::TopicProduceData::default()
        .with_name(TopicName(StrBytes::from_string(topic.into())))
        .with_partition_data(vec![p]);
    ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(5_000)
        .with_topic_data(vec![t])
}

fn produce(s: &mut TcpStream, topic: &str, records: Bytes) -> (i16, i64) {
    let mut r = call(s, ApiKey::Produce, 9, &produce_req(topic, -1, records)).unwrap();
    let r = ProduceResponse::decode(&mut r, 9).unwrap();
    let p = &r.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

fn latest(s: &mut TcpStream, topic: &str) -> i64 {
    let p = list_offsets_request::ListOffsetsPartition::default().with_timestamp(-1);
    let t = list_offsets_request::ListOffsetsTopic::default()
        .with_name(TopicName(StrBytes::from_string(topic.into())))
        .with_partitions(vec![p]);
    let req = ListOffsetsRequest::default().with_topics(vec![t]);
    let mut r = call(s, ApiKey::ListOffsets, 5, &req).unwrap();
    let r = ListOffsetsResponse::decode(&mut r, 5).unwrap();
    r.topics[0].partitions[0].offset
}

#[test]
fn unsupported_api_versions_is_answered_with_the_ranges() {
    let f = start(true);
    let mut s = connect(&f);
    // ApiVersions v9 does not exist: KIP-511 says answer v0 with error 35.
    let mut b = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(ApiKey::ApiVersions as i16)
        .with_request_api_version(9)
        .with_correlation_id(42)
        .encode(&mut b, 1)
        .unwrap();
    b.extend_from_slice(b"a body from the future");
    send_raw(&mut s, &b);
    let mut r = read_response(&mut s, 0).unwrap();
    let r = ApiVersionsResponse::decode(&mut r, 0).unwrap();
    assert_eq!(r.error_code, 35);
    let produce = r
        .api_keys
        .iter()
        .find(|k| k.api_key == ApiKey::Produce as i16)
        .unwrap();
    assert_eq!((produce.min_version, produce.max_version), (3, 12));
    // The connection stays usable.
    let mut r = call(
        &mut s,
        ApiKey::ApiVersions,
        3,
        &ApiVersionsRequest::default(),
    )
    .unwrap();
    assert_eq!(
        ApiVersionsResponse::decode(&mut r, 3).unwrap().error_code,
        0
    );
}

#[test]
fn unserved_keys_versions_and_bad_frames_close_only_their_connection() {
    let f = start(true);
    // Produce v2 was removed in Kafka 4.0 and is not served.
    let mut s = connect(&f);
    let mut b = BytesMut::new();
    b.extend_from_slice(&0i16.to_be_bytes());
    b.extend_from_slice(&2i16.to_be_bytes());
    b.extend_from_slice(&42i32.to_be_bytes());
    b.extend_from_slice(&[0, 0]);
    send_raw(&mut s, &b);
    assert!(closed(&mut s), "Produce v2 closes the connection");
    // An API key Kafka does not have.
    let mut s = connect(&f);
    send_raw(&mut s, &[0x03, 0xe7, 0, 0, 0, 0, 0, 1]);
    assert!(closed(&mut s), "key 999 closes the connection");
    // A frame over max_request_bytes, and one too short for a header.
    let mut s = connect(&f);
    s.write_all(&(2i32 << 20).to_be_bytes()).unwrap();
    assert!(closed(&mut s));
    let mut s = connect(&f);
    send_raw(&mut s, &[0, 3]);
    assert!(closed(&mut s));
    // A Metadata v0 claiming 54 million topics in five bytes.
    let mut s = connect(&f);
    send_raw(
        &mut s,
        &[0, 3, 0, 0, 0, 0, 0, 1, 0, 0, 0x03, 0x3c, 0x0c, 0x00, 0xb6],
    );
    assert!(closed(&mut s));
    assert_eq!(
        f.listener
            .stats()
            .refused
            .load(std::sync::atomic::Ordering::Relaxed),
        5
    );
    // Other connections are served throughout.
    let mut s = connect(&f);
    let mut r = call(&mut s, ApiKey::Metadata, 9, &MetadataRequest::default()).unwrap();
    let r = MetadataResponse::decode(&mut r, 9).unwrap();
    assert_eq!(r.brokers.len(), 1);
}

#[test]
fn idempotent_retries_keep_their_offsets_and_are_stored_once() {
    let f = start(true);
    let mut s = connect(&f);
    let req = InitProducerIdRequest::default().with_transactional_id(None);
    let mut r = call(&mut s, ApiKey::InitProducerId, 4, &req).unwrap();
    let id = InitProducerIdResponse::decode(&mut r, 4).unwrap();
    assert_eq!(id.error_code, 0);
    let pid = id.producer_id.0;
    assert!(pid >= 0);
    let first = batch(pid, 0, &["a", "b", "c"]);
    assert_eq!(produce(&mut s, "idem", first.clone()), (0, 0));
    // A retry of the same batch (same sequence): its original offset, no append.
    assert_eq!(produce(&mut s, "idem", first), (0, 0));
    assert_eq!(latest(&mut s, "idem"), 3);
    // A gap in the sequence is refused with OUT_OF_ORDER_SEQUENCE_NUMBER.
    let (code, _) = produce(&mut s, "idem", batch(pid, 7, &["x"]));
    assert_eq!(code, 45);
    assert_eq!(produce(&mut s, "idem", batch(pid, 3, &["d"])), (0, 3));
    assert_eq!(latest(&mut s, "idem"), 4);
}

#[test]
fn acks_zero_gets_no_answer_but_is_stored() {
    let f = start(true);
    let mut s = connect(&f);
    let req = produce_req("quiet", 0, batch(-1, -1, &["q1", "q2"]));
    let mut b = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(ApiKey::Produce as i16)
        .with_request_api_version(7)
        .with_correlation_id(41)
        .encode(&mut b, 1)
        .unwrap();
    req.encode(&mut b, 7).unwrap();
    send_raw(&mut s, &b);
    // The next answer on the connection is the ListOffsets one (correlation 42).
    assert_eq!(latest(&mut s, "quiet"), 2);
}

#[test]
fn without_auto_creation_unknown_topics_are_errors() {
    let f = start(false);
    let mut s = connect(&f);
    let (code, _) = produce(&mut s, "nope", batch(-1, -1, &["x"]));
    assert_eq!(code, 3, "UNKNOWN_TOPIC_OR_PARTITION");
    let t = metadata_request::MetadataRequestTopic::default()
        .with_name(Some(TopicName(StrBytes::from_static_str("nope"))));
    let req = MetadataRequest::default()
        .with_topics(Some(vec![t]))
        .with_allow_auto_topic_creation(true);
    let mut r = call(&mut s, ApiKey::Metadata, 9, &req).unwrap();
    let r = MetadataResponse::decode(&mut r, 9).unwrap();
    assert_eq!(r.topics[0].error_code, 3);
    // A corrupt batch is refused with CORRUPT_MESSAGE, and nothing is stored.
    let mut c = CreateTopicsRequest::default();
    c.topics.push(
        create_topics_request::CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_static_str("made")))
            .with_num_partitions(2)
            .with_replication_factor(1),
    );
    let mut r = call(&mut s, ApiKey::CreateTopics, 5, &c).unwrap();
    let r = CreateTopicsResponse::decode(&mut r, 5).unwrap();
    assert_eq!((r.topics[0].error_code, r.topics[0].num_partitions), (0, 2));
    let mut bad = batch(-1, -1, &["x"]).to_vec();
    let n = bad.len();
    bad[n - 1] ^= 0xff;
    let (code, _) = produce(&mut s, "made", Bytes::from(bad));
    assert_eq!(code, 2);
    assert_eq!(latest(&mut s, "made"), 0);
}
