//! `neo-broker` owns the broker: topics and partitions on `neo-storage` logs,
//! produce (acks 0/1/all, the idempotent producer), fetch with long-poll,
//! offset lookups, consumer groups with broker-side assignment and durable
//! offset commits — all as request handlers on Neo RPC, so they run over any
//! `neo_transports::Transport` — and the Rust [`client`].
//!
//! * [`protocol`] — requests, responses and the typed [`BrokerError`].
//! * [`records`] — the record layout inside a batch, and compression.
//! * [`broker`] — the state and request logic, free of I/O scheduling.
//! * [`service`] — the broker on an RPC server's poll loop.
//! * [`access`] — identity, ACL checks and quota holds on the Neo protocol.
//! * [`security`] — credentials, SASL (SCRAM, PLAIN), ACLs, audit, quotas.
//! * [`groups`] — membership, rebalances and the assignors.
//! * [`client`] — admin, producer and consumer.
//! * [`kafka`] — the Kafka wire protocol listener over the same broker.
//! * [`kafka_batch`] — Kafka record batches stored as they arrived.
//! * [`metrics`] — Prometheus metrics: latency histograms and scrape-time readings.
//!
//! `docs/broker.md` states the model and the guarantees.

pub mod access;
pub mod broker;
pub mod client;
pub mod groups;
pub mod kafka;
pub mod kafka_batch;
pub mod metrics;
pub mod offsets;
pub mod partition;
mod producer_ids;
pub mod protocol;
pub mod records;
pub mod replication;
pub mod security;
pub mod service;
pub mod topics;

pub use broker::{Broker, BrokerConfig, BrokerStats};
pub use protocol::BrokerError;
pub use service::{BrokerService, SharedBroker};
