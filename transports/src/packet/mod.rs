//! The userspace packet stack shared by every raw-frame backend (AF_XDP, DPDK):
//! Ethernet, ARP, IPv4 and UDP ([`wire`]); Neo's reliable-messaging header
//! ([`proto`]); per-session reliability ([`session`]); the sans-IO [`engine`];
//! the [`Transport`](crate::Transport) over an engine and a [`Phy`](crate::Phy)
//! ([`transport`]); and the deterministic fault-injecting link used to test it
//! all ([`sim`]). `docs/packet-engine.md` is the specification.

pub mod engine;
pub mod proto;
pub mod session;
pub mod sim;
pub mod transport;
pub mod wire;

pub use engine::{Engine, EngineConfig, EngineStats};
pub use transport::{Clock, EngineTransport, SystemClock};
