//! The client commands of `neo`, in the manner of kcat and rpk: `topics`,
//! `produce`, `consume`, `groups`. They reach the broker over TCP
//! (`--broker`, or `NEO_BROKER`).

pub mod consume;
pub mod groups;
pub mod produce;
pub mod topics;

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use anyhow::Context;
use neo_broker::client::{Admin, ConnectConfig};
use neo_transports::tcp::{TcpConfig, TcpTransport};

/// Where the broker is.
#[derive(clap::Args, Clone, Debug)]
pub struct BrokerArgs {
    /// Broker address (host:port).
    #[arg(
        long,
        short = 'b',
        env = "NEO_BROKER",
        default_value = "127.0.0.1:7400",
        global = true
    )]
    pub broker: String,
    /// Per-request timeout, milliseconds.
    #[arg(long, default_value_t = 30_000, global = true)]
    pub timeout_ms: u64,
}

impl BrokerArgs {
    pub fn addr(&self) -> anyhow::Result<SocketAddr> {
        self.broker
            .to_socket_addrs()
            .with_context(|| format!("resolving the broker address `{}`", self.broker))?
            .next()
            .with_context(|| format!("`{}` resolves to no address", self.broker))
    }

    pub fn connect_config(&self) -> anyhow::Result<ConnectConfig> {
        let mut c = ConnectConfig::new(self.addr()?);
        c.request_timeout = Duration::from_millis(self.timeout_ms.max(1));
        Ok(c)
    }

    pub fn tcp(&self) -> anyhow::Result<TcpTransport> {
        Ok(TcpTransport::new(TcpConfig::default())?)
    }

    pub fn admin(&self) -> anyhow::Result<Admin<TcpTransport>> {
        let cfg = self.connect_config()?;
        Admin::connect(self.tcp()?, cfg)
            .with_context(|| format!("connecting to the broker at {}", self.broker))
    }
}
