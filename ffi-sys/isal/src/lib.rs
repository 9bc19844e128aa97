//! `neo-ffi-isal`: ISA-L's igzip (Debian's libisal 2.30) as two safe types,
//! [`Deflater`] and [`Inflater`], working on whole buffers (stateless API).
//! Raw deflate (RFC 1951) both ways — the stream IAA also speaks. All unsafe
//! code of the ISA-L binding is in this file.

use std::fmt;

#[allow(
    non_camel_case_types,
    non_snake_case,
    non_upper_case_globals,
    dead_code,
    clippy::all
)]
mod sys {
    include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
}

/// Why a call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IsalError {
    /// The output buffer is too small.
    Overflow,
    /// The input is not a valid deflate stream (or ends early).
    Corrupt(i32),
}

impl fmt::Display for IsalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Overflow => f.write_str("output buffer too small"),
            Self::Corrupt(code) => write!(f, "invalid deflate stream (ISA-L status {code})"),
        }
    }
}

/// Compressor at level 0..=3 (ISA-L's levels), raw deflate.
pub struct Deflater {
    level: u32,
    level_buf: Vec<u8>,
}

impl Deflater {
    pub fn new(level: u32) -> Self {
        let level = level.min(3);
        let size = match level {
            0 => 0,
            1 => sys::ISAL_DEF_LVL1_DEFAULT as usize,
            2 => sys::ISAL_DEF_LVL2_DEFAULT as usize,
            _ => sys::ISAL_DEF_LVL3_DEFAULT as usize,
        };
        Self {
            level,
            level_buf: vec![0; size],
        }
    }

    /// Compresses all of `input` into `out`; returns bytes written.
    pub fn compress(&mut self, input: &[u8], out: &mut [u8]) -> Result<usize, IsalError> {
        if input.len() > u32::MAX as usize || out.len() > u32::MAX as usize {
            return Err(IsalError::Overflow);
        }
        // SAFETY: isal_zstream is plain C data; the init call sets every
        // field it needs. The pointers given to it stay valid for the call and
        // ISA-L reads at most avail_in bytes and writes at most avail_out.
        unsafe {
            let mut s: sys::isal_zstream = std::mem::zeroed();
            sys::isal_deflate_stateless_init(&mut s);
            s.next_in = input.as_ptr() as *mut u8;
            s.avail_in = input.len() as u32;
            s.next_out = out.as_mut_ptr();
            s.avail_out = out.len() as u32;
            s.end_of_stream = 1;
            s.flush = sys::NO_FLUSH as u16;
            s.gzip_flag = sys::IGZIP_DEFLATE as u16;
            s.level = self.level;
            s.level_buf = if self.level_buf.is_empty() {
                std::ptr::null_mut()
            } else {
                self.level_buf.as_mut_ptr()
            };
            s.level_buf_size = self.level_buf.len() as u32;
            match sys::isal_deflate_stateless(&mut s) {
                r if r == sys::COMP_OK as i32 => Ok(s.total_out as usize),
                r if r == sys::STATELESS_OVERFLOW => Err(IsalError::Overflow),
                r => Err(IsalError::Corrupt(r)),
            }
        }
    }
}

/// Decompressor, raw deflate. The inflate state is large; it lives on the heap
/// and is reused.
pub struct Inflater {
    state: Box<sys::inflate_state>,
}

// SAFETY: the raw pointers inside the state are set at the start of each
// `decompress` call to buffers borrowed for that call only; between calls the
// state refers to nothing, so moving it to another thread is sound.
unsafe impl Send for Inflater {}

impl Default for Inflater {
    fn default() -> Self {
        // SAFETY: inflate_state is plain C data; zeroed then initialised below
        // before every use.
        Self {
            state: Box::new(unsafe { std::mem::zeroed() }),
        }
    }
}

impl Inflater {
    /// Decompresses `input` into `out`; more output than `out` holds is
    /// `Overflow` (the bound), an invalid or truncated stream is `Corrupt`.
    pub fn decompress(&mut self, input: &[u8], out: &mut [u8]) -> Result<usize, IsalError> {
        if input.len() > u32::MAX as usize || out.len() > u32::MAX as usize {
            return Err(IsalError::Overflow);
        }
        let st = &mut *self.state;
        // SAFETY: the state is initialised by isal_inflate_init; the buffers
        // stay valid for the call and ISA-L stays within avail_in/avail_out.
        unsafe {
            sys::isal_inflate_init(st);
            st.next_in = input.as_ptr() as *mut u8;
            st.avail_in = input.len() as u32;
            st.next_out = out.as_mut_ptr();
            st.avail_out = out.len() as u32;
            st.crc_flag = sys::ISAL_DEFLATE;
            let r = sys::isal_inflate_stateless(st);
            // A complete stream ends in block state ISAL_BLOCK_FINISH; the
            // stateless call reports success only then.
            if r == sys::ISAL_DECOMP_OK as i32 {
                Ok(st.total_out as usize)
            } else if r == sys::ISAL_OUT_OVERFLOW as i32 {
                Err(IsalError::Overflow)
            } else {
                Err(IsalError::Corrupt(r))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        let data: Vec<u8> = (0..200_000u32)
            .flat_map(|i| format!("line {} of text\n", i % 977).into_bytes())
            .collect();
        for level in 0..=3 {
            let mut d = Deflater::new(level);
            let mut comp = vec![0u8; data.len() + 1024];
            let n = d.compress(&data, &mut comp).unwrap();
            assert!(n < data.len(), "level {level} compressed nothing");
            let mut out = vec![0u8; data.len()];
            assert_eq!(
                Inflater::default()
                    .decompress(&comp[..n], &mut out)
                    .unwrap(),
                data.len()
            );
            assert!(out == data);
            let mut small = vec![0u8; 100];
            assert_eq!(
                Inflater::default().decompress(&comp[..n], &mut small),
                Err(IsalError::Overflow)
            );
            assert!(
                Inflater::default()
                    .decompress(&comp[..n / 2], &mut out)
                    .is_err(),
                "truncated stream accepted"
            );
        }
        let mut tiny = [0u8; 8];
        assert_eq!(
            Deflater::new(1).compress(&data, &mut tiny),
            Err(IsalError::Overflow)
        );
    }
}
