//! A follower's replica fetcher: one thread per leader this node follows
//! partitions of. It asks the broker which partitions and offsets to fetch,
//! sends one long-polling `ReplicaFetch` to the leader over TCP (outside
//! the broker's lock), then applies the answer under the lock: truncate a
//! diverged log, append the leader's batches byte for byte, note the
//! leader's high watermark. It ends when this node follows nothing from
//! that leader any more; the broker starts another when it does again.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use neo_transports::tcp::{TcpConfig, TcpTransport};

use super::wire::*;
use crate::broker::Broker;
use crate::client::{ConnectConfig, Connection};
use crate::protocol::BrokerError;
use crate::replication::Role;
use crate::service::lock;

/// How long a leader may hold a fetch while it has nothing new.
const MAX_WAIT_MS: u32 = 500;
/// Bytes per fetch answer.
const MAX_BYTES: u32 = 8 << 20;
/// Pause after a failed fetch.
const BACKOFF: Duration = Duration::from_millis(100);

pub struct Fetcher {
    handle: JoinHandle<()>,
    stop: Arc<AtomicBool>,
}

impl Drop for Fetcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl Fetcher {
    pub fn spawn(broker: Weak<Mutex<Broker>>, me: NodeId, leader: NodeId) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let handle = std::thread::Builder::new()
            .name(format!("neo-fetch-from-{leader}"))
            .spawn(move || run(broker, me, leader, s))?;
        Ok(Self { handle, stop })
    }

    pub fn alive(&self) -> bool {
        !self.handle.is_finished()
    }
}

fn resolve(addr: &str) -> Option<SocketAddr> {
    addr.to_socket_addrs().ok()?.next()
}

fn run(broker: Weak<Mutex<Broker>>, me: NodeId, leader: NodeId, stop: Arc<AtomicBool>) {
    let mut conn: Option<(String, Connection<TcpTransport>)> = None;
    let mut out = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let Some(b) = broker.upgrade() else { return };
        let Some((addr, partitions)) = lock(&b).follow_request(leader) else {
            return;
        };
        drop(b);
        if conn.as_ref().is_none_or(|(a, _)| *a != addr) {
            conn = None;
            let Some(sa) = resolve(&addr) else {
                tracing::warn!(leader, %addr, "cannot resolve the leader's address");
                std::thread::sleep(BACKOFF);
                continue;
            };
            let mut cfg = ConnectConfig::new(sa);
            cfg.connect_timeout = Duration::from_secs(1);
            cfg.request_timeout = Duration::from_secs(3);
            cfg.credits = 4;
            let made = TcpTransport::new(TcpConfig::default())
                .map_err(|e| e.to_string())
                .and_then(|t| Connection::connect(t, cfg).map_err(|e| e.to_string()));
            match made {
                Ok(c) => conn = Some((addr.clone(), c)),
                Err(e) => {
                    tracing::debug!(leader, %addr, error = %e, "cannot reach the leader");
                    std::thread::sleep(BACKOFF);
                    continue;
                }
            }
        }
        let Some((_, c)) = conn.as_mut() else {
            continue;
        };
        let req = ReplicaFetch {
            replica: me,
            max_wait_ms: MAX_WAIT_MS,
            max_bytes: MAX_BYTES,
            partitions,
        };
        let body = match postcard::to_stdvec(&req) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "encoding a replica fetch");
                return;
            }
        };
        let timeout = Duration::from_millis(MAX_WAIT_MS as u64 + 2_000);
        if let Err(e) = c.call_raw(super::METHOD_REPLICA_FETCH, &body, timeout, &mut out) {
            tracing::debug!(leader, error = %e, "replica fetch failed");
            conn = None;
            std::thread::sleep(BACKOFF);
            continue;
        }
        let Some(b) = broker.upgrade() else { return };
        let applied = lock(&b).apply_replica(leader, &req.partitions, &out);
        if let Err(e) = applied {
            tracing::warn!(leader, error = %e, "replica fetch answer not applied");
            std::thread::sleep(BACKOFF);
        }
    }
}

impl Broker {
    /// The leader's address and, for each partition this node follows from
    /// `leader`, where to fetch from; `None` when there are none.
    pub(crate) fn follow_request(
        &self,
        leader: NodeId,
    ) -> Option<(String, Vec<ReplicaFetchPartition>)> {
        let c = self.cluster.as_ref()?;
        let addr = c.control.meta().brokers.get(&leader)?.addr.clone();
        let mut parts = Vec::new();
        for (name, t) in self.topics.iter() {
            for (i, p) in t.partitions.iter().enumerate() {
                if let Role::Follower { leader: l, epoch } = p.replica.role {
                    if l == leader {
                        parts.push(ReplicaFetchPartition {
                            topic: name.clone(),
                            partition: i as u32,
                            leader_epoch: epoch,
                            offset: p.end_offset(),
                            last_fetched_epoch: p.last_epoch(),
                        });
                    }
                }
            }
        }
        (!parts.is_empty()).then_some((addr, parts))
    }

    /// Applies a replica-fetch answer to the partitions that still follow
    /// `leader` at the epoch and offset the fetch was made for.
    pub(crate) fn apply_replica(
        &mut self,
        leader: NodeId,
        asked: &[ReplicaFetchPartition],
        answer: &[u8],
    ) -> Result<(), String> {
        let (head, mut rest) =
            postcard::take_from_bytes::<Result<ReplicaFetchHead, BrokerError>>(answer)
                .map_err(|e| format!("undecodable answer: {e}"))?;
        let head = head.map_err(|e| e.to_string())?;
        if head.partitions.len() != asked.len() {
            return Err("the answer names a different number of partitions".into());
        }
        for (fp, got) in asked.iter().zip(head.partitions) {
            let bytes = rest
                .get(..got.len as usize)
                .ok_or("the answer is shorter than its head says")?;
            rest = &rest[got.len as usize..];
            let Ok(p) = self.topics.partition_mut(&fp.topic, fp.partition) else {
                continue;
            };
            let same = matches!(p.replica.role, Role::Follower { leader: l, epoch } if l == leader && epoch == fp.leader_epoch);
            if !same || p.end_offset() != fp.offset {
                continue;
            }
            if let Some(e) = got.error {
                tracing::debug!(topic = %fp.topic, partition = fp.partition, error = %e, "leader refused the fetch");
                continue;
            }
            if let Some((epoch, end)) = got.diverging {
                let leo = p.end_offset();
                let own = p.replica.epochs.end_of(epoch, leo).map_or(end, |(_, e)| e);
                let to = end.min(own).min(leo);
                match p.truncate_replica(to) {
                    Ok(now) => {
                        tracing::warn!(topic = %fp.topic, partition = fp.partition, from = leo, to = now, leader_epoch = epoch, "log diverged from the leader's: truncated")
                    }
                    Err(e) => return Err(format!("truncating {}/{}: {e}", fp.topic, fp.partition)),
                }
                continue;
            }
            let mut at = 0usize;
            while at < bytes.len() {
                let h = neo_storage::batch::parse_header(&bytes[at..], usize::MAX / 2)
                    .map_err(|e| format!("batch from the leader: {}", e.describe()))?;
                let len = h.batch_len as usize;
                let batch = bytes.get(at..at + len).ok_or("a batch cut short")?;
                at += len;
                if h.last_offset() < p.end_offset() {
                    continue;
                }
                p.append_replicated(batch)
                    .map_err(|e| format!("appending to {}/{}: {e}", fp.topic, fp.partition))?;
            }
            let leo = p.end_offset();
            p.replica.follow_hw(got.high_watermark, leo);
        }
        Ok(())
    }
}
