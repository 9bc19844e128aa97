//! Software codecs: lz4 (lz4_flex), zstd (libzstd through the `zstd` crate,
//! with levels) and raw deflate (miniz_oxide). Each keeps its contexts so a
//! call allocates nothing.

use crate::codec::{Codec, CodecError, CodecId};

/// LZ4 block format via lz4_flex (pure Rust, safe mode).
#[derive(Default)]
pub struct Lz4;

impl Codec for Lz4 {
    fn id(&self) -> CodecId {
        CodecId::Lz4
    }
    fn backend(&self) -> &'static str {
        "software (lz4_flex)"
    }
    fn max_compressed_len(&self, len: usize) -> usize {
        lz4_flex::block::get_maximum_output_size(len)
    }
    fn compress(&mut self, input: &[u8], out: &mut [u8]) -> Result<usize, CodecError> {
        let need = self.max_compressed_len(input.len());
        if out.len() < need {
            return Err(CodecError::OutputTooSmall {
                codec: "lz4",
                have: out.len(),
                need,
            });
        }
        lz4_flex::block::compress_into(input, out).map_err(|e| CodecError::Corrupt {
            codec: "lz4",
            reason: e.to_string(),
        })
    }
    fn decompress(&mut self, input: &[u8], out: &mut [u8]) -> Result<usize, CodecError> {
        lz4_flex::block::decompress_into(input, out).map_err(|e| match e {
            lz4_flex::block::DecompressError::OutputTooSmall { .. } => CodecError::TooLarge {
                codec: "lz4",
                bound: out.len(),
            },
            other => CodecError::Corrupt {
                codec: "lz4",
                reason: other.to_string(),
            },
        })
    }
}

/// Zstandard with a kept compression and decompression context.
pub struct Zstd {
    level: i32,
    c: zstd::bulk::Compressor<'static>,
    d: zstd::bulk::Decompressor<'static>,
}

impl Zstd {
    /// `level` 1..=22 (3 is zstd's default).
    pub fn new(level: i32) -> std::io::Result<Self> {
        Ok(Self {
            level,
            c: zstd::bulk::Compressor::new(level)?,
            d: zstd::bulk::Decompressor::new()?,
        })
    }
    pub fn level(&self) -> i32 {
        self.level
    }
}

impl Codec for Zstd {
    fn id(&self) -> CodecId {
        CodecId::Zstd
    }
    fn backend(&self) -> &'static str {
        "software (libzstd)"
    }
    fn max_compressed_len(&self, len: usize) -> usize {
        zstd::zstd_safe::compress_bound(len)
    }
    fn compress(&mut self, input: &[u8], out: &mut [u8]) -> Result<usize, CodecError> {
        let need = self.max_compressed_len(input.len());
        if out.len() < need {
            return Err(CodecError::OutputTooSmall {
                codec: "zstd",
                have: out.len(),
                need,
            });
        }
        self.c
            .compress_to_buffer(input, out)
            .map_err(|e| CodecError::Corrupt {
                codec: "zstd",
                reason: e.to_string(),
            })
    }
    fn decompress(&mut self, input: &[u8], out: &mut [u8]) -> Result<usize, CodecError> {
        let bound = out.len();
        self.d.decompress_to_buffer(input, out).map_err(|e| {
            let reason = e.to_string();
            if reason.contains("Destination buffer is too small") {
                CodecError::TooLarge {
                    codec: "zstd",
                    bound,
                }
            } else {
                CodecError::Corrupt {
                    codec: "zstd",
                    reason,
                }
            }
        })
    }
}

/// Raw deflate (RFC 1951, no zlib or gzip wrapper): ISA-L's igzip when built
/// with the `isal` feature (the fastest software path), miniz_oxide otherwise.
pub struct Deflate {
    #[cfg(feature = "isal")]
    isal: (neo_ffi_isal::Deflater, neo_ffi_isal::Inflater),
    #[cfg(not(feature = "isal"))]
    miniz: DeflateMiniz,
}

impl Deflate {
    /// `level` 0..=9 (zlib's scale; ISA-L maps 1–3 → 1, 4–6 → 2, 7–9 → 3).
    pub fn new(level: u8) -> Self {
        #[cfg(feature = "isal")]
        {
            let l = match level {
                0 => 0,
                1..=3 => 1,
                4..=6 => 2,
                _ => 3,
            };
            Self {
                isal: (
                    neo_ffi_isal::Deflater::new(l),
                    neo_ffi_isal::Inflater::default(),
                ),
            }
        }
        #[cfg(not(feature = "isal"))]
        Self {
            miniz: DeflateMiniz::new(level),
        }
    }
}

impl Codec for Deflate {
    fn id(&self) -> CodecId {
        CodecId::Deflate
    }
    fn backend(&self) -> &'static str {
        if cfg!(feature = "isal") {
            "software (ISA-L igzip)"
        } else {
            "software (miniz_oxide)"
        }
    }
    fn max_compressed_len(&self, len: usize) -> usize {
        len + len / 8 + 1024
    }
    #[cfg(feature = "isal")]
    fn compress(&mut self, input: &[u8], out: &mut [u8]) -> Result<usize, CodecError> {
        let need = self.max_compressed_len(input.len());
        self.isal.0.compress(input, out).map_err(|e| match e {
            neo_ffi_isal::IsalError::Overflow => CodecError::OutputTooSmall {
                codec: "deflate",
                have: out.len(),
                need,
            },
            other => CodecError::Corrupt {
                codec: "deflate",
                reason: other.to_string(),
            },
        })
    }
    #[cfg(feature = "isal")]
    fn decompress(&mut self, input: &[u8], out: &mut [u8]) -> Result<usize, CodecError> {
        let bound = out.len();
        self.isal.1.decompress(input, out).map_err(|e| match e {
            neo_ffi_isal::IsalError::Overflow => CodecError::TooLarge {
                codec: "deflate",
                bound,
            },
            other => CodecError::Corrupt {
                codec: "deflate",
                reason: other.to_string(),
            },
        })
    }
    #[cfg(not(feature = "isal"))]
    fn compress(&mut self, input: &[u8], out: &mut [u8]) -> Result<usize, CodecError> {
        self.miniz.compress(input, out)
    }
    #[cfg(not(feature = "isal"))]
    fn decompress(&mut self, input: &[u8], out: &mut [u8]) -> Result<usize, CodecError> {
        self.miniz.decompress(input, out)
    }
}

/// Raw deflate via miniz_oxide (pure Rust): the fallback when ISA-L is not
/// built in, and an independent implementation for cross-decoding tests.
pub struct DeflateMiniz {
    c: Box<miniz_oxide::deflate::core::CompressorOxide>,
    d: Box<miniz_oxide::inflate::core::DecompressorOxide>,
}

impl DeflateMiniz {
    /// `level` 0..=10.
    pub fn new(level: u8) -> Self {
        let flags = miniz_oxide::deflate::core::create_comp_flags_from_zip_params(
            level.min(10) as i32,
            -15,
            0,
        );
        Self {
            c: Box::new(miniz_oxide::deflate::core::CompressorOxide::new(flags)),
            d: Box::default(),
        }
    }
}

impl Codec for DeflateMiniz {
    fn id(&self) -> CodecId {
        CodecId::Deflate
    }
    fn backend(&self) -> &'static str {
        "software (miniz_oxide)"
    }
    fn max_compressed_len(&self, len: usize) -> usize {
        // miniz falls back to stored blocks for incompressible data, which it
        // cuts smaller than deflate's 64 KiB limit; this bound covers its
        // block sizes with room to spare.
        len + len / 8 + 1024
    }
    fn compress(&mut self, input: &[u8], out: &mut [u8]) -> Result<usize, CodecError> {
        use miniz_oxide::deflate::core::{compress, TDEFLFlush, TDEFLStatus};
        self.c.reset();
        let (status, used, written) = compress(&mut self.c, input, out, TDEFLFlush::Finish);
        match status {
            TDEFLStatus::Done if used == input.len() => Ok(written),
            _ => Err(CodecError::OutputTooSmall {
                codec: "deflate",
                have: out.len(),
                need: self.max_compressed_len(input.len()),
            }),
        }
    }
    fn decompress(&mut self, input: &[u8], out: &mut [u8]) -> Result<usize, CodecError> {
        use miniz_oxide::inflate::core::{
            decompress, inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF,
        };
        use miniz_oxide::inflate::TINFLStatus;
        self.d.init();
        let (status, _used, written) = decompress(
            &mut self.d,
            input,
            out,
            0,
            TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF,
        );
        match status {
            TINFLStatus::Done => Ok(written),
            TINFLStatus::HasMoreOutput => Err(CodecError::TooLarge {
                codec: "deflate",
                bound: out.len(),
            }),
            other => Err(CodecError::Corrupt {
                codec: "deflate",
                reason: format!("{other:?}"),
            }),
        }
    }
}
