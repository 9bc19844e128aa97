//! The controller RPC over mutual TLS: three members whose certificates a
//! test CA signed form a quorum and agree on metadata through it; a peer
//! speaking plain TCP, one whose certificate another CA signed, and one with
//! a certificate of the right CA that the members do not admit get no
//! answer; a client holding a member's certificate does (the control that
//! shows the refusals are the checks, not a broken harness).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use neo_cluster::{Controller, ControllerTls};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;

struct Leaf {
    cert: CertificateDer<'static>,
    key: Vec<u8>,
}

impl Leaf {
    fn key(&self) -> PrivateKeyDer<'static> {
        PrivatePkcs8KeyDer::from(self.key.clone()).into()
    }
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, name);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap()
}

/// A leaf for 127.0.0.1, usable as server and as client certificate.
fn leaf(ca: &CertifiedIssuer<'static, KeyPair>, cn: &str) -> Leaf {
    let mut p = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let key = KeyPair::generate().unwrap();
    let cert = p.signed_by(&key, ca).unwrap();
    Leaf {
        cert: cert.der().clone(),
        key: key.serialize_der(),
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn roots(ca: &CertifiedIssuer<'static, KeyPair>) -> Arc<rustls::RootCertStore> {
    let mut r = rustls::RootCertStore::empty();
    r.add(ca.der().clone()).unwrap();
    Arc::new(r)
}

fn client_config(ca: &CertifiedIssuer<'static, KeyPair>, me: &Leaf) -> Arc<rustls::ClientConfig> {
    let c = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots(ca))
        .with_client_auth_cert(vec![me.cert.clone()], me.key())
        .unwrap();
    Arc::new(c)
}

/// The members' TLS: they admit exactly the member certificate.
fn controller_tls(ca: &CertifiedIssuer<'static, KeyPair>, member: &Leaf) -> ControllerTls {
    let verifier = WebPkiClientVerifier::builder_with_provider(roots(ca), provider())
        .build()
        .unwrap();
    let server = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![member.cert.clone()], member.key())
        .unwrap();
    let admitted = member.cert.clone();
    ControllerTls {
        server: Arc::new(server),
        client: client_config(ca, member),
        server_name: None,
        admit: Arc::new(move |leaf: &CertificateDer<'_>| {
            if leaf.as_ref() == admitted.as_ref() {
                Ok(())
            } else {
                Err("not a controller member's certificate".into())
            }
        }),
    }
}

/// One `Status` request as the controller wire frames it.
fn status_frame() -> Vec<u8> {
    let body = br#""Status""#;
    let mut f = (body.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(body);
    f
}

/// Sends a `Status` request over `s` and returns what came back before the
/// peer closed or 3 s passed (empty: nothing).
fn ask_status<S: Read + Write>(s: &mut S) -> Vec<u8> {
    let mut got = Vec::new();
    if s.write_all(&status_frame())
        .and_then(|_| s.flush())
        .is_err()
    {
        return got;
    }
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return got,
            Ok(n) => {
                got.extend_from_slice(&buf[..n]);
                if got.len() >= 4 {
                    let len = u32::from_be_bytes(got[..4].try_into().unwrap()) as usize;
                    if got.len() >= 4 + len {
                        return got;
                    }
                }
            }
        }
    }
}

/// Asks over TLS with `config`; the answer's body, if a whole frame came.
fn ask_over_tls(addr: &str, config: Arc<rustls::ClientConfig>) -> Option<String> {
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let conn = rustls::ClientConnection::new(config, name).unwrap();
    let mut s = rustls::StreamOwned::new(conn, tcp);
    let got = ask_status(&mut s);
    (got.len() >= 4).then(|| String::from_utf8_lossy(&got[4..]).into_owned())
}

#[test]
fn members_agree_over_mutual_tls_and_refuse_everyone_else() {
    let pki = ca("controller test CA");
    let member = leaf(&pki, "controller");
    let tls = controller_tls(&pki, &member);
    let dir = tempfile::tempdir().unwrap();
    let voters = voters(3);
    let nodes: std::collections::BTreeMap<_, _> = voters
        .keys()
        .map(|&id| {
            let mut cfg = config(id, &voters, dir.path());
            cfg.tls = Some(tls.clone());
            (id, Controller::start(cfg).unwrap())
        })
        .collect();
    // Every broker heartbeats through the leader and every member applies
    // the registrations: Raft and the controller RPCs ran over TLS.
    wait_registered(&nodes, &[1, 2, 3]);
    let leader = nodes[&1].leader().expect("a leader");
    nodes[&1]
        .create_topic("t", 3, 3, serde_json::Value::Null, T)
        .expect("a topic created through the TLS quorum");
    wait_converged(&nodes);

    let addr = &voters[&leader];
    // Control: a member's own certificate gets an answer.
    let answer = ask_over_tls(addr, client_config(&pki, &member)).expect("an answer");
    assert!(answer.starts_with(r#"{"Status""#), "{answer}");

    // Plain TCP: the TLS listener never reads it as a request.
    let mut plain = TcpStream::connect(addr).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let got = ask_status(&mut plain);
    assert!(
        !String::from_utf8_lossy(&got).contains("Status"),
        "plain TCP got an answer: {got:?}"
    );

    // The right CA, but not a member's certificate.
    let intruder = leaf(&pki, "alice");
    assert_eq!(ask_over_tls(addr, client_config(&pki, &intruder)), None);

    // A member's name, signed by another CA (and that CA trusted by the
    // client, so only the server's check can refuse it).
    let other = ca("another CA");
    let forged = leaf(&other, "controller");
    let mut r = rustls::RootCertStore::empty();
    r.add(pki.der().clone()).unwrap();
    let forged_client = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(Arc::new(r))
        .with_client_auth_cert(vec![forged.cert.clone()], forged.key())
        .unwrap();
    assert_eq!(ask_over_tls(addr, Arc::new(forged_client)), None);

    // The quorum still works after the refusals.
    nodes[&2]
        .create_topic("u", 1, 3, serde_json::Value::Null, T)
        .expect("a second topic");
    for (_, c) in nodes {
        c.shutdown();
    }
}
