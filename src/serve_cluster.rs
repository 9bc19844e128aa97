//! `neo serve`'s cluster flags: with `--node-id`, the node runs a member of
//! the controller quorum (openraft, in `<data>/controller`) next to its
//! broker, and the broker replicates its partitions (docs/replication.md).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use neo_broker::replication::link::{ClusterLink, LinkConfig};
use neo_broker::Broker;
use neo_cluster::{Controller, ControllerConfig};

#[derive(clap::Args, Clone, Debug)]
pub struct ClusterArgs {
    /// This node's id in the cluster (1, 2, 3 ...); turns clustering on.
    #[arg(long, env = "NEO_NODE_ID", requires_all = ["controller_listen", "controller_voters"])]
    pub node_id: Option<u64>,
    /// Where this node's controller member listens (Raft and controller RPCs).
    #[arg(long, env = "NEO_CONTROLLER_LISTEN")]
    pub controller_listen: Option<SocketAddr>,
    /// Every controller member, this one included: `1=10.0.0.1:7500,2=10.0.0.2:7500,3=...`.
    #[arg(long, env = "NEO_CONTROLLER_VOTERS")]
    pub controller_voters: Option<String>,
    /// host:port other brokers and clients use for this broker's Neo listener
    /// [default: the --listen address].
    #[arg(long, env = "NEO_ADVERTISE")]
    pub advertise: Option<String>,
    /// A follower that has not caught up with its leader for this long leaves
    /// the in-sync replica set [default: 2000].
    #[arg(long, env = "NEO_REPLICA_LAG_MAX_MS", default_value_t = 2000)]
    pub replica_lag_max_ms: u64,
    /// No heartbeat from a broker for this long and the controller fences it
    /// (its partitions get new leaders) [default: 1500].
    #[arg(long, env = "NEO_SESSION_TIMEOUT_MS", default_value_t = 1500)]
    pub session_timeout_ms: u64,
    /// How often the controller leader gives partitions back to their
    /// preferred replicas (first assigned) once those are alive and in
    /// sync again; 0 turns it off [default: 30000].
    #[arg(long, env = "NEO_LEADER_REBALANCE_MS", default_value_t = 30_000)]
    pub leader_rebalance_ms: u64,
    /// Leaderships go back to a broker only when it leads fewer partitions
    /// than it is preferred for by more than this percentage (Kafka's
    /// leader.imbalance.per.broker.percentage; 0: any) [default: 10].
    #[arg(long, env = "NEO_LEADER_IMBALANCE_PCT", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(0..=100))]
    pub leader_imbalance_pct: u32,
    /// The user this node's replica fetches authenticate as, for leaders
    /// running `--neo-auth` (SCRAM; the password in NEO_REPLICATION_PASSWORD).
    /// Needs Alter on the cluster when the authorizer is on.
    #[arg(long, env = "NEO_REPLICATION_USER")]
    pub replication_user: Option<String>,
    /// SCRAM mechanism of --replication-user: SCRAM-SHA-256 or SCRAM-SHA-512.
    #[arg(long, default_value = "SCRAM-SHA-256")]
    pub replication_sasl_mechanism: String,
    /// With TLS on the Neo listener (--tls-cert), followers dial their
    /// leaders with TLS too, verifying them against this CA bundle
    /// [default: --tls-client-ca]; they present --tls-cert/--tls-key.
    #[arg(long, env = "NEO_REPLICATION_TLS_CA")]
    pub replication_tls_ca: Option<std::path::PathBuf>,
    /// The name leaders' certificates are verified against [default: the
    /// leader's IP address, which their certificates must then carry].
    #[arg(long, env = "NEO_REPLICATION_TLS_SERVER_NAME")]
    pub replication_tls_server_name: Option<String>,
    /// With --tls-cert, the controller RPC is mutual TLS: members present
    /// --tls-cert and accept only certificates chaining to this CA bundle
    /// [default: --replication-tls-ca, else --tls-client-ca].
    #[arg(long, env = "NEO_CONTROLLER_TLS_CA")]
    pub controller_tls_ca: Option<std::path::PathBuf>,
    /// The name controller members' certificates are verified against
    /// [default: the host of each --controller-voters address].
    #[arg(long, env = "NEO_CONTROLLER_TLS_SERVER_NAME")]
    pub controller_tls_server_name: Option<String>,
    /// A certificate CN admitted as a controller member (repeatable)
    /// [default: the CN of this node's --tls-cert]; any other certificate,
    /// even from the same CA, is refused on the controller port.
    #[arg(long = "controller-principal")]
    pub controller_principals: Vec<String>,
}

/// The controller RPC's mutual TLS, for a node with TLS (`--tls-cert`):
/// the node's certificate both ways, peers verified against the controller
/// CA and admitted only if their certificate's CN is a controller principal.
pub fn controller_tls(
    args: &ClusterArgs,
    server: &neo_transports::tls::ServerTlsSettings,
) -> anyhow::Result<neo_cluster::ControllerTls> {
    use neo_transports::tls::{principal_from_cert, ClientTls, ClientTlsSettings, ServerTls};
    let Some(ca) = args
        .controller_tls_ca
        .clone()
        .or_else(|| args.replication_tls_ca.clone())
        .or_else(|| server.client_ca.clone())
    else {
        bail!("with --tls-cert, the controller RPC is mutual TLS: give --controller-tls-ca (or --replication-tls-ca / --tls-client-ca), the CA bundle that signed the members' certificates");
    };
    let err = |e: neo_transports::tls::TlsError| anyhow::anyhow!("controller TLS: {e}");
    let listener = ServerTls::new(&neo_transports::tls::ServerTlsSettings {
        cert: server.cert.clone(),
        key: server.key.clone(),
        client_ca: Some(ca.clone()),
        require_client_cert: true,
    })
    .map_err(err)?;
    let dialler = ClientTls::new(&ClientTlsSettings {
        ca,
        cert: Some(server.cert.clone()),
        key: Some(server.key.clone()),
        server_name: None,
    })
    .map_err(err)?;
    let mut principals: std::collections::BTreeSet<String> =
        args.controller_principals.iter().cloned().collect();
    if principals.is_empty() {
        let own = principal_from_cert(&listener.current_cert()).with_context(|| {
            format!(
                "{} has no subject CN to admit controller members by: give --controller-principal",
                server.cert.display()
            )
        })?;
        principals.insert(own);
    }
    let server_name = match &args.controller_tls_server_name {
        Some(n) => Some(
            neo_cluster::tls::server_name(n)
                .map_err(|e| anyhow::anyhow!("--controller-tls-server-name: {e}"))?,
        ),
        None => None,
    };
    tracing::info!(principals = ?principals, "controller RPC: mutual TLS");
    Ok(neo_cluster::ControllerTls {
        server: listener.config(),
        client: dialler.config(),
        server_name,
        admit: Arc::new(move |leaf| match principal_from_cert(leaf) {
            Some(cn) if principals.contains(&cn) => Ok(()),
            Some(cn) => Err(format!(
                "certificate CN={cn} is not a controller principal (--controller-principal)"
            )),
            None => Err("certificate without a subject CN".into()),
        }),
    })
}

/// The TLS client of replica fetches, for a node whose Neo listener speaks
/// TLS (leaders require it of followers as of any client).
pub fn replication_tls(
    args: &ClusterArgs,
    server: &neo_transports::tls::ServerTlsSettings,
) -> anyhow::Result<neo_transports::tls::ClientTls> {
    let Some(ca) = args
        .replication_tls_ca
        .clone()
        .or_else(|| server.client_ca.clone())
    else {
        bail!("with TLS on the Neo listener, followers dial their leaders with TLS: give --replication-tls-ca, the CA bundle that signed the brokers' certificates (or --tls-client-ca)");
    };
    neo_transports::tls::ClientTls::new(&neo_transports::tls::ClientTlsSettings {
        ca,
        cert: Some(server.cert.clone()),
        key: Some(server.key.clone()),
        server_name: args.replication_tls_server_name.clone(),
    })
    .map_err(|e| anyhow::anyhow!("replication TLS: {e}"))
}

/// The replication credentials of `args`, if any.
fn replication_auth(args: &ClusterArgs) -> anyhow::Result<Option<neo_broker::client::ClientAuth>> {
    use neo_broker::security::SaslMechanism;
    let Some(user) = &args.replication_user else {
        return Ok(None);
    };
    let mechanism =
        SaslMechanism::parse(&args.replication_sasl_mechanism).map_err(anyhow::Error::msg)?;
    if mechanism == SaslMechanism::Plain {
        bail!("--replication-sasl-mechanism PLAIN would send the password as it is over replication connections (they have no TLS): use SCRAM-SHA-256 or SCRAM-SHA-512");
    }
    let password = std::env::var("NEO_REPLICATION_PASSWORD")
        .context("--replication-user needs the password in the NEO_REPLICATION_PASSWORD environment variable")?;
    Ok(Some(neo_broker::client::ClientAuth {
        mechanism,
        user: user.clone(),
        password,
    }))
}

/// Parses `1=host:port,2=host:port` (host names are resolved at each dial).
pub fn parse_voters(v: &str) -> anyhow::Result<BTreeMap<u64, String>> {
    let mut out = BTreeMap::new();
    for part in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (id, addr) = part
            .split_once('=')
            .with_context(|| format!("controller voter `{part}`: expected id=host:port"))?;
        let id: u64 = id
            .parse()
            .with_context(|| format!("controller voter `{part}`: id `{id}`"))?;
        match addr.rsplit_once(':').map(|(h, p)| (h, p.parse::<u16>())) {
            Some((h, Ok(_))) if !h.is_empty() => {}
            _ => bail!("controller voter `{part}`: expected host:port, not `{addr}`"),
        }
        let addr = addr.to_string();
        if out.insert(id, addr).is_some() {
            bail!("controller voter {id} named twice");
        }
    }
    if out.is_empty() {
        bail!("--controller-voters names no voter");
    }
    Ok(out)
}

/// A running cluster membership; `leave` hands leaderships away first.
pub struct Membership {
    controller: Arc<Controller>,
}

impl Membership {
    /// Starts this node's controller member and joins `broker` to the cluster.
    pub fn start(
        args: &ClusterArgs,
        data_dir: &Path,
        listen: SocketAddr,
        kafka: Option<String>,
        broker: &Arc<Mutex<Broker>>,
        transport: &str,
        tls: Option<&neo_transports::tls::ServerTlsSettings>,
    ) -> anyhow::Result<Option<Membership>> {
        let Some(id) = args.node_id else {
            return Ok(None);
        };
        let voters = parse_voters(args.controller_voters.as_deref().unwrap_or_default())?;
        let ctl_listen = args
            .controller_listen
            .context("--node-id needs --controller-listen")?;
        if !voters.contains_key(&id) {
            bail!("--controller-voters does not name this node ({id})");
        }
        let advertise = args.advertise.clone().unwrap_or_else(|| listen.to_string());
        let mut cfg = ControllerConfig::new(
            id,
            ctl_listen,
            voters,
            data_dir.join("controller"),
            advertise,
        );
        cfg.kafka_addr = kafka;
        cfg.session_timeout = Duration::from_millis(args.session_timeout_ms);
        cfg.preferred_leader_check =
            (args.leader_rebalance_ms > 0).then(|| Duration::from_millis(args.leader_rebalance_ms));
        cfg.leader_imbalance_pct = args.leader_imbalance_pct;
        cfg.tls = tls.map(|t| controller_tls(args, t)).transpose()?;
        if cfg.tls.is_none() {
            tracing::warn!(controller = %ctl_listen, "controller RPC without TLS or authentication (no --tls-cert): keep --controller-listen on a trusted network");
        }
        let controller = Arc::new(
            Controller::start(cfg)
                .map_err(|e| anyhow::anyhow!("starting the controller member: {e}"))?,
        );
        let mut link = LinkConfig::new(id);
        link.replica_lag_max = Duration::from_millis(args.replica_lag_max_ms);
        link.replication_auth = replication_auth(args)?;
        ClusterLink::install(broker, controller.clone(), link)
            .map_err(|e| anyhow::anyhow!("joining the cluster: {e}"))?;
        // Followers fetch from leaders on the broker's own poll loop, over
        // `transport`; the controller quorum talks TCP on --controller-listen.
        tracing::info!(node_id = id, controller = %ctl_listen, replication = transport, "cluster member started");
        Ok(Some(Membership { controller }))
    }

    /// Controlled shutdown: the controller fences this broker so its
    /// partitions get new leaders now, not after the session timeout.
    pub fn leave(self) {
        match self.controller.controlled_shutdown(Duration::from_secs(3)) {
            Ok(()) => tracing::info!("controlled shutdown: leaderships handed over"),
            Err(e) => {
                tracing::warn!(error = %e, "controlled shutdown failed; the session timeout will fence this broker")
            }
        }
    }
}
