//! The client commands of `neo`, in the manner of kcat and rpk: `topics`,
//! `produce`, `consume`, `groups`. They reach the broker over TCP
//! (`--broker`, or `NEO_BROKER`), with TLS (`--tls-ca`) and SASL
//! (`--user`, password in `NEO_PASSWORD`) when the broker asks for them.
//! `users` and `acl` edit the broker's credential and ACL files.

pub mod acl;
pub mod cluster;
pub mod consume;
pub mod groups;
pub mod produce;
pub mod topics;
pub mod users;

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use std::path::PathBuf;

use anyhow::{bail, Context};
use neo_broker::client::{Admin, ClientAuth, ConnectConfig};
use neo_broker::security::SaslMechanism;
use neo_transports::tcp::{TcpConfig, TcpTransport};
use neo_transports::tls::{ClientTls, ClientTlsSettings};

/// Where the broker is.
#[derive(clap::Args, Clone, Debug)]
pub struct BrokerArgs {
    /// Broker address (host:port); for a cluster, several comma-separated:
    /// the first reachable one is used, and leaders are found from there.
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
    /// Speak TLS to the broker, trusting this CA (PEM).
    #[arg(long, env = "NEO_TLS_CA", global = true)]
    pub tls_ca: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS, with --tls-key.
    #[arg(long, env = "NEO_TLS_CERT", global = true, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --tls-cert.
    #[arg(long, env = "NEO_TLS_KEY", global = true, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Name the broker's certificate must carry [default: its IP address].
    #[arg(long, global = true)]
    pub tls_server_name: Option<String>,
    /// Authenticate as this user (SASL; the password comes from NEO_PASSWORD).
    #[arg(long, env = "NEO_USER", global = true)]
    pub user: Option<String>,
    /// SASL mechanism: SCRAM-SHA-256, SCRAM-SHA-512 or PLAIN (PLAIN only over TLS).
    #[arg(long, default_value = "SCRAM-SHA-256", global = true)]
    pub sasl_mechanism: String,
}

impl BrokerArgs {
    /// Every address `--broker` names, in order.
    pub fn addrs(&self) -> anyhow::Result<Vec<SocketAddr>> {
        self.broker
            .split(',')
            .map(str::trim)
            .filter(|b| !b.is_empty())
            .map(|b| {
                b.to_socket_addrs()
                    .with_context(|| format!("resolving the broker address `{b}`"))?
                    .next()
                    .with_context(|| format!("`{b}` resolves to no address"))
            })
            .collect::<anyhow::Result<Vec<_>>>()
            .and_then(|v| match v.is_empty() {
                true => bail!("--broker names no address"),
                false => Ok(v),
            })
    }

    pub fn connect_config(&self) -> anyhow::Result<ConnectConfig> {
        let all = self.addrs()?;
        let mut c = ConnectConfig::new(all[0]);
        c.bootstrap = all[1..].to_vec();
        c.request_timeout = Duration::from_millis(self.timeout_ms.max(1));
        if let Some(user) = &self.user {
            let mechanism =
                SaslMechanism::parse(&self.sasl_mechanism).map_err(anyhow::Error::msg)?;
            if mechanism == SaslMechanism::Plain && self.tls_ca.is_none() {
                bail!("--sasl-mechanism PLAIN sends the password as it is: use it with --tls-ca");
            }
            let password = std::env::var("NEO_PASSWORD")
                .context("--user needs the password in the NEO_PASSWORD environment variable")?;
            c.auth = Some(ClientAuth {
                mechanism,
                user: user.clone(),
                password,
            });
        }
        Ok(c)
    }

    pub fn tcp(&self) -> anyhow::Result<TcpTransport> {
        let tls_client = match &self.tls_ca {
            None => None,
            Some(ca) => Some(
                ClientTls::new(&ClientTlsSettings {
                    ca: ca.clone(),
                    cert: self.tls_cert.clone(),
                    key: self.tls_key.clone(),
                    server_name: self.tls_server_name.clone(),
                })
                .map_err(|e| anyhow::anyhow!("TLS: {e}"))?,
            ),
        };
        Ok(TcpTransport::new(TcpConfig {
            tls_client,
            ..TcpConfig::default()
        })?)
    }

    pub fn admin(&self) -> anyhow::Result<Admin<TcpTransport>> {
        let cfg = self.connect_config()?;
        Admin::connect(self.tcp()?, cfg)
            .with_context(|| format!("connecting to the broker at {}", self.broker))
    }
}

/// Makes the directory of `file` (mode 0700: it holds secrets), if missing.
pub fn private_dir_for(file: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating {}", dir.display()))?;
    }
    Ok(())
}
