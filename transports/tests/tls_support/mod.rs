//! Fixtures of the TLS tests: a throwaway PKI written to a temporary
//! directory (rcgen), a threaded RPC server over TLS, and a single-thread
//! pump for two raw transports.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use neo_transports::rpc::ServerConfig;

use crate::common::TestServer;
use neo_transports::tcp::{TcpConfig, TcpTransport};
use neo_transports::tls::{ClientTls, ClientTlsSettings, ServerTlsSettings};
use neo_transports::transport::CloseReason;
use neo_transports::{ConnId, Event, Transport, Tx};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// A CA and the directory its files live in.
pub struct Pki {
    pub dir: tempfile::TempDir,
    ca: CertifiedIssuer<'static, KeyPair>,
    pub ca_pem: PathBuf,
}

impl Pki {
    pub fn new(ca_name: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, ca_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let ca_pem = dir.path().join("ca.pem");
        std::fs::write(&ca_pem, ca.pem()).unwrap();
        Self { dir, ca, ca_pem }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A leaf for `CN=cn` valid for `localhost` and 127.0.0.1, as PEM
    /// (certificate, key).
    pub fn leaf_pem(&self, cn: &str, client: bool) -> (String, String) {
        let mut params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![if client {
            ExtendedKeyUsagePurpose::ClientAuth
        } else {
            ExtendedKeyUsagePurpose::ServerAuth
        }];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    /// Writes a leaf to `<name>.crt` / `<name>.key`; returns the paths.
    pub fn leaf(&self, name: &str, cn: &str, client: bool) -> (PathBuf, PathBuf) {
        let (cert, key) = self.leaf_pem(cn, client);
        let (cp, kp) = (
            self.path(&format!("{name}.crt")),
            self.path(&format!("{name}.key")),
        );
        std::fs::write(&cp, cert).unwrap();
        std::fs::write(&kp, key).unwrap();
        (cp, kp)
    }

    /// Server settings for a fresh `CN=cn` pair, without client auth.
    pub fn server_settings(&self, cn: &str) -> ServerTlsSettings {
        let (cert, key) = self.leaf("server", cn, false);
        ServerTlsSettings {
            cert,
            key,
            client_ca: None,
            require_client_cert: false,
        }
    }

    /// A client trusting this CA, with a `CN=cn` certificate if `cn` is set.
    pub fn client(&self, cn: Option<&str>) -> ClientTls {
        let (cert, key) = match cn {
            Some(cn) => {
                let (c, k) = self.leaf(&format!("client-{cn}"), cn, true);
                (Some(c), Some(k))
            }
            None => (None, None),
        };
        ClientTls::new(&ClientTlsSettings {
            ca: self.ca_pem.clone(),
            cert,
            key,
            server_name: None,
        })
        .unwrap()
    }
}

/// Replaces `path` the way an operator's tooling would: whole new content.
pub fn overwrite(path: &Path, content: &str) {
    std::fs::write(path, content).unwrap();
}

/// An RPC server on its own thread (the shared fixture of
/// `tests/common`): `echo/Echo`, and `id/WhoAmI` answering the caller's
/// peer identity (empty when none).
pub fn rpc_server(tcp: TcpConfig, cfg: ServerConfig) -> TestServer {
    TestServer::start(tcp, cfg, |server| {
        server
            .register("id", "WhoAmI", |call| {
                let id = call.peer_identity().unwrap_or("").to_owned();
                call.reply(id.as_bytes())?;
                Ok(())
            })
            .unwrap();
    })
}

/// What a raw transport's sink saw, owned.
#[derive(Debug, Default)]
pub struct Seen {
    pub accepted: Vec<ConnId>,
    pub connected: Vec<ConnId>,
    /// Message, with the transport's peer identity at the time.
    pub messages: Vec<(ConnId, Vec<u8>, Option<String>)>,
    pub closed: Vec<(ConnId, CloseReason)>,
}

impl Seen {
    pub fn closed_reason(&self, conn: ConnId) -> Option<&CloseReason> {
        self.closed.iter().find(|(c, _)| *c == conn).map(|(_, r)| r)
    }
    pub fn messages_on(&self, conn: ConnId) -> Vec<&[u8]> {
        self.messages
            .iter()
            .filter(|(c, ..)| *c == conn)
            .map(|(_, m, _)| m.as_slice())
            .collect()
    }
}

/// One side of a single-thread test: a transport and what it saw; `echo`
/// answers every message with itself.
pub struct Side {
    pub t: TcpTransport,
    pub seen: Seen,
    pub echo: bool,
}

impl Side {
    pub fn new(cfg: TcpConfig, echo: bool) -> Self {
        Self {
            t: TcpTransport::new(cfg).unwrap(),
            seen: Seen::default(),
            echo,
        }
    }

    pub fn poll(&mut self) {
        let seen = &mut self.seen;
        let echo = self.echo;
        self.t
            .poll(&mut |ev: Event<'_>, tx: &mut dyn Tx| match ev {
                Event::Accepted { conn, .. } => seen.accepted.push(conn),
                Event::Connected { conn } => seen.connected.push(conn),
                Event::Message { conn, data } => {
                    let id = tx.peer_identity(conn).map(str::to_owned);
                    if echo {
                        tx.send_parts(conn, &[data]).unwrap();
                    }
                    seen.messages.push((conn, data.to_vec(), id));
                }
                Event::Closed { conn, reason } => seen.closed.push((conn, reason)),
            })
            .unwrap();
    }
}

/// Polls both sides until `until` holds; panics after 10 s.
pub fn pump(a: &mut Side, b: &mut Side, until: impl Fn(&Seen, &Seen) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !until(&a.seen, &b.seen) {
        assert!(
            Instant::now() < deadline,
            "timed out; saw\n{:?}\nand\n{:?}",
            a.seen,
            b.seen
        );
        a.poll();
        b.poll();
        std::thread::sleep(Duration::from_micros(200));
    }
}
