//! The broker's methods on the RPC server, each behind the access checks
//! of [`crate::access`] (identity, ACLs, quotas) when security is on, and
//! timed into the handler histogram.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use neo_transports::rpc::{Call, Server};
use neo_transports::Transport;
use serde::{de::DeserializeOwned, Serialize};

use super::{lock, SharedBroker};
use crate::access::Access;
use crate::broker::{Answer, Broker};
use crate::protocol::*;
use crate::security::{Operation as Op, QuotaKind, ResourceType as R};

/// The access state shared by the handlers and the loop, and whether any
/// check is on: decided once, so with security off the data path takes no
/// lock for it at all.
#[derive(Clone)]
pub struct SharedAccess {
    inner: Arc<Mutex<Access>>,
    pub active: bool,
}

impl SharedAccess {
    pub fn new(a: Access) -> Self {
        let active = a.active();
        Self {
            inner: Arc::new(Mutex::new(a)),
            active,
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, Access> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The handler-time histogram of one method.
pub(super) fn timer(method: &str) -> prometheus::Histogram {
    crate::metrics::global()
        .rpc_seconds
        .with_label_values(&[method])
}

/// Sends `body` now, or holds it while the connection is throttled.
pub(super) fn answer(
    call: &mut Call<'_>,
    access: &SharedAccess,
    body: &[u8],
) -> Result<(), SendError> {
    if !access.active {
        return call.reply(body);
    }
    let mut a = access.lock();
    match a.throttled(call.conn(), Instant::now()) {
        Some(until) => {
            let d = call.defer();
            a.hold(until, d, body.to_vec());
            Ok(())
        }
        None => call.reply(body),
    }
}

use neo_transports::SendError;

/// What a request must be allowed before it runs: checked only while
/// security is on.
type Authz<Req> = fn(&mut Access, &Call<'_>, &Req) -> Result<(), BrokerError>;

fn simple<T, Req, Resp, F>(
    server: &mut Server<T>,
    broker: &SharedBroker,
    access: &SharedAccess,
    name: &'static str,
    authz: Authz<Req>,
    f: F,
) -> Result<(), String>
where
    T: Transport,
    Req: DeserializeOwned + 'static,
    Resp: Serialize,
    F: Fn(&mut Broker, &mut Access, &Call<'_>, Req) -> Result<Resp, BrokerError> + Send + 'static,
{
    let (b, acc) = (broker.clone(), access.clone());
    let h = timer(name);
    server
        .register(SERVICE, name, move |call| {
            let t = Instant::now();
            let result = decode_request::<Req>(call.body(), name).and_then(|r| {
                let mut a = acc.lock();
                if acc.active {
                    authz(&mut a, call, &r)?;
                }
                f(&mut lock(&b), &mut a, call, r)
            });
            answer(call, &acc, &encode_result(&result))?;
            h.observe(t.elapsed().as_secs_f64());
            Ok(())
        })
        .map(drop)
}

fn topic(a: &mut Access, c: &Call<'_>, op: Op, name: &str) -> Result<(), BrokerError> {
    a.check(c, op, R::Topic, name)
}

fn group(a: &mut Access, c: &Call<'_>, op: Op, name: &str) -> Result<(), BrokerError> {
    a.check(c, op, R::Group, name)
}

/// Authenticated (when required), nothing more.
fn identified<Req>(a: &mut Access, c: &Call<'_>, _: &Req) -> Result<(), BrokerError> {
    a.principal(c).map(drop)
}

/// Registers every broker method on `server`.
pub fn register<T: Transport>(
    s: &mut Server<T>,
    b: &SharedBroker,
    acc: &SharedAccess,
) -> Result<(), String> {
    super::cluster_methods::register(s, b, acc)?;
    simple(
        s,
        b,
        acc,
        method::LIST_TOPICS,
        identified,
        |b, a, c, (): ()| {
            let mut all = b.list_topics();
            if a.active() {
                all.retain(|t| a.may_describe(c, R::Topic, t));
            }
            Ok(all)
        },
    )?;
    simple(
        s,
        b,
        acc,
        method::DESCRIBE_TOPIC,
        |a, c, r: &TopicName| topic(a, c, Op::Describe, &r.name),
        |b, _, _, r: TopicName| b.describe_topic(&r.name),
    )?;
    simple(
        s,
        b,
        acc,
        method::LIST_OFFSETS,
        |a, c, r: &ListOffsets| topic(a, c, Op::Describe, &r.topic),
        |b, _, _, r: ListOffsets| b.list_offsets(&r),
    )?;
    simple(
        s,
        b,
        acc,
        method::INIT_PRODUCER,
        identified,
        |b, _, _, (): ()| b.init_producer(),
    )?;
    let member = |a: &mut Access, c: &Call<'_>, r: &MemberRef| group(a, c, Op::Read, &r.group);
    simple(
        s,
        b,
        acc,
        method::SYNC_GROUP,
        member,
        |b, _, _, r: MemberRef| b.sync_group(&r),
    )?;
    simple(
        s,
        b,
        acc,
        method::HEARTBEAT,
        member,
        |b, _, _, r: MemberRef| b.heartbeat(&r),
    )?;
    simple(
        s,
        b,
        acc,
        method::LEAVE_GROUP,
        member,
        |b, _, _, r: MemberRef| b.leave_group(&r),
    )?;
    simple(
        s,
        b,
        acc,
        method::FETCH_OFFSETS,
        |a, c, r: &FetchOffsets| group(a, c, Op::Describe, &r.group),
        |b, _, _, r: FetchOffsets| b.fetch_offsets(&r),
    )?;
    simple(
        s,
        b,
        acc,
        method::DESCRIBE_GROUP,
        |a, c, r: &TopicName| group(a, c, Op::Describe, &r.name),
        |b, _, _, r: TopicName| b.describe_group(&r.name),
    )?;
    simple(
        s,
        b,
        acc,
        method::LIST_GROUPS,
        identified,
        |b, a, c, (): ()| {
            let mut all = b.list_groups();
            if a.active() {
                all.retain(|g| a.may_describe(c, R::Group, g));
            }
            Ok(all)
        },
    )?;
    simple(
        s,
        b,
        acc,
        method::AUTHENTICATE,
        |_, _, _: &AuthStep| Ok(()),
        |_, a, c, r: AuthStep| a.authenticate(c, r),
    )?;
    data_path(s, b, acc)
}

/// Produce, fetch, commit and join: answers lent from the broker's buffers
/// or held for later (acks=all, long poll, rebalances).
fn data_path<T: Transport>(
    s: &mut Server<T>,
    broker: &SharedBroker,
    access: &SharedAccess,
) -> Result<(), String> {
    let (br, acc) = (broker.clone(), access.clone());
    let h = timer(method::PRODUCE);
    s.register(SERVICE, method::PRODUCE, move |call| {
        let t = Instant::now();
        let body = call.body();
        if acc.active {
            let mut a = acc.lock();
            if let Ok(req) = decode_request::<Produce>(body, method::PRODUCE) {
                if let Err(e) = topic(&mut a, call, Op::Write, req.topic) {
                    drop(a);
                    return Ok(answer(call, &acc, &encode_result::<Produced>(&Err(e)))?);
                }
                a.charge(call, QuotaKind::Produce, req.records.len());
            }
        }
        if let Answer::Now(reply) = lock(&br).produce(body, || call.defer()) {
            answer(call, &acc, reply)?;
        }
        h.observe(t.elapsed().as_secs_f64());
        Ok(())
    })?;
    let (br, acc) = (broker.clone(), access.clone());
    let h = timer(method::FETCH);
    s.register(SERVICE, method::FETCH, move |call| {
        let t = Instant::now();
        let body = call.body();
        if acc.active {
            if let Ok(req) = decode_request::<Fetch>(body, method::FETCH) {
                let mut a = acc.lock();
                let mut seen: Vec<&str> = Vec::new();
                for p in &req.partitions {
                    if seen.contains(&p.topic.as_str()) {
                        continue;
                    }
                    seen.push(&p.topic);
                    if let Err(e) = topic(&mut a, call, Op::Read, &p.topic) {
                        drop(a);
                        return Ok(answer(call, &acc, &encode_result::<FetchHead>(&Err(e)))?);
                    }
                }
            }
        }
        match lock(&br).fetch(body, || call.defer()) {
            Ok(Some(reply)) if acc.active => {
                let mut a = acc.lock();
                a.charge(call, QuotaKind::Fetch, reply.len());
                match a.throttled(call.conn(), Instant::now()) {
                    Some(until) => {
                        let d = call.defer();
                        a.hold(until, d, reply.to_vec());
                    }
                    None => call.reply_with(reply.len(), |buf| reply.write(buf))?,
                }
            }
            Ok(Some(reply)) => call.reply_with(reply.len(), |buf| reply.write(buf))?,
            Ok(None) => {}
            Err(reply) => answer(call, &acc, &reply)?,
        }
        h.observe(t.elapsed().as_secs_f64());
        Ok(())
    })?;
    let (br, acc) = (broker.clone(), access.clone());
    let h = timer(method::COMMIT_OFFSETS);
    s.register(SERVICE, method::COMMIT_OFFSETS, move |call| {
        let t = Instant::now();
        let body = call.body();
        if acc.active {
            let mut a = acc.lock();
            if let Ok(req) = decode_request::<CommitOffsets>(body, method::COMMIT_OFFSETS) {
                let denied = group(&mut a, call, Op::Read, &req.member.group).and_then(|()| {
                    req.offsets
                        .iter()
                        .try_for_each(|o| topic(&mut a, call, Op::Read, &o.topic))
                });
                if let Err(e) = denied {
                    drop(a);
                    return Ok(answer(call, &acc, &encode_result::<()>(&Err(e)))?);
                }
            }
        }
        if let Answer::Now(reply) = lock(&br).commit(body, || call.defer()) {
            answer(call, &acc, reply)?;
        }
        h.observe(t.elapsed().as_secs_f64());
        Ok(())
    })?;
    let (br, acc) = (broker.clone(), access.clone());
    let h = timer(method::JOIN_GROUP);
    s.register(SERVICE, method::JOIN_GROUP, move |call| {
        let t = Instant::now();
        let req = decode_request::<JoinGroup>(call.body(), method::JOIN_GROUP).and_then(|r| {
            if acc.active {
                group(&mut acc.lock(), call, Op::Read, &r.group)?;
            }
            Ok(r)
        });
        match req {
            Ok(req) => lock(&br).join_group(&req, call.defer()),
            Err(e) => answer(call, &acc, &encode_result::<Joined>(&Err(e)))?,
        }
        h.observe(t.elapsed().as_secs_f64());
        Ok(())
    })?;
    Ok(())
}
