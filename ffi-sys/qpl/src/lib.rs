//! `neo-ffi-qpl` owns Neo's binding to Intel QPL (Query Processing Library),
//! the user-space library that drives IAA (In-Memory Analytics Accelerator)
//! deflate. `libqpl.so.1` is loaded with dlopen when asked for, so a binary
//! runs (and says why) on the many nodes without it; Debian packages no QPL,
//! so nothing is needed at build time.
//!
//! The binding is deliberately narrow: four functions of QPL's job API
//! (`qpl_get_job_size`, `qpl_init_job`, `qpl_execute_job`, `qpl_fini_job`)
//! and the stable head of `qpl_job` (input, output, operation, flags,
//! level), which has kept its layout from the first public QPL (1.0, 2022)
//! to 1.6; a library that reports another major version is refused. The job
//! itself is an opaque block of the size QPL reports, owned here.

use std::fmt;
use std::sync::Arc;

/// Sonames tried, newest ABI first.
pub const SONAMES: [&str; 2] = ["libqpl.so.1", "libqpl.so"];

/// Where QPL runs a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum ExecPath {
    /// Hardware when present, else software (QPL's choice).
    Auto = 0,
    /// IAA only: job initialisation fails without an enabled work queue.
    Hardware = 1,
    /// QPL's own software deflate on the CPU.
    Software = 2,
}

const OP_DECOMPRESS: u32 = 0;
const OP_COMPRESS: u32 = 1;
const FLAG_FIRST: u32 = 0x0001;
const FLAG_LAST: u32 = 0x0002;
const FLAG_DYNAMIC_HUFFMAN: u32 = 0x2000;
const FLAG_OMIT_VERIFY: u32 = 0x4000;
const LEVEL_DEFAULT: u32 = 1;
const LEVEL_HIGH: u32 = 3;
const STS_OK: u32 = 0;
const STS_MORE_OUTPUT_NEEDED: u32 = 2;

/// The head of `qpl_job` (qpl/c_api/job.h): the fields this binding sets
/// and reads. The rest of the job is QPL's, sized by `qpl_get_job_size`.
#[repr(C)]
struct JobHead {
    next_in_ptr: *mut u8,
    available_in: u32,
    total_in: u32,
    next_out_ptr: *mut u8,
    available_out: u32,
    total_out: u32,
    op: u32,
    flags: u32,
    crc: u32,
    xor_checksum: u32,
    last_bit_offset: u32,
    level: u32,
}

type GetVersion = unsafe extern "C" fn() -> *const std::ffi::c_char;
type GetJobSize = unsafe extern "C" fn(u32, *mut u32) -> u32;
type InitJob = unsafe extern "C" fn(u32, *mut u8) -> u32;
type ExecuteJob = unsafe extern "C" fn(*mut u8) -> u32;
type FiniJob = unsafe extern "C" fn(*mut u8) -> u32;

/// A QPL status other than OK, with what it means where known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status(pub u32);

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.0 {
            1 => "job still being processed",
            2 => "output buffer too small",
            50..=99 => "invalid parameter",
            100..=199 => "QPL service logic error",
            200..=299 => "deflate stream error (corrupt input)",
            500 => "hardware path not supported on this CPU",
            501 | 502 => "libaccel-config missing or failed",
            503 => "no enabled IAA work queue (or no permission to use one)",
            504..=599 => "accelerator initialisation failed",
            _ => "QPL error",
        };
        write!(f, "QPL status {}: {what}", self.0)
    }
}

/// The loaded library and the four entry points.
pub struct Qpl {
    name: String,
    version: String,
    get_job_size: GetJobSize,
    init_job: InitJob,
    execute_job: ExecuteJob,
    fini_job: FiniJob,
    // Last: the function pointers above stay valid while this lives.
    _lib: libloading::Library,
}

impl Qpl {
    /// Loads the first of [`SONAMES`] that loads and resolves the job API.
    pub fn load() -> Result<Arc<Self>, String> {
        Self::load_from(&SONAMES)
    }

    /// As [`Qpl::load`], from the given names or paths.
    pub fn load_from(candidates: &[&str]) -> Result<Arc<Self>, String> {
        let mut errors = Vec::new();
        for name in candidates {
            // SAFETY: loading runs libqpl's initialisers, which only set up
            // its own state; no other code is affected.
            let lib = match unsafe { libloading::Library::new(name) } {
                Ok(l) => l,
                Err(e) => {
                    errors.push(format!("{name}: {e}"));
                    continue;
                }
            };
            // SAFETY: the symbol types are those of qpl/c_api/job.h
            // (qpl_status is a C enum, u32; qpl_path_t likewise; qpl_job*
            // is passed as a byte pointer to a block of the reported size).
            let resolved = unsafe {
                (|| -> Result<_, libloading::Error> {
                    Ok((
                        *lib.get::<GetJobSize>(b"qpl_get_job_size\0")?,
                        *lib.get::<InitJob>(b"qpl_init_job\0")?,
                        *lib.get::<ExecuteJob>(b"qpl_execute_job\0")?,
                        *lib.get::<FiniJob>(b"qpl_fini_job\0")?,
                    ))
                })()
            };
            // SAFETY: `qpl_get_library_version` (qpl/c_api/version.h) takes
            // nothing and returns a static NUL-terminated string.
            let version = unsafe {
                lib.get::<GetVersion>(b"qpl_get_library_version\0")
                    .ok()
                    .map(|f| f())
                    .filter(|p| !p.is_null())
                    .map(|p| std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned())
            }
            .unwrap_or_else(|| "unknown".into());
            if !version.starts_with("1.") {
                errors.push(format!(
                    "{name}: QPL {version}; this binding knows the job layout of QPL 1.x only"
                ));
                continue;
            }
            match resolved {
                Ok((get_job_size, init_job, execute_job, fini_job)) => {
                    return Ok(Arc::new(Self {
                        name: (*name).to_string(),
                        version,
                        get_job_size,
                        init_job,
                        execute_job,
                        fini_job,
                        _lib: lib,
                    }))
                }
                Err(e) => errors.push(format!("{name}: {e}")),
            }
        }
        Err(errors.join("; "))
    }

    /// The soname or path that loaded.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// QPL's own version string (e.g. "1.6.0").
    pub fn version(&self) -> &str {
        &self.version
    }
}

/// One initialised QPL job, reused for every batch (no allocation per call).
pub struct Job {
    qpl: Arc<Qpl>,
    /// The job block; u64 elements for the 8-byte alignment `qpl_job` needs.
    mem: Box<[u64]>,
    path: ExecPath,
}

// SAFETY: a job is plain memory owned by this value, used from one thread at
// a time through `&mut self`; QPL keeps no thread affinity for a job.
unsafe impl Send for Job {}

impl Job {
    /// Allocates and initialises a job on `path`. On [`ExecPath::Hardware`]
    /// this is where a node without a usable IAA work queue fails.
    pub fn new(qpl: Arc<Qpl>, path: ExecPath) -> Result<Self, Status> {
        let mut size = 0u32;
        // SAFETY: `size` is a valid out-pointer for the call's duration.
        let st = unsafe { (qpl.get_job_size)(path as u32, &mut size) };
        if st != STS_OK {
            return Err(Status(st));
        }
        let words = (size as usize)
            .div_ceil(8)
            .max(std::mem::size_of::<JobHead>() / 8 + 1);
        let mut mem = vec![0u64; words].into_boxed_slice();
        // SAFETY: `mem` holds at least `size` bytes, 8-byte aligned, as
        // qpl_init_job requires; it lives as long as the job.
        let st = unsafe { (qpl.init_job)(path as u32, mem.as_mut_ptr().cast()) };
        if st != STS_OK {
            return Err(Status(st));
        }
        Ok(Self { qpl, mem, path })
    }

    pub fn path(&self) -> ExecPath {
        self.path
    }

    fn run(
        &mut self,
        op: u32,
        flags: u32,
        level: u32,
        input: &[u8],
        out: &mut [u8],
    ) -> Result<usize, Status> {
        let available_in = u32::try_from(input.len()).map_err(|_| Status(51))?;
        let available_out = u32::try_from(out.len()).unwrap_or(u32::MAX);
        let head = self.mem.as_mut_ptr().cast::<JobHead>();
        // SAFETY: the job block starts with `JobHead` (qpl_job's layout) and
        // is 8-byte aligned; QPL reads the input and writes at most
        // `available_out` bytes of output during `qpl_execute_job` only, while
        // both slices are borrowed by this call. QPL does not write through
        // `next_in_ptr` for compress or decompress.
        unsafe {
            (*head).next_in_ptr = input.as_ptr().cast_mut();
            (*head).available_in = available_in;
            (*head).total_in = 0;
            (*head).next_out_ptr = out.as_mut_ptr();
            (*head).available_out = available_out;
            (*head).total_out = 0;
            (*head).op = op;
            (*head).flags = flags;
            (*head).level = level;
            let st = (self.qpl.execute_job)(self.mem.as_mut_ptr().cast());
            if st != STS_OK {
                return Err(Status(st));
            }
            // QPL's inflate can stop at a full output buffer inside a stored
            // block and still answer OK: input left over means the output
            // did not fit.
            if op == OP_DECOMPRESS && ((*head).total_in as usize) < input.len() {
                return Err(Status(STS_MORE_OUTPUT_NEEDED));
            }
            Ok(((*head).total_out as usize).min(out.len()))
        }
    }

    /// Raw deflate (RFC 1951) of `input` into `out`, dynamic Huffman codes;
    /// `high` asks QPL's higher level (software path; IAA has one level).
    /// `verify` has QPL inflate its own output and compare checksums before
    /// answering (IAA does it in the same job).
    pub fn deflate(
        &mut self,
        input: &[u8],
        out: &mut [u8],
        high: bool,
        verify: bool,
    ) -> Result<usize, Status> {
        let level = if high { LEVEL_HIGH } else { LEVEL_DEFAULT };
        let mut flags = FLAG_FIRST | FLAG_LAST | FLAG_DYNAMIC_HUFFMAN;
        if !verify {
            flags |= FLAG_OMIT_VERIFY;
        }
        self.run(OP_COMPRESS, flags, level, input, out)
    }

    /// Inflates a whole raw deflate stream into `out`.
    pub fn inflate(&mut self, input: &[u8], out: &mut [u8]) -> Result<usize, Status> {
        self.run(
            OP_DECOMPRESS,
            FLAG_FIRST | FLAG_LAST,
            LEVEL_DEFAULT,
            input,
            out,
        )
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        // SAFETY: the job was initialised by `qpl_init_job` and is finished once.
        unsafe {
            (self.qpl.fini_job)(self.mem.as_mut_ptr().cast());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_library_is_an_error_naming_every_candidate() {
        let e = Qpl::load_from(&["libneo-no-qpl.so.1", "/nonexistent/libqpl.so"])
            .err()
            .unwrap();
        assert!(
            e.contains("libneo-no-qpl.so.1") && e.contains("/nonexistent/libqpl.so"),
            "{e}"
        );
        assert!(Status(503).to_string().contains("work queue"));
    }
}
