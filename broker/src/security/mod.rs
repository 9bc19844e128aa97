//! The broker's security core, as pure modules free of I/O scheduling (the
//! listeners wire them in):
//!
//! * [`principal`] — who a connection is: `User:<name>`.
//! * [`credentials`] — SCRAM credentials (never passwords) in a JSON file,
//!   reloaded when it changes; PLAIN password checks against them.
//! * [`scram`] — SCRAM-SHA-256/512 server and client state machines (sans-IO).
//! * [`plain`] — SASL PLAIN message parsing and checking.
//! * [`acl`] — Kafka-style ACLs, their file, and the [`Authorizer`].
//! * [`audit`] — the audit log of authentications and authorizations.
//! * [`quota`] — per-principal produce/fetch byte-rate quotas that throttle.
//! * [`watched`] — atomic file saves and reload-on-change, shared by the stores.
//! * [`mechanism`] — the SCRAM mechanisms and their primitives.
//! * [`context`] — [`Security`], what the listeners share, and one
//!   connection's SASL exchange.

pub mod acl;
mod acl_store;
pub mod audit;
mod authorizer;
pub mod context;
pub mod credentials;
pub mod mechanism;
pub mod plain;
pub mod principal;
pub mod quota;
pub mod scram;
mod scram_client;
mod scram_parse;
pub mod watched;

pub use acl::{
    Acl, AclError, AclFilter, AclPrincipal, AclStore, Authorizer, Decision, Operation, PatternType,
    Permission, ResourceType, SharedAcls,
};
pub use audit::{AuditEvent, AuditLog, AuditStats, Listener, Outcome};
pub use context::{SaslMechanism, SaslSession, SaslStep, Security, SecurityConfig};
pub use credentials::{CredentialError, CredentialStore, ScramCredential, SharedCredentials};
pub use mechanism::Mechanism;
pub use plain::{authenticate_plain, parse_plain, PlainError};
pub use principal::{Principal, PrincipalError};
pub use quota::{QuotaConfig, QuotaKind, QuotaOverride, Quotas};
pub use scram::{ScramClient, ScramError, ScramServer, Step};
pub use watched::{FileBacked, StoreError, Watched};
