//! The broker on a Neo RPC server: its methods registered, and the poll loop
//! that runs handlers to completion and then sends the answers that became
//! due (durable acks, long-poll fetches, completed rebalances).
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
use serde::{de::DeserializeOwned, Serialize};

use crate::broker::{Answer, Broker};
use crate::protocol::{self, decode_request, encode_result, BrokerError, SERVICE};

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

/// The broker served on one transport.
pub struct BrokerService<T: Transport> {
    server: Server<T>,
    broker: SharedBroker,
    due: Vec<(Deferred, Vec<u8>)>,
}

/// Transport events and handlers, then the answers now due.
fn round<T: Transport>(
    server: &mut Server<T>,
    broker: &SharedBroker,
    due: &mut Vec<(Deferred, Vec<u8>)>,
) -> io::Result<usize> {
    let n = server.poll_once()?;
    lock(broker).tick(Instant::now(), due);
    let done = due.len();
    for (call, body) in due.drain(..) {
        server.complete(call, Ok(&body));
    }
    Ok(n + done)
}

fn simple<T, Req, Resp, F>(
    server: &mut Server<T>,
    broker: &SharedBroker,
    name: &'static str,
    f: F,
) -> Result<(), String>
where
    T: Transport,
    Req: DeserializeOwned,
    Resp: Serialize,
    F: Fn(&mut Broker, Req) -> Result<Resp, BrokerError> + Send + 'static,
{
    let b = broker.clone();
    server
        .register(SERVICE, name, move |call| {
            let result = decode_request::<Req>(call.body(), name).and_then(|r| f(&mut lock(&b), r));
            call.reply(&encode_result(&result))?;
            Ok(())
        })
        .map(drop)
}

impl<T: Transport> BrokerService<T> {
    /// Registers every broker method on `server`.
    pub fn new(mut server: Server<T>, broker: SharedBroker) -> Result<Self, String> {
        use protocol::*;
        let s = &mut server;
        let b = &broker;
        simple(s, b, method::CREATE_TOPIC, |b, r: CreateTopic| {
            b.create_topic(&r)
        })?;
        simple(s, b, method::DELETE_TOPIC, |b, r: TopicName| {
            b.delete_topic(&r.name)
        })?;
        simple(s, b, method::LIST_TOPICS, |b, (): ()| Ok(b.list_topics()))?;
        simple(s, b, method::DESCRIBE_TOPIC, |b, r: TopicName| {
            b.describe_topic(&r.name)
        })?;
        simple(s, b, method::LIST_OFFSETS, |b, r: ListOffsets| {
            b.list_offsets(&r)
        })?;
        simple(s, b, method::INIT_PRODUCER, |b, (): ()| b.init_producer())?;
        simple(s, b, method::SYNC_GROUP, |b, r: MemberRef| b.sync_group(&r))?;
        simple(s, b, method::HEARTBEAT, |b, r: MemberRef| b.heartbeat(&r))?;
        simple(s, b, method::LEAVE_GROUP, |b, r: MemberRef| {
            b.leave_group(&r)
        })?;
        simple(s, b, method::FETCH_OFFSETS, |b, r: FetchOffsets| {
            b.fetch_offsets(&r)
        })?;
        simple(s, b, method::DESCRIBE_GROUP, |b, r: TopicName| {
            b.describe_group(&r.name)
        })?;
        simple(s, b, method::LIST_GROUPS, |b, (): ()| Ok(b.list_groups()))?;

        let br = broker.clone();
        server.register(SERVICE, method::PRODUCE, move |call| {
            let body = call.body();
            if let Answer::Now(reply) = lock(&br).produce(body, || call.defer()) {
                call.reply(reply)?;
            }
            Ok(())
        })?;
        let br = broker.clone();
        server.register(SERVICE, method::FETCH, move |call| {
            let body = call.body();
            match lock(&br).fetch(body, || call.defer()) {
                Ok(Some(reply)) => call.reply_with(reply.len(), |buf| reply.write(buf))?,
                Ok(None) => {}
                Err(reply) => call.reply(&reply)?,
            }
            Ok(())
        })?;
        let br = broker.clone();
        server.register(SERVICE, method::COMMIT_OFFSETS, move |call| {
            let body = call.body();
            if let Answer::Now(reply) = lock(&br).commit(body, || call.defer()) {
                call.reply(reply)?;
            }
            Ok(())
        })?;
        let br = broker.clone();
        server.register(SERVICE, method::JOIN_GROUP, move |call| {
            match decode_request::<JoinGroup>(call.body(), method::JOIN_GROUP) {
                Ok(req) => lock(&br).join_group(&req, call.defer()),
                Err(e) => call.reply(&encode_result::<Joined>(&Err(e)))?,
            }
            Ok(())
        })?;
        Ok(Self {
            server,
            broker,
            due: Vec::new(),
        })
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
        round(&mut self.server, &self.broker, &mut self.due)
    }

    /// Runs until `stop` is set, on the server's poll loop: spinning while
    /// busy, then backing off to short waits (bounded tighter while answers
    /// are owed).
    pub fn run(&mut self, stop: &AtomicBool) -> io::Result<()> {
        let Self {
            server,
            broker,
            due,
        } = self;
        server.run_with(
            stop,
            |srv| round(srv, broker, due),
            || match lock(broker).has_pending() {
                true => PENDING_WAIT,
                false => IDLE_WAIT,
            },
        )
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
