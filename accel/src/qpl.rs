//! Deflate through Intel QPL: on IAA (the hardware path) when the registry
//! picks it, or on QPL's software path (what the tests can run without an
//! IAA). Raw deflate either way: QPL's output is read by every inflater, and a
//! batch QPL refuses for matches beyond its history (32 KiB-window streams
//! from ISA-L, miniz, zlib — any node without IAA) is inflated in software
//! here. Together: every deflate batch reads everywhere, the contract
//! `docs/accel.md` states.

use std::sync::Arc;

use neo_ffi_qpl::{ExecPath, Job, Qpl, Status};

use crate::codec::{Codec, CodecError, CodecId};
use crate::software::Deflate;

/// QPL's "distance beyond the history buffer": QPL 1.6.0 refused this way
/// the 32 KiB-window streams of zlib, ISA-L and miniz with far matches,
/// while inflating its own output. Such a batch is inflated in software.
const STS_BAD_DIST: u32 = 217;

/// Deflate on a QPL job.
pub struct QplDeflate {
    job: Job,
    high: bool,
    /// QPL's own check of each compressed batch: on for IAA (QPL's default,
    /// done in the same job), off on the software path, whose output the
    /// tests check against three other inflaters.
    verify: bool,
    /// The software inflater for streams with a window QPL cannot take.
    wide: Deflate,
    wide_inflates: u64,
}

impl QplDeflate {
    /// A job on `path`; `level` 0..=9 on zlib's scale (7 and above ask QPL's
    /// high level, which only the software path has).
    pub fn new(qpl: Arc<Qpl>, path: ExecPath, level: u8) -> Result<Self, String> {
        let job =
            Job::new(qpl, path).map_err(|s| format!("initialising a QPL {path:?} job: {s}"))?;
        Ok(Self {
            job,
            high: level >= 7 && path == ExecPath::Software,
            verify: path != ExecPath::Software,
            wide: Deflate::new(level),
            wide_inflates: 0,
        })
    }

    /// Batches QPL could not inflate for their 32 KiB window, inflated in
    /// software instead.
    pub fn wide_inflates(&self) -> u64 {
        self.wide_inflates
    }

    /// Loads libqpl and makes a job: the one call the registry needs.
    pub fn open(path: ExecPath, level: u8) -> Result<Self, String> {
        Self::new(Qpl::load()?, path, level)
    }
}

fn corrupt(s: Status) -> CodecError {
    CodecError::Corrupt {
        codec: "deflate",
        reason: s.to_string(),
    }
}

impl Codec for QplDeflate {
    fn id(&self) -> CodecId {
        CodecId::Deflate
    }
    fn backend(&self) -> &'static str {
        match self.job.path() {
            ExecPath::Hardware => "iaa (QPL hardware path)",
            ExecPath::Software => "software (QPL software path)",
            ExecPath::Auto => "QPL (auto path)",
        }
    }
    fn max_compressed_len(&self, len: usize) -> usize {
        len + len / 8 + 1024
    }
    fn compress(&mut self, input: &[u8], out: &mut [u8]) -> Result<usize, CodecError> {
        let need = self.max_compressed_len(input.len());
        if out.len() < need {
            return Err(CodecError::OutputTooSmall {
                codec: "deflate",
                have: out.len(),
                need,
            });
        }
        self.job
            .deflate(input, out, self.high, self.verify)
            .map_err(|s| match s.0 {
                2 => CodecError::OutputTooSmall {
                    codec: "deflate",
                    have: out.len(),
                    need,
                },
                _ => corrupt(s),
            })
    }
    fn decompress(&mut self, input: &[u8], out: &mut [u8]) -> Result<usize, CodecError> {
        let bound = out.len();
        match self.job.inflate(input, out) {
            Ok(n) => Ok(n),
            Err(s) if s.0 == STS_BAD_DIST => {
                self.wide_inflates += 1;
                self.wide.decompress(input, out)
            }
            Err(s) if s.0 == 2 => Err(CodecError::TooLarge {
                codec: "deflate",
                bound,
            }),
            Err(s) => Err(corrupt(s)),
        }
    }
}
