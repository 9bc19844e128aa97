//! `neo-accel` owns batch compression: the [`Codec`] trait over whole batches
//! (caller-provided buffers, a bound on decompressed size, stable ids), the
//! software codecs (lz4, zstd, raw deflate), deflate on Intel IAA through QPL
//! (loaded at run time, [`qpl`]), detection of Intel IAA and QAT
//! devices and libraries under a root path, and the [`Registry`] that picks a
//! backend per codec and records why, and the compressed-batch [`payload`]
//! contract shared with `neo-storage` and the broker. `docs/accel.md` has the
//! details.

pub mod codec;
pub mod detect;
pub mod payload;
pub mod qpl;
pub mod registry;
mod software;

pub use codec::{Codec, CodecError, CodecId};
pub use detect::{Detection, LibraryProbe, SystemLibraries};
pub use qpl::QplDeflate;
pub use registry::{Backend, Choice, Overrides, Registry, CODECS};
pub use software::{Deflate, DeflateMiniz, Lz4, Zstd};
