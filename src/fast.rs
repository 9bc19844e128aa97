//! Opening the kernel-bypass transports from command-line options. Each is
//! compiled in only with its cargo feature; without it, asking for it is a
//! clear error that names the feature.

use std::net::{SocketAddr, SocketAddrV4};

use anyhow::bail;

/// Options of the raw-frame backends (AF_XDP today).
#[derive(clap::Args, Clone, Debug)]
pub struct FastArgs {
    /// Network interface of the af-xdp transport.
    #[arg(long)]
    pub interface: Option<String>,
    /// XDP attach mode: auto (native, else generic), native, generic.
    #[arg(long, default_value = "auto")]
    pub xdp_mode: String,
    /// Interface queue to bind.
    #[arg(long, default_value_t = 0)]
    pub queue: u32,
    /// Do not try AF_XDP zero-copy (use copy mode).
    #[arg(long)]
    pub no_zero_copy: bool,
    /// DPDK virtual device (repeatable), e.g. `net_af_packet0,iface=eth1` or
    /// `net_tap0,iface=dtap0`.
    #[arg(long = "dpdk-vdev")]
    pub dpdk_vdevs: Vec<String>,
    /// DPDK PCI device to use (repeatable), e.g. an SR-IOV VF `0000:3b:02.0`.
    #[arg(long = "dpdk-pci")]
    pub dpdk_pci: Vec<String>,
    /// DPDK port name (default: the first --dpdk-vdev or --dpdk-pci).
    #[arg(long)]
    pub dpdk_port: Option<String>,
    /// Use hugepages (default: --no-huge with ordinary memory).
    #[arg(long)]
    pub dpdk_hugepages: bool,
    /// Memory for DPDK, MiB.
    #[arg(long, default_value_t = 256)]
    pub dpdk_memory: u32,
    /// EAL --lcores (default: main lcore floating over every CPU).
    #[arg(long)]
    pub dpdk_lcores: Option<String>,
}

impl FastArgs {
    /// Whether DPDK was given a device to use.
    #[cfg_attr(not(feature = "dpdk"), allow(dead_code))]
    pub fn dpdk_configured(&self) -> bool {
        !self.dpdk_vdevs.is_empty() || !self.dpdk_pci.is_empty()
    }
}

/// The IPv4 address the engine uses: raw-frame transports need a concrete one.
pub fn engine_addr(addr: SocketAddr, what: &str) -> anyhow::Result<SocketAddrV4> {
    match addr {
        SocketAddr::V4(v4) if !v4.ip().is_unspecified() && v4.port() != 0 => Ok(v4),
        _ => bail!(
            "{what} must be a concrete IPv4 address and port for the af-xdp transport (got {addr})"
        ),
    }
}

#[cfg(feature = "af-xdp")]
mod enabled {
    use super::*;
    use std::time::Duration;

    use anyhow::Context;
    use neo_transports::af_xdp::{kernel_neighbour, AfXdpConfig, AfXdpPhy};
    use neo_transports::packet::{Engine, EngineConfig, EngineTransport};

    /// 8-byte alignment for embedded ELF data: the ELF parser reads its
    /// headers in place and rejects misaligned input.
    #[repr(C, align(8))]
    struct Aligned<T: ?Sized>(T);

    /// The XDP program, compiled by build.rs.
    static XDP_PROGRAM: &Aligned<[u8]> =
        &Aligned(*include_bytes!(concat!(env!("OUT_DIR"), "/neo_xsk.o")));

    /// Opens AF_XDP on `args.interface` with the engine at `local`; `peer`
    /// (for clients) is resolved through the kernel's neighbour table.
    pub fn af_xdp(
        args: &FastArgs,
        local: SocketAddrV4,
        peer: Option<SocketAddrV4>,
        max_message: usize,
    ) -> anyhow::Result<EngineTransport<AfXdpPhy>> {
        let Some(interface) = args.interface.clone() else {
            bail!("--interface is required with --transport af-xdp");
        };
        let cfg = AfXdpConfig {
            interface: interface.clone(),
            queue: args.queue,
            port: local.port(),
            mode: args.xdp_mode.parse().map_err(anyhow::Error::msg)?,
            try_zero_copy: !args.no_zero_copy,
        };
        let phy = AfXdpPhy::open(&cfg, &XDP_PROGRAM.0)
            .with_context(|| format!("opening AF_XDP on {interface}"))?;
        let iface = phy.interface().clone();
        let mut ecfg = EngineConfig::new(iface.mac, *local.ip(), local.port());
        ecfg.mtu = iface.mtu.min(phy_frame_mtu(&phy));
        ecfg.max_message = max_message;
        let mut engine = Engine::new(ecfg);
        if let Some(peer) = peer {
            let mac = kernel_neighbour(*peer.ip(), Duration::from_secs(3))
                .with_context(|| format!("resolving {} on {interface}", peer.ip()))?;
            engine.add_neighbour(*peer.ip(), mac);
        }
        tracing::info!(%interface, %local, mode = phy.mode(), "af-xdp transport up");
        Ok(EngineTransport::new(
            "af-xdp",
            engine,
            phy,
            neo_transports::packet::SystemClock,
        ))
    }

    /// Attaches the program and a socket to `interface` for a moment (port 0:
    /// nothing is redirected) and returns the mode the kernel granted.
    pub fn probe_af_xdp(interface: &str) -> anyhow::Result<String> {
        let cfg = AfXdpConfig {
            interface: interface.into(),
            queue: 0,
            port: 0,
            mode: "auto".parse().map_err(anyhow::Error::msg)?,
            try_zero_copy: true,
        };
        let phy = AfXdpPhy::open(&cfg, &XDP_PROGRAM.0)?;
        Ok(phy.mode().to_string())
    }

    fn phy_frame_mtu(phy: &AfXdpPhy) -> usize {
        use neo_transports::Phy;
        phy.mtu() - neo_transports::packet::wire::ETH_LEN
    }
}

#[cfg(feature = "af-xdp")]
pub use enabled::{af_xdp, probe_af_xdp};

#[cfg(feature = "dpdk")]
mod dpdk_enabled {
    use super::*;
    use anyhow::Context;
    use neo_transports::dpdk::{DpdkConfig, DpdkPhy, EalConfig};
    use neo_transports::packet::{Engine, EngineConfig, EngineTransport, SystemClock};

    /// Opens the DPDK port and puts the engine at `local` on it. The engine
    /// answers and sends ARP itself: DPDK owns the whole port.
    pub fn dpdk(
        args: &FastArgs,
        local: SocketAddrV4,
        max_message: usize,
    ) -> anyhow::Result<EngineTransport<DpdkPhy>> {
        if !args.dpdk_configured() {
            bail!("--transport dpdk needs a device: --dpdk-vdev (e.g. net_af_packet0,iface=eth1) or --dpdk-pci");
        }
        let mut eal = EalConfig::new(&format!("neo-{}", std::process::id()));
        eal.vdevs = args.dpdk_vdevs.clone();
        eal.pci_allow = args.dpdk_pci.clone();
        eal.hugepages = args.dpdk_hugepages;
        eal.memory_mb = args.dpdk_memory;
        if let Some(l) = &args.dpdk_lcores {
            eal.lcores = l.clone();
        }
        let cfg = DpdkConfig {
            eal,
            port: args.dpdk_port.clone(),
            mbufs: 8191,
            rx_desc: 1024,
            tx_desc: 1024,
        };
        let phy = DpdkPhy::open(&cfg).context("opening the DPDK port")?;
        let mut ecfg = EngineConfig::new(neo_transports::Phy::mac(&phy), *local.ip(), local.port());
        ecfg.mtu = phy.ip_mtu().min(1500);
        ecfg.max_message = max_message;
        tracing::info!(port = phy.name(), %local, "dpdk transport up (virtual devices are labelled by their vdev name)");
        Ok(EngineTransport::new(
            "dpdk",
            Engine::new(ecfg),
            phy,
            SystemClock,
        ))
    }
}

#[cfg(feature = "dpdk")]
pub use dpdk_enabled::dpdk;

/// Without the feature: a clear error.
#[cfg(not(feature = "dpdk"))]
pub fn dpdk_unavailable() -> anyhow::Error {
    anyhow::anyhow!("the dpdk transport is not compiled into this binary: build with `--features dpdk` (needs libdpdk-dev)")
}

/// Without the feature: a clear error.
#[cfg(not(feature = "af-xdp"))]
pub fn af_xdp_unavailable() -> anyhow::Error {
    anyhow::anyhow!("the af-xdp transport is not compiled into this binary: build with `--features af-xdp` (needs clang and libbpf-dev)")
}

/// Opens the RDMA transport (rdma_cm picks the device from the address).
#[cfg(feature = "rdma")]
pub fn rdma(max_message: usize) -> anyhow::Result<neo_transports::rdma::RdmaTransport> {
    let cfg = neo_transports::rdma::RdmaConfig {
        max_message,
        ..Default::default()
    };
    let t = neo_transports::rdma::RdmaTransport::new(cfg)?;
    match neo_transports::rdma::usable() {
        Ok(port) => tracing::info!(%port, "rdma transport up"),
        Err(why) => tracing::warn!(%why, "rdma transport opened, but no port is active"),
    }
    Ok(t)
}

/// Without the feature: a clear error.
#[cfg(not(feature = "rdma"))]
pub fn rdma_unavailable() -> anyhow::Error {
    anyhow::anyhow!("the rdma transport is not compiled into this binary: build with `--features rdma` (needs cmake and libclang-dev; rdma-core at run time)")
}
