//! Kafka record batches (magic 2) in Neo's log, shared by the Kafka listener
//! and Neo's own consumer.
//!
//! A batch produced by a Kafka client is stored as it arrived: everything
//! from its `attributes` field to its end (the bytes Kafka's CRC32C covers:
//! attributes, last offset delta, timestamps, producer id/epoch, base
//! sequence, record count, and the records — compressed or not) becomes the
//! payload of a Neo batch whose [`KAFKA_LAYOUT`] attribute bit is set. The
//! first 21 bytes (base offset, batch length, leader epoch, magic, CRC) are
//! rebuilt on fetch, so a Kafka consumer gets the producer's bytes back with
//! only the base offset changed and no recompression.
//!
//! Crossing formats converts: a Kafka consumer reading a batch a Neo producer
//! wrote gets it re-encoded as an uncompressed Kafka batch
//! ([`neo_to_kafka`]); a Neo consumer reading a Kafka batch gets its records
//! in Neo's layout ([`kafka_to_neo`]).

mod compression;
pub mod walk;

use neo_storage::batch::crc32c_parts;
use neo_storage::BatchMeta;

use crate::records::{for_each_record, BatchBuilder};

/// `BatchMeta::attributes` bit: the payload is a Kafka batch from its
/// attributes field on.
pub const KAFKA_LAYOUT: u16 = 0x8000;
/// Bytes of a Kafka v2 batch header (up to and including the record count).
pub const HEADER_LEN: usize = 61;
/// Where the stored part (and the CRC's coverage) begins.
const STORED_FROM: usize = 21;

/// Kafka's error codes, the ones Neo answers with (Kafka's `Errors` enum).
pub mod code {
    pub const OFFSET_OUT_OF_RANGE: i16 = 1;
    pub const CORRUPT_MESSAGE: i16 = 2;
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    pub const LEADER_NOT_AVAILABLE: i16 = 5;
    pub const REQUEST_TIMED_OUT: i16 = 7;
    pub const MESSAGE_TOO_LARGE: i16 = 10;
    pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
    pub const NOT_COORDINATOR: i16 = 16;
    pub const INVALID_REQUIRED_ACKS: i16 = 21;
    pub const ILLEGAL_GENERATION: i16 = 22;
    pub const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
    pub const INVALID_GROUP_ID: i16 = 24;
    pub const UNKNOWN_MEMBER_ID: i16 = 25;
    pub const INVALID_SESSION_TIMEOUT: i16 = 26;
    pub const REBALANCE_IN_PROGRESS: i16 = 27;
    pub const INVALID_COMMIT_OFFSET_SIZE: i16 = 28;
    pub const TOPIC_AUTHORIZATION_FAILED: i16 = 29;
    pub const GROUP_AUTHORIZATION_FAILED: i16 = 30;
    pub const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;
    pub const UNSUPPORTED_SASL_MECHANISM: i16 = 33;
    pub const ILLEGAL_SASL_STATE: i16 = 34;
    pub const UNSUPPORTED_VERSION: i16 = 35;
    pub const INVALID_PARTITIONS: i16 = 37;
    pub const INVALID_REPLICATION_FACTOR: i16 = 38;
    pub const INVALID_REQUEST: i16 = 42;
    pub const UNSUPPORTED_FOR_MESSAGE_FORMAT: i16 = 43;
    pub const TRANSACTIONAL_ID_AUTHORIZATION_FAILED: i16 = 53;
    pub const SASL_AUTHENTICATION_FAILED: i16 = 58;
    pub const UNSUPPORTED_COMPRESSION_TYPE: i16 = 76;
    pub const INVALID_RECORD: i16 = 87;
}

/// Why a produced batch was refused: a Kafka error code and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub code: i16,
    pub message: String,
}

fn refuse(code: i16, message: impl Into<String>) -> Refused {
    Refused {
        code,
        message: message.into(),
    }
}

fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn be_i64(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Checks one produced partition's records (exactly one v2 batch, as Kafka
/// requires of v3+ produce requests): framing, CRC, attributes, and every
/// record walked (decompressed into `scratch`, at most `max_uncompressed`
/// bytes) with offsets 0..n-1. Returns the meta to store it under and the
/// stored part. Transactional and control batches are refused: Neo has no
/// transactions.
pub fn check_produced<'a>(
    b: &'a [u8],
    max_bytes: usize,
    max_uncompressed: usize,
    scratch: &mut Vec<u8>,
) -> Result<(BatchMeta, &'a [u8]), Refused> {
    if b.len() > max_bytes {
        return Err(refuse(
            code::MESSAGE_TOO_LARGE,
            format!("batch of {} bytes over the topic's {max_bytes}", b.len()),
        ));
    }
    if b.len() < HEADER_LEN {
        return Err(refuse(
            code::CORRUPT_MESSAGE,
            format!("{} bytes: shorter than a batch header", b.len()),
        ));
    }
    if b[16] != 2 {
        return Err(refuse(
            code::UNSUPPORTED_FOR_MESSAGE_FORMAT,
            format!("message format v{} (only v2 record batches)", b[16] as i8),
        ));
    }
    let batch_len = be_i32(b, 8);
    if batch_len < 0 || batch_len as usize + 12 != b.len() {
        return Err(refuse(
            code::CORRUPT_MESSAGE,
            format!(
                "batch length {batch_len} does not match the {} bytes sent (one batch per partition)",
                b.len()
            ),
        ));
    }
    let crc = u32::from_be_bytes(b[17..21].try_into().expect("4 bytes"));
    if crc32c_parts(&[&b[STORED_FROM..]]) != crc {
        return Err(refuse(code::CORRUPT_MESSAGE, "CRC32C mismatch"));
    }
    let attributes = be_i16(b, 21);
    if attributes & 0x7 > 4 {
        return Err(refuse(
            code::UNSUPPORTED_COMPRESSION_TYPE,
            format!("compression type {}", attributes & 0x7),
        ));
    }
    if attributes & 0x30 != 0 {
        return Err(refuse(
            code::INVALID_RECORD,
            "transactional or control batches: Neo has no transactions",
        ));
    }
    let last_delta = be_i32(b, 23);
    let count = be_i32(b, 57);
    if count <= 0 || last_delta != count - 1 {
        return Err(refuse(
            code::INVALID_RECORD,
            format!("{count} records with last offset delta {last_delta}"),
        ));
    }
    let base_ts = be_i64(b, 27);
    let data = records_of(&b[STORED_FROM..], max_uncompressed, scratch)
        .map_err(|e| refuse(code::CORRUPT_MESSAGE, e))?;
    let mut max_ts = base_ts;
    walk::walk(data, count as usize, |r| {
        max_ts = max_ts.max(base_ts.saturating_add(r.timestamp_delta))
    })
    .map_err(|e| refuse(code::CORRUPT_MESSAGE, e))?;
    let meta = BatchMeta {
        record_count: count as u32,
        first_timestamp: base_ts,
        max_timestamp: max_ts,
        producer_id: be_i64(b, 43),
        producer_epoch: be_i16(b, 51),
        base_sequence: be_i32(b, 53),
        codec: 0,
        attributes: KAFKA_LAYOUT,
    };
    Ok((meta, &b[STORED_FROM..]))
}

/// The uncompressed records of a stored payload (lent as they are, or
/// inflated into `scratch`).
fn records_of<'a>(
    payload: &'a [u8],
    max_uncompressed: usize,
    scratch: &'a mut Vec<u8>,
) -> Result<&'a [u8], String> {
    let head = HEADER_LEN - STORED_FROM;
    let records = payload.get(head..).ok_or("batch header truncated")?;
    match (be_i16(payload, 0) & 0x7) as u8 {
        0 => Ok(records),
        c => {
            compression::decompress(c, records, max_uncompressed, scratch)?;
            Ok(scratch)
        }
    }
}

/// Writes a stored Kafka payload back as a whole v2 batch at `base_offset`.
pub fn write_batch(base_offset: u64, payload: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(base_offset as i64).to_be_bytes());
    out.extend_from_slice(&((payload.len() + 9) as i32).to_be_bytes());
    out.extend_from_slice(&0i32.to_be_bytes()); // partition leader epoch
    out.push(2);
    out.extend_from_slice(&crc32c_parts(&[payload]).to_be_bytes());
    out.extend_from_slice(payload);
}

/// The records of a stored Kafka payload, appended to `builder` in Neo's
/// layout (the builder's first timestamp is the batch's earliest).
pub fn kafka_to_neo(
    payload: &[u8],
    max_uncompressed: usize,
    builder: &mut BatchBuilder,
    scratch: &mut Vec<u8>,
) -> Result<(), String> {
    if payload.len() < HEADER_LEN - STORED_FROM {
        return Err("stored Kafka batch shorter than its header".into());
    }
    let base_ts = be_i64(payload, 27 - STORED_FROM);
    let count = be_i32(payload, 57 - STORED_FROM).max(0) as usize;
    let data = records_of(payload, max_uncompressed, scratch)?;
    let mut first = base_ts;
    walk::walk(data, count, |r| {
        first = first.min(base_ts.saturating_add(r.timestamp_delta))
    })?;
    builder.begin_at(first);
    let mut failed = None;
    walk::walk(data, count, |r| {
        let headers: Vec<(&[u8], Option<&[u8]>)> = r.headers().collect();
        let ts = base_ts.saturating_add(r.timestamp_delta);
        let value = r.value.unwrap_or(&[]);
        if let Err(e) = builder.push_with_headers(r.key, value, &headers, ts) {
            failed.get_or_insert(e);
        }
    })?;
    failed.map_or(Ok(()), Err)
}

/// A Neo batch's records (uncompressed, Neo layout) as an uncompressed Kafka
/// v2 batch at `base_offset`, appended to `out`.
pub fn neo_to_kafka(
    base_offset: u64,
    meta: &BatchMeta,
    records: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let start = out.len();
    out.extend_from_slice(&(base_offset as i64).to_be_bytes());
    out.extend_from_slice(&[0; 4]); // batch length, filled below
    out.extend_from_slice(&0i32.to_be_bytes()); // partition leader epoch
    out.push(2);
    out.extend_from_slice(&[0; 4]); // CRC, filled below
    let crc_from = out.len();
    out.extend_from_slice(&0i16.to_be_bytes()); // no compression, create time
    out.extend_from_slice(&(meta.record_count as i32 - 1).to_be_bytes());
    out.extend_from_slice(&meta.first_timestamp.to_be_bytes());
    out.extend_from_slice(&meta.max_timestamp.to_be_bytes());
    out.extend_from_slice(&meta.producer_id.to_be_bytes());
    out.extend_from_slice(&meta.producer_epoch.to_be_bytes());
    out.extend_from_slice(&meta.base_sequence.to_be_bytes());
    out.extend_from_slice(&(meta.record_count as i32).to_be_bytes());
    let mut body = Vec::new();
    for_each_record(
        records,
        meta.record_count,
        base_offset,
        meta.first_timestamp,
        |r| {
            body.clear();
            body.push(0); // record attributes
            walk::put_varlong(&mut body, r.timestamp - meta.first_timestamp);
            walk::put_varlong(&mut body, (r.offset - base_offset) as i64);
            walk::put_nullable(&mut body, r.key);
            walk::put_nullable(&mut body, Some(r.value));
            walk::put_varlong(&mut body, r.header_count() as i64);
            for (name, value) in r.headers() {
                walk::put_nullable(&mut body, Some(name));
                walk::put_nullable(&mut body, value);
            }
            walk::put_varlong(out, body.len() as i64);
            out.extend_from_slice(&body);
        },
    )?;
    let len = (out.len() - start - 12) as i32;
    out[start + 8..start + 12].copy_from_slice(&len.to_be_bytes());
    let crc = crc32c_parts(&[&out[crc_from..]]);
    out[crc_from - 4..crc_from].copy_from_slice(&crc.to_be_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::records::{
        Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
        TimestampType,
    };

    fn kafka_batch(n: usize, compression: Compression) -> Bytes {
        let records: Vec<Record> = (0..n)
            .map(|i| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: 7,
                producer_epoch: 0,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                sequence: i as i32,
                timestamp: 1_000 + i as i64,
                key: Some(Bytes::from(format!("k{i}"))),
                value: Some(Bytes::from(format!("value {i}"))),
                headers: [("h".to_string().into(), Some(Bytes::from_static(b"x")))]
                    .into_iter()
                    .collect(),
            })
            .collect();
        let mut out = BytesMut::new();
        let opts = RecordEncodeOptions {
            version: 2,
            compression,
        };
        RecordBatchEncoder::encode(&mut out, records.iter(), &opts).unwrap();
        out.freeze()
    }

    #[test]
    fn a_stored_batch_comes_back_byte_for_byte_at_its_new_offset() {
        for c in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let b = kafka_batch(10, c);
            let mut scratch = Vec::new();
            let (meta, payload) = check_produced(&b, 1 << 20, 1 << 20, &mut scratch).unwrap();
            assert_eq!(meta.record_count, 10);
            assert_eq!(meta.producer_id, 7);
            assert_eq!((meta.first_timestamp, meta.max_timestamp), (1_000, 1_009));
            let mut back = Vec::new();
            write_batch(0, payload, &mut back);
            assert_eq!(&back[..], &b[..], "{c:?}");
            let mut at_100 = Vec::new();
            write_batch(100, payload, &mut at_100);
            let set = RecordBatchDecoder::decode(&mut Bytes::from(at_100)).unwrap();
            assert_eq!(set.records[3].offset, 103);
            let mut nb = BatchBuilder::new();
            kafka_to_neo(payload, 1 << 20, &mut nb, &mut Vec::new()).unwrap();
            let mut seen = Vec::new();
            for_each_record(nb.bytes(), nb.count(), 100, nb.first_timestamp(), |r| {
                seen.push((r.offset, r.timestamp, r.value.to_vec(), r.headers().count()))
            })
            .unwrap();
            assert_eq!(seen.len(), 10);
            assert_eq!(seen[9], (109, 1_009, b"value 9".to_vec(), 1));
        }
    }

    #[test]
    fn damaged_batches_are_refused_with_kafka_codes() {
        let b = kafka_batch(3, Compression::Lz4);
        let s = &mut Vec::new();
        let mut check_produced =
            |b: &[u8], max: usize| check_produced(b, max, 1 << 20, s).map(drop);
        let mut flipped = b.to_vec();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        let e = check_produced(&flipped, 1 << 20).unwrap_err();
        assert_eq!(e.code, code::CORRUPT_MESSAGE);
        let e = check_produced(&b.slice(..b.len() - 1), 1 << 20).unwrap_err();
        assert_eq!(e.code, code::CORRUPT_MESSAGE);
        let e = check_produced(&b, 10).unwrap_err();
        assert_eq!(e.code, code::MESSAGE_TOO_LARGE);
        let mut v1 = b.to_vec();
        v1[16] = 1;
        let e = check_produced(&v1, 1 << 20).unwrap_err();
        assert_eq!(e.code, code::UNSUPPORTED_FOR_MESSAGE_FORMAT);
    }

    proptest::proptest! {
        /// Damage past the CRC check (the CRC is fixed up after the damage):
        /// decompression and the record walk refuse it or read it, never panic,
        /// and what passes the check also converts for a Neo reader.
        #[test]
        fn damaged_batches_with_a_valid_crc_never_panic(
            codec in 0usize..5,
            flips in proptest::collection::vec((proptest::prelude::any::<usize>(), proptest::prelude::any::<u8>()), 1..6),
        ) {
            let c = [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd][codec];
            let mut b = kafka_batch(20, c).to_vec();
            for (at, x) in flips {
                let i = STORED_FROM + at % (b.len() - STORED_FROM);
                b[i] ^= x;
            }
            let crc = crc32c_parts(&[&b[STORED_FROM..]]);
            b[17..21].copy_from_slice(&crc.to_be_bytes());
            if let Ok((meta, payload)) = check_produced(&b, 1 << 20, 1 << 16, &mut Vec::new()) {
                let mut nb = BatchBuilder::new();
                kafka_to_neo(payload, 1 << 16, &mut nb, &mut Vec::new()).unwrap();
                proptest::prop_assert_eq!(nb.count(), meta.record_count);
            }
        }
    }

    #[test]
    fn a_batch_inflating_past_the_limit_is_refused() {
        let records: Vec<Record> = (0..64)
            .map(|i| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i,
                // The encoder starts a new batch where offset - sequence changes.
                sequence: i as i32,
                timestamp: 0,
                key: None,
                value: Some(Bytes::from(vec![0u8; 64 << 10])),
                headers: Default::default(),
            })
            .collect();
        for c in [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let mut out = BytesMut::new();
            let opts = RecordEncodeOptions {
                version: 2,
                compression: c,
            };
            RecordBatchEncoder::encode(&mut out, records.iter(), &opts).unwrap();
            // 4 MiB of zeros, sent in a few KiB; the broker inflates at most 1 MiB.
            assert!(out.len() < 1 << 20, "{c:?}: {}", out.len());
            let e = check_produced(&out, 8 << 20, 1 << 20, &mut Vec::new()).unwrap_err();
            assert!(e.message.contains("inflates past"), "{c:?}: {}", e.message);
            check_produced(&out, 8 << 20, 8 << 20, &mut Vec::new()).unwrap();
        }
    }

    #[test]
    fn neo_batches_read_as_kafka_batches() {
        let mut nb = BatchBuilder::new();
        nb.push_with_headers(Some(b"k"), b"v0", &[(b"a", None)], 50)
            .unwrap();
        nb.push(None, b"v1", 60).unwrap();
        let meta = BatchMeta {
            record_count: 2,
            first_timestamp: 50,
            max_timestamp: 60,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            codec: 0,
            attributes: 0,
        };
        let mut out = Vec::new();
        neo_to_kafka(40, &meta, nb.bytes(), &mut out).unwrap();
        let set = RecordBatchDecoder::decode(&mut Bytes::from(out.clone())).unwrap();
        // The converted batch passes the produce checks too.
        check_produced(&out, 1 << 20, 1 << 20, &mut Vec::new()).unwrap();
        assert_eq!(set.records.len(), 2);
        assert_eq!(set.records[1].offset, 41);
        assert_eq!(set.records[1].timestamp, 60);
        assert_eq!(set.records[0].key.as_deref(), Some(&b"k"[..]));
        assert_eq!(set.records[0].headers.len(), 1);
    }
}
