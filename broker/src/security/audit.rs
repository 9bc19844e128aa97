//! The audit log: one JSON object per line, appended to a file (mode 0600
//! when created), for every authentication and authorization decision.
//!
//! ```text
//! {"ts":"2025-01-31T09:15:02.123Z","event":"authenticate","principal":"User:alice","peer":"10.0.0.7:53124","listener":"kafka","mechanism":"SCRAM-SHA-256","outcome":"success","reason":"authenticated"}
//! {"ts":"2025-01-31T09:15:02.140Z","event":"authorize","principal":"User:alice","peer":"10.0.0.7:53124","listener":"kafka","operation":"Write","resource":"Topic:orders","allowed":true,"reason":"allowed by Allow User:alice Write Topic:orders (literal)"}
//! ```
//!
//! Callers serialize their event and hand the line to a bounded channel; a
//! writer thread appends what has arrived in one write and flushes whenever
//! the channel is momentarily empty. A full channel blocks the caller: an
//! event is never dropped silently. A failed write counts its events in
//! [`AuditStats::write_errors`] and is logged with `tracing::error!` once
//! per kind of error. Dropping the log (or [`AuditLog::close`]) writes what
//! is queued, syncs the file and joins the thread.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::SystemTime;

use serde::Serialize;

use super::acl::{Decision, Operation, ResourceType};
use super::principal::Principal;

/// Events queued between callers and the writer by default.
pub const DEFAULT_CAPACITY: usize = 4096;
/// A batch larger than this is written without waiting for a quiet channel.
const MAX_BATCH_BYTES: usize = 1 << 20;

/// Which listener a connection came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Listener {
    Kafka,
    Neo,
}

/// How an authentication ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Success,
    Failure,
}

/// One audited event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum AuditEvent {
    Authenticate {
        /// The principal claimed or established; `null` when the client's
        /// message did not name a valid one.
        principal: Option<Principal>,
        peer: SocketAddr,
        listener: Listener,
        /// `SCRAM-SHA-256`, `SCRAM-SHA-512`, `PLAIN`, ...
        mechanism: String,
        outcome: Outcome,
        reason: String,
    },
    Authorize {
        principal: Principal,
        peer: SocketAddr,
        listener: Listener,
        operation: Operation,
        /// `<Type>:<name>`, e.g. `Topic:orders`.
        resource: String,
        allowed: bool,
        reason: String,
    },
}

impl AuditEvent {
    /// The event for an authorizer's `decision`.
    pub fn authorize(
        principal: &Principal,
        peer: SocketAddr,
        listener: Listener,
        operation: Operation,
        resource: ResourceType,
        name: &str,
        decision: &Decision,
    ) -> Self {
        AuditEvent::Authorize {
            principal: principal.clone(),
            peer,
            listener,
            operation,
            resource: format!("{resource}:{name}"),
            allowed: decision.allowed,
            reason: decision.reason.clone(),
        }
    }
}

#[derive(Serialize)]
struct Line<'a> {
    ts: String,
    #[serde(flatten)]
    event: &'a AuditEvent,
}

/// The log's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuditStats {
    /// Events written to the file.
    pub events_written: u64,
    /// Events lost to a failed write (or a writer that is gone).
    pub write_errors: u64,
}

#[derive(Default)]
struct Counters {
    written: AtomicU64,
    errors: AtomicU64,
}

enum Msg {
    Line(Vec<u8>),
    Flush(SyncSender<()>),
}

struct Active {
    tx: Option<SyncSender<Msg>>,
    thread: Option<JoinHandle<()>>,
    counters: Arc<Counters>,
}

/// The audit log; share it between threads (`Arc<AuditLog>`).
pub struct AuditLog {
    active: Option<Active>,
}

impl AuditLog {
    /// A log that records nothing (auditing off).
    pub fn disabled() -> Self {
        Self { active: None }
    }

    /// Appends to `path` (created with mode 0600), with a queue of
    /// [`DEFAULT_CAPACITY`] events.
    pub fn open(path: impl AsRef<Path>) -> io::Result<Self> {
        Self::open_with_capacity(path, DEFAULT_CAPACITY)
    }

    /// [`AuditLog::open`] with a queue of `capacity` events (at least 1).
    pub fn open_with_capacity(path: impl AsRef<Path>, capacity: usize) -> io::Result<Self> {
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path.as_ref())?;
        let (tx, rx) = mpsc::sync_channel(capacity.max(1));
        let counters = Arc::new(Counters::default());
        let thread = std::thread::Builder::new()
            .name("neo-audit".into())
            .spawn({
                let counters = Arc::clone(&counters);
                move || writer(file, rx, &counters)
            })?;
        Ok(Self {
            active: Some(Active {
                tx: Some(tx),
                thread: Some(thread),
                counters,
            }),
        })
    }

    pub fn is_enabled(&self) -> bool {
        self.active.is_some()
    }

    /// Queues `event`, stamped with the current time; blocks while the
    /// queue is full.
    pub fn record(&self, event: &AuditEvent) {
        let Some(active) = &self.active else { return };
        let line = Line {
            ts: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            event,
        };
        let mut bytes = match serde_json::to_vec(&line) {
            Ok(b) => b,
            Err(e) => {
                // Not reachable with these types; counted, never silent.
                active.counters.errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, "audit event not serializable");
                return;
            }
        };
        bytes.push(b'\n');
        if !send(active, Msg::Line(bytes)) {
            active.counters.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Waits until everything queued before this call is written.
    pub fn flush(&self) {
        let Some(active) = &self.active else { return };
        let (ack_tx, ack_rx) = mpsc::sync_channel(1);
        if send(active, Msg::Flush(ack_tx)) {
            let _ = ack_rx.recv();
        }
    }

    pub fn stats(&self) -> AuditStats {
        self.active
            .as_ref()
            .map_or_else(AuditStats::default, |a| AuditStats {
                events_written: a.counters.written.load(Ordering::Relaxed),
                write_errors: a.counters.errors.load(Ordering::Relaxed),
            })
    }

    /// Writes what is queued, syncs the file and stops the writer; the
    /// final counters.
    pub fn close(mut self) -> AuditStats {
        self.shutdown();
        self.stats()
    }

    fn shutdown(&mut self) {
        if let Some(active) = &mut self.active {
            drop(active.tx.take());
            if let Some(thread) = active.thread.take() {
                if thread.join().is_err() {
                    tracing::error!("the audit writer thread panicked");
                }
            }
        }
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn send(active: &Active, msg: Msg) -> bool {
    let sent = active.tx.as_ref().is_some_and(|tx| tx.send(msg).is_ok());
    if !sent {
        tracing::error!("audit writer is gone; event lost");
    }
    sent
}

/// Lines waiting to be written, and the kinds of write error seen.
struct Batch<'a> {
    file: File,
    counters: &'a Counters,
    bytes: Vec<u8>,
    events: u64,
    seen: HashSet<io::ErrorKind>,
}

impl Batch<'_> {
    fn write(&mut self) {
        if self.events == 0 {
            return;
        }
        let result = self
            .file
            .write_all(&self.bytes)
            .and_then(|()| self.file.flush());
        match result {
            Ok(()) => self
                .counters
                .written
                .fetch_add(self.events, Ordering::Relaxed),
            Err(e) => {
                if self.seen.insert(e.kind()) {
                    tracing::error!(error = %e, "audit log write failed; events lost (logged once per kind of error)");
                }
                self.counters
                    .errors
                    .fetch_add(self.events, Ordering::Relaxed)
            }
        };
        self.bytes.clear();
        self.events = 0;
    }
}

/// The writer thread: batches what has arrived, writes when the channel is
/// momentarily empty (or the batch is large), exits when every sender is
/// gone.
fn writer(file: File, rx: Receiver<Msg>, counters: &Counters) {
    let mut batch = Batch {
        file,
        counters,
        bytes: Vec::new(),
        events: 0,
        seen: HashSet::new(),
    };
    'outer: while let Ok(mut msg) = rx.recv() {
        loop {
            match msg {
                Msg::Line(line) => {
                    batch.bytes.extend_from_slice(&line);
                    batch.events += 1;
                    if batch.bytes.len() >= MAX_BATCH_BYTES {
                        batch.write();
                    }
                }
                Msg::Flush(ack) => {
                    batch.write();
                    let _ = ack.send(());
                }
            }
            msg = match rx.try_recv() {
                Ok(m) => m,
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => break 'outer,
            };
        }
        batch.write();
    }
    batch.write();
    if let Err(e) = batch.file.sync_data() {
        tracing::error!(error = %e, "audit log sync on close failed");
    }
}

#[cfg(test)]
#[path = "audit_tests.rs"]
mod tests;
