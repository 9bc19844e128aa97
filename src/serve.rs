//! `neo serve`: one poll loop serving Neo RPC on a transport, until SIGINT or
//! SIGTERM. Today it carries the built-in `echo/Echo` service; the broker's
//! request handlers register on the same server when they land.

use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::{bail, Context};
use neo_transports::rpc::{Server, ServerConfig};
use neo_transports::tcp::{TcpConfig, TcpTransport};
use neo_transports::Transport;

#[derive(clap::Args)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7400", env = "NEO_LISTEN")]
    listen: SocketAddr,
    /// Transport: `tcp`, `af-xdp` (with --interface), `dpdk` (with --dpdk-vdev or --dpdk-pci), or
    /// `auto` (dpdk, then af-xdp, then tcp, logging why each faster one was passed over). For the
    /// raw-frame transports --listen names the engine's own IPv4 address and UDP port.
    #[arg(long, default_value = "tcp", env = "NEO_TRANSPORT")]
    transport: String,
    /// Largest message accepted, in bytes.
    #[arg(long, default_value_t = 16 << 20)]
    max_message: usize,
    /// Calls one connection may have outstanding.
    #[arg(long, default_value_t = 64)]
    credits: u32,
    #[command(flatten)]
    fast: crate::fast::FastArgs,
}

/// Registers the built-in services on `server`.
pub fn register_builtin<T: Transport>(server: &mut Server<T>) -> anyhow::Result<()> {
    server
        .register("echo", "Echo", |call| {
            let body = call.body();
            call.reply(body)?;
            Ok(())
        })
        .map_err(anyhow::Error::msg)?;
    Ok(())
}

pub fn run(args: Args) -> anyhow::Result<()> {
    match args.transport.as_str() {
        "tcp" => {
            let tcp = TcpTransport::new(TcpConfig {
                max_message: args.max_message,
                ..Default::default()
            })?;
            serve_on(tcp, &args)
        }
        #[cfg(feature = "af-xdp")]
        "af-xdp" => {
            let local = crate::fast::engine_addr(args.listen, "--listen")?;
            serve_on(
                crate::fast::af_xdp(&args.fast, local, None, args.max_message)?,
                &args,
            )
        }
        #[cfg(not(feature = "af-xdp"))]
        "af-xdp" => Err(crate::fast::af_xdp_unavailable()),
        #[cfg(feature = "dpdk")]
        "dpdk" => {
            let local = crate::fast::engine_addr(args.listen, "--listen")?;
            serve_on(
                crate::fast::dpdk(&args.fast, local, args.max_message)?,
                &args,
            )
        }
        #[cfg(not(feature = "dpdk"))]
        "dpdk" => Err(crate::fast::dpdk_unavailable()),
        "auto" => serve_auto(&args),
        other => bail!("unknown transport `{other}` (auto, dpdk, af-xdp, tcp; see `neo doctor`)"),
    }
}

/// `--transport auto`: the fastest configured backend that opens, else TCP;
/// each one passed over is logged with the reason.
fn serve_auto(args: &Args) -> anyhow::Result<()> {
    let local = crate::fast::engine_addr(args.listen, "--listen");
    #[cfg(feature = "dpdk")]
    match (&local, args.fast.dpdk_configured()) {
        (Ok(l), true) => match crate::fast::dpdk(&args.fast, *l, args.max_message) {
            Ok(t) => return serve_on(t, args),
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "auto: dpdk unavailable, trying the next transport"),
        },
        _ => tracing::info!("auto: dpdk skipped (no --dpdk-vdev/--dpdk-pci, or --listen is not a concrete IPv4 address)"),
    }
    #[cfg(not(feature = "dpdk"))]
    tracing::info!("auto: dpdk skipped (not compiled in)");
    #[cfg(feature = "af-xdp")]
    match (&local, &args.fast.interface) {
        (Ok(l), Some(_)) => match crate::fast::af_xdp(&args.fast, *l, None, args.max_message) {
            Ok(t) => return serve_on(t, args),
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "auto: af-xdp unavailable, trying the next transport")
            }
        },
        _ => tracing::info!(
            "auto: af-xdp skipped (no --interface, or --listen is not a concrete IPv4 address)"
        ),
    }
    #[cfg(not(feature = "af-xdp"))]
    tracing::info!("auto: af-xdp skipped (not compiled in)");
    let _ = local;
    tracing::info!("auto: using tcp");
    let tcp = TcpTransport::new(TcpConfig {
        max_message: args.max_message,
        ..Default::default()
    })?;
    serve_on(tcp, args)
}

fn serve_on<T: Transport>(transport: T, args: &Args) -> anyhow::Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).context("installing signal handler")?;
    }
    let name = transport.name();
    let mut server = Server::new(
        transport,
        ServerConfig {
            credits: args.credits,
            ..Default::default()
        },
    );
    register_builtin(&mut server)?;
    let addr = server
        .transport()
        .listen(args.listen)
        .with_context(|| format!("listening on {}", args.listen))?;
    tracing::info!(%addr, transport = name, "neo serving (services: echo/Echo)");
    server.run(&stop)?;
    let s = server.stats();
    tracing::info!(
        calls = s.calls,
        connections = s.connections_accepted,
        errors = s.errors_sent,
        "neo stopped"
    );
    Ok(())
}
