//! [`Security`]: what both listeners (Kafka and Neo RPC) share to
//! authenticate, authorize, audit and throttle — built once from
//! [`SecurityConfig`] by `neo serve`, read by every connection thread and
//! by the poll loop. Also [`SaslSession`], one connection's SASL exchange
//! (PLAIN or SCRAM), used by the Kafka listener's SaslAuthenticate and by
//! the Neo protocol's `auth/Authenticate`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{
    authenticate_plain, AuditEvent, AuditLog, Authorizer, CredentialStore, Listener, Mechanism,
    Operation, Outcome, PlainError, Principal, QuotaConfig, QuotaKind, Quotas, ResourceType,
    ScramServer, SharedAcls, SharedCredentials, Step,
};

/// How `neo serve` configured security. Everything is off by default.
#[derive(Debug, Clone, Default)]
pub struct SecurityConfig {
    /// The SCRAM credential store (needed for SASL and Neo authentication).
    pub credentials: Option<PathBuf>,
    /// SASL mechanisms the Kafka listener offers (when it asks for SASL)
    /// and the Neo protocol accepts.
    pub mechanisms: Vec<SaslMechanism>,
    /// The Kafka listener requires SASL (SASL_PLAINTEXT / SASL_SSL).
    pub kafka_sasl: bool,
    /// The Neo protocol requires an authenticated principal (SASL over RPC,
    /// or a client certificate under mutual TLS) before any broker call.
    pub neo_auth: bool,
    /// The ACL file; setting it turns the authorizer on (deny by default).
    pub acls: Option<PathBuf>,
    pub super_users: Vec<Principal>,
    pub audit_log: Option<PathBuf>,
    pub quotas: QuotaConfig,
}

/// A SASL mechanism by its IANA name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslMechanism {
    Plain,
    Scram(Mechanism),
}

impl SaslMechanism {
    pub const ALL: [SaslMechanism; 3] = [
        SaslMechanism::Scram(Mechanism::ScramSha256),
        SaslMechanism::Scram(Mechanism::ScramSha512),
        SaslMechanism::Plain,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Plain => "PLAIN",
            Self::Scram(m) => m.name(),
        }
    }

    pub fn parse(name: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                format!("unknown SASL mechanism `{name}` (SCRAM-SHA-256, SCRAM-SHA-512, PLAIN)")
            })
    }
}

/// Decisions counted for metrics, per listener (index: [`listener_index`]).
#[derive(Debug, Default)]
pub struct SecurityCounters {
    pub auth_success: [AtomicU64; 2],
    pub auth_failure: [AtomicU64; 2],
    pub authz_allowed: [AtomicU64; 2],
    pub authz_denied: [AtomicU64; 2],
    /// Microseconds of throttle imposed, by [`QuotaKind`] (produce, fetch).
    pub throttle_us: [AtomicU64; 2],
}

pub fn listener_index(l: Listener) -> usize {
    match l {
        Listener::Kafka => 0,
        Listener::Neo => 1,
    }
}

/// The listeners' shared security state.
pub struct Security {
    credentials: Option<SharedCredentials>,
    pub mechanisms: Vec<SaslMechanism>,
    pub kafka_sasl: bool,
    pub neo_auth: bool,
    pub authorizer: Authorizer,
    pub audit: AuditLog,
    pub quotas: Quotas,
    quotas_on: bool,
    pub counters: SecurityCounters,
}

fn quotas_on(q: &QuotaConfig) -> bool {
    q.produce_bytes_per_sec.is_some() || q.fetch_bytes_per_sec.is_some() || !q.overrides.is_empty()
}

impl Security {
    /// Everything off: no authentication, every operation allowed, no audit.
    pub fn off() -> Self {
        Self {
            credentials: None,
            mechanisms: Vec::new(),
            kafka_sasl: false,
            neo_auth: false,
            authorizer: Authorizer::disabled(),
            audit: AuditLog::disabled(),
            quotas: Quotas::new(QuotaConfig::default()),
            quotas_on: false,
            counters: SecurityCounters::default(),
        }
    }

    /// Opens the stores and the audit log `cfg` names.
    pub fn open(cfg: &SecurityConfig) -> Result<Self, String> {
        let needs_credentials = cfg.kafka_sasl || cfg.neo_auth;
        let credentials = match (&cfg.credentials, needs_credentials) {
            (Some(p), _) => Some(
                SharedCredentials::open(p.clone())
                    .map_err(|e| format!("credentials {}: {e}", p.display()))?,
            ),
            (None, true) => {
                return Err("SASL or Neo authentication needs a credential store".into())
            }
            (None, false) => None,
        };
        if needs_credentials && cfg.mechanisms.is_empty() {
            return Err("authentication is on but no SASL mechanism is enabled".into());
        }
        let authorizer = match &cfg.acls {
            Some(p) => Authorizer::with_store(
                cfg.super_users.clone(),
                SharedAcls::open(p.clone()).map_err(|e| format!("ACLs {}: {e}", p.display()))?,
            ),
            None => Authorizer::disabled(),
        };
        let audit = match &cfg.audit_log {
            Some(p) => AuditLog::open(p).map_err(|e| format!("audit log {}: {e}", p.display()))?,
            None => AuditLog::disabled(),
        };
        Ok(Self {
            credentials,
            mechanisms: cfg.mechanisms.clone(),
            kafka_sasl: cfg.kafka_sasl,
            neo_auth: cfg.neo_auth,
            authorizer,
            audit,
            quotas: Quotas::new(cfg.quotas.clone()),
            quotas_on: quotas_on(&cfg.quotas),
            counters: SecurityCounters::default(),
        })
    }

    /// Whether `principal` may do `op` on a resource; the decision is
    /// audited and counted (when the authorizer is on: off, there is no
    /// decision to record).
    pub fn authorize(
        &self,
        principal: &Principal,
        peer: SocketAddr,
        listener: Listener,
        op: Operation,
        rtype: ResourceType,
        name: &str,
    ) -> bool {
        if !self.authorizer.is_enabled() {
            return true;
        }
        let d = self.authorizer.decide(principal, op, rtype, name);
        self.audit.record(&AuditEvent::authorize(
            principal, peer, listener, op, rtype, name, &d,
        ));
        let i = listener_index(listener);
        let c = match d.allowed {
            true => &self.counters.authz_allowed[i],
            false => &self.counters.authz_denied[i],
        };
        c.fetch_add(1, Ordering::Relaxed);
        d.allowed
    }

    /// Whether any byte-rate quota is set (else charging is skipped).
    pub fn quotas_configured(&self) -> bool {
        self.quotas_on
    }

    /// Records the bytes a principal moved; returns how long to throttle
    /// its connection (zero under its quota).
    pub fn throttle(&self, principal: &Principal, kind: QuotaKind, bytes: usize) -> Duration {
        let d = self
            .quotas
            .record(principal, kind, bytes as u64, Instant::now());
        if !d.is_zero() {
            let i = match kind {
                QuotaKind::Produce => 0,
                QuotaKind::Fetch => 1,
            };
            self.counters.throttle_us[i].fetch_add(d.as_micros() as u64, Ordering::Relaxed);
        }
        d
    }

    /// Starts a SASL exchange with `mechanism` (an IANA name).
    pub fn sasl_start(&self, mechanism: &str) -> Result<SaslSession, String> {
        let m = SaslMechanism::parse(mechanism)?;
        if !self.mechanisms.contains(&m) {
            return Err(format!("SASL mechanism {} is not enabled", m.name()));
        }
        let Some(store) = &self.credentials else {
            return Err("no credential store is configured".into());
        };
        Ok(SaslSession {
            mechanism: m,
            scram: match m {
                SaslMechanism::Scram(s) => Some(ScramServer::new(s, store.get())),
                SaslMechanism::Plain => None,
            },
        })
    }

    fn audit_auth(
        &self,
        principal: Option<Principal>,
        peer: SocketAddr,
        listener: Listener,
        mechanism: SaslMechanism,
        ok: bool,
        reason: String,
    ) {
        self.audit.record(&AuditEvent::Authenticate {
            principal,
            peer,
            listener,
            mechanism: mechanism.name().into(),
            outcome: if ok {
                Outcome::Success
            } else {
                Outcome::Failure
            },
            reason,
        });
        let i = listener_index(listener);
        let c = match ok {
            true => &self.counters.auth_success[i],
            false => &self.counters.auth_failure[i],
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Records an identity established outside SASL (a client certificate).
    pub fn note_certificate(&self, principal: &Principal, peer: SocketAddr, listener: Listener) {
        self.audit.record(&AuditEvent::Authenticate {
            principal: Some(principal.clone()),
            peer,
            listener,
            mechanism: "TLS client certificate".into(),
            outcome: Outcome::Success,
            reason: "certificate verified against the client CA".into(),
        });
        self.counters.auth_success[listener_index(listener)].fetch_add(1, Ordering::Relaxed);
    }
}

/// What one step of a SASL exchange asks the listener to do.
#[derive(Debug)]
pub enum SaslStep {
    /// Send `challenge`, wait for the client's next message.
    Continue(Vec<u8>),
    /// Authenticated: send `last` (possibly empty) to the client.
    Done { last: Vec<u8>, principal: Principal },
    /// Failed: tell the client `client_message` (the same for an unknown
    /// user and a wrong password) and close. The audit log has the reason.
    Failed { client_message: &'static str },
}

/// One connection's SASL exchange.
pub struct SaslSession {
    mechanism: SaslMechanism,
    scram: Option<ScramServer<Arc<CredentialStore>>>,
}

impl SaslSession {
    pub fn mechanism(&self) -> SaslMechanism {
        self.mechanism
    }

    /// Takes the client's next message; audits the outcome when the
    /// exchange ends.
    pub fn step(
        &mut self,
        sec: &Security,
        peer: SocketAddr,
        listener: Listener,
        msg: &[u8],
    ) -> SaslStep {
        const BAD: &str = "authentication failed: invalid credentials";
        let m = self.mechanism;
        match &mut self.scram {
            None => {
                let Some(store) = &sec.credentials else {
                    return SaslStep::Failed {
                        client_message: BAD,
                    };
                };
                match authenticate_plain(&store.get(), msg) {
                    Ok(p) => {
                        sec.audit_auth(
                            Some(p.clone()),
                            peer,
                            listener,
                            m,
                            true,
                            "authenticated".into(),
                        );
                        SaslStep::Done {
                            last: Vec::new(),
                            principal: p,
                        }
                    }
                    Err(e) => {
                        let claimed = crate::security::parse_plain(msg)
                            .ok()
                            .and_then(|p| Principal::user(p.authcid).ok());
                        sec.audit_auth(claimed, peer, listener, m, false, e.to_string());
                        SaslStep::Failed {
                            client_message: match e {
                                PlainError::TooLong { .. } | PlainError::Malformed(_) => {
                                    "authentication failed: malformed PLAIN message"
                                }
                                _ => BAD,
                            },
                        }
                    }
                }
            }
            Some(server) => match server.step(msg) {
                Ok(Step::Continue(first)) => SaslStep::Continue(first),
                Ok(Step::Done {
                    server_final,
                    principal,
                }) => {
                    sec.audit_auth(
                        Some(principal.clone()),
                        peer,
                        listener,
                        m,
                        true,
                        "authenticated".into(),
                    );
                    SaslStep::Done {
                        last: server_final,
                        principal,
                    }
                }
                Err(e) => {
                    sec.audit_auth(None, peer, listener, m, false, e.to_string());
                    SaslStep::Failed {
                        client_message: BAD,
                    }
                }
            },
        }
    }
}
