//! The frame-level `Phy` trait: raw Ethernet frames in and out, in bursts.
//!
//! AF_XDP (UMEM frames on XSK rings), DPDK (mbufs from `rte_eth_rx_burst`) and
//! the in-memory test link all reduce to this, and the sans-IO packet engine
//! (UDP/IPv4, sessions, retransmission, fragmentation, credits) sits on top of
//! it once, so those backends share one protocol implementation and one set of
//! tests. The shape mirrors the hardware: receive lends frames that go back to
//! the device when the callback returns (the fill ring, `rte_pktmbuf_free`);
//! transmit lends a device buffer that is written in place and posted, and
//! [`Phy::flush`] rings the doorbell once per burst.

use std::collections::VecDeque;
use std::io;
use std::net::Ipv4Addr;
use std::time::Duration;

/// A raw-frame device.
pub trait Phy {
    /// Largest frame, Ethernet header included, that the device carries.
    fn mtu(&self) -> usize;

    /// The device's MAC address.
    fn mac(&self) -> [u8; 6];

    /// Hands up to `max` received frames to `on_frame`, each lent until the
    /// callback returns. Returns how many were handed over. Never blocks.
    fn rx_burst(&mut self, max: usize, on_frame: &mut dyn FnMut(&[u8])) -> io::Result<usize>;

    /// Lends a transmit buffer of `len` bytes (at most [`Phy::mtu`]); `fill`
    /// writes the frame in place and it is posted for transmission. Returns
    /// `Ok(false)`, posting nothing, when the transmit ring is full.
    fn tx_with(&mut self, len: usize, fill: &mut dyn FnMut(&mut [u8])) -> io::Result<bool>;

    /// Makes posted frames go out (kick the TX ring, burst to the NIC).
    fn flush(&mut self) -> io::Result<()>;

    /// Blocks until a frame may have arrived or `timeout` passes.
    fn wait(&mut self, timeout: Option<Duration>) -> io::Result<()>;

    /// The MAC of `ip`, for a device whose ARP belongs to the host's kernel
    /// (AF_XDP: ARP frames go to the kernel, so the engine's own requests
    /// are never answered to it). `None` while unknown; such a device asks
    /// the kernel to resolve it meanwhile, without blocking. Devices whose
    /// every frame reaches the engine (DPDK, the test link) keep the default:
    /// the engine resolves with its own ARP.
    fn neighbour(&mut self, ip: Ipv4Addr) -> Option<[u8; 6]> {
        let _ = ip;
        None
    }
}

/// One end of an in-memory, lossless, in-order link, for tests of code that
/// sits on a [`Phy`]. Frames cross on [`Phy::flush`], as on a real device.
/// The packet engine's fault-injecting simulator builds on the same trait.
pub struct MemPhy {
    mac: [u8; 6],
    mtu: usize,
    ring: usize,
    posted: Vec<Vec<u8>>,
    spare: Vec<Vec<u8>>,
    inbox: std::rc::Rc<std::cell::RefCell<VecDeque<Vec<u8>>>>,
    peer_inbox: std::rc::Rc<std::cell::RefCell<VecDeque<Vec<u8>>>>,
}

impl MemPhy {
    /// Two connected ends with `ring` transmit slots each.
    pub fn pair(mtu: usize, ring: usize) -> (Self, Self) {
        let a = std::rc::Rc::new(std::cell::RefCell::new(VecDeque::new()));
        let b = std::rc::Rc::new(std::cell::RefCell::new(VecDeque::new()));
        let end = |mac_last: u8, inbox, peer_inbox| Self {
            mac: [0x02, 0, 0, 0, 0, mac_last],
            mtu,
            ring,
            posted: Vec::new(),
            spare: Vec::new(),
            inbox,
            peer_inbox,
        };
        (end(1, a.clone(), b.clone()), end(2, b, a))
    }
}

impl Phy for MemPhy {
    fn mtu(&self) -> usize {
        self.mtu
    }

    fn mac(&self) -> [u8; 6] {
        self.mac
    }

    fn rx_burst(&mut self, max: usize, on_frame: &mut dyn FnMut(&[u8])) -> io::Result<usize> {
        let mut n = 0;
        while n < max {
            let Some(frame) = self.inbox.borrow_mut().pop_front() else {
                break;
            };
            on_frame(&frame);
            self.spare.push(frame);
            n += 1;
        }
        Ok(n)
    }

    fn tx_with(&mut self, len: usize, fill: &mut dyn FnMut(&mut [u8])) -> io::Result<bool> {
        if len > self.mtu {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("frame of {len} bytes exceeds MTU {}", self.mtu),
            ));
        }
        if self.posted.len() >= self.ring {
            return Ok(false);
        }
        let mut buf = self.spare.pop().unwrap_or_default();
        buf.clear();
        buf.resize(len, 0);
        fill(&mut buf);
        self.posted.push(buf);
        Ok(true)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.peer_inbox.borrow_mut().extend(self.posted.drain(..));
        Ok(())
    }

    fn wait(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        if self.inbox.borrow().is_empty() {
            if let Some(t) = timeout {
                std::thread::sleep(t.min(Duration::from_millis(1)));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_cross_on_flush_in_order_and_ring_limits_posting() {
        let (mut a, mut b) = MemPhy::pair(128, 2);
        assert!(a.tx_with(3, &mut |f| f.copy_from_slice(b"one")).unwrap());
        assert!(a.tx_with(3, &mut |f| f.copy_from_slice(b"two")).unwrap());
        assert!(
            !a.tx_with(1, &mut |f| f[0] = 0).unwrap(),
            "ring of 2 is full"
        );
        assert!(a.tx_with(129, &mut |_| {}).is_err(), "over MTU");
        let mut got = Vec::new();
        assert_eq!(
            b.rx_burst(8, &mut |f| got.push(f.to_vec())).unwrap(),
            0,
            "not flushed yet"
        );
        a.flush().unwrap();
        assert_eq!(b.rx_burst(8, &mut |f| got.push(f.to_vec())).unwrap(), 2);
        assert_eq!(got, vec![b"one".to_vec(), b"two".to_vec()]);
    }
}
