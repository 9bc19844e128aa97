//! The RDMA verbs backend (feature `rdma`): reliable-connected queue pairs
//! set up through rdma_cm, over any verbs device — RoCE and InfiniBand NICs,
//! SR-IOV virtual functions, soft-RoCE (rxe).
//!
//! Per connection: `recv_slots` receive buffers of `slot_size` bytes posted
//! before the connection completes and re-posted as soon as each is read, and
//! `send_slots` send buffers; one registered region each. A message is one
//! SEND per `slot_size - 4` bytes (a 4-byte header marks fragments), so large
//! messages are fragmented, never truncated. Small sends go inline.
//!
//! **Flow control.** A sender may only SEND into a receive buffer the peer has
//! posted: credits = peer's slots − (sends made − slots the peer has freed).
//! The peer tells how many it has freed by RDMA WRITE of a running count into
//! an 8-byte credit word of ours (registered for remote write; its address and
//! key travel in each side's first message, the hello). Credit updates thus
//! consume no receive buffer and cannot deadlock; a receiver is never overrun.
//!
//! **Completions.** One completion queue per device serves every connection
//! on it; [`RdmaTransport::poll`] reaps it without blocking; `wait` arms it
//! and sleeps on its completion channel and on rdma_cm's event channel.
//!
//! Unsafe verbs calls live in [`verbs`] only.

mod conn;
mod datapath;
mod devices;
mod verbs;

pub use devices::{devices, usable, DeviceInfo, PortInfo};

use std::collections::VecDeque;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use mio::unix::SourceFd;
use sideway::ibverbs::queue_pair::QueuePairState;
use sideway::ibverbs::AccessFlags;
use sideway::rdmacm::communication_manager::{
    ConnectionParameter, Event as CmEvent, EventChannel, EventType, Identifier, PortSpace,
};
use slab::Slab;

use crate::transport::{CloseReason, ConnId, EventSink, Transport, Tx};
use conn::*;
use verbs::Completion;

/// A verbs or rdma_cm call failed, or no device can serve.
#[derive(Debug, thiserror::Error)]
pub enum RdmaError {
    #[error("{call}: {detail}")]
    Verbs { call: &'static str, detail: String },
    #[error("RDMA is not available here: {0}")]
    Unavailable(String),
}

impl RdmaError {
    fn verbs(call: &'static str, e: impl std::fmt::Display) -> Self {
        Self::Verbs {
            call,
            detail: e.to_string(),
        }
    }
}

impl From<RdmaError> for io::Error {
    fn from(e: RdmaError) -> Self {
        io::Error::other(e.to_string())
    }
}

/// Backend settings. Both ends should agree on `slot_size` (each side's hello
/// carries its own; a peer with smaller slots is refused).
#[derive(Debug, Clone)]
pub struct RdmaConfig {
    pub recv_slots: usize,
    pub send_slots: usize,
    /// Bytes per receive/send buffer, header included.
    pub slot_size: usize,
    /// Sends up to this many bytes are copied into the work request.
    pub max_inline: usize,
    pub max_message: usize,
    pub max_connections: usize,
    /// Bytes a connection may queue beyond its credits before sends are refused.
    pub max_pending: usize,
    pub resolve_timeout: Duration,
}

impl Default for RdmaConfig {
    fn default() -> Self {
        Self {
            recv_slots: 32,
            send_slots: 32,
            slot_size: 64 << 10,
            max_inline: 128,
            max_message: 16 << 20,
            max_connections: 256,
            max_pending: 64 << 20,
            resolve_timeout: Duration::from_secs(2),
        }
    }
}

/// The RDMA transport: one rdma_cm event channel, the listeners, the devices
/// the connections run on, and the connections.
pub struct RdmaTransport {
    conns: Conns,
    channel: Arc<EventChannel>,
    listeners: Vec<Arc<Identifier>>,
    poller: mio::Poll,
    events: mio::Events,
    registered: usize,
    wcs: Vec<Completion>,
    /// Completions reaped by `wait`'s last look before sleeping.
    backlog: Vec<Completion>,
    scratch: Vec<u8>,
}

const CM_TOKEN: mio::Token = mio::Token(usize::MAX);

impl RdmaTransport {
    /// Opens rdma_cm. Fails with [`RdmaError::Unavailable`] where the node has
    /// no verbs support (no rdma-core, no device, or a kernel without it).
    pub fn new(cfg: RdmaConfig) -> Result<Self, RdmaError> {
        if cfg.slot_size <= HEADER + HELLO_LEN || cfg.slot_size > u16::MAX as usize * 1024 {
            return Err(RdmaError::Unavailable(format!(
                "slot_size {} out of range",
                cfg.slot_size
            )));
        }
        let devices = devices().map_err(RdmaError::Unavailable)?;
        if devices.is_empty() {
            return Err(RdmaError::Unavailable("no RDMA device".into()));
        }
        let channel = EventChannel::new()
            .map_err(|e| RdmaError::Unavailable(format!("rdma_create_event_channel: {e}")))?;
        channel
            .set_nonblocking(true)
            .map_err(|e| RdmaError::verbs("rdma_cm channel O_NONBLOCK", e))?;
        let poller = mio::Poll::new().map_err(|e| RdmaError::verbs("epoll", e))?;
        poller
            .registry()
            .register(
                &mut SourceFd(&channel.as_raw_fd()),
                CM_TOKEN,
                mio::Interest::READABLE,
            )
            .map_err(|e| RdmaError::verbs("epoll add", e))?;
        Ok(Self {
            conns: Conns {
                cfg,
                table: Slab::new(),
                generations: Vec::new(),
                devices: Vec::new(),
                closed: Vec::new(),
                pump_keys: Vec::new(),
                announced: Vec::new(),
                stats: Stats::default(),
            },
            channel,
            listeners: Vec::new(),
            poller,
            events: mio::Events::with_capacity(16),
            registered: 0,
            wcs: Vec::with_capacity(256),
            backlog: Vec::new(),
            scratch: Vec::new(),
        })
    }

    fn new_conn(
        &mut self,
        id: Arc<Identifier>,
        outgoing: bool,
        peer: SocketAddr,
    ) -> Option<ConnId> {
        let c = &mut self.conns;
        if c.table.len() >= c.cfg.max_connections {
            return None;
        }
        let entry = c.table.vacant_entry();
        let index = entry.key();
        if c.generations.len() <= index {
            c.generations.resize(index + 1, 0);
        }
        c.generations[index] = c.generations[index].wrapping_add(1) & 0xf_ffff;
        let generation = c.generations[index];
        let handle = ConnId::new(index as u32, generation);
        id.setup_context(((index as u64) << 32) | generation as u64);
        entry.insert(Conn {
            generation,
            id,
            state: if outgoing {
                State::Resolving
            } else {
                State::Connecting
            },
            outgoing,
            peer,
            device: None,
            res: None,
            peer_hello: None,
            sent: 0,
            reposted: 0,
            written: 0,
            free_send: (0..c.cfg.send_slots).rev().collect(),
            sq: 0,
            pending: VecDeque::new(),
            pending_bytes: 0,
            reassembly: Vec::new(),
            close_requested: false,
            stalled: false,
        });
        Some(handle)
    }

    /// The device of `id`, opened (and its channel watched) on first use.
    fn device_for(&mut self, id: &Identifier) -> Result<usize, RdmaError> {
        let ctx = id
            .get_device_context()
            .ok_or_else(|| RdmaError::Unavailable("rdma_cm gave no device for the route".into()))?;
        let c = &mut self.conns;
        if let Some(i) = c
            .devices
            .iter()
            .position(|d| Arc::ptr_eq(d.context(), &ctx))
        {
            return Ok(i);
        }
        let per_conn = c.cfg.recv_slots + c.cfg.send_slots + 16;
        let cqe = (per_conn * c.cfg.max_connections).min(1 << 16) as u32;
        let dev = verbs::Device::open(ctx, cqe)?;
        let i = c.devices.len();
        self.poller
            .registry()
            .register(
                &mut SourceFd(&dev.channel_fd()),
                mio::Token(i),
                mio::Interest::READABLE,
            )
            .map_err(|e| RdmaError::verbs("epoll add", e))?;
        self.registered += 1;
        c.devices.push(dev);
        Ok(i)
    }

    /// Queue pair and buffers for `conn`, receives posted, QP in INIT.
    fn setup_qp(&mut self, conn: ConnId) -> Result<(), RdmaError> {
        let id = self.conns.table[conn.index()].id.clone();
        let dev = self.device_for(&id)?;
        let c = &mut self.conns;
        let cfg = c.cfg.clone();
        let mut res = verbs::Conn::new(
            &c.devices[dev],
            cfg.recv_slots,
            cfg.send_slots,
            cfg.slot_size,
            cfg.max_inline,
        )?;
        modify(&id, &mut res, QueuePairState::Init)?;
        for slot in 0..cfg.recv_slots {
            res.post_recv(slot, wr_id(Kind::Recv, conn, slot))?;
        }
        let e = &mut c.table[conn.index()];
        e.device = Some(dev);
        e.res = Some(res);
        Ok(())
    }

    fn on_cm_event(&mut self, ev: CmEvent) {
        let kind = ev.event_type();
        let status = ev.status();
        if kind == EventType::ConnectRequest {
            let id = ev.cm_id();
            let _ = ev.ack();
            if let Some(id) = id {
                self.accept(id);
            }
            return;
        }
        let key = ev.cm_id().and_then(|id| id.get_context::<u64>());
        let _ = ev.ack();
        let Some(key) = key else { return };
        let (index, generation) = ((*key >> 32) as usize, *key as u32);
        let Some(e) = self
            .conns
            .table
            .get(index)
            .filter(|e| e.generation == generation)
        else {
            return;
        };
        let conn = e.handle(index);
        let id = e.id.clone();
        let timeout = self.conns.cfg.resolve_timeout;
        let failed = |kind: io::ErrorKind| CloseReason::ConnectFailed(kind);
        match kind {
            EventType::AddressResolved => {
                if let Err(e) = id.resolve_route(timeout) {
                    tracing::debug!(error = %e, "rdma_resolve_route");
                    self.conns
                        .finish(conn, failed(io::ErrorKind::HostUnreachable));
                }
            }
            EventType::RouteResolved => {
                let res = self.setup_qp(conn).and_then(|()| {
                    let qpn = self.conns.table[index]
                        .res
                        .as_ref()
                        .map_or(0, |r| r.qp_number());
                    let mut p = ConnectionParameter::default();
                    p.setup_qp_number(qpn);
                    id.connect(p)
                        .map_err(|e| RdmaError::verbs("rdma_connect", e))
                });
                match res {
                    Ok(()) => self.conns.table[index].state = State::Connecting,
                    Err(e) => {
                        tracing::warn!(error = %e, "RDMA connect setup failed");
                        self.conns.finish(conn, failed(io::ErrorKind::Other));
                    }
                }
            }
            EventType::ConnectResponse => {
                let e = &mut self.conns.table[index];
                let res = match e.res.as_mut() {
                    Some(r) => modify(&id, r, QueuePairState::ReadyToReceive)
                        .and_then(|()| modify(&id, r, QueuePairState::ReadyToSend))
                        .and_then(|()| {
                            id.establish()
                                .map_err(|e| RdmaError::verbs("rdma_establish", e))
                        }),
                    None => Err(RdmaError::Unavailable("no queue pair".into())),
                };
                match res {
                    Ok(()) => self.conns.opened(conn),
                    Err(e) => {
                        tracing::warn!(error = %e, "RDMA connect completion failed");
                        self.conns.finish(conn, failed(io::ErrorKind::Other));
                    }
                }
            }
            EventType::Established => self.conns.opened(conn),
            EventType::AddressError | EventType::RouteError | EventType::Unreachable => self
                .conns
                .finish(conn, failed(io::ErrorKind::HostUnreachable)),
            EventType::Rejected => self
                .conns
                .finish(conn, failed(io::ErrorKind::ConnectionRefused)),
            EventType::ConnectError => {
                tracing::debug!(status, "rdma_cm connect error");
                self.conns.finish(conn, failed(io::ErrorKind::Other))
            }
            EventType::Disconnected | EventType::DeviceRemoval => {
                let e = &self.conns.table[index];
                let reason = if e.close_requested {
                    CloseReason::Local
                } else if !e.reassembly.is_empty() {
                    CloseReason::Truncated {
                        pending: e.reassembly.len(),
                    }
                } else if kind == EventType::DeviceRemoval {
                    CloseReason::Io(io::ErrorKind::NotConnected)
                } else {
                    CloseReason::PeerClosed
                };
                self.conns.finish(conn, reason);
            }
            _ => {}
        }
    }

    /// Server side of a connection request: QP up to RTS, then accept.
    fn accept(&mut self, id: Arc<Identifier>) {
        let peer = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0));
        let Some(conn) = self.new_conn(id.clone(), false, peer) else {
            tracing::warn!("RDMA connection refused: at max_connections");
            let _ = id.disconnect();
            return;
        };
        let res = self.setup_qp(conn).and_then(|()| {
            let e = &mut self.conns.table[conn.index()];
            let r = e.res.as_mut().expect("set up above");
            modify(&id, r, QueuePairState::ReadyToReceive)?;
            modify(&id, r, QueuePairState::ReadyToSend)?;
            let mut p = ConnectionParameter::default();
            p.setup_qp_number(r.qp_number());
            id.accept(p).map_err(|e| RdmaError::verbs("rdma_accept", e))
        });
        if let Err(e) = res {
            tracing::warn!(error = %e, "RDMA accept failed");
            self.conns.table.remove(conn.index());
        }
    }
}

fn modify(id: &Identifier, res: &mut verbs::Conn, state: QueuePairState) -> Result<(), RdmaError> {
    let mut attr = id
        .get_qp_attr(state)
        .map_err(|e| RdmaError::verbs("rdma_init_qp_attr", e))?;
    if state == QueuePairState::Init {
        // The peer RDMA WRITEs our credit word.
        attr.setup_access_flags(AccessFlags::LocalWrite | AccessFlags::RemoteWrite);
    }
    res.modify(&attr)
}

impl Transport for RdmaTransport {
    fn name(&self) -> &'static str {
        "rdma"
    }

    fn listen(&mut self, addr: SocketAddr) -> io::Result<SocketAddr> {
        if addr.port() == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "RDMA listeners need an explicit port",
            ));
        }
        let id = self
            .channel
            .create_id(PortSpace::Tcp)
            .map_err(|e| io::Error::other(format!("rdma_create_id: {e}")))?;
        id.bind_addr(addr)
            .map_err(|e| io::Error::other(format!("rdma_bind_addr {addr}: {e}")))?;
        id.listen(128)
            .map_err(|e| io::Error::other(format!("rdma_listen {addr}: {e}")))?;
        self.listeners.push(id);
        Ok(addr)
    }

    fn connect(&mut self, addr: SocketAddr) -> io::Result<ConnId> {
        let id = self
            .channel
            .create_id(PortSpace::Tcp)
            .map_err(|e| io::Error::other(format!("rdma_create_id: {e}")))?;
        let conn = self
            .new_conn(id.clone(), true, addr)
            .ok_or_else(|| io::Error::other("RDMA: at max_connections"))?;
        if let Err(e) = id.resolve_addr(None, addr, self.conns.cfg.resolve_timeout) {
            self.conns.table.remove(conn.index());
            return Err(io::Error::new(
                io::ErrorKind::HostUnreachable,
                format!("rdma_resolve_addr {addr}: {e}"),
            ));
        }
        Ok(conn)
    }

    fn poll(&mut self, sink: &mut dyn EventSink) -> io::Result<usize> {
        let mut n = 0;
        // Until no event is left (non-blocking), or the channel failed.
        while let Ok(ev) = self.channel.get_cm_event() {
            self.on_cm_event(ev);
        }
        n += self.deliver_announced(sink);
        n += self.reap_completions(sink)?;
        self.conns.write_credits();
        self.conns.pump_all();
        n += self.deliver_announced(sink);
        Ok(n)
    }

    fn tx(&mut self) -> &mut dyn Tx {
        &mut self.conns
    }

    fn flush(&mut self) -> io::Result<()> {
        self.conns.write_credits();
        self.conns.pump_all();
        Ok(())
    }

    fn wait(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        for d in &mut self.conns.devices {
            d.arm()?;
        }
        // Anything that completed before the arm would not raise an event.
        let mut found = 0;
        for d in &self.conns.devices {
            found += d.poll(&mut self.backlog)?;
        }
        if found > 0 || !self.backlog.is_empty() {
            return Ok(()); // handled by the next poll
        }
        match self.poller.poll(&mut self.events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        for d in &mut self.conns.devices {
            d.drain_channel();
        }
        Ok(())
    }

    fn counters(&self) -> Vec<(&'static str, u64)> {
        let s = &self.conns.stats;
        vec![
            ("sends", s.sends),
            ("receives", s.recvs),
            ("fragments_out", s.fragments),
            ("credit_writes", s.credit_writes),
            ("credit_stalls", s.credit_stalls),
        ]
    }

    fn stats_line(&self) -> String {
        let s = &self.conns.stats;
        format!(
            "sends={} recvs={} fragments={} credit_writes={} credit_stalls={} devices={}{}",
            s.sends,
            s.recvs,
            s.fragments,
            s.credit_writes,
            s.credit_stalls,
            self.conns.devices.len(),
            s.last_error
                .as_ref()
                .map_or(String::new(), |e| format!(" last_error=\"{e}\""))
        )
    }
}
