//! `neo serve`: the broker on one poll loop over the chosen transport, until
//! SIGINT or SIGTERM, when it stops serving and closes its logs cleanly. It
//! also carries the built-in `echo/Echo` service (RPC round-trip benches)
//! and, on its own thread, the HTTP admin endpoint.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context};
use neo_broker::{Broker, BrokerConfig, BrokerService};
use neo_transports::rpc::{Server, ServerConfig};
use neo_transports::tcp::{TcpConfig, TcpTransport};
use neo_transports::Transport;

#[derive(clap::Args)]
pub struct Args {
    /// TOML config file (see docs/user-guide.md); flags and NEO_* variables override it.
    #[arg(long, env = "NEO_CONFIG")]
    config: Option<PathBuf>,
    /// Where topics and offsets live [default: ./neo-data].
    #[arg(long, env = "NEO_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Address to serve clients on [default: 127.0.0.1:7400].
    #[arg(long, env = "NEO_LISTEN")]
    listen: Option<SocketAddr>,
    /// HTTP admin endpoint (/health, /status) [default: 127.0.0.1:7401].
    #[arg(long, env = "NEO_ADMIN_LISTEN")]
    admin_listen: Option<SocketAddr>,
    /// Do not serve the admin endpoint.
    #[arg(long, conflicts_with = "admin_listen")]
    no_admin: bool,
    /// Transport: `tcp`, `rdma` (--listen is an address of the RDMA device's interface),
    /// `af-xdp` (with --interface), `dpdk` (with --dpdk-vdev or --dpdk-pci), or
    /// `auto` (rdma, then dpdk, then af-xdp, then tcp, logging why each faster one was passed over). For the
    /// raw-frame transports --listen names the engine's own IPv4 address and UDP port [default: tcp].
    #[arg(long, env = "NEO_TRANSPORT")]
    transport: Option<String>,
    /// Largest message accepted, in bytes [default: 16 MiB].
    #[arg(long, env = "NEO_MAX_MESSAGE")]
    max_message: Option<usize>,
    /// Calls one connection may have outstanding [default: 64].
    #[arg(long, env = "NEO_CREDITS")]
    credits: Option<u32>,
    /// Serve the Kafka wire protocol here too (its own port; e.g. 127.0.0.1:9092), over the
    /// same broker: Kafka clients produce, consume and join groups unchanged [default: off].
    #[arg(long, env = "NEO_KAFKA_LISTEN")]
    kafka_listen: Option<SocketAddr>,
    /// host:port Kafka clients are told to connect to [default: the address each reached].
    #[arg(long, env = "NEO_KAFKA_ADVERTISED")]
    kafka_advertised: Option<String>,
    /// Do not create topics when a Kafka client produces to or asks for one that is missing.
    #[arg(long)]
    no_kafka_auto_create: bool,
    /// Codec backend, codec=backend (repeatable; overrides the file's [accel]):
    /// e.g. deflate=software. Backends: auto, software, iaa, qat.
    #[arg(long = "accel")]
    accel: Vec<String>,
    #[command(flatten)]
    fast: neo::fast::FastArgs,
    #[command(flatten)]
    security: crate::serve_security::SecurityArgs,
    #[command(flatten)]
    cluster: crate::serve_cluster::ClusterArgs,
}

/// Settings after merging defaults, file, environment and flags.
struct Settings {
    data_dir: PathBuf,
    listen: SocketAddr,
    admin_listen: Option<SocketAddr>,
    transport: String,
    max_message: usize,
    credits: u32,
    topic_defaults: neo_broker::protocol::TopicConfig,
    accel: neo_accel::Overrides,
    kafka: Option<neo_broker::kafka::KafkaConfig>,
    sec: crate::serve_security::Resolved,
    /// Built once: the Neo TCP listener and the Kafka listener share it
    /// (one reloading certificate).
    tls: Option<neo_transports::tls::ServerTls>,
}

fn host_port(v: &str) -> anyhow::Result<(String, u16)> {
    let (h, p) = v
        .rsplit_once(':')
        .with_context(|| format!("kafka advertised `{v}`: expected host:port"))?;
    let port = p
        .parse()
        .with_context(|| format!("kafka advertised `{v}`: port `{p}`"))?;
    if h.is_empty() {
        bail!("kafka advertised `{v}`: empty host");
    }
    Ok((h.to_string(), port))
}

impl Args {
    fn settings(&self) -> anyhow::Result<Settings> {
        let file = match &self.config {
            Some(p) => crate::config::FileConfig::load(p)?,
            None => Default::default(),
        };
        let data_dir: PathBuf = self
            .data_dir
            .clone()
            .or(file.data_dir.clone())
            .unwrap_or_else(|| "neo-data".into());
        let sec = crate::serve_security::resolve(
            &self.security,
            &file.tls,
            &file.security,
            &file.quotas,
            &data_dir,
        )?;
        let tls = match &sec.tls {
            Some(t) => Some(
                neo_transports::tls::ServerTls::new(t).map_err(|e| anyhow::anyhow!("TLS: {e}"))?,
            ),
            None => None,
        };
        Ok(Settings {
            sec,
            tls,
            data_dir,
            listen: self
                .listen
                .or(file.listen)
                .unwrap_or_else(|| "127.0.0.1:7400".parse().expect("literal")),
            admin_listen: match self.no_admin {
                true => None,
                false => Some(
                    self.admin_listen
                        .or(file.admin_listen)
                        .unwrap_or_else(|| "127.0.0.1:7401".parse().expect("literal")),
                ),
            },
            transport: self
                .transport
                .clone()
                .or(file.transport.clone())
                .unwrap_or_else(|| "tcp".into()),
            max_message: self.max_message.or(file.max_message).unwrap_or(16 << 20),
            credits: self.credits.or(file.credits).unwrap_or(64),
            topic_defaults: file.topic_defaults()?,
            kafka: match self.kafka_listen.or(file.kafka_listen) {
                None => None,
                Some(listen) => {
                    let mut k = neo_broker::kafka::KafkaConfig::new(listen);
                    if let Some(a) = self
                        .kafka_advertised
                        .as_ref()
                        .or(file.kafka_advertised.as_ref())
                    {
                        k.advertised = Some(host_port(a)?);
                    }
                    k.auto_create_topics =
                        !self.no_kafka_auto_create && file.kafka_auto_create_topics.unwrap_or(true);
                    Some(k)
                }
            },
            accel: {
                let mut o: neo_accel::Overrides = file.accel.clone().into_iter().collect();
                for a in &self.accel {
                    let Some((k, v)) = a.split_once('=') else {
                        bail!("--accel `{a}`: expected codec=backend, e.g. deflate=software");
                    };
                    o.insert(k.trim().to_string(), v.trim().to_string());
                }
                o
            },
        })
    }
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
    let s = args.settings()?;
    let args = &Full {
        s,
        fast: args.fast,
        cluster: args.cluster,
    };
    match args.s.transport.as_str() {
        "tcp" => serve_on(tcp_transport(args)?, args),
        #[cfg(feature = "af-xdp")]
        "af-xdp" => {
            let local = neo::fast::engine_addr(args.s.listen, "--listen")?;
            serve_on(
                neo::fast::af_xdp(&args.fast, local, None, args.s.max_message)?,
                args,
            )
        }
        #[cfg(not(feature = "af-xdp"))]
        "af-xdp" => Err(neo::fast::af_xdp_unavailable()),
        #[cfg(feature = "dpdk")]
        "dpdk" => {
            let local = neo::fast::engine_addr(args.s.listen, "--listen")?;
            serve_on(
                neo::fast::dpdk(&args.fast, local, args.s.max_message)?,
                args,
            )
        }
        #[cfg(not(feature = "dpdk"))]
        "dpdk" => Err(neo::fast::dpdk_unavailable()),
        #[cfg(feature = "rdma")]
        "rdma" => serve_on(neo::fast::rdma(args.s.max_message)?, args),
        #[cfg(not(feature = "rdma"))]
        "rdma" => Err(neo::fast::rdma_unavailable()),
        "auto" => serve_auto(args),
        other => {
            bail!("unknown transport `{other}` (auto, rdma, dpdk, af-xdp, tcp; see `neo doctor`)")
        }
    }
}

/// `--transport auto`: the fastest configured backend that opens, else TCP;
/// each one passed over is logged with the reason.
fn serve_auto(args: &Full) -> anyhow::Result<()> {
    #[cfg(feature = "rdma")]
    match neo_transports::rdma::usable() {
        Ok(port) => match neo::fast::rdma(args.s.max_message) {
            Ok(t) => {
                tracing::info!(%port, "auto: using rdma");
                return serve_on(t, args);
            }
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "auto: rdma unavailable, trying the next transport")
            }
        },
        Err(why) => tracing::info!(%why, "auto: rdma skipped"),
    }
    #[cfg(not(feature = "rdma"))]
    tracing::info!("auto: rdma skipped (not compiled in)");
    let local = neo::fast::engine_addr(args.s.listen, "--listen");
    #[cfg(feature = "dpdk")]
    match (&local, args.fast.dpdk_configured()) {
        (Ok(l), true) => match neo::fast::dpdk(&args.fast, *l, args.s.max_message) {
            Ok(t) => return serve_on(t, args),
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "auto: dpdk unavailable, trying the next transport"),
        },
        _ => tracing::info!("auto: dpdk skipped (no --dpdk-vdev/--dpdk-pci, or --listen is not a concrete IPv4 address)"),
    }
    #[cfg(not(feature = "dpdk"))]
    tracing::info!("auto: dpdk skipped (not compiled in)");
    #[cfg(feature = "af-xdp")]
    match (&local, &args.fast.interface) {
        (Ok(l), Some(_)) => match neo::fast::af_xdp(&args.fast, *l, None, args.s.max_message) {
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
    serve_on(tcp_transport(args)?, args)
}

/// The TCP transport, speaking TLS when it is configured: on accepted
/// connections, and in a cluster on the replica fetches it dials too.
fn tcp_transport(args: &Full) -> anyhow::Result<TcpTransport> {
    let s = &args.s;
    let tls_client = match (&s.sec.tls, args.cluster.node_id) {
        (Some(server), Some(_)) => Some(crate::serve_cluster::replication_tls(
            &args.cluster,
            server,
        )?),
        _ => None,
    };
    Ok(TcpTransport::new(TcpConfig {
        max_message: s.max_message,
        tls_server: s.tls.clone(),
        tls_client,
        ..Default::default()
    })?)
}

struct Full {
    s: Settings,
    cluster: crate::serve_cluster::ClusterArgs,
    #[cfg_attr(not(any(feature = "af-xdp", feature = "dpdk")), allow(dead_code))]
    fast: neo::fast::FastArgs,
}

fn serve_on<T: Transport>(transport: T, args: &Full) -> anyhow::Result<()> {
    let s = &args.s;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).context("installing signal handler")?;
    }
    let name = transport.name();
    let mut cfg = BrokerConfig::new(&s.data_dir);
    cfg.topic_defaults = s.topic_defaults.clone();
    let accel = neo_accel::Registry::detect(std::path::Path::new("/"), &s.accel)
        .map_err(|e| anyhow::anyhow!("accel: {e}"))?;
    for c in accel.choices() {
        tracing::info!(codec = c.codec.name(), backend = ?c.backend, implementation = c.implementation, reason = %c.reason, "accel");
    }
    cfg.accel = Some(accel);
    let broker = Broker::open(cfg)
        .map_err(|e| anyhow::anyhow!("opening the data directory {}: {e}", s.data_dir.display()))?;
    let mut server = Server::new(
        transport,
        ServerConfig {
            credits: s.credits,
            ..Default::default()
        },
    );
    register_builtin(&mut server)?;
    let addr = server
        .transport()
        .listen(s.listen)
        .with_context(|| format!("listening on {}", s.listen))?;
    let broker = Arc::new(Mutex::new(broker));
    if s.sec.security.credentials.is_some() || s.sec.security.acls.is_some() {
        crate::serve_security::prepare_dir(&s.data_dir)?;
    }
    let security = Arc::new(
        neo_broker::security::Security::open(&s.sec.security)
            .map_err(|e| anyhow::anyhow!("security: {e}"))?,
    );
    if s.tls.is_some() && name != "tcp" {
        tracing::warn!(transport = name, "TLS covers the TCP listeners only: the {name} fabric is not encrypted (docs/security.md)");
    }
    tracing::info!(
        neo_tls = s.tls.is_some() && name == "tcp",
        neo_auth = s.sec.security.neo_auth,
        kafka = s.sec.kafka_protocol,
        authorizer = security.authorizer.is_enabled(),
        audit = s.sec.security.audit_log.is_some(),
        quotas = security.quotas_configured(),
        "security"
    );
    let kafka = match &s.kafka {
        Some(k) => {
            let mut k = k.clone();
            if s.sec.kafka_tls {
                k.tls = s.tls.clone();
            }
            Some(
                neo_broker::kafka::KafkaListener::start(
                    k.clone(),
                    broker.clone(),
                    security.clone(),
                )
                .with_context(|| format!("Kafka listener on {}", k.listen))?,
            )
        }
        None => None,
    };
    let membership = crate::serve_cluster::Membership::start(
        &args.cluster,
        &s.data_dir,
        addr,
        kafka.as_ref().map(|k| {
            // What Kafka clients are told: the advertised name, else the bound address.
            match s.kafka.as_ref().and_then(|c| c.advertised.clone()) {
                Some((h, p)) => format!("{h}:{p}"),
                None => k.local_addr().to_string(),
            }
        }),
        &broker,
        name,
        s.sec.tls.as_ref(),
    )?;
    let published = neo_broker::service::Published::default();
    let admin = match s.admin_listen {
        Some(a) => {
            let info = crate::admin_http::AdminInfo {
                transport: name,
                listen: addr,
                started: std::time::Instant::now(),
                kafka: kafka.as_ref().map(|k| (k.local_addr(), k.stats())),
                published: published.clone(),
                security: security.clone(),
            };
            Some(crate::admin_http::start(a, Arc::downgrade(&broker), info)?)
        }
        None => None,
    };
    let mut svc =
        BrokerService::with_security(server, broker, security).map_err(anyhow::Error::msg)?;
    svc.publish_to(published);
    let kafka_addr = kafka.as_ref().map(|k| k.local_addr());
    tracing::info!(%addr, admin = ?admin, kafka = ?kafka_addr, transport = name, data_dir = %s.data_dir.display(), "neo serving: the broker (and echo/Echo)");
    svc.run(&stop)?;
    if let Some(m) = membership {
        m.leave();
    }
    if let Some(k) = kafka {
        k.stop();
    }
    let stats = neo_broker::service::lock(svc.broker()).stats().clone();
    let transport_stats = svc.server().transport().stats_line();
    if !transport_stats.is_empty() {
        tracing::info!(transport = name, stats = %transport_stats, "transport counters");
    }
    svc.shutdown()
        .map_err(|e| anyhow::anyhow!("closing the broker: {e}"))?;
    tracing::info!(
        produce = stats.produce_requests,
        fetch = stats.fetch_requests,
        records_in = stats.records_in,
        "neo stopped; logs closed cleanly"
    );
    Ok(())
}
