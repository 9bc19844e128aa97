//! TLS of the controller RPC: mutual TLS 1.3 between controller members, and
//! which peers may speak Raft at all. The caller (`neo serve`) builds the
//! rustls configurations (certificates, CA, reload) and says which peer
//! certificates it admits; this module applies them to every dial and every
//! accepted connection: a peer whose certificate does not chain to the CA, or
//! that is not admitted, never gets a frame read or answered.

use std::fmt;
use std::io;
use std::sync::Arc;

use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};

/// Says whether a verified peer certificate (the leaf) belongs to a
/// controller member; `Err` names why not (logged with the peer's address).
pub type Admit = Arc<dyn Fn(&CertificateDer<'_>) -> Result<(), String> + Send + Sync>;

/// The controller RPC's TLS: both sides of every connection.
#[derive(Clone)]
pub struct ControllerTls {
    /// The listener's configuration; it must require client certificates.
    pub server: Arc<rustls::ServerConfig>,
    /// The dialler's: trusts the members' CA and presents this member's
    /// certificate.
    pub client: Arc<rustls::ClientConfig>,
    /// The name a dialled member's certificate is verified against; `None`:
    /// the host of its voter address (an IP address or a DNS name).
    pub server_name: Option<ServerName<'static>>,
    /// Applied to the peer's certificate on both sides.
    pub admit: Admit,
}

impl fmt::Debug for ControllerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ControllerTls")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

/// `name` as the name dialled members' certificates are verified against.
pub fn server_name(name: &str) -> Result<ServerName<'static>, String> {
    ServerName::try_from(name.to_string()).map_err(|_| format!("`{name}` is not a TLS server name"))
}

impl ControllerTls {
    /// The name to verify a member dialled at `addr` (`host:port`) against.
    pub(crate) fn name_for(&self, addr: &str) -> io::Result<ServerName<'static>> {
        if let Some(n) = &self.server_name {
            return Ok(n.clone());
        }
        let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        ServerName::try_from(host.to_string()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("controller address {addr}: `{host}` is not a TLS server name"),
            )
        })
    }

    /// Checks the certificate a peer presented (the handshake verified its
    /// chain already).
    pub(crate) fn check_peer(&self, certs: Option<&[CertificateDer<'_>]>) -> io::Result<()> {
        let leaf = certs.and_then(|c| c.first()).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::PermissionDenied,
                "the peer presented no certificate",
            )
        })?;
        (self.admit)(leaf).map_err(|why| io::Error::new(io::ErrorKind::PermissionDenied, why))
    }
}
