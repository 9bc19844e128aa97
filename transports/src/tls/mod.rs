//! TLS 1.3 configuration for Neo's listeners and clients: loading certificates
//! and keys from PEM files, mutual TLS, certificate reload without restart,
//! and the principal (subject CN) of a peer certificate.
//!
//! This module owns the *configuration* side only: it builds rustls
//! [`ServerConfig`](rustls::ServerConfig)s and [`ClientConfig`](rustls::ClientConfig)s.
//! The TCP transport ([`crate::tcp`]) drives rustls' sans-IO connections with
//! them inside its poll loop; a blocking listener (the Kafka front) can wrap
//! its sockets in `rustls::StreamOwned` with the same [`ServerTls::config`].
//!
//! * TLS 1.3 only, with rustls' `ring` provider passed explicitly (the
//!   process-wide default provider is neither needed nor installed). Servers
//!   issue no session tickets (no resumption): connections are long-lived.
//! * [`ServerTls`] serves the pair at [`ServerTlsSettings::cert`] /
//!   [`ServerTlsSettings::key`] and reloads it when the files change (checked
//!   at most once per second, on a handshake) or on [`ServerTls::reload_now`];
//!   a bad replacement keeps the old pair serving.
//! * With [`ServerTlsSettings::client_ca`], client certificates are verified
//!   against that CA (required or optional); [`principal_from_cert`] turns a
//!   verified certificate into the connection's principal.

mod pem;
mod reload;

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::sign::SingleCertAndKey;
use rustls_pki_types::{CertificateDer, ServerName};

use reload::ReloadingCert;
pub use reload::CHECK_INTERVAL;

/// Why a TLS configuration could not be built. Every variant that concerns a
/// file names it.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not valid PEM: {detail}", path.display())]
    BadPem { path: PathBuf, detail: String },
    #[error("{} holds no PEM CERTIFICATE", path.display())]
    NoCertificate { path: PathBuf },
    #[error("{}: certificate not usable: {detail}", path.display())]
    BadCertificate { path: PathBuf, detail: String },
    #[error("{} holds no PEM private key (PKCS#8, PKCS#1 or SEC1)", path.display())]
    NoPrivateKey { path: PathBuf },
    #[error("{}: unsupported private key: {detail}", path.display())]
    UnsupportedKey { path: PathBuf, detail: String },
    #[error("private key {} does not match certificate {}", key.display(), cert.display())]
    KeyMismatch { cert: PathBuf, key: PathBuf },
    #[error("{}: bad CA certificate: {detail}", path.display())]
    BadCa { path: PathBuf, detail: String },
    #[error("require_client_cert is set but no client_ca is configured to verify them")]
    ClientCaMissing,
    #[error("a client certificate needs both cert and key; only {given} is set")]
    ClientPairIncomplete { given: &'static str },
    #[error("invalid TLS server name {name:?}")]
    InvalidServerName { name: String },
    #[error("TLS configuration refused: {0}")]
    Config(String),
}

/// The explicit provider: rustls' `ring` backend.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

const TLS13_ONLY: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];

/// Where a TLS server finds its certificate, key and client CA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTlsSettings {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key of the leaf.
    pub key: PathBuf,
    /// PEM CA bundle that client certificates must chain to; `None`: clients
    /// are not asked for a certificate.
    pub client_ca: Option<PathBuf>,
    /// Refuse clients without a certificate (needs `client_ca`); `false`
    /// with a `client_ca` verifies a certificate only if one is offered.
    pub require_client_cert: bool,
}

/// A TLS 1.3 server configuration with certificate reload. Cheap to clone.
#[derive(Clone)]
pub struct ServerTls {
    inner: Arc<ServerInner>,
}

struct ServerInner {
    config: Arc<rustls::ServerConfig>,
    resolver: Arc<ReloadingCert>,
}

impl ServerTls {
    /// Loads the certificate, key and client CA and builds the configuration.
    pub fn new(settings: &ServerTlsSettings) -> Result<Self, TlsError> {
        let provider = provider();
        let resolver = Arc::new(ReloadingCert::new(
            &settings.cert,
            &settings.key,
            provider.clone(),
        )?);
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(TLS13_ONLY)
            .map_err(|e| TlsError::Config(e.to_string()))?;
        let builder = match (&settings.client_ca, settings.require_client_cert) {
            (None, true) => return Err(TlsError::ClientCaMissing),
            (None, false) => builder.with_no_client_auth(),
            (Some(ca), required) => {
                let roots = Arc::new(pem::roots(ca)?);
                let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider);
                let verifier = if required {
                    verifier
                } else {
                    verifier.allow_unauthenticated()
                };
                let verifier = verifier.build().map_err(|e| TlsError::BadCa {
                    path: ca.clone(),
                    detail: e.to_string(),
                })?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder.with_cert_resolver(resolver.clone());
        // No TLS 1.3 session tickets: broker connections are long-lived, so
        // resumption saves little, and tickets a client has not read when it
        // closes (right after its handshake) turn its close into a reset.
        config.send_tls13_tickets = 0;
        Ok(Self {
            inner: Arc::new(ServerInner {
                config: Arc::new(config),
                resolver,
            }),
        })
    }

    /// The rustls configuration, e.g. for `rustls::StreamOwned`. Its
    /// certificate resolver reloads the pair; the config itself never changes.
    pub fn config(&self) -> Arc<rustls::ServerConfig> {
        self.inner.config.clone()
    }

    /// Loads the certificate and key now (a SIGHUP, a test). On failure the
    /// previous pair keeps serving and the error says why.
    pub fn reload_now(&self) -> Result<(), TlsError> {
        self.inner.resolver.reload_now()
    }

    /// The leaf certificate served now.
    pub fn current_cert(&self) -> CertificateDer<'static> {
        self.inner.resolver.current().cert[0].clone()
    }
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls")
            .field("resolver", &self.inner.resolver)
            .finish_non_exhaustive()
    }
}

/// Where a TLS client finds its trust anchors and, for mTLS, its own pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientTlsSettings {
    /// PEM CA bundle the server's certificate must chain to.
    pub ca: PathBuf,
    /// PEM client certificate chain (mTLS); needs `key`.
    pub cert: Option<PathBuf>,
    /// PEM private key of `cert`.
    pub key: Option<PathBuf>,
    /// Name to verify the server's certificate against; `None`: the IP
    /// address connected to.
    pub server_name: Option<String>,
}

/// A TLS 1.3 client configuration. Cheap to clone.
#[derive(Clone)]
pub struct ClientTls {
    config: Arc<rustls::ClientConfig>,
    server_name: Option<ServerName<'static>>,
}

impl ClientTls {
    pub fn new(settings: &ClientTlsSettings) -> Result<Self, TlsError> {
        let provider = provider();
        let server_name = match &settings.server_name {
            None => None,
            Some(name) => Some(
                ServerName::try_from(name.clone())
                    .map_err(|_| TlsError::InvalidServerName { name: name.clone() })?,
            ),
        };
        let roots = pem::roots(&settings.ca)?;
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(TLS13_ONLY)
            .map_err(|e| TlsError::Config(e.to_string()))?
            .with_root_certificates(roots);
        let config = match (&settings.cert, &settings.key) {
            (None, None) => builder.with_no_client_auth(),
            (Some(cert), Some(key)) => {
                let pair = pem::certified_key(cert, key, &provider)?;
                let pair = Arc::unwrap_or_clone(pair);
                builder.with_client_cert_resolver(Arc::new(SingleCertAndKey::from(pair)))
            }
            (Some(_), None) => return Err(TlsError::ClientPairIncomplete { given: "cert" }),
            (None, Some(_)) => return Err(TlsError::ClientPairIncomplete { given: "key" }),
        };
        Ok(Self {
            config: Arc::new(config),
            server_name,
        })
    }

    pub fn config(&self) -> Arc<rustls::ClientConfig> {
        self.config.clone()
    }

    /// The name a connection to `addr` verifies the server against: the
    /// configured DNS name, else the IP address itself.
    pub fn server_name_for(&self, addr: SocketAddr) -> ServerName<'static> {
        match &self.server_name {
            Some(name) => name.clone(),
            None => ServerName::IpAddress(addr.ip().into()),
        }
    }
}

impl fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientTls")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

/// The principal a certificate names: its subject's Common Name (`alice`
/// for `CN=alice, O=...`). `None` if the certificate does not parse or has
/// no CN. Callers form `User:alice`.
pub fn principal_from_cert(der: &CertificateDer<'_>) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
    let cn = cert.subject().iter_common_name().next()?;
    cn.as_str().ok().map(str::to_owned)
}
