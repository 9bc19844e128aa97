//! Security on the Neo protocol: who each connection is, what it may do,
//! and how long its answers are held for a quota — for the broker's poll
//! loop ([`crate::service`]), over any transport.
//!
//! * Identity: a client certificate under mutual TLS (the transport's
//!   `peer_identity`), else a SASL exchange over `Broker/Authenticate`
//!   (SCRAM-SHA-256/512 or PLAIN, [`crate::security::SaslSession`]), else
//!   `User:ANONYMOUS` — refused when `neo_auth` is on.
//! * Authorization: [`Access::check`] asks the shared authorizer (audited).
//! * Quotas: produce and fetch bytes are charged to the principal; while a
//!   connection owes throttle time, every answer to it is held
//!   ([`Access::hold`]) and sent when the time has passed.
//!
//! State per connection is kept by connection index with its generation,
//! so a reused index never inherits an identity.

use std::sync::Arc;
use std::time::{Duration, Instant};

use neo_transports::rpc::{Call, Deferred};
use neo_transports::ConnId;

use crate::protocol::{AuthReply, AuthStep, BrokerError};
use crate::security::{
    Listener, Operation, Principal, QuotaKind, ResourceType, SaslSession, SaslStep, Security,
};

struct ConnAccess {
    conn: ConnId,
    principal: Option<Principal>,
    sasl: Option<SaslSession>,
    /// Whether a certificate identity was audited already.
    cert_noted: bool,
    throttled_until: Option<Instant>,
}

/// Per-connection identities and held answers, over the shared [`Security`].
pub struct Access {
    sec: Arc<Security>,
    conns: Vec<Option<ConnAccess>>,
    /// Answers held for a quota: (when, call, body).
    held: Vec<(Instant, Deferred, Vec<u8>)>,
}

const UNKNOWN_PEER: std::net::SocketAddr = std::net::SocketAddr::V4(std::net::SocketAddrV4::new(
    std::net::Ipv4Addr::UNSPECIFIED,
    0,
));

impl Access {
    pub fn new(sec: Arc<Security>) -> Self {
        Self {
            sec,
            conns: Vec::new(),
            held: Vec::new(),
        }
    }

    pub fn security(&self) -> &Security {
        &self.sec
    }

    /// Whether anything is enforced (else handlers skip every check).
    pub fn active(&self) -> bool {
        self.sec.neo_auth || self.sec.authorizer.is_enabled() || self.sec.quotas_configured()
    }

    fn entry(&mut self, conn: ConnId) -> &mut ConnAccess {
        let i = conn.index();
        if self.conns.len() <= i {
            self.conns.resize_with(i + 1, || None);
        }
        let slot = &mut self.conns[i];
        if slot.as_ref().is_none_or(|c| c.conn != conn) {
            *slot = Some(ConnAccess {
                conn,
                principal: None,
                sasl: None,
                cert_noted: false,
                throttled_until: None,
            });
        }
        slot.as_mut().expect("just set")
    }

    /// The caller's principal; `Err` when authentication is required and
    /// the connection has none.
    pub fn principal(&mut self, call: &Call<'_>) -> Result<Principal, BrokerError> {
        let peer = call.peer().unwrap_or(UNKNOWN_PEER);
        let cert = call.peer_identity().map(str::to_owned);
        let sec = self.sec.clone();
        let e = self.entry(call.conn());
        if let Some(p) = &e.principal {
            return Ok(p.clone());
        }
        if let Some(cn) = cert {
            match Principal::user(cn) {
                Ok(p) => {
                    if !e.cert_noted {
                        e.cert_noted = true;
                        sec.note_certificate(&p, peer, Listener::Neo);
                    }
                    e.principal = Some(p.clone());
                    return Ok(p);
                }
                Err(err) => {
                    tracing::warn!(%peer, error = %err, "client certificate CN is not a valid principal")
                }
            }
        }
        match sec.neo_auth {
            true => Err(BrokerError::Authentication(
                "this broker requires authentication (SASL over Broker/Authenticate, or a client certificate)".into(),
            )),
            false => Ok(Principal::anonymous()),
        }
    }

    /// Refuses unless the caller may do `op` on the resource.
    pub fn check(
        &mut self,
        call: &Call<'_>,
        op: Operation,
        rtype: ResourceType,
        name: &str,
    ) -> Result<(), BrokerError> {
        let p = self.principal(call)?;
        let peer = call.peer().unwrap_or(UNKNOWN_PEER);
        match self.sec.authorize(&p, peer, Listener::Neo, op, rtype, name) {
            true => Ok(()),
            false => Err(BrokerError::NotAuthorized {
                principal: p.to_string(),
                operation: op.to_string(),
                resource: format!("{rtype}:{name}"),
            }),
        }
    }

    /// Whether the caller may see `name` (for filtering lists).
    pub fn may_describe(&mut self, call: &Call<'_>, rtype: ResourceType, name: &str) -> bool {
        self.check(call, Operation::Describe, rtype, name).is_ok()
    }

    /// One step of a SASL exchange.
    pub fn authenticate(
        &mut self,
        call: &Call<'_>,
        step: AuthStep,
    ) -> Result<AuthReply, BrokerError> {
        let peer = call.peer().unwrap_or(UNKNOWN_PEER);
        let sec = self.sec.clone();
        let e = self.entry(call.conn());
        if e.principal.is_some() {
            return Err(BrokerError::Authentication(
                "this connection is authenticated already".into(),
            ));
        }
        if e.sasl.is_none() {
            e.sasl = Some(
                sec.sasl_start(&step.mechanism)
                    .map_err(BrokerError::Authentication)?,
            );
        }
        let s = e.sasl.as_mut().expect("just set");
        match s.step(&sec, peer, Listener::Neo, &step.message) {
            SaslStep::Continue(message) => Ok(AuthReply {
                message,
                done: false,
                principal: String::new(),
            }),
            SaslStep::Done { last, principal } => {
                e.sasl = None;
                e.principal = Some(principal.clone());
                Ok(AuthReply {
                    message: last,
                    done: true,
                    principal: principal.to_string(),
                })
            }
            SaslStep::Failed { client_message } => {
                e.sasl = None;
                Err(BrokerError::Authentication(client_message.into()))
            }
        }
    }

    /// Charges `bytes` to the caller's quota; the connection's answers are
    /// held until the throttle has passed.
    pub fn charge(&mut self, call: &Call<'_>, kind: QuotaKind, bytes: usize) {
        let Ok(p) = self.principal(call) else { return };
        let d = self.sec.throttle(&p, kind, bytes);
        if d.is_zero() {
            return;
        }
        let now = Instant::now();
        let e = self.entry(call.conn());
        let from = e.throttled_until.filter(|t| *t > now).unwrap_or(now);
        e.throttled_until = Some(from + d);
    }

    /// Until when answers on `conn` are held (`None`: not throttled).
    pub fn throttled(&self, conn: ConnId, now: Instant) -> Option<Instant> {
        let e = self.conns.get(conn.index())?.as_ref()?;
        (e.conn == conn)
            .then_some(e.throttled_until)
            .flatten()
            .filter(|t| *t > now)
    }

    /// Holds an answer until `until`.
    pub fn hold(&mut self, until: Instant, call: Deferred, body: Vec<u8>) {
        self.held.push((until, call, body));
    }

    pub fn has_held(&self) -> bool {
        !self.held.is_empty()
    }

    /// Moves the held answers now due to `out`.
    pub fn release(&mut self, now: Instant, out: &mut Vec<(Deferred, Vec<u8>)>) {
        let mut i = 0;
        while i < self.held.len() {
            if self.held[i].0 <= now {
                let (_, d, b) = self.held.swap_remove(i);
                out.push((d, b));
            } else {
                i += 1;
            }
        }
    }

    /// Time until the next held answer is due.
    pub fn next_release(&self, now: Instant) -> Option<Duration> {
        self.held
            .iter()
            .map(|h| h.0.saturating_duration_since(now))
            .min()
    }
}
