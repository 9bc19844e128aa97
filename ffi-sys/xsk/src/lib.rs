//! `neo-ffi-xsk` owns Neo's AF_XDP socket: the UMEM (one anonymous mapping cut
//! into fixed frames), the four rings the kernel shares with us (fill,
//! completion, RX, TX), binding to an interface queue in zero-copy or copy
//! mode, and the wake-ups. It is the only place the AF_XDP kernel ABI
//! (`linux/if_xdp.h`) is spoken; everything it exports is safe.
//!
//! Frame ownership, which is what makes the shared memory sound: every UMEM
//! frame is at any moment owned by exactly one party. RX frames cycle
//! fill ring (kernel) → RX ring → lent to the caller for one callback → fill
//! ring. TX frames cycle free list (us) → written → TX ring (kernel) →
//! completion ring → free list. We only read or write a frame while we own it.

#![cfg(target_os = "linux")]

mod ring;
mod sys;

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use ring::{Mapping, Ring};
pub use sys::Statistics;

/// How to bind.
#[derive(Debug, Clone)]
pub struct XskConfig {
    pub ifindex: u32,
    pub queue: u32,
    /// UMEM frames in all; half receive, half transmit.
    pub frames: u32,
    /// Bytes per frame: a power of two from 2048 to the page size.
    pub frame_size: u32,
    /// Entries per ring (power of two).
    pub ring_size: u32,
    /// Try zero-copy first (falls back to copy mode if the driver refuses).
    pub try_zero_copy: bool,
}

impl XskConfig {
    pub fn new(ifindex: u32, queue: u32) -> Self {
        Self {
            ifindex,
            queue,
            frames: 4096,
            frame_size: 2048,
            ring_size: 2048,
            try_zero_copy: true,
        }
    }
}

/// An AF_XDP socket bound to one queue, with its own UMEM.
pub struct Xsk {
    // Field order is drop order: rings are unmapped, then the socket closed,
    // then the UMEM unmapped (the kernel may use the UMEM until the close).
    rx: Ring,
    tx: Ring,
    fill: Ring,
    comp: Ring,
    fd: OwnedFd,
    umem: Mapping,
    frame_size: u32,
    free_tx: Vec<u64>,
    tx_pending: u32,
    zero_copy: bool,
    invalid_rx: u64,
}

impl Xsk {
    /// Creates the socket and UMEM and binds to `cfg.ifindex`/`cfg.queue`.
    pub fn open(cfg: &XskConfig) -> io::Result<Self> {
        if !cfg.frame_size.is_power_of_two()
            || cfg.frame_size < 2048
            || !cfg.ring_size.is_power_of_two()
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "frame_size and ring_size must be powers of two, frame_size >= 2048",
            ));
        }
        if cfg.try_zero_copy {
            match Self::open_mode(cfg, true) {
                Ok(x) => return Ok(x),
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::EOPNOTSUPP) | Some(libc::EINVAL) | Some(libc::EPROTONOSUPPORT)
                    ) => {}
                Err(e) => return Err(e),
            }
        }
        Self::open_mode(cfg, false)
    }

    fn open_mode(cfg: &XskConfig, zero_copy: bool) -> io::Result<Self> {
        let fd = sys::socket()?;
        // SAFETY: `socket` returned a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let len = cfg.frames as usize * cfg.frame_size as usize;
        let umem = Mapping::anonymous(len)?;
        sys::register_umem(fd.as_raw_fd(), umem.addr(), len, cfg.frame_size)?;
        let n = cfg.ring_size;
        sys::set_ring_size(fd.as_raw_fd(), sys::XDP_UMEM_FILL_RING, n)?;
        sys::set_ring_size(fd.as_raw_fd(), sys::XDP_UMEM_COMPLETION_RING, n)?;
        sys::set_ring_size(fd.as_raw_fd(), sys::XDP_RX_RING, n)?;
        sys::set_ring_size(fd.as_raw_fd(), sys::XDP_TX_RING, n)?;
        let off = sys::mmap_offsets(fd.as_raw_fd())?;
        let fill = Ring::map(fd.as_raw_fd(), &off.fr, n, 8, sys::XDP_UMEM_PGOFF_FILL_RING)?;
        let comp = Ring::map(
            fd.as_raw_fd(),
            &off.cr,
            n,
            8,
            sys::XDP_UMEM_PGOFF_COMPLETION_RING,
        )?;
        let rx = Ring::map(fd.as_raw_fd(), &off.rx, n, 16, sys::XDP_PGOFF_RX_RING)?;
        let tx = Ring::map(fd.as_raw_fd(), &off.tx, n, 16, sys::XDP_PGOFF_TX_RING)?;
        let flags = sys::XDP_USE_NEED_WAKEUP
            | if zero_copy {
                sys::XDP_ZEROCOPY
            } else {
                sys::XDP_COPY
            };
        sys::bind(fd.as_raw_fd(), cfg.ifindex, cfg.queue, flags)?;
        let zero_copy = sys::options(fd.as_raw_fd())? & sys::XDP_OPTIONS_ZEROCOPY != 0;
        let mut x = Self {
            rx,
            tx,
            fill,
            comp,
            fd,
            umem,
            frame_size: cfg.frame_size,
            free_tx: Vec::new(),
            tx_pending: 0,
            zero_copy,
            invalid_rx: 0,
        };
        // First half of the frames to the kernel for receiving, the rest ours
        // for transmitting; both bounded by the ring size.
        let half = (cfg.frames / 2).min(n);
        let rx_frames: Vec<u64> = (0..half)
            .map(|i| i as u64 * cfg.frame_size as u64)
            .collect();
        x.fill.produce_addrs(&rx_frames);
        x.free_tx = (half..cfg.frames.min(half + n))
            .map(|i| i as u64 * cfg.frame_size as u64)
            .collect();
        Ok(x)
    }

    /// The socket, for the XDP program's XSKMAP.
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Whether the kernel granted zero-copy (else copy mode).
    pub fn zero_copy(&self) -> bool {
        self.zero_copy
    }

    /// Largest frame a transmit buffer holds.
    pub fn frame_size(&self) -> usize {
        self.frame_size as usize
    }

    /// Hands up to `max` received frames to `on_frame` and returns their
    /// buffers to the kernel.
    pub fn rx_burst(&mut self, max: usize, on_frame: &mut dyn FnMut(&[u8])) -> io::Result<usize> {
        if self.fill.needs_wakeup() {
            sys::kick_rx(self.fd.as_raw_fd())?;
        }
        let n = self.rx.available().min(max as u32);
        for i in 0..n {
            let (addr, len) = self.rx.read_desc(i);
            let frame = addr & !(self.frame_size as u64 - 1);
            match self.umem.slice(addr as usize, len as usize) {
                Some(bytes) => on_frame(bytes),
                None => self.invalid_rx += 1,
            }
            self.fill.produce_addrs(&[frame]);
        }
        self.rx.release(n);
        Ok(n as usize)
    }

    /// Reclaims transmitted frames from the completion ring.
    fn reclaim(&mut self) {
        let n = self.comp.available();
        for i in 0..n {
            self.free_tx.push(self.comp.read_addr(i));
        }
        self.comp.release(n);
    }

    /// Lends a free frame for a `len`-byte packet written by `fill` and queues
    /// it; `false` when every transmit frame is in flight.
    pub fn tx_with(&mut self, len: usize, fill: &mut dyn FnMut(&mut [u8])) -> io::Result<bool> {
        if len > self.frame_size as usize {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "frame of {len} bytes exceeds UMEM frame size {}",
                    self.frame_size
                ),
            ));
        }
        if self.free_tx.is_empty() {
            self.reclaim();
        }
        let Some(addr) = self.free_tx.pop() else {
            return Ok(false);
        };
        if self.tx.free_slots() == 0 {
            self.free_tx.push(addr);
            return Ok(false);
        }
        let buf = self
            .umem
            .slice_mut(addr as usize, len)
            .expect("TX frames lie inside the UMEM");
        fill(buf);
        self.tx.produce_desc(addr, len as u32);
        self.tx_pending += 1;
        Ok(true)
    }

    /// Publishes queued frames and wakes the kernel to send them.
    pub fn flush(&mut self) -> io::Result<()> {
        if self.tx_pending > 0 {
            self.tx.submit();
            self.tx_pending = 0;
        }
        // Kick until the kernel has consumed everything: in copy mode one
        // kick sends a bounded batch (32 frames in Linux's generic xmit), so
        // a 64 KiB message (46 frames) needs two — with one kick per round
        // its tail waited for the next round, a millisecond when the loop
        // slept. Stop when a kick moves nothing (the peer's queue is full,
        // EAGAIN/ENOBUFS): the rest goes on the next round. Bounded by the
        // ring: each kick that counts consumes at least one frame. Zero-copy
        // only when asked.
        let mut left = self.tx.unconsumed();
        let most = left;
        for _ in 0..most {
            if left == 0 || (self.zero_copy && !self.tx.needs_wakeup()) {
                break;
            }
            sys::kick_tx(self.fd.as_raw_fd())?;
            let now_left = self.tx.unconsumed();
            if now_left >= left {
                break;
            }
            left = now_left;
        }
        self.fill.submit();
        self.reclaim();
        Ok(())
    }

    /// Blocks until a frame may be ready or `timeout` passes.
    pub fn wait(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        sys::poll_in(self.fd.as_raw_fd(), timeout)
    }

    /// Kernel drop counters of this socket.
    pub fn statistics(&self) -> io::Result<Statistics> {
        sys::statistics(self.fd.as_raw_fd())
    }

    /// Frames on the TX ring the kernel has not taken yet.
    pub fn tx_queued(&mut self) -> u32 {
        self.tx.unconsumed()
    }

    /// RX descriptors that pointed outside the UMEM (never expected).
    pub fn invalid_rx(&self) -> u64 {
        self.invalid_rx
    }
}
