//! `neo-c` owns Neo's C ABI: a producer and a consumer over Neo's own Rust
//! client, with the transport chosen at run time, typed error codes with
//! messages, and explicit ownership of every buffer. `include/neo.h` is
//! generated from [`ffi`] by cbindgen (a test keeps it current); C programs
//! link `libneo_c.so` or `libneo_c.a`.
//!
//! This module is the safe half: opening a transport by name, and the
//! handles' logic. [`ffi`] is the thin layer of `extern "C"` functions that
//! turns pointers into these calls.

pub mod ffi;

use std::collections::{HashMap, VecDeque};
use std::ffi::c_void;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use neo_broker::client::{
    ClientError, ConnectConfig, Consumer, ConsumerConfig, Producer, ProducerConfig, Received,
};
use neo_transports::tcp::{TcpConfig, TcpTransport};
use neo_transports::Transport;

/// Result codes of every call (0 is success).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NeoCode {
    NeoOk = 0,
    /// A NULL where a value is required, a string that is not UTF-8, a bad address.
    NeoErrInvalidArgument = 1,
    /// The transport is not compiled in or not usable on this node.
    NeoErrUnavailable = 2,
    /// Connecting to the broker failed.
    NeoErrConnect = 3,
    /// The broker refused the request (unknown topic, bad batch, ...).
    NeoErrBroker = 4,
    /// The operation did not finish in time.
    NeoErrTimeout = 5,
    /// The connection failed while in use.
    NeoErrTransport = 6,
}

/// An error: a code and a message (owned by the error).
#[derive(Debug)]
pub struct NeoError {
    pub(crate) code: NeoCode,
    pub(crate) message: std::ffi::CString,
}

impl NeoError {
    pub fn code(&self) -> NeoCode {
        self.code
    }
    pub fn message(&self) -> &str {
        self.message.to_str().unwrap_or("(not UTF-8)")
    }
    pub(crate) fn new(code: NeoCode, message: impl Into<String>) -> Self {
        let m = message.into().replace('\0', " ");
        Self {
            code,
            message: std::ffi::CString::new(m).expect("NULs replaced"),
        }
    }
}

impl From<ClientError> for NeoError {
    fn from(e: ClientError) -> Self {
        let code = match &e {
            ClientError::Broker(_) => NeoCode::NeoErrBroker,
            ClientError::Timeout(_) => NeoCode::NeoErrTimeout,
            ClientError::Invalid(_) => NeoCode::NeoErrInvalidArgument,
            _ => NeoCode::NeoErrTransport,
        };
        Self::new(code, e.to_string())
    }
}

/// A transport chosen at run time.
pub type AnyTransport = Box<dyn Transport>;

/// Transport options, `key=value` pairs separated by commas: `interface`,
/// `local` (the client engine's own IPv4:port), `xdp_mode`, `queue`,
/// `zero_copy=false`, `dpdk_vdev` (repeatable), `dpdk_pci`, `dpdk_port`,
/// `dpdk_hugepages=true`, `dpdk_memory` (MiB), `dpdk_lcores` — the names of
/// `neo`'s command-line options.
#[cfg_attr(not(any(feature = "af-xdp", feature = "dpdk")), allow(dead_code))]
struct RawOptions {
    args: neo::fast::FastArgs,
    local: Option<SocketAddr>,
}

fn parse_options(options: &str) -> Result<RawOptions, NeoError> {
    let bad = |m: String| NeoError::new(NeoCode::NeoErrInvalidArgument, m);
    let mut args = neo::fast::FastArgs {
        interface: None,
        xdp_mode: "auto".into(),
        queue: 0,
        no_zero_copy: false,
        dpdk_vdevs: Vec::new(),
        dpdk_pci: Vec::new(),
        dpdk_port: None,
        dpdk_hugepages: false,
        dpdk_memory: 256,
        dpdk_lcores: None,
    };
    let mut local = None;
    for pair in options.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| bad(format!("option `{pair}`: expected key=value")))?;
        let num = |v: &str| {
            v.parse::<u32>()
                .map_err(|e| bad(format!("option {k}={v}: {e}")))
        };
        let flag = |v: &str| {
            v.parse::<bool>()
                .map_err(|e| bad(format!("option {k}={v}: {e}")))
        };
        match k {
            "interface" => args.interface = Some(v.into()),
            "local" => {
                local = Some(
                    v.parse()
                        .map_err(|e| bad(format!("option local={v}: {e}")))?,
                )
            }
            "xdp_mode" => args.xdp_mode = v.into(),
            "queue" => args.queue = num(v)?,
            "zero_copy" => args.no_zero_copy = !flag(v)?,
            "dpdk_vdev" => args.dpdk_vdevs.push(v.into()),
            "dpdk_pci" => args.dpdk_pci.push(v.into()),
            "dpdk_port" => args.dpdk_port = Some(v.into()),
            "dpdk_hugepages" => args.dpdk_hugepages = flag(v)?,
            "dpdk_memory" => args.dpdk_memory = num(v)?,
            "dpdk_lcores" => args.dpdk_lcores = Some(v.into()),
            other => return Err(bad(format!("unknown option `{other}`"))),
        }
    }
    Ok(RawOptions { args, local })
}

/// Largest message a binding's transport carries.
#[cfg_attr(
    not(any(feature = "af-xdp", feature = "dpdk", feature = "rdma")),
    allow(dead_code)
)]
const MAX_MESSAGE: usize = 16 << 20;

/// Opens a transport by name — `tcp`, `rdma`, `af-xdp`, `dpdk` (each when
/// built in), or `auto` (rdma when a port is active, else tcp) — for a
/// client of the broker at `peer`, with `options` for the raw-frame ones.
pub fn open_transport(
    name: &str,
    options: Option<&str>,
    peer: SocketAddr,
) -> Result<AnyTransport, NeoError> {
    let unavailable = |e: String| NeoError::new(NeoCode::NeoErrUnavailable, e);
    let opts = parse_options(options.unwrap_or(""))?;
    let tcp = || -> Result<AnyTransport, NeoError> {
        TcpTransport::new(TcpConfig::default())
            .map(|t| Box::new(t) as AnyTransport)
            .map_err(|e| unavailable(format!("tcp: {e}")))
    };
    #[cfg(any(feature = "af-xdp", feature = "dpdk"))]
    let endpoints = || -> Result<(std::net::SocketAddrV4, std::net::SocketAddrV4), NeoError> {
        let local = opts.local.ok_or_else(|| {
            NeoError::new(
                NeoCode::NeoErrInvalidArgument,
                format!("{name} needs the option local=<this engine's IPv4:port>"),
            )
        })?;
        let e = |r: anyhow::Result<std::net::SocketAddrV4>| {
            r.map_err(|e| NeoError::new(NeoCode::NeoErrInvalidArgument, format!("{e:#}")))
        };
        Ok((
            e(neo::fast::engine_addr(peer, "the broker address"))?,
            e(neo::fast::engine_addr(local, "local"))?,
        ))
    };
    let _ = (&opts, peer);
    match name {
        "tcp" => tcp(),
        #[cfg(feature = "rdma")]
        "rdma" => neo::fast::rdma(MAX_MESSAGE)
            .map(|t| Box::new(t) as AnyTransport)
            .map_err(|e| unavailable(format!("{e:#}"))),
        #[cfg(feature = "af-xdp")]
        "af-xdp" => {
            let (peer, local) = endpoints()?;
            neo::fast::af_xdp(&opts.args, local, Some(peer), MAX_MESSAGE)
                .map(|t| Box::new(t) as AnyTransport)
                .map_err(|e| unavailable(format!("{e:#}")))
        }
        #[cfg(feature = "dpdk")]
        "dpdk" => {
            let (_, local) = endpoints()?;
            neo::fast::dpdk(&opts.args, local, MAX_MESSAGE)
                .map(|t| Box::new(t) as AnyTransport)
                .map_err(|e| unavailable(format!("{e:#}")))
        }
        "auto" => {
            #[cfg(feature = "rdma")]
            if neo_transports::rdma::usable().is_ok() {
                if let Ok(t) = neo::fast::rdma(MAX_MESSAGE) {
                    return Ok(Box::new(t));
                }
            }
            tcp()
        }
        // Reached for the ones not built in.
        #[allow(unreachable_patterns)]
        "rdma" | "af-xdp" | "dpdk" => Err(unavailable(format!(
            "{name} is not compiled into this library (build neo-c with --features {name})"
        ))),
        other => Err(NeoError::new(
            NeoCode::NeoErrInvalidArgument,
            format!("unknown transport `{other}` (tcp, rdma, af-xdp, dpdk, auto)"),
        )),
    }
}

/// `host:port`, or a cluster's brokers comma-separated: the first is dialled
/// first, the others when it cannot be reached (leaders are then found
/// through the metadata).
fn resolve(bootstrap: &str) -> Result<Vec<SocketAddr>, NeoError> {
    let bad = |b: &str| {
        NeoError::new(
            NeoCode::NeoErrInvalidArgument,
            format!("`{b}` is not host:port"),
        )
    };
    let all = bootstrap
        .split(',')
        .map(str::trim)
        .filter(|b| !b.is_empty())
        .map(|b| {
            b.to_socket_addrs()
                .ok()
                .and_then(|mut a| a.next())
                .ok_or_else(|| bad(b))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if all.is_empty() {
        return Err(bad(bootstrap));
    }
    Ok(all)
}

fn connect_config(addrs: &[SocketAddr]) -> ConnectConfig {
    let mut c = ConnectConfig::new(addrs[0]);
    c.bootstrap = addrs[1..].to_vec();
    c.request_timeout = Duration::from_secs(30);
    c
}

/// A delivery callback: called once per record from `neo_producer_poll` or
/// `neo_producer_flush`, on the caller's thread. `err` is NULL on success
/// and lent for the call only.
pub type NeoDeliveryCb = Option<
    extern "C" fn(
        opaque: *mut c_void,
        topic: *const std::ffi::c_char,
        partition: u32,
        offset: i64,
        err: *const NeoError,
    ),
>;

pub(crate) struct Pending {
    cb: NeoDeliveryCb,
    opaque: *mut c_void,
}

/// A producer: batches, retries and idempotence as the Rust client's.
pub struct NeoProducer {
    inner: Producer<AnyTransport>,
    callbacks: HashMap<u64, Pending>,
    next_tag: u64,
}

/// A producer (idempotent, acks=all) connected to `bootstrap` over `transport`.
pub fn connect_producer(
    bootstrap: &str,
    transport: &str,
    options: Option<&str>,
) -> Result<Producer<AnyTransport>, NeoError> {
    let addrs = resolve(bootstrap)?;
    let t = open_transport(transport, options, addrs[0])?;
    Producer::connect(t, connect_config(&addrs), ProducerConfig::default())
        .map_err(|e| NeoError::new(NeoCode::NeoErrConnect, e.to_string()))
}

impl NeoProducer {
    pub(crate) fn open(
        bootstrap: &str,
        transport: &str,
        options: Option<&str>,
    ) -> Result<Self, NeoError> {
        let inner = connect_producer(bootstrap, transport, options)?;
        Ok(Self {
            inner,
            callbacks: HashMap::new(),
            next_tag: 1,
        })
    }

    pub(crate) fn send(
        &mut self,
        topic: &str,
        partition: Option<u32>,
        key: Option<&[u8]>,
        value: &[u8],
        cb: NeoDeliveryCb,
        opaque: *mut c_void,
    ) -> Result<(), NeoError> {
        let tag = self.next_tag;
        self.next_tag += 1;
        self.inner
            .send_tagged(topic, partition, key, value, &[], tag)?;
        if cb.is_some() {
            self.callbacks.insert(tag, Pending { cb, opaque });
        }
        Ok(())
    }

    /// Moves batches along and reports what was delivered; returns the
    /// number of records reported.
    pub(crate) fn poll(&mut self) -> Result<usize, NeoError> {
        self.inner.poll()?;
        Ok(self.report())
    }

    pub(crate) fn flush(&mut self, timeout: Duration) -> Result<usize, NeoError> {
        let r = self.inner.flush(timeout);
        let n = self.report();
        r?;
        Ok(n)
    }

    fn report(&mut self) -> usize {
        let mut n = 0;
        for d in self.inner.take_deliveries() {
            let topic = std::ffi::CString::new(d.topic.as_bytes()).unwrap_or_default();
            let err = d.result.as_ref().err().map(|e| NeoError::from(e.clone()));
            let base = d.result.as_ref().map_or(-1, |(b, _)| *b as i64);
            for (i, tag) in d.tags.iter().enumerate() {
                let Some(p) = self.callbacks.remove(tag) else {
                    continue;
                };
                let offset = if base >= 0 { base + i as i64 } else { -1 };
                ffi::deliver(&p, &topic, d.partition, offset, err.as_ref());
                n += 1;
            }
        }
        n
    }
}

/// A consumer: a member of a group, its partitions assigned by the broker.
pub struct NeoConsumer {
    inner: Option<Consumer<AnyTransport>>,
    buffered: VecDeque<Received>,
}

impl NeoConsumer {
    pub fn subscribe(
        bootstrap: &str,
        transport: &str,
        options: Option<&str>,
        group: &str,
        topics: &[&str],
    ) -> Result<Self, NeoError> {
        let addrs = resolve(bootstrap)?;
        if topics.is_empty() {
            return Err(NeoError::new(
                NeoCode::NeoErrInvalidArgument,
                "subscribe to at least one topic",
            ));
        }
        let t = open_transport(transport, options, addrs[0])?;
        let cfg = ConsumerConfig::group(group, topics);
        let inner = Consumer::subscribe(t, connect_config(&addrs), cfg)
            .map_err(|e| NeoError::new(NeoCode::NeoErrConnect, e.to_string()))?;
        Ok(Self {
            inner: Some(inner),
            buffered: VecDeque::new(),
        })
    }

    fn consumer(&mut self) -> Result<&mut Consumer<AnyTransport>, NeoError> {
        self.inner
            .as_mut()
            .ok_or_else(|| NeoError::new(NeoCode::NeoErrTransport, "the consumer is closed"))
    }

    /// The next record, waiting up to `timeout`; `None` when none came.
    pub fn poll(&mut self, timeout: Duration) -> Result<Option<Received>, NeoError> {
        if self.buffered.is_empty() {
            let got = self.consumer()?.poll(timeout)?;
            self.buffered.extend(got);
        }
        Ok(self.buffered.pop_front())
    }

    /// Records fetched but not yet handed out go back to the broker's side:
    /// the position moves back to the first of them per partition, so a
    /// commit never covers a record the caller has not seen.
    fn rewind(&mut self) -> Result<(), NeoError> {
        let mut first: HashMap<(std::sync::Arc<str>, u32), u64> = HashMap::new();
        for r in self.buffered.drain(..) {
            first
                .entry((r.topic.clone(), r.partition))
                .or_insert(r.offset);
        }
        let c = self.consumer()?;
        for ((topic, partition), offset) in first {
            c.seek(&topic, partition, offset);
        }
        Ok(())
    }

    /// Commits the positions of the records handed out so far.
    pub fn commit(&mut self) -> Result<(), NeoError> {
        self.rewind()?;
        self.consumer()?.commit().map_err(Into::into)
    }

    /// Leaves the group, committing the records handed out.
    pub fn close(&mut self) -> Result<(), NeoError> {
        if self.inner.is_none() {
            return Ok(());
        }
        self.rewind()?;
        match self.inner.take() {
            Some(c) => c.close().map_err(Into::into),
            None => Ok(()),
        }
    }
}
