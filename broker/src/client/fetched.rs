//! Reading a fetch answer: the head, then each partition's stored batches,
//! checksummed and decompressed — shared by the consumer and `neo bench e2e`.

use neo_storage::batch::{validate, HEADER_LEN};

use super::ClientError;
use crate::kafka_batch::{kafka_to_neo, KAFKA_LAYOUT};
use crate::protocol::{BrokerError, FetchHead, FetchedPartition};
use crate::records::{for_each_record, BatchBuilder, Codecs, RecordView};

/// Largest uncompressed batch a client inflates.
pub const MAX_UNCOMPRESSED: usize = 64 << 20;

/// Splits a fetch answer into each requested partition's head entry and its
/// batch bytes, in request order.
pub fn fetch_parts(
    answer: &[u8],
    expected: usize,
) -> Result<Vec<(FetchedPartition, &[u8])>, ClientError> {
    let (head, mut rest) = postcard::take_from_bytes::<Result<FetchHead, BrokerError>>(answer)
        .map_err(|e| ClientError::Decode(e.to_string()))?;
    let head = head?;
    if head.partitions.len() != expected {
        return Err(ClientError::Decode(
            "fetch answer names a different number of partitions".into(),
        ));
    }
    let mut parts = Vec::with_capacity(expected);
    for p in head.partitions {
        let len = p.len as usize;
        let bytes = rest
            .get(..len)
            .ok_or_else(|| ClientError::Decode("fetch answer shorter than its head says".into()))?;
        rest = &rest[len..];
        parts.push((p, bytes));
    }
    Ok(parts)
}

/// Walks the batches of one partition's bytes (each CRC-checked, inflated
/// with `codecs`), calls `each` for every record at or after `*position`,
/// and moves `*position` past every batch. Returns the records handed out.
pub fn for_each_fetched_record(
    mut bytes: &[u8],
    codecs: &mut Codecs,
    position: &mut u64,
    mut each: impl FnMut(RecordView<'_>),
) -> Result<usize, ClientError> {
    let mut n = 0;
    let mut converted = BatchBuilder::new();
    let mut scratch = Vec::new();
    while !bytes.is_empty() {
        let h = validate(bytes, usize::MAX - HEADER_LEN)
            .map_err(|e| ClientError::Decode(format!("batch in fetch answer: {}", e.describe())))?;
        let payload = &bytes[HEADER_LEN..h.batch_len as usize];
        // A batch a Kafka client produced: its records in Neo's layout.
        let (records, first_ts) = if h.meta.attributes & KAFKA_LAYOUT != 0 {
            kafka_to_neo(payload, MAX_UNCOMPRESSED, &mut converted, &mut scratch)
                .map_err(ClientError::Decode)?;
            (converted.bytes(), converted.first_timestamp())
        } else {
            let records = codecs
                .records(h.meta.codec, payload, MAX_UNCOMPRESSED)
                .map_err(ClientError::Decode)?;
            (records, h.meta.first_timestamp)
        };
        let from = *position;
        for_each_record(records, h.meta.record_count, h.base_offset, first_ts, |r| {
            if r.offset >= from {
                each(r);
                n += 1;
            }
        })
        .map_err(ClientError::Decode)?;
        *position = (*position).max(h.last_offset() + 1);
        bytes = &bytes[h.batch_len as usize..];
    }
    Ok(n)
}
