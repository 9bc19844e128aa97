//! The AF_XDP [`Phy`]: Neo's XDP program steers Neo's UDP port on one
//! interface queue into an AF_XDP socket; the packet engine runs on top.
//!
//! * The program (`xdp-programs/neo_xsk.c`, compiled by the root `build.rs`)
//!   is loaded with aya, told the port through its `config` map, and attached
//!   in native (driver) mode, falling back to generic (skb) mode.
//! * The socket (`neo-ffi-xsk`) binds zero-copy when the driver allows and in
//!   copy mode otherwise. The mode in use is logged and reported by
//!   [`AfXdpPhy::mode`] — never hidden.
//! * ARP and all other traffic stay with the kernel, so neighbour resolution
//!   uses the kernel's table ([`kernel_neighbour`]).
//! * Only the bound queue is served: on a multi-queue NIC, steer Neo's port to
//!   it (`ethtool -N IF flow-type udp4 dst-port P action Q`) or use one queue.

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, UdpSocket};
use std::time::{Duration, Instant};

use aya::maps::{Array, XskMap};
use aya::programs::{Xdp, XdpFlags};
use aya::{Ebpf, EbpfLoader};
use neo_ffi_xsk::{Xsk, XskConfig};

use crate::phy::Phy;

/// Which XDP attach mode to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XdpMode {
    /// Native if the driver supports it, else generic.
    Auto,
    Native,
    Generic,
}

impl std::str::FromStr for XdpMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "native" | "drv" => Ok(Self::Native),
            "generic" | "skb" => Ok(Self::Generic),
            _ => Err(format!("unknown XDP mode `{s}` (auto, native, generic)")),
        }
    }
}

/// Where and how to open the AF_XDP device.
#[derive(Debug, Clone)]
pub struct AfXdpConfig {
    pub interface: String,
    pub queue: u32,
    /// Neo's UDP port: the only traffic redirected to the socket.
    pub port: u16,
    pub mode: XdpMode,
    pub try_zero_copy: bool,
}

/// An interface's identity, read from sysfs.
#[derive(Debug, Clone)]
pub struct Interface {
    pub ifindex: u32,
    pub mac: [u8; 6],
    /// IP MTU.
    pub mtu: usize,
}

fn sysfs(iface: &str, file: &str) -> io::Result<String> {
    let p = format!("/sys/class/net/{iface}/{file}");
    std::fs::read_to_string(&p)
        .map(|s| s.trim().to_string())
        .map_err(|e| io::Error::new(e.kind(), format!("{p}: {e}")))
}

fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = s.split(':');
    for b in mac.iter_mut() {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

impl Interface {
    pub fn lookup(name: &str) -> io::Result<Self> {
        let bad = |what: &str| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{name}: unreadable {what}"),
            )
        };
        let ifindex = sysfs(name, "ifindex")?
            .parse()
            .map_err(|_| bad("ifindex"))?;
        let mac = parse_mac(&sysfs(name, "address")?).ok_or_else(|| bad("MAC address"))?;
        let mtu = sysfs(name, "mtu")?.parse().map_err(|_| bad("MTU"))?;
        Ok(Self { ifindex, mac, mtu })
    }
}

/// The AF_XDP device.
pub struct AfXdpPhy {
    // Drop order: the socket goes before the program is detached.
    xsk: Xsk,
    _ebpf: Ebpf,
    iface: Interface,
    mode: String,
    /// Sends the datagrams that make the kernel resolve a neighbour.
    probe: Option<UdpSocket>,
    /// When each address may be probed again.
    probed: HashMap<Ipv4Addr, Instant>,
}

fn err(context: &str, e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("{context}: {e}"))
}

impl AfXdpPhy {
    /// Loads and attaches `program` (the compiled `neo_xsk.c`) and opens the
    /// socket on `cfg.interface`/`cfg.queue`.
    pub fn open(cfg: &AfXdpConfig, program: &[u8]) -> io::Result<Self> {
        let iface = Interface::lookup(&cfg.interface)?;
        let mut ebpf = EbpfLoader::new()
            .load(program)
            .map_err(|e| err("loading the XDP program", e))?;
        let prog: &mut Xdp = ebpf
            .program_mut("neo_xsk")
            .ok_or_else(|| err("XDP object", "no program `neo_xsk`"))?
            .try_into()
            .map_err(|e| err("XDP object", e))?;
        prog.load()
            .map_err(|e| err("verifying the XDP program", e))?;
        let attach = |prog: &mut Xdp, flags| prog.attach(&cfg.interface, flags);
        let xdp_mode = match cfg.mode {
            XdpMode::Native => attach(prog, XdpFlags::DRV_MODE)
                .map(|_| "native")
                .map_err(|e| err("native XDP attach", e))?,
            XdpMode::Generic => attach(prog, XdpFlags::SKB_MODE)
                .map(|_| "generic")
                .map_err(|e| err("generic XDP attach", e))?,
            XdpMode::Auto => match attach(prog, XdpFlags::DRV_MODE) {
                Ok(_) => "native",
                Err(native) => {
                    tracing::info!(interface = %cfg.interface, error = %native, "native XDP unavailable; trying generic mode");
                    attach(prog, XdpFlags::SKB_MODE)
                        .map(|_| "generic")
                        .map_err(|e| err("XDP attach (native and generic)", e))?
                }
            },
        };
        let mut config: Array<_, u32> = Array::try_from(
            ebpf.map_mut("config")
                .ok_or_else(|| err("XDP object", "no map `config`"))?,
        )
        .map_err(|e| err("config map", e))?;
        config
            .set(0, cfg.port as u32, 0)
            .map_err(|e| err("setting the port", e))?;
        let mut xcfg = XskConfig::new(iface.ifindex, cfg.queue);
        xcfg.try_zero_copy = cfg.try_zero_copy;
        let xsk = open_xsk(&xcfg).map_err(|e| {
            err(
                &format!("AF_XDP socket on {} queue {}", cfg.interface, cfg.queue),
                e,
            )
        })?;
        let mut xsks: XskMap<_> = XskMap::try_from(
            ebpf.map_mut("xsks")
                .ok_or_else(|| err("XDP object", "no map `xsks`"))?,
        )
        .map_err(|e| err("xsks map", e))?;
        xsks.set(cfg.queue, xsk.fd(), 0)
            .map_err(|e| err("registering the socket in the XSKMAP", e))?;
        let mode = format!(
            "{xdp_mode} XDP, {}",
            if xsk.zero_copy() {
                "zero-copy"
            } else {
                "copy mode"
            }
        );
        tracing::info!(interface = %cfg.interface, queue = cfg.queue, port = cfg.port, %mode, "AF_XDP ready");
        Ok(Self {
            xsk,
            _ebpf: ebpf,
            iface,
            mode,
            probe: None,
            probed: HashMap::new(),
        })
    }

    /// E.g. "native XDP, copy mode".
    pub fn mode(&self) -> &str {
        &self.mode
    }

    pub fn interface(&self) -> &Interface {
        &self.iface
    }

    /// The socket's kernel drop counters.
    pub fn statistics(&self) -> io::Result<neo_ffi_xsk::Statistics> {
        self.xsk.statistics()
    }
}

impl Phy for AfXdpPhy {
    fn mtu(&self) -> usize {
        (self.iface.mtu + crate::packet::wire::ETH_LEN).min(self.xsk.frame_size())
    }

    fn mac(&self) -> [u8; 6] {
        self.iface.mac
    }

    fn rx_burst(&mut self, max: usize, on_frame: &mut dyn FnMut(&[u8])) -> io::Result<usize> {
        self.xsk.rx_burst(max, on_frame)
    }

    fn tx_with(&mut self, len: usize, fill: &mut dyn FnMut(&mut [u8])) -> io::Result<bool> {
        self.xsk.tx_with(len, fill)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.xsk.flush()
    }

    fn wait(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.xsk.wait(timeout)
    }

    /// From the kernel's neighbour table; when absent, one datagram to the
    /// discard port (at most every [`PROBE_EVERY`]) makes the kernel ARP.
    fn neighbour(&mut self, ip: Ipv4Addr) -> Option<[u8; 6]> {
        if let Some(mac) = kernel_table_lookup(ip) {
            self.probed.remove(&ip);
            return Some(mac);
        }
        let now = Instant::now();
        if self.probed.get(&ip).is_some_and(|t| now < *t) {
            return None;
        }
        self.probed.insert(ip, now + PROBE_EVERY);
        if self.probe.is_none() {
            self.probe = UdpSocket::bind("0.0.0.0:0")
                .and_then(|s| s.set_nonblocking(true).map(|()| s))
                .map_err(|e| tracing::warn!(error = %e, "cannot open the neighbour probe socket"))
                .ok();
        }
        if let Some(p) = &self.probe {
            let _ = p.send_to(b"neo neighbour probe", (ip, 9));
        }
        None
    }
}

/// How often [`AfXdpPhy::neighbour`] asks the kernel to resolve one address.
const PROBE_EVERY: Duration = Duration::from_millis(200);

/// `ip`'s MAC if the kernel's neighbour table has a complete entry.
fn kernel_table_lookup(ip: Ipv4Addr) -> Option<[u8; 6]> {
    let table = std::fs::read_to_string("/proc/net/arp").ok()?;
    table.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        // IP, HW type, flags (0x2 = complete), HW address, mask, device
        (f.len() >= 4 && f[0] == ip.to_string() && f[2] == "0x2")
            .then(|| parse_mac(f[3]))
            .flatten()
    })
}

/// The MAC of `ip` from the kernel's neighbour table, asking the kernel to
/// resolve it (one datagram to the discard port) if it is not there yet.
pub fn kernel_neighbour(ip: Ipv4Addr, timeout: Duration) -> io::Result<[u8; 6]> {
    let lookup = || kernel_table_lookup(ip);
    if let Some(mac) = lookup() {
        return Ok(mac);
    }
    let probe = UdpSocket::bind("0.0.0.0:0")?;
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        let _ = probe.send_to(b"neo neighbour probe", (ip, 9));
        std::thread::sleep(Duration::from_millis(20));
        if let Some(mac) = lookup() {
            return Ok(mac);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::HostUnreachable,
        format!("no ARP answer from {ip} within {timeout:?}"),
    ))
}

/// How long a bind may find the queue still held by a socket that was just
/// closed: the kernel releases an AF_XDP socket's hold on its queue after
/// close returns (deferred teardown), so a process that closes one handle
/// and opens the next at once can meet EBUSY for a moment.
const XSK_BUSY_GRACE: Duration = Duration::from_secs(2);

/// Opens the socket, retrying EBUSY within [`XSK_BUSY_GRACE`]; a queue still
/// busy after that is held by a live socket, and the error says so.
fn open_xsk(cfg: &XskConfig) -> io::Result<Xsk> {
    let deadline = Instant::now() + XSK_BUSY_GRACE;
    loop {
        match Xsk::open(cfg) {
            Err(e) if e.raw_os_error() == Some(16) && Instant::now() < deadline => {
                tracing::debug!(
                    queue = cfg.queue,
                    "AF_XDP queue busy (a socket being released?); retrying"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            r => return r,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_and_mode_parsing() {
        assert_eq!(parse_mac("02:00:0a:ff:00:01"), Some([2, 0, 10, 255, 0, 1]));
        assert_eq!(parse_mac("02:00:0a:ff:00"), None);
        assert_eq!(parse_mac("02:00:0a:ff:00:01:02"), None);
        assert_eq!("skb".parse::<XdpMode>(), Ok(XdpMode::Generic));
        assert!("turbo".parse::<XdpMode>().is_err());
    }
}
