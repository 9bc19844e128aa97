//! The record layout inside a batch payload (before compression), shared
//! by the producer, the broker's validation and the consumer.
//!
//! ```text
//! per record:  key_len i32 LE (-1 = no key) | value_len u32 LE | ts_delta u32 LE
//!              | header_count u16 LE | key | value | headers
//! per header:  name_len u16 LE | value_len i32 LE (-1 = no value) | name | value
//! ```
//!
//! Headers are Kafka's record headers (a name and an optional value each), so
//! records carry them across the Kafka listener unchanged.
//!
//! `ts_delta` is milliseconds after the batch's `first_timestamp`; the offset
//! of record `i` is the batch's base offset plus `i`. The whole payload is
//! one compression block (`neo_accel::payload`) when the batch has a codec.

use neo_accel::{payload, Codec, CodecId};

/// Fixed bytes in front of each record's key and value.
pub const RECORD_OVERHEAD: usize = 14;
/// Fixed bytes in front of each header's name and value.
pub const HEADER_OVERHEAD: usize = 6;

/// One record header: a name and an optional value.
pub type Header<'a> = (&'a [u8], Option<&'a [u8]>);

/// One record, lent from a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordView<'a> {
    pub offset: u64,
    pub timestamp: i64,
    pub key: Option<&'a [u8]>,
    pub value: &'a [u8],
    header_count: u16,
    /// The encoded headers (already checked when the record was read).
    header_bytes: &'a [u8],
}

impl<'a> RecordView<'a> {
    pub fn header_count(&self) -> usize {
        self.header_count as usize
    }
    /// The record's headers, in order.
    pub fn headers(&self) -> impl Iterator<Item = Header<'a>> + 'a {
        let mut rest = self.header_bytes;
        (0..self.header_count).map_while(move |_| {
            let (h, tail) = parse_header(rest).ok()?;
            rest = tail;
            Some(h)
        })
    }
}

/// Splits one header off the front of `b`.
fn parse_header(b: &[u8]) -> Result<(Header<'_>, &[u8]), String> {
    let head = b.get(..HEADER_OVERHEAD).ok_or("header truncated")?;
    let name_len = u16::from_le_bytes([head[0], head[1]]) as usize;
    let value_len = i32::from_le_bytes([head[2], head[3], head[4], head[5]]);
    let rest = &b[HEADER_OVERHEAD..];
    let name = rest.get(..name_len).ok_or("header name truncated")?;
    let rest = &rest[name_len..];
    match value_len {
        -1 => Ok(((name, None), rest)),
        n if n >= 0 => {
            let v = rest.get(..n as usize).ok_or("header value truncated")?;
            Ok(((name, Some(v)), &rest[n as usize..]))
        }
        n => Err(format!("header value length {n}")),
    }
}

/// Accumulates records into one uncompressed payload; reused across batches.
#[derive(Debug, Default)]
pub struct BatchBuilder {
    buf: Vec<u8>,
    count: u32,
    first_ts: i64,
    max_ts: i64,
    /// `first_ts` was set by [`BatchBuilder::begin_at`], not the first record.
    pinned: bool,
}

impl BatchBuilder {
    pub fn new() -> Self {
        Self::default()
    }
    /// Empties the builder and fixes the batch's first timestamp at `ts`, for
    /// records that are not in timestamp order (none may be earlier).
    pub fn begin_at(&mut self, ts: i64) {
        self.clear();
        self.first_ts = ts;
        self.max_ts = ts;
        self.pinned = true;
    }
    /// Bytes a record adds.
    pub fn record_len(key: Option<&[u8]>, value: &[u8], headers: &[Header<'_>]) -> usize {
        RECORD_OVERHEAD
            + key.map_or(0, <[u8]>::len)
            + value.len()
            + headers
                .iter()
                .map(|(n, v)| HEADER_OVERHEAD + n.len() + v.map_or(0, <[u8]>::len))
                .sum::<usize>()
    }
    /// Appends a record without headers.
    pub fn push(&mut self, key: Option<&[u8]>, value: &[u8], ts: i64) -> Result<(), String> {
        self.push_with_headers(key, value, &[], ts)
    }
    /// Appends a record. Fails (and appends nothing) when a field does not
    /// fit the layout.
    pub fn push_with_headers(
        &mut self,
        key: Option<&[u8]>,
        value: &[u8],
        headers: &[Header<'_>],
        ts: i64,
    ) -> Result<(), String> {
        let header_count = u16::try_from(headers.len()).map_err(|_| "more than 65535 headers")?;
        for (n, v) in headers {
            if n.len() > u16::MAX as usize {
                return Err("a header name longer than 65535 bytes".into());
            }
            if v.is_some_and(|v| v.len() > i32::MAX as usize) {
                return Err("a header value longer than 2 GiB".into());
            }
        }
        if self.count == 0 && !self.pinned {
            self.first_ts = ts;
            self.max_ts = ts;
        }
        let delta = ts
            .checked_sub(self.first_ts)
            .filter(|d| (0..=u32::MAX as i64).contains(d))
            .ok_or_else(|| {
                format!(
                    "record timestamp {ts} is before the batch's first {} or over 49 days after it",
                    self.first_ts
                )
            })?;
        let key_len = match key {
            Some(k) => i32::try_from(k.len()).map_err(|_| "key longer than 2 GiB")?,
            None => -1,
        };
        let value_len = u32::try_from(value.len()).map_err(|_| "value longer than 4 GiB")?;
        self.buf.extend_from_slice(&key_len.to_le_bytes());
        self.buf.extend_from_slice(&value_len.to_le_bytes());
        self.buf.extend_from_slice(&(delta as u32).to_le_bytes());
        self.buf.extend_from_slice(&header_count.to_le_bytes());
        if let Some(k) = key {
            self.buf.extend_from_slice(k);
        }
        self.buf.extend_from_slice(value);
        for (n, v) in headers {
            self.buf.extend_from_slice(&(n.len() as u16).to_le_bytes());
            let vl = v.map_or(-1, |v| v.len() as i32);
            self.buf.extend_from_slice(&vl.to_le_bytes());
            self.buf.extend_from_slice(n);
            if let Some(v) = v {
                self.buf.extend_from_slice(v);
            }
        }
        self.count += 1;
        self.max_ts = self.max_ts.max(ts);
        Ok(())
    }
    pub fn count(&self) -> u32 {
        self.count
    }
    pub fn len(&self) -> usize {
        self.buf.len()
    }
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
    pub fn first_timestamp(&self) -> i64 {
        self.first_ts
    }
    pub fn max_timestamp(&self) -> i64 {
        self.max_ts
    }
    /// The uncompressed payload.
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }
    pub fn clear(&mut self) {
        self.buf.clear();
        self.count = 0;
        self.pinned = false;
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Walks exactly `count` records of an uncompressed payload; every byte must
/// belong to a record. Calls `each` per record.
pub fn for_each_record<'a>(
    records: &'a [u8],
    count: u32,
    base_offset: u64,
    first_ts: i64,
    mut each: impl FnMut(RecordView<'a>),
) -> Result<(), String> {
    let mut pos = 0usize;
    for i in 0..count {
        let head = records
            .get(pos..pos + RECORD_OVERHEAD)
            .ok_or_else(|| format!("record {i} of {count}: header truncated at byte {pos}"))?;
        let key_len = u32_at(head, 0) as i32;
        let value_len = u32_at(head, 4) as usize;
        let delta = u32_at(head, 8) as i64;
        let header_count = u16::from_le_bytes([head[12], head[13]]);
        pos += RECORD_OVERHEAD;
        let key = match key_len {
            -1 => None,
            n if n >= 0 => {
                let k = records
                    .get(pos..pos + n as usize)
                    .ok_or_else(|| format!("record {i}: key of {n} bytes truncated"))?;
                pos += n as usize;
                Some(k)
            }
            n => return Err(format!("record {i}: key length {n}")),
        };
        let value = records
            .get(pos..pos + value_len)
            .ok_or_else(|| format!("record {i}: value of {value_len} bytes truncated"))?;
        pos += value_len;
        let headers_start = pos;
        for _ in 0..header_count {
            let rest = &records[pos..];
            let (_, tail) = parse_header(rest).map_err(|e| format!("record {i}: {e}"))?;
            pos += rest.len() - tail.len();
        }
        each(RecordView {
            offset: base_offset + i as u64,
            timestamp: first_ts + delta,
            key,
            value,
            header_count,
            header_bytes: &records[headers_start..pos],
        });
    }
    if pos != records.len() {
        return Err(format!(
            "{} bytes after the last of {count} records",
            records.len() - pos
        ));
    }
    Ok(())
}

/// Compression state for one side (producer, broker or consumer): a codec
/// per id, made once, and a scratch buffer.
pub struct Codecs {
    registry: neo_accel::Registry,
    made: Vec<(CodecId, Box<dyn Codec>)>,
    scratch: Vec<u8>,
    counters: Vec<(CodecId, CodecCounters)>,
}

/// Bytes through one codec since start, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CodecCounters {
    /// Uncompressed bytes given to `compress`.
    pub compress_in: u64,
    /// Compressed bytes it produced.
    pub compress_out: u64,
    /// Uncompressed bytes produced by decompression.
    pub decompressed: u64,
}

impl Codecs {
    pub fn new(registry: neo_accel::Registry) -> Self {
        Self {
            registry,
            made: Vec::new(),
            scratch: Vec::new(),
            counters: Vec::new(),
        }
    }

    /// The registry's choice per codec (what the node uses), for reports.
    pub fn registry(&self) -> &neo_accel::Registry {
        &self.registry
    }

    /// Bytes through each codec used so far.
    pub fn counters(&self) -> &[(CodecId, CodecCounters)] {
        &self.counters
    }

    fn count(&mut self, id: CodecId) -> &mut CodecCounters {
        let i = match self.counters.iter().position(|(c, _)| *c == id) {
            Some(i) => i,
            None => {
                self.counters.push((id, CodecCounters::default()));
                self.counters.len() - 1
            }
        };
        &mut self.counters[i].1
    }

    /// Software codecs, no detection: for clients and tests.
    pub fn software() -> Self {
        let nothing = || Err("not probed: software codecs only".to_string());
        let none = neo_accel::Detection {
            iaa_devices: Vec::new(),
            iaa_work_queues: Vec::new(),
            iaa_pci: Vec::new(),
            qat_pci: Vec::new(),
            qat_device_nodes: Vec::new(),
            qpl: nothing(),
            qatlib: nothing(),
            qatzip: nothing(),
            dsa_error: None,
            pci_error: None,
        };
        let registry = neo_accel::Registry::new(&none, &neo_accel::Overrides::new())
            .expect("the software registry has no overrides to refuse");
        Self::new(registry)
    }

    fn codec(&mut self, id: CodecId) -> Result<&mut Box<dyn Codec>, String> {
        let i = match self.made.iter().position(|(c, _)| *c == id) {
            Some(i) => i,
            None => {
                let c = self
                    .registry
                    .codec(id)
                    .ok_or_else(|| format!("codec {} is not available", id.name()))?;
                self.made.push((id, c));
                self.made.len() - 1
            }
        };
        Ok(&mut self.made[i].1)
    }

    /// Compresses `records` with `id` into `out` (cleared first). With
    /// [`CodecId::None`] the records are copied as they are.
    pub fn compress(
        &mut self,
        id: CodecId,
        records: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), String> {
        out.clear();
        if id == CodecId::None {
            out.extend_from_slice(records);
            return Ok(());
        }
        let c = self.codec(id)?;
        out.resize(payload::max_encoded_len(c.as_ref(), records.len()), 0);
        let n = payload::encode(c.as_mut(), records, out).map_err(|e| e.to_string())?;
        out.truncate(n);
        let k = self.count(id);
        k.compress_in += records.len() as u64;
        k.compress_out += n as u64;
        Ok(())
    }

    /// The uncompressed records of a stored payload, at most `max` bytes:
    /// lent as they are for codec none, else decompressed into scratch.
    pub fn records<'a>(
        &'a mut self,
        codec: u8,
        payload: &'a [u8],
        max: usize,
    ) -> Result<&'a [u8], String> {
        let id = CodecId::from_u8(codec).ok_or_else(|| format!("unknown codec id {codec}"))?;
        if id == CodecId::None {
            return Ok(payload);
        }
        let len = payload::decoded_len(id, payload, max).map_err(|e| e.to_string())?;
        if self.scratch.len() < len {
            self.scratch.resize(len, 0);
        }
        let i = match self.made.iter().position(|(c, _)| *c == id) {
            Some(i) => i,
            None => {
                self.codec(id)?;
                self.made.len() - 1
            }
        };
        let c = &mut self.made[i].1;
        let n = payload::decode(c.as_mut(), payload, &mut self.scratch, max)
            .map_err(|e| e.to_string())?;
        self.count(id).decompressed += n as u64;
        Ok(&self.scratch[..n])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_every_codec() {
        let mut b = BatchBuilder::new();
        b.push(Some(b"k1"), b"hello", 1000).unwrap();
        b.push(None, b"", 1005).unwrap();
        b.push_with_headers(
            Some(b""),
            &[7u8; 300],
            &[(b"trace", Some(b"abc")), (b"flag", None)],
            1001,
        )
        .unwrap();
        let mut codecs = Codecs::software();
        for id in [CodecId::None, CodecId::Lz4, CodecId::Zstd, CodecId::Deflate] {
            let mut stored = Vec::new();
            codecs.compress(id, b.bytes(), &mut stored).unwrap();
            let records = codecs.records(id as u8, &stored, 1 << 20).unwrap().to_vec();
            let mut seen = Vec::new();
            for_each_record(&records, 3, 10, b.first_timestamp(), |r| {
                seen.push((
                    r.offset,
                    r.timestamp,
                    r.key.map(<[u8]>::to_vec),
                    r.value.len(),
                ))
            })
            .unwrap();
            assert_eq!(
                seen,
                vec![
                    (10, 1000, Some(b"k1".to_vec()), 5),
                    (11, 1005, None, 0),
                    (12, 1001, Some(vec![]), 300)
                ],
                "{id:?}"
            );
        }
        assert_eq!(b.max_timestamp(), 1005);
    }

    proptest::proptest! {
        /// Arbitrary bytes and counts never panic the record walker, and
        /// whatever it accepts lies inside the input.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512), count in 0u32..8) {
            let mut seen = 0usize;
            let r = for_each_record(&bytes, count, 0, 0, |rec| {
                seen += rec.value.len() + rec.key.map_or(0, <[u8]>::len);
                for (n, v) in rec.headers() {
                    seen += n.len() + v.map_or(0, <[u8]>::len);
                }
            });
            proptest::prop_assert!(seen <= bytes.len());
            if r.is_ok() {
                proptest::prop_assert!(count > 0 || bytes.is_empty());
            }
        }
    }

    #[test]
    fn malformed_payloads_are_refused() {
        let mut b = BatchBuilder::new();
        b.push(Some(b"key"), b"value", 5).unwrap();
        let good = b.bytes().to_vec();
        assert!(
            for_each_record(&good, 2, 0, 0, |_| {}).is_err(),
            "count too high"
        );
        assert!(
            for_each_record(&good, 0, 0, 0, |_| {}).is_err(),
            "bytes left over"
        );
        assert!(for_each_record(&good[..good.len() - 1], 1, 0, 0, |_| {}).is_err());
        let mut bad = good.clone();
        bad[0..4].copy_from_slice(&(-5i32).to_le_bytes());
        assert!(for_each_record(&bad, 1, 0, 0, |_| {}).is_err());
        assert!(b.push(None, b"x", 4).is_err(), "timestamp before the first");
        // A header that runs past the record, and a bad header value length.
        let mut h = BatchBuilder::new();
        h.push_with_headers(None, b"v", &[(b"n", Some(b"val"))], 5)
            .unwrap();
        let good_h = h.bytes().to_vec();
        assert!(for_each_record(&good_h, 1, 0, 0, |_| {}).is_ok());
        assert!(for_each_record(&good_h[..good_h.len() - 1], 1, 0, 0, |_| {}).is_err());
        let mut bad_h = good_h.clone();
        let at = RECORD_OVERHEAD + 1 + 2;
        bad_h[at..at + 4].copy_from_slice(&(-7i32).to_le_bytes());
        assert!(for_each_record(&bad_h, 1, 0, 0, |_| {}).is_err());
        assert_eq!(b.count(), 1, "a refused record is not appended");
    }
}
