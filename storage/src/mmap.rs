//! The one place `neo-storage` uses `unsafe`: mapping segment files.
//!
//! Why the mappings are sound — SIGBUS is impossible and bytes never change
//! under a reader:
//! * The active segment's file is preallocated to its full capacity before it
//!   is mapped, and a file is only ever shrunk to its committed length, which
//!   no reader reads beyond (readers are bounded by the length the writer
//!   publishes after each write).
//! * Committed bytes are never rewritten in place. Truncation (replication's
//!   truncate-to-offset) writes the kept prefix to a new file and renames it
//!   over the old one; retention unlinks files. Either way the old inode, and
//!   every mapping of it, lives on until its last reader drops it.
//! * Nothing but this process writes the log directory (documented contract).

use std::fs::File;
use std::io;

/// A read-only shared mapping of a whole file (none for an empty file).
pub struct Map {
    map: Option<memmap2::Mmap>,
}

impl Map {
    /// Maps `len` bytes of `file` (its current size, preallocated or sealed).
    pub fn new(file: &File, len: usize) -> io::Result<Self> {
        if len == 0 {
            return Ok(Self { map: None });
        }
        // SAFETY: see the module docs: the file is never shrunk below what a
        // reader may read and committed bytes are never rewritten in place.
        let map = unsafe { memmap2::MmapOptions::new().len(len).map(file)? };
        Ok(Self { map: Some(map) })
    }

    pub fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }
}
