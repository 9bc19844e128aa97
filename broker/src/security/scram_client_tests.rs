//! Tests of the SCRAM client's checks of the server.

use proptest::prelude::*;

use super::*;

const ALICE_PW: &str = "alice-secret";

#[test]
fn client_checks_the_server() {
    let m = Mechanism::ScramSha256;
    let start = || {
        let mut c = ScramClient::new(m, "alice", ALICE_PW)
            .unwrap()
            .with_nonce("abc");
        c.client_first().unwrap();
        c
    };
    assert_eq!(
        start().handle_server_first(b"r=xyz123,s=AAAA,i=4096"),
        Err(ScramError::NonceMismatch)
    );
    assert_eq!(
        start().handle_server_first(b"r=abc,s=AAAA,i=4096"),
        Err(ScramError::NonceMismatch)
    );
    assert_eq!(
        start().handle_server_first(b"r=abcd,s=AAAA,i=1000"),
        Err(ScramError::Iterations(1000))
    );
    assert!(start().handle_server_first(b"r=abcd,s=,i=4096").is_err());
    assert!(start()
        .handle_server_first(b"m=x,r=abcd,s=AAAA,i=4096")
        .is_err());

    let mut c = start();
    c.handle_server_first(b"r=abcd,s=AAAA,i=4096").unwrap();
    assert_eq!(
        c.handle_server_final(b"e=invalid-proof"),
        Err(ScramError::ServerRejected("invalid-proof".into()))
    );
    let mut c = start();
    c.handle_server_first(b"r=abcd,s=AAAA,i=4096").unwrap();
    assert_eq!(
        c.handle_server_final(b"v=AAAA"),
        Err(ScramError::InvalidServerSignature)
    );
    assert_eq!(
        c.client_first(),
        Err(ScramError::OutOfOrder("client-first-message"))
    );
    assert!(ScramClient::new(m, "", "pw").is_err());
}

proptest! {
    #[test]
    fn arbitrary_server_messages_never_panic_the_client(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut c = ScramClient::new(Mechanism::ScramSha256, "alice", "pw").unwrap();
        c.client_first().unwrap();
        let _ = c.handle_server_first(&bytes);
        let _ = c.handle_server_final(&bytes);
    }
}
