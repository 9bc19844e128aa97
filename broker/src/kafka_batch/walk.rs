//! Kafka's record layout inside a v2 batch (after decompression), walked in
//! place: every field bounds-checked, nothing allocated per record.
//!
//! ```text
//! record: length varint | attributes i8 | timestamp delta varlong
//!         | offset delta varint | key length varint (-1 = null) | key
//!         | value length varint (-1 = null) | value
//!         | header count varint | headers
//! header: name length varint | name | value length varint (-1 = null) | value
//! ```
//! Varints are zigzag-encoded, as in protobuf.

/// One record, lent from the batch.
#[derive(Debug, Clone, Copy)]
pub struct KRecord<'a> {
    pub timestamp_delta: i64,
    pub offset_delta: i32,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    header_count: usize,
    headers: &'a [u8],
}

impl<'a> KRecord<'a> {
    /// The record's headers in order (already checked by the walk).
    pub fn headers(&self) -> impl Iterator<Item = (&'a [u8], Option<&'a [u8]>)> + 'a {
        let mut c = Cursor(self.headers);
        (0..self.header_count).map_while(move |_| header(&mut c).ok())
    }
}

/// Appends `v` zigzag-varint-encoded.
pub fn put_varlong(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

/// Appends a length-prefixed field (-1 for `None`).
pub fn put_nullable(out: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        None => put_varlong(out, -1),
        Some(b) => {
            put_varlong(out, b.len() as i64);
            out.extend_from_slice(b);
        }
    }
}

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn varlong(&mut self) -> Result<i64, String> {
        let mut v: u64 = 0;
        for i in 0..10 {
            let (&b, rest) = self.0.split_first().ok_or("varint truncated")?;
            self.0 = rest;
            v |= ((b & 0x7f) as u64) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(((v >> 1) as i64) ^ -((v & 1) as i64));
            }
        }
        Err("varint longer than 10 bytes".into())
    }
    fn varint(&mut self) -> Result<i32, String> {
        let v = self.varlong()?;
        i32::try_from(v).map_err(|_| format!("varint {v} out of i32 range"))
    }
    fn bytes(&mut self, n: usize) -> Result<&'a [u8], String> {
        if n > self.0.len() {
            return Err(format!("{n} bytes wanted, {} left", self.0.len()));
        }
        let (h, t) = self.0.split_at(n);
        self.0 = t;
        Ok(h)
    }
    /// A length-prefixed field; -1 is null.
    fn nullable(&mut self) -> Result<Option<&'a [u8]>, String> {
        match self.varint()? {
            -1 => Ok(None),
            n if n >= 0 => self.bytes(n as usize).map(Some),
            n => Err(format!("length {n}")),
        }
    }
}

fn header<'a>(c: &mut Cursor<'a>) -> Result<(&'a [u8], Option<&'a [u8]>), String> {
    let name = c.nullable()?.ok_or("a header with a null name")?;
    Ok((name, c.nullable()?))
}

/// Walks exactly `count` records filling `data`, each with offset delta
/// equal to its index (no gaps: batches from producers have none).
pub fn walk<'a>(
    data: &'a [u8],
    count: usize,
    mut each: impl FnMut(KRecord<'a>),
) -> Result<(), String> {
    let mut c = Cursor(data);
    for i in 0..count {
        let len = c.varint()?;
        let len = usize::try_from(len).map_err(|_| format!("record {i}: length {len}"))?;
        let mut r = Cursor(c.bytes(len).map_err(|e| format!("record {i}: {e}"))?);
        let fields = (|| {
            r.bytes(1)?; // attributes: unused in v2
            let timestamp_delta = r.varlong()?;
            let offset_delta = r.varint()?;
            let key = r.nullable()?;
            let value = r.nullable()?;
            let n = r.varint()?;
            let header_count = usize::try_from(n).map_err(|_| format!("{n} headers"))?;
            let headers_at = r.0;
            for _ in 0..header_count {
                header(&mut r)?;
            }
            let headers = &headers_at[..headers_at.len() - r.0.len()];
            if !r.0.is_empty() {
                return Err(format!("{} bytes after the headers", r.0.len()));
            }
            Ok(KRecord {
                timestamp_delta,
                offset_delta,
                key,
                value,
                header_count,
                headers,
            })
        })()
        .map_err(|e: String| format!("record {i}: {e}"))?;
        if fields.offset_delta as i64 != i as i64 {
            return Err(format!(
                "record {i} has offset delta {}",
                fields.offset_delta
            ));
        }
        each(fields);
    }
    if !c.0.is_empty() {
        return Err(format!(
            "{} bytes after the last of {count} records",
            c.0.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn varints_round_trip(v in any::<i64>()) {
            let mut out = Vec::new();
            put_varlong(&mut out, v);
            let mut c = Cursor(&out);
            prop_assert_eq!(c.varlong().unwrap(), v);
            prop_assert!(c.0.is_empty());
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512), count in 0usize..50) {
            let _ = walk(&data, count, |_| {});
        }
    }
}
