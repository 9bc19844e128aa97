//! Shared helpers: batches whose content is derived from their sequence
//! number, so any batch read back can be checked exactly.

#![allow(dead_code)]

use neo_storage::{BatchMeta, FsyncPolicy, LogConfig};

/// Payload of batch `seq`: the sequence number, then a pattern of `len` bytes.
pub fn payload(seq: u64, len: usize) -> Vec<u8> {
    let mut p = seq.to_le_bytes().to_vec();
    p.extend((0..len).map(|i| (seq as usize).wrapping_mul(131).wrapping_add(i * 7) as u8));
    p
}

/// The sequence number a payload claims, if the rest of it matches.
pub fn check(p: &[u8]) -> Option<u64> {
    let seq = u64::from_le_bytes(p.get(..8)?.try_into().ok()?);
    (payload(seq, p.len() - 8) == p).then_some(seq)
}

pub fn meta(seq: u64, records: u32) -> BatchMeta {
    BatchMeta {
        producer_id: 9,
        producer_epoch: 1,
        base_sequence: seq as i32,
        ..BatchMeta::simple(records, 1_000 + seq as i64)
    }
}

pub fn small(fsync: FsyncPolicy) -> LogConfig {
    LogConfig {
        segment_bytes: 16 << 10,
        max_batch: 4 << 10,
        index_interval: 512,
        fsync,
        retention_age: None,
        ..LogConfig::default()
    }
}
