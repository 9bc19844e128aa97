//! Tests of the SCRAM server and client: RFC 7677's vector, round trips,
//! and every way an exchange must fail.

use std::sync::{Arc, OnceLock};

use proptest::prelude::*;

use super::*;

const ALICE_PW: &str = "alice-secret";

/// A store with `alice` and `a,b=c` (a name that needs saslname escaping).
fn store() -> &'static CredentialStore {
    static STORE: OnceLock<CredentialStore> = OnceLock::new();
    STORE.get_or_init(|| {
        let mut s = CredentialStore::empty("/nonexistent/creds.json");
        s.upsert("alice", ALICE_PW, 4096).unwrap();
        s.upsert("a,b=c", "pw", 4096).unwrap();
        s
    })
}

fn server(m: Mechanism) -> ScramServer<&'static CredentialStore> {
    ScramServer::new(m, store())
}

fn continue_bytes(step: Result<Step, ScramError>) -> Vec<u8> {
    match step {
        Ok(Step::Continue(b)) => b,
        other => panic!("expected Continue, got {other:?}"),
    }
}

/// Builds a client-final-message by hand, with any gs2 header / `c=`.
fn client_final(
    m: Mechanism,
    password: &str,
    bare: &str,
    server_first: &str,
    cbind: &str,
) -> String {
    let nonce = &server_first.split(',').next().unwrap()[2..];
    final_message(m, password, bare, server_first, cbind, nonce)
}

/// A client-final-message sending `nonce` (a conforming client sends the
/// server's `r=` as it is).
fn client_final_with_nonce(
    m: Mechanism,
    password: &str,
    bare: &str,
    server_first: &str,
    nonce: &str,
) -> String {
    final_message(m, password, bare, server_first, "n,,", nonce)
}

fn final_message(
    m: Mechanism,
    password: &str,
    bare: &str,
    server_first: &str,
    cbind: &str,
    nonce: &str,
) -> String {
    let mut parts = server_first.split(',').skip(1);
    let salt = b64decode(&parts.next().unwrap().as_bytes()[2..]).unwrap();
    let iterations: u32 = parts.next().unwrap()[2..].parse().unwrap();
    let salted = m.salted_password(password.as_bytes(), &salt, iterations);
    let client_key = m.client_key(&salted);
    let without_proof = format!("c={},r={nonce}", b64encode(cbind.as_bytes()));
    let auth = format!("{bare},{server_first},{without_proof}");
    let proof = xor(&client_key, &m.hmac(&m.hash(&client_key), auth.as_bytes()));
    format!("{without_proof},p={}", b64encode(&proof))
}

#[test]
fn rfc7677_example_exchange() {
    let salt = b64decode(b"W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
    let m = Mechanism::ScramSha256;
    let mut store = CredentialStore::empty("/nonexistent/creds.json");
    store
        .insert("user", m, ScramCredential::derive(m, "pencil", &salt, 4096))
        .unwrap();
    let mut server =
        ScramServer::new(m, &store).with_nonce_suffix("%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0");
    let mut client = ScramClient::new(m, "user", "pencil")
        .unwrap()
        .with_nonce("rOprNGfwEbeRWgbNEkqO");

    let c1 = client.client_first().unwrap();
    assert_eq!(c1, b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
    let s1 = continue_bytes(server.step(&c1));
    assert_eq!(
        s1,
        b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
    );
    let c2 = client.handle_server_first(&s1).unwrap();
    assert_eq!(
        c2,
        b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
    );
    let Ok(Step::Done {
        server_final,
        principal,
    }) = server.step(&c2)
    else {
        panic!("the RFC exchange must succeed");
    };
    assert_eq!(
        server_final,
        b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
    );
    assert_eq!(principal.to_string(), "User:user");
    client.handle_server_final(&server_final).unwrap();
    assert_eq!(server.step(b"again"), Err(ScramError::Finished));
}

fn round_trip(m: Mechanism, user: &str, password: &str) -> Result<Principal, ScramError> {
    let mut server = ScramServer::new(m, Arc::new(store().clone()));
    let mut client = ScramClient::new(m, user, password)?;
    let s1 = continue_bytes(server.step(&client.client_first()?));
    let c2 = client.handle_server_first(&s1)?;
    match server.step(&c2)? {
        Step::Done {
            server_final,
            principal,
        } => {
            client.handle_server_final(&server_final)?;
            Ok(principal)
        }
        Step::Continue(_) => panic!("a third message"),
    }
}

#[test]
fn round_trips_for_both_mechanisms() {
    for m in Mechanism::ALL {
        assert_eq!(
            round_trip(m, "alice", ALICE_PW).unwrap().to_string(),
            "User:alice"
        );
        // `,` and `=` travel as `=2C` and `=3D`.
        assert_eq!(round_trip(m, "a,b=c", "pw").unwrap().name(), "a,b=c");
    }
}

#[test]
fn wrong_password_and_unknown_user_look_the_same() {
    for m in Mechanism::ALL {
        let wrong = round_trip(m, "alice", "guess").unwrap_err();
        assert_eq!(
            wrong,
            ScramError::InvalidProof {
                user: "alice".into()
            }
        );
        let unknown = round_trip(m, "mallory", "guess").unwrap_err();
        assert_eq!(
            unknown,
            ScramError::UnknownUser {
                user: "mallory".into()
            }
        );
        assert_eq!(wrong.rfc_error(), unknown.rfc_error());
        assert_eq!(wrong.rfc_error(), "invalid-proof");

        // The server-first-message has the same shape, and an unknown user
        // gets the same salt every time.
        let first = |user: &str| {
            let msg = format!("n,,n={user},r=abc");
            String::from_utf8(continue_bytes(server(m).step(msg.as_bytes()))).unwrap()
        };
        let (real, fake) = (first("alice"), first("mallory"));
        let shape = |s: &str| s.split(',').map(|a| a.len()).skip(1).collect::<Vec<_>>();
        assert_eq!(shape(&real), shape(&fake));
        let salt = |s: &str| s.split(',').nth(1).unwrap().to_owned();
        assert_eq!(salt(&fake), salt(&first("mallory")));
        assert_ne!(salt(&fake), salt(&first("mallory2")));
    }
}

#[test]
fn server_nonce_is_random_and_long() {
    let m = Mechanism::ScramSha256;
    let nonce =
        |msg: Vec<u8>| String::from_utf8(msg).unwrap().split(',').next().unwrap()[2..].to_owned();
    let a = nonce(continue_bytes(server(m).step(b"n,,n=alice,r=xyz")));
    let b = nonce(continue_bytes(server(m).step(b"n,,n=alice,r=xyz")));
    assert_ne!(a, b);
    assert!(a.starts_with("xyz"));
    assert!(b64decode(&a.as_bytes()[3..]).unwrap().len() >= 18);
}

#[test]
fn replayed_or_altered_nonce_fails() {
    let m = Mechanism::ScramSha256;
    let mut client = ScramClient::new(m, "alice", ALICE_PW).unwrap();
    let c1 = client.client_first().unwrap();
    let mut s = server(m);
    let s1 = continue_bytes(s.step(&c1));
    let c2 = client.handle_server_first(&s1).unwrap();
    assert!(matches!(s.step(&c2), Ok(Step::Done { .. })));

    // Replay: same messages against a new exchange (a new server nonce).
    let mut replay = server(m);
    continue_bytes(replay.step(&c1));
    assert_eq!(replay.step(&c2), Err(ScramError::NonceMismatch));

    // Altered: the last character of the combined nonce (the server's
    // random part) changed.
    let mut altered = server(m);
    let s1 = String::from_utf8(continue_bytes(altered.step(&c1))).unwrap();
    let bare = std::str::from_utf8(&c1[3..]).unwrap();
    let good = client_final(m, ALICE_PW, bare, &s1, "n,,");
    let at = good.find(",p=").unwrap() - 1;
    let swap = if &good[at..at + 1] == "A" { "B" } else { "A" };
    let bad = format!("{}{swap}{}", &good[..at], &good[at + 1..]);
    assert_eq!(altered.step(bad.as_bytes()), Err(ScramError::NonceMismatch));
    // Truncated: a nonce shorter than the exchange's.
    let mut short = server(m);
    let s1 = String::from_utf8(continue_bytes(short.step(&c1))).unwrap();
    let good = client_final(m, ALICE_PW, bare, &s1, "n,,");
    let bad = good.replacen(&s1[2..12], "", 1);
    assert_eq!(short.step(bad.as_bytes()), Err(ScramError::NonceMismatch));
}

/// librdkafka (2.0 at least) sends its client nonce again in front of the
/// server's `r=` in the client-final-message; Kafka accepts a nonce that
/// ends with the exchange's, and so does this server. The proof covers
/// the message as sent, so it still verifies.
#[test]
fn librdkafka_doubled_client_nonce_is_accepted() {
    let m = Mechanism::ScramSha256;
    let mut s = server(m);
    let c1 = b"n,,n=alice,r=E_hU.8E?]O=UU|qsvU";
    let s1 = String::from_utf8(continue_bytes(s.step(c1))).unwrap();
    let server_nonce = s1.split(',').next().unwrap().strip_prefix("r=").unwrap();
    let doubled = format!("E_hU.8E?]O=UU|qsvU{server_nonce}");
    let fin = client_final_with_nonce(m, ALICE_PW, "n=alice,r=E_hU.8E?]O=UU|qsvU", &s1, &doubled);
    assert!(matches!(s.step(fin.as_bytes()), Ok(Step::Done { .. })));
}

#[test]
fn channel_binding_rules() {
    let m = Mechanism::ScramSha512;
    // `y,,` is accepted with c=eSws.
    let mut s = server(m);
    let s1 = String::from_utf8(continue_bytes(s.step(b"y,,n=alice,r=abc"))).unwrap();
    let c2 = client_final(m, ALICE_PW, "n=alice,r=abc", &s1, "y,,");
    assert!(c2.starts_with("c=eSws,"));
    assert!(matches!(s.step(c2.as_bytes()), Ok(Step::Done { .. })));

    // `c=` that is not the gs2 header fails, even with a right proof.
    let mut s = server(m);
    let s1 = String::from_utf8(continue_bytes(s.step(b"n,,n=alice,r=abc"))).unwrap();
    let c2 = client_final(m, ALICE_PW, "n=alice,r=abc", &s1, "y,,");
    assert_eq!(
        s.step(c2.as_bytes()),
        Err(ScramError::ChannelBindingMismatch)
    );

    // `p=` is refused with a clear error.
    let e = server(m).step(b"p=tls-unique,,n=alice,r=abc").unwrap_err();
    assert_eq!(
        e,
        ScramError::ChannelBindingNotSupported("tls-unique".into())
    );
    assert_eq!(e.rfc_error(), "channel-binding-not-supported");
    assert!(e.to_string().contains("channel binding"));
}

#[test]
fn authzid_must_be_the_user() {
    let m = Mechanism::ScramSha256;
    let mut s = server(m);
    let s1 = String::from_utf8(continue_bytes(s.step(b"n,a=alice,n=alice,r=abc"))).unwrap();
    let c2 = client_final(m, ALICE_PW, "n=alice,r=abc", &s1, "n,a=alice,");
    assert!(matches!(s.step(c2.as_bytes()), Ok(Step::Done { .. })));

    let e = server(m).step(b"n,a=bob,n=alice,r=abc").unwrap_err();
    assert_eq!(
        e,
        ScramError::AuthzidMismatch {
            authzid: "bob".into(),
            user: "alice".into()
        }
    );
}

#[test]
fn saslname_decoding() {
    assert_eq!(decode_saslname("a=2Cb=3Dc").unwrap(), "a,b=c");
    assert_eq!(encode_saslname("a,b=c"), "a=2Cb=3Dc");
    for bad in ["=", "a=2", "=41", "=2c", "x=3"] {
        assert!(decode_saslname(bad).is_err(), "{bad}");
    }
}

#[test]
fn malformed_first_messages_fail() {
    let m = Mechanism::ScramSha256;
    let long = format!("n,,n=alice,r={}", "a".repeat(MAX_MESSAGE_LEN));
    let cases: Vec<&[u8]> = vec![
        b"",
        b"n",
        b"n,,",
        b"x,,n=alice,r=abc",
        b"n,b=alice,n=alice,r=abc",
        b"n,,r=abc",
        b"n,,n=alice",
        b"n,,n=alice,r=",
        b"n,,n=alice,r=a b",
        b"n,,n=al=41ice,r=abc",
        b"n,,n=,r=abc",
        b"n,,n=a\x01,r=abc",
        b"n,,m=ext,n=alice,r=abc",
        b"n,,n=alice,r=abc,tokenauth=true",
        b"n,,n=alice,r=abc,noequals",
        b"n,,n=alice,r=\xff\xfe",
        long.as_bytes(),
    ];
    for msg in cases {
        let mut s = server(m);
        assert!(s.step(msg).is_err(), "{:?}", String::from_utf8_lossy(msg));
        assert_eq!(s.step(b"n,,n=alice,r=abc"), Err(ScramError::Finished));
    }
    // Unknown extensions are ignored.
    assert!(server(m).step(b"n,,n=alice,r=abc,x=1").is_ok());
}

#[test]
fn malformed_final_messages_fail() {
    let m = Mechanism::ScramSha256;
    let nonce_of = |s1: &[u8]| {
        String::from_utf8(s1.to_vec())
            .unwrap()
            .split(',')
            .next()
            .unwrap()[2..]
            .to_owned()
    };
    let cases = |n: &str| {
        vec![
            String::new(),
            format!("c=biws,r={n}"),
            format!("r={n},c=biws,p=AAAA"),
            format!("c=biws,r={n},p=not base64!"),
            format!("c=!!,r={n},p=AAAA"),
            format!("c=biws,r={n},p=AAAA"), // proof of the wrong length
            format!("c=biws,r={n},bad,p=AAAA"),
            format!("c=biws,p=AAAA"),
        ]
    };
    for i in 0..cases("").len() {
        let mut s = server(m);
        let n = nonce_of(&continue_bytes(s.step(b"n,,n=alice,r=abc")));
        let msg = &cases(&n)[i];
        assert!(s.step(msg.as_bytes()).is_err(), "{msg}");
        assert_eq!(s.step(msg.as_bytes()), Err(ScramError::Finished));
    }
}

proptest! {
    #[test]
    fn arbitrary_first_message_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut s = server(Mechanism::ScramSha256);
        let _ = s.step(&bytes);
        let _ = s.step(&bytes);
    }

    #[test]
    fn arbitrary_final_message_never_panics(
        bytes in proptest::collection::vec(any::<u8>(), 0..300),
        text in "c=(biws|eSws|[A-Za-z0-9+/=]{0,8}),r=abc[A-Za-z0-9+/=]{0,40}(,p=[A-Za-z0-9+/=]{0,100})?",
    ) {
        for msg in [bytes.as_slice(), text.as_bytes()] {
            let mut s = server(Mechanism::ScramSha512);
            continue_bytes(s.step(b"n,,n=alice,r=abc"));
            prop_assert!(s.step(msg).is_err());
        }
    }
}
