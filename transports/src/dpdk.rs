//! The DPDK [`Phy`]: one ethdev port (a PCI NIC or SR-IOV VF, or a virtual
//! device: `net_tap`, `net_af_packet`, `net_af_xdp`, ...) with one RX and one
//! TX queue, under the packet engine. This is the one module of the DPDK
//! backend with unsafe code; the FFI is `neo-ffi-dpdk`.
//!
//! EAL is initialised once per process ([`Eal::init`]); a second
//! initialisation with other arguments is refused with a clear error, as is
//! every EAL or port failure (no hugepages, a bad `--vdev`, a port in use).
//! The engine owns ARP on this backend: DPDK sees every frame of the port.

use std::ffi::{c_char, CStr, CString};
use std::io;
use std::sync::Mutex;
use std::time::Duration;

use neo_ffi_dpdk as ffi;

use crate::phy::Phy;

/// EAL arguments, built from configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EalConfig {
    /// `--lcores` value; the default lets the main lcore float over every CPU
    /// instead of pinning it, so several instances share a small machine.
    pub lcores: String,
    /// Use hugepages (else `--no-huge` with `memory_mb` of ordinary memory).
    pub hugepages: bool,
    pub memory_mb: u32,
    /// `--vdev` arguments, e.g. `net_tap0,iface=dtap0`.
    pub vdevs: Vec<String>,
    /// PCI addresses to use (`-a`); empty means `--no-pci`.
    pub pci_allow: Vec<String>,
    /// `--file-prefix`, so several DPDK processes coexist.
    pub file_prefix: String,
}

impl EalConfig {
    pub fn new(file_prefix: &str) -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            lcores: format!("0@(0-{})", cpus - 1),
            hugepages: false,
            memory_mb: 256,
            vdevs: Vec::new(),
            pci_allow: Vec::new(),
            file_prefix: file_prefix.into(),
        }
    }

    pub fn args(&self) -> Vec<String> {
        let mut a = vec![
            "neo".to_string(),
            format!("--lcores={}", self.lcores),
            format!("--file-prefix={}", self.file_prefix),
        ];
        a.push("--no-telemetry".into());
        if self.hugepages {
            a.push("--huge-unlink".into());
        } else {
            a.push("--no-huge".into());
        }
        a.push(format!("-m{}", self.memory_mb));
        if self.pci_allow.is_empty() {
            a.push("--no-pci".into());
        }
        for p in &self.pci_allow {
            a.push(format!("-a{p}"));
        }
        for v in &self.vdevs {
            a.push(format!("--vdev={v}"));
        }
        a
    }
}

/// The process's EAL: initialised once, with one set of arguments.
pub struct Eal;

static EAL: Mutex<Option<Result<EalConfig, String>>> = Mutex::new(None);

fn rte_error(what: &str) -> io::Error {
    // SAFETY: neo_rte_errno reads the calling thread's rte_errno;
    // rte_strerror returns a static or thread-local NUL-terminated string.
    let (code, msg) = unsafe {
        let code = ffi::neo_rte_errno();
        (
            code,
            CStr::from_ptr(ffi::rte_strerror(code))
                .to_string_lossy()
                .into_owned(),
        )
    };
    io::Error::other(format!("{what}: {msg} (rte_errno {code})"))
}

impl Eal {
    /// Initialises EAL with `cfg`, or checks that it already was with the same.
    pub fn init(cfg: &EalConfig) -> io::Result<()> {
        let mut state = EAL.lock().unwrap_or_else(|p| p.into_inner());
        match &*state {
            Some(Ok(done)) if done == cfg => return Ok(()),
            Some(Ok(done)) => {
                return Err(io::Error::other(format!(
                    "EAL already initialised with other arguments: {:?}",
                    done.args()
                )))
            }
            Some(Err(e)) => {
                return Err(io::Error::other(format!(
                    "EAL initialisation failed earlier: {e}"
                )))
            }
            None => {}
        }
        let args = cfg.args();
        tracing::info!(?args, "initialising DPDK EAL");
        // EAL keeps pointers into argv for the life of the process: leak them.
        let argv: Vec<*mut c_char> = args
            .iter()
            .map(|a| CString::new(a.as_str()).map(|c| c.into_raw()))
            .collect::<Result<_, _>>()
            .map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "EAL argument contains a NUL byte",
                )
            })?;
        let argv: &'static mut [*mut c_char] = Box::leak(argv.into_boxed_slice());
        // SAFETY: argv holds argc valid, NUL-terminated, leaked (so 'static)
        // strings; EAL is initialised at most once per process (guarded by
        // the mutex above).
        let rc = unsafe { ffi::rte_eal_init(argv.len() as i32, argv.as_mut_ptr()) };
        if rc < 0 {
            let e = rte_error("rte_eal_init");
            *state = Some(Err(e.to_string()));
            return Err(io::Error::other(format!(
                "{e}; arguments {args:?} (no hugepages? run scripts/hugepages.sh, or keep --no-huge; a bad --vdev?)"
            )));
        }
        *state = Some(Ok(cfg.clone()));
        Ok(())
    }
}

/// Which port, and its pool and rings.
#[derive(Debug, Clone)]
pub struct DpdkConfig {
    pub eal: EalConfig,
    /// Port by device name (`net_tap0`, `0000:3b:00.1`); default: the first
    /// `--vdev`'s name, else port 0.
    pub port: Option<String>,
    pub mbufs: u32,
    pub rx_desc: u16,
    pub tx_desc: u16,
}

const BURST: usize = 32;

/// The DPDK device.
pub struct DpdkPhy {
    port: u16,
    name: String,
    pool: *mut ffi::rte_mempool,
    mac: [u8; 6],
    mtu: usize,
    rx: [*mut ffi::rte_mbuf; BURST],
    tx: Vec<*mut ffi::rte_mbuf>,
    multi_segment_dropped: u64,
}

impl DpdkPhy {
    /// Initialises EAL if needed and opens the port.
    pub fn open(cfg: &DpdkConfig) -> io::Result<Self> {
        Eal::init(&cfg.eal)?;
        let name = cfg
            .port
            .clone()
            .or_else(|| {
                cfg.eal
                    .vdevs
                    .first()
                    .map(|v| v.split(',').next().unwrap_or(v).to_string())
            })
            .or_else(|| cfg.eal.pci_allow.first().cloned());
        let port = match &name {
            Some(n) => {
                let c = CString::new(n.as_str()).map_err(|_| {
                    io::Error::new(io::ErrorKind::InvalidInput, "port name contains NUL")
                })?;
                let mut port = 0u16;
                // SAFETY: `c` is a valid C string and `port` a valid out-pointer.
                let rc = unsafe { ffi::rte_eth_dev_get_port_by_name(c.as_ptr(), &mut port) };
                if rc != 0 {
                    // SAFETY: plain query.
                    let n_ports = unsafe { ffi::rte_eth_dev_count_avail() };
                    return Err(io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("no DPDK port named {n} ({n_ports} ports available)"),
                    ));
                }
                port
            }
            None => 0,
        };
        let pool_name = CString::new(format!("neo_pool_{port}")).expect("no NUL");
        // SAFETY: valid name; sizes are plain integers; EAL is initialised.
        let pool = unsafe {
            ffi::rte_pktmbuf_pool_create(
                pool_name.as_ptr(),
                cfg.mbufs,
                256,
                0,
                ffi::RTE_MBUF_DEFAULT_BUF_SIZE as u16,
                ffi::rte_socket_id() as i32,
            )
        };
        if pool.is_null() {
            return Err(rte_error(
                "rte_pktmbuf_pool_create (too little memory? raise --dpdk-memory)",
            ));
        }
        let mut err = [0 as c_char; 256];
        // SAFETY: `pool` is a live mempool; `err` is a writable buffer of the
        // length passed.
        let rc = unsafe {
            ffi::neo_port_setup(
                port,
                pool,
                cfg.rx_desc,
                cfg.tx_desc,
                err.as_mut_ptr(),
                err.len(),
            )
        };
        if rc != 0 {
            // SAFETY: the shim NUL-terminates what it wrote (snprintf).
            let msg = unsafe { CStr::from_ptr(err.as_ptr()) }
                .to_string_lossy()
                .into_owned();
            // SAFETY: the pool was created above and no port uses it now.
            unsafe { ffi::rte_mempool_free(pool) };
            return Err(io::Error::other(format!(
                "setting up DPDK port {port}: {msg} (in use by another process?)"
            )));
        }
        let mut addr = ffi::rte_ether_addr { addr_bytes: [0; 6] };
        let mut mtu = 1500u16;
        // SAFETY: the port is started; out-pointers are valid.
        unsafe {
            ffi::rte_eth_macaddr_get(port, &mut addr);
            ffi::neo_port_mtu(port, &mut mtu);
        }
        let name = name.unwrap_or_else(|| format!("port {port}"));
        let phy = Self {
            port,
            name,
            pool,
            mac: addr.addr_bytes,
            mtu: mtu as usize,
            rx: [std::ptr::null_mut(); BURST],
            tx: Vec::with_capacity(BURST * 2),
            multi_segment_dropped: 0,
        };
        let (up, speed) = phy.link();
        tracing::info!(port, name = %phy.name, mtu, link_up = up, speed_mbps = speed, "DPDK port up");
        Ok(phy)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// IP MTU of the port.
    pub fn ip_mtu(&self) -> usize {
        self.mtu
    }

    /// Frames the port received with several segments (jumbo), which the
    /// engine does not take; counted and dropped.
    pub fn multi_segment_dropped(&self) -> u64 {
        self.multi_segment_dropped
    }

    /// Link state: (up, speed in Mb/s).
    pub fn link(&self) -> (bool, u32) {
        // SAFETY: rte_eth_link is plain data; zeroed is a valid value; the
        // port is valid and the out-pointer live.
        unsafe {
            let mut l: ffi::rte_eth_link = std::mem::zeroed();
            ffi::rte_eth_link_get_nowait(self.port, &mut l);
            (l.link_status() != 0, l.link_speed)
        }
    }

    /// The driver's extended statistics, by name.
    pub fn xstats(&self) -> Vec<(String, u64)> {
        // SAFETY: a null array with size 0 asks for the count.
        let n = unsafe { ffi::rte_eth_xstats_get_names(self.port, std::ptr::null_mut(), 0) };
        if n <= 0 {
            return Vec::new();
        }
        let n = n as usize;
        // SAFETY: both structs are plain data; zeroed is valid.
        let mut names: Vec<ffi::rte_eth_xstat_name> =
            (0..n).map(|_| unsafe { std::mem::zeroed() }).collect();
        let mut values: Vec<ffi::rte_eth_xstat> =
            (0..n).map(|_| unsafe { std::mem::zeroed() }).collect();
        // SAFETY: both arrays hold `n` entries, the size passed.
        let (got_names, got_values) = unsafe {
            (
                ffi::rte_eth_xstats_get_names(self.port, names.as_mut_ptr(), n as u32),
                ffi::rte_eth_xstats_get(self.port, values.as_mut_ptr(), n as u32),
            )
        };
        if got_names < 0 || got_values < 0 {
            return Vec::new();
        }
        let count = (got_names as usize).min(got_values as usize).min(n);
        values[..count]
            .iter()
            .filter_map(|v| {
                let name = names.get(v.id as usize)?;
                // SAFETY: DPDK NUL-terminates names within the fixed array.
                let name = unsafe { CStr::from_ptr(name.name.as_ptr()) }
                    .to_string_lossy()
                    .into_owned();
                Some((name, v.value))
            })
            .collect()
    }
}

impl Phy for DpdkPhy {
    fn mtu(&self) -> usize {
        self.mtu + crate::packet::wire::ETH_LEN
    }

    fn mac(&self) -> [u8; 6] {
        self.mac
    }

    fn rx_burst(&mut self, max: usize, on_frame: &mut dyn FnMut(&[u8])) -> io::Result<usize> {
        let want = max.min(BURST) as u16;
        // SAFETY: `rx` has room for BURST mbuf pointers; the port is started.
        let n = unsafe { ffi::neo_rx_burst(self.port, 0, self.rx.as_mut_ptr(), want) } as usize;
        for i in 0..n {
            let m = self.rx[i];
            // SAFETY: `m` is an mbuf the driver just handed us; its first
            // segment's data is `data_len` readable bytes until we free it.
            unsafe {
                if ffi::neo_mbuf_nb_segs(m) == 1 {
                    let data = std::slice::from_raw_parts(
                        ffi::neo_mbuf_data(m),
                        ffi::neo_mbuf_data_len(m) as usize,
                    );
                    on_frame(data);
                } else {
                    self.multi_segment_dropped += 1;
                }
                ffi::neo_pktmbuf_free(m);
            }
        }
        Ok(n)
    }

    fn tx_with(&mut self, len: usize, fill: &mut dyn FnMut(&mut [u8])) -> io::Result<bool> {
        if len > self.mtu() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("frame of {len} bytes over the port MTU"),
            ));
        }
        if self.tx.len() >= BURST {
            self.flush()?;
            if self.tx.len() >= BURST {
                return Ok(false);
            }
        }
        // SAFETY: the pool is live.
        let m = unsafe { ffi::neo_pktmbuf_alloc(self.pool) };
        if m.is_null() {
            return Ok(false);
        }
        // SAFETY: `m` is a fresh mbuf we own; append returns `len` writable
        // bytes inside it, or null if it has no room.
        unsafe {
            let p = ffi::neo_pktmbuf_append(m, len as u16);
            if p.is_null() {
                ffi::neo_pktmbuf_free(m);
                return Err(io::Error::other(format!(
                    "mbuf has no room for {len} bytes"
                )));
            }
            fill(std::slice::from_raw_parts_mut(p, len));
        }
        self.tx.push(m);
        Ok(true)
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.tx.is_empty() {
            return Ok(());
        }
        // SAFETY: `tx` holds len() mbufs we own; the driver takes ownership of
        // the first `sent` of them.
        let sent =
            unsafe { ffi::neo_tx_burst(self.port, 0, self.tx.as_mut_ptr(), self.tx.len() as u16) }
                as usize;
        // The rest stay queued for the next flush (the TX ring was full).
        self.tx.drain(..sent);
        Ok(())
    }

    fn wait(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        // A polled device has no notifier: sleep briefly instead.
        std::thread::sleep(
            timeout
                .unwrap_or(Duration::from_millis(1))
                .min(Duration::from_micros(200)),
        );
        Ok(())
    }
}

impl Drop for DpdkPhy {
    fn drop(&mut self) {
        let nonzero: Vec<String> = self
            .xstats()
            .into_iter()
            .filter(|(_, v)| *v != 0)
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        tracing::info!(port = %self.name, multi_segment_dropped = self.multi_segment_dropped, xstats = %nonzero.join(" "), "DPDK port closing");
        // SAFETY: we own the queued mbufs, the port and the pool; the port is
        // stopped and closed before the pool it draws from is freed.
        unsafe {
            for m in self.tx.drain(..) {
                ffi::neo_pktmbuf_free(m);
            }
            ffi::rte_eth_dev_stop(self.port);
            ffi::rte_eth_dev_close(self.port);
            ffi::rte_mempool_free(self.pool);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eal_arguments() {
        let mut c = EalConfig::new("neo-t");
        c.vdevs.push("net_tap0,iface=dtap0".into());
        let a = c.args();
        assert!(a.contains(&"--no-huge".to_string()) && a.contains(&"--no-pci".to_string()));
        assert!(a.contains(&"--vdev=net_tap0,iface=dtap0".to_string()));
        assert!(a.contains(&"--file-prefix=neo-t".to_string()));
        c.hugepages = true;
        c.pci_allow.push("0000:3b:00.1".into());
        let a = c.args();
        assert!(!a.contains(&"--no-huge".to_string()) && a.contains(&"-a0000:3b:00.1".to_string()));
    }
}
