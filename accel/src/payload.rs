//! The compressed-batch payload: what `neo-storage` stores after its 64-byte
//! batch header (whose `codec` byte is a [`CodecId`]) and what the broker
//! sends. The header is never compressed; the records are, as one block.
//!
//! ```text
//! codec 0 (none):  records
//! codec 1..=3:     uncompressed_len u32 LE | codec stream of the records
//! ```
//!
//! The length prefix is the decompression bound and the exact size to expect:
//! a stream that decodes to more or fewer bytes than it says is an error. The
//! batch CRC covers the payload as stored (prefix and compressed bytes).

use crate::codec::{Codec, CodecError, CodecId};

/// Bytes of the uncompressed-length prefix of a compressed payload.
pub const LEN_PREFIX: usize = 4;

/// Largest payload [`encode`] writes for `len` record bytes.
pub fn max_encoded_len(codec: &dyn Codec, len: usize) -> usize {
    LEN_PREFIX + codec.max_compressed_len(len)
}

/// Writes `records` compressed with `codec` into `out` (at least
/// [`max_encoded_len`] bytes) behind the length prefix; returns bytes written.
pub fn encode(codec: &mut dyn Codec, records: &[u8], out: &mut [u8]) -> Result<usize, CodecError> {
    let name = codec.id().name();
    let len = u32::try_from(records.len()).map_err(|_| CodecError::TooLarge {
        codec: name,
        bound: u32::MAX as usize,
    })?;
    if out.len() < LEN_PREFIX {
        return Err(CodecError::OutputTooSmall {
            codec: name,
            have: out.len(),
            need: max_encoded_len(codec, records.len()),
        });
    }
    let (prefix, body) = out.split_at_mut(LEN_PREFIX);
    prefix.copy_from_slice(&len.to_le_bytes());
    Ok(LEN_PREFIX + codec.compress(records, body)?)
}

/// The uncompressed length a compressed payload declares, refused above
/// `max` (the largest batch the reader accepts) before anything is allocated.
pub fn decoded_len(id: CodecId, payload: &[u8], max: usize) -> Result<usize, CodecError> {
    let prefix: [u8; LEN_PREFIX] = payload
        .get(..LEN_PREFIX)
        .and_then(|p| p.try_into().ok())
        .ok_or_else(|| CodecError::Corrupt {
            codec: id.name(),
            reason: format!("payload of {} bytes has no length prefix", payload.len()),
        })?;
    let len = u32::from_le_bytes(prefix) as usize;
    if len > max {
        return Err(CodecError::TooLarge {
            codec: id.name(),
            bound: max,
        });
    }
    Ok(len)
}

/// Decompresses a payload written by [`encode`] into `out[..len]`, where `len`
/// is [`decoded_len`] (checked against `max`); returns `len`.
pub fn decode(
    codec: &mut dyn Codec,
    payload: &[u8],
    out: &mut [u8],
    max: usize,
) -> Result<usize, CodecError> {
    let name = codec.id().name();
    let len = decoded_len(codec.id(), payload, max)?;
    let Some(out) = out.get_mut(..len) else {
        return Err(CodecError::OutputTooSmall {
            codec: name,
            have: out.len(),
            need: len,
        });
    };
    let n = codec.decompress(&payload[LEN_PREFIX..], out)?;
    if n != len {
        return Err(CodecError::Corrupt {
            codec: name,
            reason: format!("decoded {n} bytes, the payload declares {len}"),
        });
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Deflate, Lz4, Zstd};

    #[test]
    fn round_trip_and_every_refusal() {
        let records: Vec<u8> = (0..5000u32)
            .flat_map(|i| format!("record {i}\n").into_bytes())
            .collect();
        let codecs: Vec<Box<dyn Codec>> = vec![
            Box::new(Lz4),
            Box::new(Zstd::new(3).unwrap()),
            Box::new(Deflate::new(6)),
        ];
        for mut c in codecs {
            let c = c.as_mut();
            let mut p = vec![0u8; max_encoded_len(c, records.len())];
            let n = encode(c, &records, &mut p).unwrap();
            let p = &p[..n];
            assert_eq!(decoded_len(c.id(), p, 1 << 20), Ok(records.len()));
            let mut out = vec![0u8; records.len() + 100];
            assert_eq!(decode(c, p, &mut out, 1 << 20), Ok(records.len()));
            assert!(out[..records.len()] == records[..]);
            // Over the reader's limit: refused from the prefix alone.
            assert!(matches!(
                decode(c, p, &mut out, 1000),
                Err(CodecError::TooLarge { bound: 1000, .. })
            ));
            // Buffer smaller than declared.
            assert!(matches!(
                decode(c, p, &mut out[..10], 1 << 20),
                Err(CodecError::OutputTooSmall { need, .. }) if need == records.len()
            ));
            // A prefix that lies either way.
            let mut lie = p.to_vec();
            lie[..4].copy_from_slice(&(records.len() as u32 + 1).to_le_bytes());
            assert!(decode(c, &lie, &mut out, 1 << 20).is_err());
            lie[..4].copy_from_slice(&(records.len() as u32 - 1).to_le_bytes());
            assert!(decode(c, &lie, &mut out, 1 << 20).is_err());
            // Too short for a prefix.
            assert!(matches!(
                decode(c, &p[..3], &mut out, 1 << 20),
                Err(CodecError::Corrupt { .. })
            ));
            assert!(encode(c, &records, &mut [0u8; 2]).is_err());
        }
    }
}
