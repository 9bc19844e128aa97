//! The broker on a Neo RPC server: its methods registered (`methods`, each
//! behind the access checks of [`crate::access`]), and the poll loop that
//! runs handlers to completion and then sends the answers that became due
//! (durable acks, long-poll fetches, completed rebalances, answers held for
//! a quota). In a cluster the same loop also fetches, as a follower, from
//! partition leaders over the same transport (`replication::fetcher`).
//!
//! One thread runs the loop; the handlers and the loop share the [`Broker`]
//! through a mutex that only that thread takes on the data path (the admin
//! endpoint takes it briefly for status), so it is never contended there.

use std::io;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use neo_transports::rpc::{Deferred, Server};
use neo_transports::Transport;

use crate::access::Access;
use crate::broker::Broker;
use crate::protocol::BrokerError;
use crate::security::Security;
use methods::SharedAccess;

mod cluster_methods;
mod methods;

/// Longest idle wait while answers are owed (acks waiting for the flusher).
const PENDING_WAIT: Duration = Duration::from_micros(200);
/// Longest idle wait otherwise (bounds how late `stop` is noticed).
const IDLE_WAIT: Duration = Duration::from_millis(20);

pub type SharedBroker = Arc<Mutex<Broker>>;

/// Locks the broker; a handler that panicked cannot leave it half-changed
/// in a way a later request could not cope with, so poison is ignored.
pub fn lock(b: &Mutex<Broker>) -> MutexGuard<'_, Broker> {
    b.lock().unwrap_or_else(|p| p.into_inner())
}

/// How often the loop publishes its readings.
const PUBLISH_EVERY: Duration = Duration::from_millis(500);

/// What the poll loop publishes for the admin endpoint: the transport and
/// the RPC server belong to the loop's thread, so others read copies.
#[derive(Debug, Clone, Default)]
pub struct LoopReadings {
    pub transport: &'static str,
    pub rpc: neo_transports::rpc::ServerStats,
    /// The transport's counters, by name.
    pub transport_counters: Vec<(&'static str, u64)>,
    pub open_connections: Option<usize>,
    /// Set once the loop runs (the broker is serving); cleared when it stops.
    pub serving: bool,
}

pub type Published = Arc<Mutex<LoopReadings>>;

/// The broker served on one transport.
pub struct BrokerService<T: Transport> {
    server: Server<T>,
    broker: SharedBroker,
    access: SharedAccess,
    due: Vec<(Deferred, Vec<u8>)>,
    published: Option<Published>,
}

fn publish<T: Transport>(server: &mut Server<T>, to: &Published, serving: bool) {
    let r = LoopReadings {
        transport: server.transport().name(),
        rpc: server.stats().clone(),
        transport_counters: server.transport().counters(),
        open_connections: server.transport().open_connections(),
        serving,
    };
    *to.lock().unwrap_or_else(|p| p.into_inner()) = r;
}

/// Transport events and handlers, then the answers now due (held back
/// while their connection is throttled for a quota).
fn round<T: Transport>(
    server: &mut Server<T>,
    broker: &SharedBroker,
    access: &SharedAccess,
    due: &mut Vec<(Deferred, Vec<u8>)>,
) -> io::Result<usize> {
    let mut n = server.poll_once()?;
    let now = Instant::now();
    {
        let mut b = lock(broker);
        b.tick(now, due);
        n += b.drive_fetchers(now, server);
    }
    if access.active {
        let mut a = access.lock();
        let mut i = 0;
        while i < due.len() {
            match a.throttled(due[i].0.conn(), now) {
                Some(until) => {
                    let (d, body) = due.swap_remove(i);
                    a.hold(until, d, body);
                }
                None => i += 1,
            }
        }
        a.release(now, due);
    }
    let done = due.len();
    for (call, body) in due.drain(..) {
        server.complete(call, Ok(&body));
    }
    Ok(n + done)
}

impl<T: Transport> BrokerService<T> {
    /// Registers every broker method on `server`, security off.
    pub fn new(server: Server<T>, broker: SharedBroker) -> Result<Self, String> {
        Self::with_security(server, broker, Arc::new(Security::off()))
    }

    /// Registers every broker method on `server`, each behind `security`'s
    /// checks (identity, ACLs, quotas).
    pub fn with_security(
        mut server: Server<T>,
        broker: SharedBroker,
        security: Arc<Security>,
    ) -> Result<Self, String> {
        let access = SharedAccess::new(Access::new(security));
        methods::register(&mut server, &broker, &access)?;
        // A follower's fetches from its leaders are this server's own calls.
        let weak = Arc::downgrade(&broker);
        server.on_outbound(move |conn, outcome| {
            if let Some(b) = weak.upgrade() {
                lock(&b).on_fetch_outcome(conn, outcome);
            }
        });
        Ok(Self {
            server,
            broker,
            access,
            due: Vec::new(),
            published: None,
        })
    }

    /// Publishes the loop's readings to `to` while [`Self::run`] runs
    /// (every 0.5 s, and when it starts and stops).
    pub fn publish_to(&mut self, to: Published) {
        self.published = Some(to);
    }

    pub fn broker(&self) -> &SharedBroker {
        &self.broker
    }

    pub fn server(&mut self) -> &mut Server<T> {
        &mut self.server
    }

    /// One round: transport events and handlers, then the answers now due.
    /// Returns the work done (0: idle).
    pub fn poll_once(&mut self) -> io::Result<usize> {
        round(&mut self.server, &self.broker, &self.access, &mut self.due)
    }

    /// Runs until `stop` is set, on the server's poll loop: spinning while
    /// busy, then backing off to short waits (bounded tighter while answers
    /// are owed).
    pub fn run(&mut self, stop: &AtomicBool) -> io::Result<()> {
        let Self {
            server,
            broker,
            access,
            due,
            published,
        } = self;
        if let Some(p) = published {
            publish(server, p, true);
        }
        let mut last = Instant::now();
        let result = server.run_with(
            stop,
            |srv| {
                let n = round(srv, broker, access, due)?;
                if let Some(p) = published {
                    if last.elapsed() >= PUBLISH_EVERY {
                        last = Instant::now();
                        publish(srv, p, true);
                    }
                }
                Ok(n)
            },
            || {
                let pending = lock(broker).has_pending();
                let held = match access.active {
                    true => access.lock().next_release(Instant::now()),
                    false => None,
                };
                match (pending, held) {
                    (true, _) => PENDING_WAIT,
                    (false, Some(d)) => d.clamp(PENDING_WAIT, IDLE_WAIT),
                    (false, None) => IDLE_WAIT,
                }
            },
        );
        if let Some(p) = published {
            publish(server, p, false);
        }
        result
    }

    /// Stops serving and closes the broker's logs (sealed and synced). Fails
    /// if another holder of the broker (an admin endpoint) still has it.
    pub fn shutdown(self) -> Result<(), BrokerError> {
        let Self { server, broker, .. } = self;
        drop(server);
        match Arc::try_unwrap(broker) {
            Ok(m) => m.into_inner().unwrap_or_else(|p| p.into_inner()).close(),
            Err(_) => Err(BrokerError::Storage(
                "the broker is still shared; logs not closed cleanly".into(),
            )),
        }
    }
}
