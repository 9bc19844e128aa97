//! The codec contract: whole batches in, whole batches out, into buffers the
//! caller owns. Ids are stable: they are written in every batch header
//! (`neo-storage`'s `codec` byte) and travel on the wire.

use thiserror::Error;

/// Stable codec ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum CodecId {
    None = 0,
    /// LZ4 block format (no frame, no size prefix: the batch records sizes).
    Lz4 = 1,
    /// Zstandard frame.
    Zstd = 2,
    /// Raw deflate (RFC 1951), what Intel IAA speaks.
    Deflate = 3,
}

impl CodecId {
    pub fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0 => Self::None,
            1 => Self::Lz4,
            2 => Self::Zstd,
            3 => Self::Deflate,
            _ => return None,
        })
    }
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Lz4 => "lz4",
            Self::Zstd => "zstd",
            Self::Deflate => "deflate",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CodecError {
    #[error("output buffer of {have} bytes too small: {codec} needs up to {need}")]
    OutputTooSmall {
        codec: &'static str,
        have: usize,
        need: usize,
    },
    /// Decompression would exceed the caller's bound (or the data says so).
    #[error("{codec}: decompressed data exceeds the bound of {bound} bytes")]
    TooLarge { codec: &'static str, bound: usize },
    #[error("{codec}: corrupt input: {reason}")]
    Corrupt { codec: &'static str, reason: String },
}

/// A compression codec over whole batches. Implementations keep their own
/// reusable state (contexts, tables): no allocation per call.
pub trait Codec: Send {
    fn id(&self) -> CodecId;
    /// What runs it, e.g. "software (lz4_flex)".
    fn backend(&self) -> &'static str;
    /// Largest output `compress` can produce for `len` input bytes.
    fn max_compressed_len(&self, len: usize) -> usize;
    /// Compresses `input` into `out` (at least `max_compressed_len` bytes),
    /// returning the bytes written.
    fn compress(&mut self, input: &[u8], out: &mut [u8]) -> Result<usize, CodecError>;
    /// Decompresses `input` into `out`; `out.len()` is the bound. Data that
    /// would decompress to more is an error (no decompression bombs).
    fn decompress(&mut self, input: &[u8], out: &mut [u8]) -> Result<usize, CodecError>;
}
