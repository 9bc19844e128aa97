//! The AF_XDP kernel ABI (`linux/if_xdp.h`) and the system calls around it.

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

pub const AF_XDP: libc::c_int = 44;
const SOL_XDP: libc::c_int = 283;
const XDP_MMAP_OFFSETS: libc::c_int = 1;
pub const XDP_RX_RING: libc::c_int = 2;
pub const XDP_TX_RING: libc::c_int = 3;
const XDP_UMEM_REG: libc::c_int = 4;
pub const XDP_UMEM_FILL_RING: libc::c_int = 5;
pub const XDP_UMEM_COMPLETION_RING: libc::c_int = 6;
const XDP_STATISTICS: libc::c_int = 7;
const XDP_OPTIONS: libc::c_int = 8;
pub const XDP_OPTIONS_ZEROCOPY: u32 = 1;
pub const XDP_COPY: u16 = 1 << 1;
pub const XDP_ZEROCOPY: u16 = 1 << 2;
pub const XDP_USE_NEED_WAKEUP: u16 = 1 << 3;
pub const XDP_RING_NEED_WAKEUP: u32 = 1;
pub const XDP_PGOFF_RX_RING: i64 = 0;
pub const XDP_PGOFF_TX_RING: i64 = 0x8000_0000;
pub const XDP_UMEM_PGOFF_FILL_RING: i64 = 0x1_0000_0000;
pub const XDP_UMEM_PGOFF_COMPLETION_RING: i64 = 0x1_8000_0000;

#[repr(C)]
#[derive(Default)]
struct UmemReg {
    addr: u64,
    len: u64,
    chunk_size: u32,
    headroom: u32,
    flags: u32,
    tx_metadata_len: u32,
}

#[repr(C)]
#[derive(Default, Debug, Clone, Copy)]
pub struct RingOffset {
    pub producer: u64,
    pub consumer: u64,
    pub desc: u64,
    pub flags: u64,
}

#[repr(C)]
#[derive(Default, Debug)]
pub struct MmapOffsets {
    pub rx: RingOffset,
    pub tx: RingOffset,
    pub fr: RingOffset,
    pub cr: RingOffset,
}

#[repr(C)]
struct SockaddrXdp {
    family: u16,
    flags: u16,
    ifindex: u32,
    queue_id: u32,
    shared_umem_fd: u32,
}

/// Kernel drop counters of one socket (`struct xdp_statistics`).
#[repr(C)]
#[derive(Default, Debug, Clone, Copy)]
pub struct Statistics {
    pub rx_dropped: u64,
    pub rx_invalid_descs: u64,
    pub tx_invalid_descs: u64,
    pub rx_ring_full: u64,
    pub rx_fill_ring_empty_descs: u64,
    pub tx_ring_empty_descs: u64,
}

fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn setsockopt<T>(fd: RawFd, name: libc::c_int, val: &T) -> io::Result<()> {
    // SAFETY: `val` points to a live `T` of the size passed; the kernel only
    // reads it during the call.
    check(unsafe {
        libc::setsockopt(
            fd,
            SOL_XDP,
            name,
            (val as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    })
    .map(drop)
}

fn getsockopt<T: Default>(fd: RawFd, name: libc::c_int) -> io::Result<T> {
    let mut val = T::default();
    let mut len = std::mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: `val` is a live, writable `T` and `len` its size; the kernel
    // writes at most `len` bytes and reports how many.
    check(unsafe { libc::getsockopt(fd, SOL_XDP, name, (&mut val as *mut T).cast(), &mut len) })?;
    Ok(val)
}

pub fn socket() -> io::Result<RawFd> {
    // SAFETY: plain system call with constant arguments.
    check(unsafe { libc::socket(AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) })
}

pub fn register_umem(fd: RawFd, addr: u64, len: usize, frame_size: u32) -> io::Result<()> {
    let reg = UmemReg {
        addr,
        len: len as u64,
        chunk_size: frame_size,
        ..Default::default()
    };
    setsockopt(fd, XDP_UMEM_REG, &reg)
}

pub fn set_ring_size(fd: RawFd, ring: libc::c_int, n: u32) -> io::Result<()> {
    setsockopt(fd, ring, &n)
}

pub fn mmap_offsets(fd: RawFd) -> io::Result<MmapOffsets> {
    getsockopt(fd, XDP_MMAP_OFFSETS)
}

pub fn options(fd: RawFd) -> io::Result<u32> {
    getsockopt::<u32>(fd, XDP_OPTIONS)
}

pub fn statistics(fd: RawFd) -> io::Result<Statistics> {
    getsockopt(fd, XDP_STATISTICS)
}

pub fn bind(fd: RawFd, ifindex: u32, queue: u32, flags: u16) -> io::Result<()> {
    let sa = SockaddrXdp {
        family: AF_XDP as u16,
        flags,
        ifindex,
        queue_id: queue,
        shared_umem_fd: 0,
    };
    // SAFETY: `sa` is a live sockaddr_xdp and its exact size is passed.
    check(unsafe {
        libc::bind(
            fd,
            (&sa as *const SockaddrXdp).cast(),
            std::mem::size_of::<SockaddrXdp>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// Asks the kernel to process the TX ring (copy mode, or need-wakeup set).
pub fn kick_tx(fd: RawFd) -> io::Result<()> {
    // SAFETY: a zero-length send with null buffers is the documented AF_XDP
    // wake-up; the kernel reads nothing from user memory.
    let r = unsafe {
        libc::sendto(
            fd,
            std::ptr::null(),
            0,
            libc::MSG_DONTWAIT,
            std::ptr::null(),
            0,
        )
    };
    if r < 0 {
        let e = io::Error::last_os_error();
        // Busy or out of buffers: the frames stay queued for the next kick.
        if matches!(
            e.raw_os_error(),
            Some(libc::EAGAIN) | Some(libc::EBUSY) | Some(libc::ENOBUFS) | Some(libc::ENETDOWN)
        ) {
            return Ok(());
        }
        return Err(e);
    }
    Ok(())
}

/// Wakes the driver to refill from the fill ring (need-wakeup set).
pub fn kick_rx(fd: RawFd) -> io::Result<()> {
    // SAFETY: a zero-length, non-blocking receive with null buffers is the
    // documented AF_XDP wake-up; the kernel writes nothing to user memory.
    let r = unsafe {
        libc::recvfrom(
            fd,
            std::ptr::null_mut(),
            0,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    };
    if r < 0 {
        let e = io::Error::last_os_error();
        if matches!(
            e.raw_os_error(),
            Some(libc::EAGAIN) | Some(libc::EBUSY) | Some(libc::ENETDOWN)
        ) {
            return Ok(());
        }
        return Err(e);
    }
    Ok(())
}

pub fn poll_in(fd: RawFd, timeout: Option<Duration>) -> io::Result<()> {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = timeout.map_or(-1, |t| t.as_millis().min(i32::MAX as u128) as libc::c_int);
    // SAFETY: one valid pollfd, count 1.
    let r = unsafe { libc::poll(&mut p, 1, ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(());
        }
        return Err(e);
    }
    Ok(())
}
