//! `neo-transports` owns Neo's data path below the broker:
//!
//! * [`transport`] — the message-level [`Transport`] trait every backend implements
//!   (TCP today; RDMA and the packet engine over AF_XDP/DPDK later), with its
//!   completion-style events and lent buffers.
//! * [`phy`] — the frame-level [`Phy`] trait that raw-frame backends (AF_XDP, DPDK,
//!   the in-memory link) implement underneath the shared packet engine.
//! * [`tcp`] — the kernel-socket backend: non-blocking, many connections per poll
//!   loop, length-delimited messages, optionally TLS 1.3 (with mutual TLS).
//! * [`tls`] — TLS 1.3 configuration (rustls, ring): PEM certificates and keys,
//!   client-certificate verification, certificate reload without restart, the
//!   principal (subject CN) of a peer certificate.
//! * [`frame`] — the Neo frame ("Qiss") codec: versioned header with CRC32C.
//! * [`rpc`] — Neo RPC over any `Transport`: named methods, correlation ids,
//!   deadlines, per-connection credits, typed error frames.
//! * [`backoff`] — the adaptive busy-poll back-off every poll loop uses.
//!
//! `docs/architecture.md` at the repository root explains why the layers are cut
//! this way.

#[cfg(all(feature = "af-xdp", target_os = "linux"))]
pub mod af_xdp;
pub mod backoff;
#[cfg(feature = "dpdk")]
pub mod dpdk;
pub mod frame;
pub mod packet;
pub mod phy;
#[cfg(feature = "rdma")]
pub mod rdma;
pub mod rpc;
pub mod tcp;
pub mod tls;
pub mod transport;

pub use phy::Phy;
pub use transport::{ConnId, Event, EventSink, SendError, Transport, Tx};
