//! `neo serve`'s security settings: TLS for the TCP listeners, SASL on the
//! Kafka listener, authentication on the Neo protocol, ACLs, the audit log
//! and quotas — from the config file's `[tls]`, `[security]` and `[quotas]`
//! tables, overridden by flags. Everything is off unless configured.
//!
//! ```toml
//! [tls]                         # the Neo TCP listener and the Kafka listener
//! cert = "/etc/neo/tls/broker.pem"
//! key = "/etc/neo/tls/broker.key"
//! client_ca = "/etc/neo/tls/clients-ca.pem"   # verify client certificates
//! require_client_cert = true                  # mutual TLS
//!
//! [security]
//! kafka_protocol = "SASL_SSL"   # PLAINTEXT | SSL | SASL_PLAINTEXT | SASL_SSL
//! sasl_mechanisms = ["SCRAM-SHA-256", "SCRAM-SHA-512"]   # PLAIN too, if listed
//! neo_auth = true               # Neo protocol: SASL or a client certificate first
//! authorizer = true             # ACLs on, deny by default
//! super_users = ["User:admin"]
//! audit_log = "/var/log/neo/audit.jsonl"
//! # credentials / acl_file default to <data_dir>/security/{credentials,acls}.json
//!
//! [quotas]                      # bytes per second per principal
//! produce_bytes_per_sec = 10485760
//! fetch_bytes_per_sec = 20971520
//! [quotas.principals."User:batch"]
//! produce_bytes_per_sec = 1048576
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::bail;
use neo_broker::security::{Principal, QuotaConfig, QuotaOverride, SaslMechanism, SecurityConfig};
use neo_transports::tls::ServerTlsSettings;
use serde::Deserialize;

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFile {
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub client_ca: Option<PathBuf>,
    pub require_client_cert: Option<bool>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityFile {
    pub kafka_protocol: Option<String>,
    pub sasl_mechanisms: Option<Vec<String>>,
    pub neo_auth: Option<bool>,
    pub credentials: Option<PathBuf>,
    pub authorizer: Option<bool>,
    pub acl_file: Option<PathBuf>,
    #[serde(default)]
    pub super_users: Vec<String>,
    pub audit_log: Option<PathBuf>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaLimits {
    pub produce_bytes_per_sec: Option<u64>,
    pub fetch_bytes_per_sec: Option<u64>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotasFile {
    pub produce_bytes_per_sec: Option<u64>,
    pub fetch_bytes_per_sec: Option<u64>,
    #[serde(default)]
    pub principals: BTreeMap<String, QuotaLimits>,
}

/// The flags; each overrides the file.
#[derive(clap::Args, Debug, Default)]
pub struct SecurityArgs {
    /// TLS certificate chain (PEM) for the Neo TCP and Kafka listeners; reloaded when it changes.
    #[arg(long, env = "NEO_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM) of --tls-cert.
    #[arg(long, env = "NEO_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// CA (PEM) that client certificates must chain to; their CN becomes the principal.
    #[arg(long, env = "NEO_TLS_CLIENT_CA")]
    tls_client_ca: Option<PathBuf>,
    /// Refuse clients without a certificate (mutual TLS).
    #[arg(long)]
    tls_require_client_cert: bool,
    /// Kafka listener security: PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL [default: SSL with --tls-cert, else PLAINTEXT].
    #[arg(long, env = "NEO_KAFKA_SECURITY_PROTOCOL")]
    kafka_security_protocol: Option<String>,
    /// SASL mechanisms offered, comma-separated [default: SCRAM-SHA-256,SCRAM-SHA-512].
    #[arg(long, value_delimiter = ',')]
    sasl_mechanisms: Vec<String>,
    /// Require authentication on the Neo protocol (SASL, or a client certificate).
    #[arg(long)]
    neo_auth: bool,
    /// SCRAM credential file [default: <data dir>/security/credentials.json].
    #[arg(long)]
    credentials: Option<PathBuf>,
    /// Turn ACLs on (deny by default), from --acl-file.
    #[arg(long)]
    authorizer: bool,
    /// ACL file [default: <data dir>/security/acls.json]; implies --authorizer.
    #[arg(long)]
    acl_file: Option<PathBuf>,
    /// A principal allowed everything, e.g. User:admin (repeatable).
    #[arg(long = "super-user")]
    super_users: Vec<String>,
    /// Audit log (JSON lines) of every authentication and authorization decision.
    #[arg(long, env = "NEO_AUDIT_LOG")]
    audit_log: Option<PathBuf>,
    /// Produce byte-rate quota per principal, bytes/s (throttles, never disconnects).
    #[arg(long)]
    quota_produce_bytes: Option<u64>,
    /// Fetch byte-rate quota per principal, bytes/s.
    #[arg(long)]
    quota_fetch_bytes: Option<u64>,
}

/// Everything resolved.
pub struct Resolved {
    pub tls: Option<ServerTlsSettings>,
    /// The Kafka listener speaks TLS.
    pub kafka_tls: bool,
    pub security: SecurityConfig,
    /// For the startup log line.
    pub kafka_protocol: &'static str,
}

pub fn resolve(
    a: &SecurityArgs,
    tls: &TlsFile,
    sec: &SecurityFile,
    quotas: &QuotasFile,
    data_dir: &Path,
) -> anyhow::Result<Resolved> {
    let cert = a.tls_cert.clone().or(tls.cert.clone());
    let key = a.tls_key.clone().or(tls.key.clone());
    let client_ca = a.tls_client_ca.clone().or(tls.client_ca.clone());
    let require = a.tls_require_client_cert || tls.require_client_cert.unwrap_or(false);
    let tls = match (cert, key) {
        (Some(cert), Some(key)) => Some(ServerTlsSettings {
            cert,
            key,
            client_ca,
            require_client_cert: require,
        }),
        (None, None) if client_ca.is_none() && !require => None,
        (None, None) => {
            bail!("client certificate settings need a server certificate (--tls-cert, --tls-key)")
        }
        _ => bail!("TLS needs both a certificate and a key (--tls-cert and --tls-key)"),
    };
    let protocol = a
        .kafka_security_protocol
        .clone()
        .or(sec.kafka_protocol.clone())
        .unwrap_or_else(|| if tls.is_some() { "SSL" } else { "PLAINTEXT" }.into());
    let (kafka_protocol, kafka_tls, kafka_sasl) = match protocol.to_ascii_uppercase().as_str() {
        "PLAINTEXT" => ("PLAINTEXT", false, false),
        "SSL" => ("SSL", true, false),
        "SASL_PLAINTEXT" => ("SASL_PLAINTEXT", false, true),
        "SASL_SSL" => ("SASL_SSL", true, true),
        other => bail!(
            "Kafka security protocol `{other}`: expected PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"
        ),
    };
    if kafka_tls && tls.is_none() {
        bail!("Kafka security protocol {kafka_protocol} needs --tls-cert and --tls-key");
    }
    let names: Vec<String> = if !a.sasl_mechanisms.is_empty() {
        a.sasl_mechanisms.clone()
    } else {
        sec.sasl_mechanisms
            .clone()
            .unwrap_or_else(|| vec!["SCRAM-SHA-256".into(), "SCRAM-SHA-512".into()])
    };
    let mechanisms = names
        .iter()
        .map(|n| SaslMechanism::parse(n.trim()).map_err(anyhow::Error::msg))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if kafka_protocol == "SASL_PLAINTEXT" && mechanisms.contains(&SaslMechanism::Plain) {
        tracing::warn!(
            "SASL PLAIN on SASL_PLAINTEXT sends passwords in the clear; prefer SASL_SSL or SCRAM"
        );
    }
    let neo_auth = a.neo_auth || sec.neo_auth.unwrap_or(false);
    let security_dir = data_dir.join("security");
    let acl_file = a.acl_file.clone().or(sec.acl_file.clone());
    let authorizer = a.authorizer || acl_file.is_some() || sec.authorizer.unwrap_or(false);
    let mut super_users = Vec::new();
    for s in a.super_users.iter().chain(&sec.super_users) {
        super_users.push(
            s.parse::<Principal>()
                .map_err(|e| anyhow::anyhow!("super user `{s}`: {e} (expected User:<name>)"))?,
        );
    }
    let mut overrides = std::collections::HashMap::new();
    for (p, l) in &quotas.principals {
        let principal: Principal = p
            .parse()
            .map_err(|e| anyhow::anyhow!("[quotas.principals.\"{p}\"]: {e}"))?;
        overrides.insert(
            principal,
            QuotaOverride {
                produce_bytes_per_sec: l.produce_bytes_per_sec,
                fetch_bytes_per_sec: l.fetch_bytes_per_sec,
            },
        );
    }
    let needs_credentials = kafka_sasl || neo_auth;
    Ok(Resolved {
        tls,
        kafka_tls,
        kafka_protocol,
        security: SecurityConfig {
            credentials: a
                .credentials
                .clone()
                .or(sec.credentials.clone())
                .or_else(|| needs_credentials.then(|| security_dir.join("credentials.json"))),
            mechanisms,
            kafka_sasl,
            neo_auth,
            acls: authorizer.then(|| acl_file.unwrap_or_else(|| security_dir.join("acls.json"))),
            super_users,
            audit_log: a.audit_log.clone().or(sec.audit_log.clone()),
            quotas: QuotaConfig {
                produce_bytes_per_sec: a.quota_produce_bytes.or(quotas.produce_bytes_per_sec),
                fetch_bytes_per_sec: a.quota_fetch_bytes.or(quotas.fetch_bytes_per_sec),
                overrides,
            },
        },
    })
}

/// Makes the security directory (0700) so the stores can be created.
pub fn prepare_dir(data_dir: &Path) -> anyhow::Result<()> {
    crate::cmd::private_dir_for(&data_dir.join("security").join("credentials.json"))
}
