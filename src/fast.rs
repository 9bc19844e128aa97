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

/// Without the feature: a clear error.
#[cfg(not(feature = "af-xdp"))]
pub fn af_xdp_unavailable() -> anyhow::Error {
    anyhow::anyhow!("the af-xdp transport is not compiled into this binary: build with `--features af-xdp` (needs clang and libbpf-dev)")
}
