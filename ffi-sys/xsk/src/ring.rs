//! Memory mappings and the single-producer/single-consumer rings the kernel
//! shares with an AF_XDP socket.

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::sys::{RingOffset, XDP_RING_NEED_WAKEUP};

/// An owned `mmap` region, unmapped on drop.
pub struct Mapping {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the mapping is plain memory owned by this value; moving it to
// another thread moves that ownership.
unsafe impl Send for Mapping {}

impl Mapping {
    pub fn anonymous(len: usize) -> io::Result<Self> {
        Self::map(-1, len, 0, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS)
    }

    pub fn of_fd(fd: RawFd, len: usize, offset: i64) -> io::Result<Self> {
        Self::map(fd, len, offset, libc::MAP_SHARED | libc::MAP_POPULATE)
    }

    fn map(fd: RawFd, len: usize, offset: i64, flags: libc::c_int) -> io::Result<Self> {
        // SAFETY: a fresh mapping chosen by the kernel (addr null) overlaps no
        // existing Rust object; failure is checked below.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                flags,
                fd,
                offset,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Self {
            ptr: ptr.cast(),
            len,
        })
    }

    pub fn addr(&self) -> u64 {
        self.ptr as u64
    }

    fn at(&self, off: u64) -> *mut u8 {
        assert!((off as usize) < self.len, "offset outside the mapping");
        // SAFETY: in bounds, checked above.
        unsafe { self.ptr.add(off as usize) }
    }

    /// `len` bytes at `off`, if inside the mapping.
    pub fn slice(&self, off: usize, len: usize) -> Option<&[u8]> {
        let end = off.checked_add(len)?;
        if end > self.len {
            return None;
        }
        // SAFETY: in bounds; callers only ask for frames they own (module
        // docs), so the kernel is not writing them meanwhile.
        Some(unsafe { std::slice::from_raw_parts(self.ptr.add(off), len) })
    }

    pub fn slice_mut(&mut self, off: usize, len: usize) -> Option<&mut [u8]> {
        let end = off.checked_add(len)?;
        if end > self.len {
            return None;
        }
        // SAFETY: in bounds and `&mut self` excludes other Rust borrows; the
        // frame is one we own, not yet handed to the kernel.
        Some(unsafe { std::slice::from_raw_parts_mut(self.ptr.add(off), len) })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the region mapped in `map`; no borrow of
        // it can outlive `self`.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

/// One ring: a power-of-two array of entries plus producer, consumer and
/// flags words the kernel updates concurrently.
pub struct Ring {
    map: Mapping,
    producer: *const AtomicU32,
    consumer: *const AtomicU32,
    flags: *const AtomicU32,
    desc: u64,
    entry: u64,
    mask: u32,
    size: u32,
    cached_prod: u32,
    cached_cons: u32,
}

// SAFETY: the raw pointers point into `map`, which the ring owns.
unsafe impl Send for Ring {}

impl Ring {
    pub fn map(fd: RawFd, off: &RingOffset, n: u32, entry: u64, pgoff: i64) -> io::Result<Self> {
        let len = off.desc as usize + n as usize * entry as usize;
        let map = Mapping::of_fd(fd, len, pgoff)?;
        let word = |o: u64| map.at(o) as *const AtomicU32;
        let (producer, consumer, flags) = (word(off.producer), word(off.consumer), word(off.flags));
        // SAFETY: the kernel placed aligned u32 counters at these offsets.
        let (cached_prod, cached_cons) = unsafe {
            (
                (*producer).load(Ordering::Acquire),
                (*consumer).load(Ordering::Acquire),
            )
        };
        Ok(Self {
            map,
            producer,
            consumer,
            flags,
            desc: off.desc,
            entry,
            mask: n - 1,
            size: n,
            cached_prod,
            cached_cons,
        })
    }

    fn prod(&self) -> &AtomicU32 {
        // SAFETY: points into the live mapping owned by `self`.
        unsafe { &*self.producer }
    }
    fn cons(&self) -> &AtomicU32 {
        // SAFETY: as above.
        unsafe { &*self.consumer }
    }

    pub fn needs_wakeup(&self) -> bool {
        // SAFETY: as above.
        unsafe { (*self.flags).load(Ordering::Relaxed) & XDP_RING_NEED_WAKEUP != 0 }
    }

    fn slot(&self, idx: u32) -> *mut u8 {
        self.map
            .at(self.desc + (idx & self.mask) as u64 * self.entry)
    }

    // Consumer side (RX, completion).

    pub fn available(&mut self) -> u32 {
        self.cached_prod = self.prod().load(Ordering::Acquire);
        self.cached_prod.wrapping_sub(self.cached_cons)
    }

    /// RX descriptor `i` past the consumer: (address, length).
    pub fn read_desc(&self, i: u32) -> (u64, u32) {
        let p = self.slot(self.cached_cons.wrapping_add(i));
        // SAFETY: the slot lies in the mapping and was published by the
        // kernel (i < available()); xdp_desc is {u64 addr, u32 len, u32 options}.
        unsafe {
            (
                (p as *const u64).read_volatile(),
                (p.add(8) as *const u32).read_volatile(),
            )
        }
    }

    /// Completion entry `i` past the consumer.
    pub fn read_addr(&self, i: u32) -> u64 {
        // SAFETY: as in read_desc; completion entries are u64 addresses.
        unsafe { (self.slot(self.cached_cons.wrapping_add(i)) as *const u64).read_volatile() }
    }

    pub fn release(&mut self, n: u32) {
        self.cached_cons = self.cached_cons.wrapping_add(n);
        self.cons().store(self.cached_cons, Ordering::Release);
    }

    // Producer side (fill, TX).

    /// Entries produced (submitted or not) that the kernel has not consumed.
    pub fn unconsumed(&mut self) -> u32 {
        self.size - self.free_slots()
    }

    pub fn free_slots(&mut self) -> u32 {
        self.cached_cons = self.cons().load(Ordering::Acquire);
        self.size - self.cached_prod.wrapping_sub(self.cached_cons)
    }

    /// Writes fill-ring addresses and publishes them.
    pub fn produce_addrs(&mut self, addrs: &[u64]) {
        for a in addrs {
            // SAFETY: the slot lies in the mapping and is ours until published
            // (the fill ring holds at most as many frames as it has slots).
            unsafe { (self.slot(self.cached_prod) as *mut u64).write_volatile(*a) };
            self.cached_prod = self.cached_prod.wrapping_add(1);
        }
        self.submit();
    }

    /// Writes one TX descriptor; published by [`Ring::submit`].
    pub fn produce_desc(&mut self, addr: u64, len: u32) {
        let p = self.slot(self.cached_prod);
        // SAFETY: the slot lies in the mapping and is unpublished (the caller
        // checked free_slots()).
        unsafe {
            (p as *mut u64).write_volatile(addr);
            (p.add(8) as *mut u32).write_volatile(len);
            (p.add(12) as *mut u32).write_volatile(0);
        }
        self.cached_prod = self.cached_prod.wrapping_add(1);
    }

    pub fn submit(&mut self) {
        self.prod().store(self.cached_prod, Ordering::Release);
    }
}
