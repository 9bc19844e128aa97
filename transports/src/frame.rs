//! Neo frames (the "Qiss" format): the versioned, checksummed envelope every Neo
//! RPC message travels in, on every transport.
//!
//! ```text
//! offset size field
//!  0     2    magic          b"NQ"
//!  2     1    version        1
//!  3     1    kind           1 request, 2 response, 3 error
//!  4     2    flags          u16 LE; no flag is defined in version 1, any set bit is rejected
//!  6     2    reserved       u16 LE, must be 0
//!  8     8    correlation id u64 LE, chosen by the requester, echoed in the answer
//! 16     4    length         u32 LE, payload bytes after the header
//! 20     4    crc32c         u32 LE, CRC32C (Castagnoli) of bytes 0..20 then the payload
//! 24     ..   payload
//! ```
//!
//! All integers are little-endian: every host and NIC Neo targets is, and the
//! frame is read in place from receive buffers. One frame is exactly one
//! transport message, so the length field must equal what the transport
//! delivered; a mismatch is an error, never a resynchronisation.

use thiserror::Error;

/// Frame magic, `b"NQ"`.
pub const MAGIC: [u8; 2] = *b"NQ";
/// The only version this build speaks.
pub const VERSION: u8 = 1;
/// Bytes of header before the payload.
pub const HEADER_LEN: usize = 24;
/// Flag bits understood by this version (none).
pub const KNOWN_FLAGS: u16 = 0;

/// What a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    Request = 1,
    Response = 2,
    Error = 3,
}

impl Kind {
    fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(Self::Request),
            2 => Some(Self::Response),
            3 => Some(Self::Error),
            _ => None,
        }
    }
}

/// The decoded fixed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub kind: Kind,
    pub flags: u16,
    pub correlation: u64,
    pub length: u32,
}

/// A frame decoded in place: the payload borrows the receive buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    pub header: Header,
    pub payload: &'a [u8],
}

/// Every way a frame can be malformed. Nothing in a malformed frame is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum FrameError {
    #[error("frame truncated: {have} bytes, header needs {HEADER_LEN}")]
    Truncated { have: usize },
    #[error("bad magic {0:02x?}, expected {MAGIC:02x?}")]
    BadMagic([u8; 2]),
    #[error("unsupported frame version {0}, this build speaks {VERSION}")]
    UnsupportedVersion(u8),
    #[error("unknown frame kind {0}")]
    UnknownKind(u8),
    #[error("unknown flag bits {0:#06x}")]
    UnknownFlags(u16),
    #[error("reserved header field is {0:#06x}, must be 0")]
    ReservedNotZero(u16),
    #[error("payload length {len} exceeds the maximum of {max}")]
    TooLarge { len: u32, max: usize },
    #[error("header declares {declared} payload bytes, message carries {actual}")]
    LengthMismatch { declared: u32, actual: usize },
    #[error("checksum mismatch: header {expected:#010x}, computed {actual:#010x}")]
    BadChecksum { expected: u32, actual: u32 },
}

impl FrameError {
    /// Whether the peer is evidently not speaking this protocol (the connection
    /// should be closed after answering), as opposed to one damaged frame.
    pub fn is_foreign(&self) -> bool {
        matches!(self, Self::BadMagic(_) | Self::UnsupportedVersion(_))
    }
}

/// Total encoded size of a frame with `payload_len` payload bytes.
pub const fn encoded_len(payload_len: usize) -> usize {
    HEADER_LEN + payload_len
}

fn header_prefix(kind: Kind, flags: u16, correlation: u64, length: u32) -> [u8; 20] {
    let mut h = [0u8; 20];
    h[0..2].copy_from_slice(&MAGIC);
    h[2] = VERSION;
    h[3] = kind as u8;
    h[4..6].copy_from_slice(&flags.to_le_bytes());
    // h[6..8] reserved, zero
    h[8..16].copy_from_slice(&correlation.to_le_bytes());
    h[16..20].copy_from_slice(&length.to_le_bytes());
    h
}

/// Builds the 24-byte header for a payload given as `parts` laid end to end,
/// computing the CRC over header and parts. Used to gather-send a frame
/// without first copying the payload together.
///
/// The caller guarantees the payload fits in `u32` (transports cap messages far
/// below 4 GiB); a larger payload is a programming error and panics.
pub fn header_for(kind: Kind, flags: u16, correlation: u64, parts: &[&[u8]]) -> [u8; HEADER_LEN] {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let len = u32::try_from(len).expect("frame payload exceeds u32::MAX");
    let prefix = header_prefix(kind, flags, correlation, len);
    let mut crc = crc32c::crc32c(&prefix);
    for p in parts {
        crc = crc32c::crc32c_append(crc, p);
    }
    let mut h = [0u8; HEADER_LEN];
    h[..20].copy_from_slice(&prefix);
    h[20..24].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Encodes a frame into `out`, which must be exactly `encoded_len(payload_len)`
/// bytes (a lent transmit buffer); `fill` writes the payload in place, then the
/// CRC is computed over the result.
pub fn encode_with(
    out: &mut [u8],
    kind: Kind,
    flags: u16,
    correlation: u64,
    fill: impl FnOnce(&mut [u8]),
) {
    assert!(
        out.len() >= HEADER_LEN,
        "frame buffer shorter than the header"
    );
    let len = u32::try_from(out.len() - HEADER_LEN).expect("frame payload exceeds u32::MAX");
    let (head, payload) = out.split_at_mut(HEADER_LEN);
    fill(payload);
    let prefix = header_prefix(kind, flags, correlation, len);
    let crc = crc32c::crc32c_append(crc32c::crc32c(&prefix), payload);
    head[..20].copy_from_slice(&prefix);
    head[20..24].copy_from_slice(&crc.to_le_bytes());
}

/// Decodes one frame that is exactly `msg` (one transport message), checking
/// every header field and the checksum. `max_payload` bounds the payload.
pub fn decode(msg: &[u8], max_payload: usize) -> Result<Frame<'_>, FrameError> {
    let Some(head) = msg.get(..HEADER_LEN) else {
        return Err(FrameError::Truncated { have: msg.len() });
    };
    let magic = [head[0], head[1]];
    if magic != MAGIC {
        return Err(FrameError::BadMagic(magic));
    }
    if head[2] != VERSION {
        return Err(FrameError::UnsupportedVersion(head[2]));
    }
    let kind = Kind::from_u8(head[3]).ok_or(FrameError::UnknownKind(head[3]))?;
    let flags = u16::from_le_bytes([head[4], head[5]]);
    if flags & !KNOWN_FLAGS != 0 {
        return Err(FrameError::UnknownFlags(flags));
    }
    let reserved = u16::from_le_bytes([head[6], head[7]]);
    if reserved != 0 {
        return Err(FrameError::ReservedNotZero(reserved));
    }
    let correlation = u64::from_le_bytes(head[8..16].try_into().expect("8 bytes"));
    let length = u32::from_le_bytes(head[16..20].try_into().expect("4 bytes"));
    if length as usize > max_payload {
        return Err(FrameError::TooLarge {
            len: length,
            max: max_payload,
        });
    }
    let payload = &msg[HEADER_LEN..];
    if payload.len() != length as usize {
        return Err(FrameError::LengthMismatch {
            declared: length,
            actual: payload.len(),
        });
    }
    let expected = u32::from_le_bytes(head[20..24].try_into().expect("4 bytes"));
    let actual = crc32c::crc32c_append(crc32c::crc32c(&head[..20]), payload);
    if expected != actual {
        return Err(FrameError::BadChecksum { expected, actual });
    }
    Ok(Frame {
        header: Header {
            kind,
            flags,
            correlation,
            length,
        },
        payload,
    })
}

/// Reads the correlation id of a message that may not decode, so an error
/// frame can still be addressed to the right call. Returns 0 when the message
/// is too short to carry one or is not a Neo frame at all.
pub fn peek_correlation(msg: &[u8]) -> u64 {
    match msg.get(..16) {
        Some(h) if h[0..2] == MAGIC => u64::from_le_bytes(h[8..16].try_into().expect("8 bytes")),
        _ => 0,
    }
}

/// The fuzz oracle shared by `transports/fuzz` (cargo-fuzz) and the
/// libFuzzer-free harness in the test suite: decoding arbitrary bytes must not
/// panic, and whatever decodes must re-encode to exactly the same bytes.
///
/// The input is also decoded with its checksum field corrected, so the fuzzer
/// explores the header checks behind the CRC instead of stopping at it.
#[doc(hidden)]
pub fn fuzz_check(data: &[u8]) {
    fuzz_one(data);
    if data.len() >= HEADER_LEN {
        let mut fixed = data.to_vec();
        let crc = crc32c::crc32c_append(crc32c::crc32c(&fixed[..20]), &fixed[HEADER_LEN..]);
        fixed[20..24].copy_from_slice(&crc.to_le_bytes());
        fuzz_one(&fixed);
    }
}

fn fuzz_one(data: &[u8]) {
    let max = 1 << 20;
    if let Ok(f) = decode(data, max) {
        let mut again = vec![0u8; encoded_len(f.payload.len())];
        encode_with(
            &mut again,
            f.header.kind,
            f.header.flags,
            f.header.correlation,
            |p| p.copy_from_slice(f.payload),
        );
        assert_eq!(again, data, "decoded frame does not re-encode to its input");
        let gathered = header_for(
            f.header.kind,
            f.header.flags,
            f.header.correlation,
            &[f.payload],
        );
        assert_eq!(&gathered[..], &data[..HEADER_LEN]);
    }
    let _ = peek_correlation(data);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(kind: Kind, corr: u64, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; encoded_len(payload.len())];
        encode_with(&mut out, kind, 0, corr, |p| p.copy_from_slice(payload));
        out
    }

    #[test]
    fn gathered_header_matches_in_place_encoding() {
        let whole = encode(Kind::Response, 42, b"hello world");
        let h = header_for(Kind::Response, 0, 42, &[b"hello", b" world"]);
        assert_eq!(&whole[..HEADER_LEN], &h);
    }

    #[test]
    fn every_rejection_is_typed() {
        let good = encode(Kind::Request, 7, b"abc");
        assert_eq!(decode(&good, 16).unwrap().payload, b"abc");
        assert_eq!(
            decode(&good[..10], 16),
            Err(FrameError::Truncated { have: 10 })
        );
        let mut m = good.clone();
        m[0] = b'X';
        assert!(matches!(decode(&m, 16), Err(FrameError::BadMagic(_))));
        let mut m = good.clone();
        m[2] = 9;
        assert_eq!(decode(&m, 16), Err(FrameError::UnsupportedVersion(9)));
        let mut m = good.clone();
        m[3] = 77;
        assert_eq!(decode(&m, 16), Err(FrameError::UnknownKind(77)));
        let mut m = good.clone();
        m[4] = 1;
        assert_eq!(decode(&m, 16), Err(FrameError::UnknownFlags(1)));
        let mut m = good.clone();
        m[7] = 1;
        assert_eq!(decode(&m, 16), Err(FrameError::ReservedNotZero(256)));
        assert_eq!(
            decode(&good, 2),
            Err(FrameError::TooLarge { len: 3, max: 2 })
        );
        assert!(matches!(
            decode(&good[..good.len() - 1], 16),
            Err(FrameError::LengthMismatch {
                declared: 3,
                actual: 2
            })
        ));
        let mut m = good.clone();
        *m.last_mut().unwrap() ^= 0x40;
        assert!(matches!(
            decode(&m, 16),
            Err(FrameError::BadChecksum { .. })
        ));
        assert_eq!(peek_correlation(&good), 7);
        assert_eq!(peek_correlation(b"short"), 0);
    }
}
