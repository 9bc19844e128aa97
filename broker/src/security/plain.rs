//! SASL PLAIN (RFC 4616): `authzid NUL authcid NUL passwd`, checked against
//! the credential store's SCRAM-SHA-256 entry
//! ([`CredentialStore::verify_plain`]). Only over TLS: the password
//! travels in the clear.

use super::credentials::{CredentialStore, MAX_PASSWORD_LEN};
use super::principal::{validate_name, Principal, PrincipalError, MAX_NAME_LEN};

/// Longest PLAIN message accepted: two names, a password, two NULs.
pub const MAX_PLAIN_MESSAGE_LEN: usize = 2 * MAX_NAME_LEN + MAX_PASSWORD_LEN + 2;

/// Why a PLAIN authentication failed. The text is for the server's log;
/// [`PlainError::UnknownUser`] and [`PlainError::WrongPassword`] must both
/// reach the client as the same "invalid credentials".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlainError {
    #[error("PLAIN message is {len} bytes; the most is {MAX_PLAIN_MESSAGE_LEN}")]
    TooLong { len: usize },
    #[error("malformed PLAIN message: {0}")]
    Malformed(&'static str),
    #[error("invalid user name: {0}")]
    InvalidUser(PrincipalError),
    #[error("authorization identity {authzid:?} is not the user {user:?}")]
    AuthzidMismatch { authzid: String, user: String },
    #[error("unknown user {user:?}")]
    UnknownUser { user: String },
    #[error("wrong password for user {user:?}")]
    WrongPassword { user: String },
}

/// The three fields of a PLAIN message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlainMessage<'a> {
    pub authzid: &'a str,
    pub authcid: &'a str,
    pub password: &'a str,
}

/// Parses `authzid NUL authcid NUL passwd`: UTF-8, bounded lengths, a valid
/// user name, a non-empty password, authzid empty or the user.
pub fn parse_plain(message: &[u8]) -> Result<PlainMessage<'_>, PlainError> {
    if message.len() > MAX_PLAIN_MESSAGE_LEN {
        return Err(PlainError::TooLong { len: message.len() });
    }
    let text = std::str::from_utf8(message).map_err(|_| PlainError::Malformed("not UTF-8"))?;
    let mut fields = text.split('\0');
    let (Some(authzid), Some(authcid), Some(password), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(PlainError::Malformed("not three NUL-separated fields"));
    };
    validate_name(authcid).map_err(PlainError::InvalidUser)?;
    if password.is_empty() {
        return Err(PlainError::Malformed("empty password"));
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(PlainError::Malformed("password too long"));
    }
    if !authzid.is_empty() && authzid != authcid {
        return Err(PlainError::AuthzidMismatch {
            authzid: authzid.chars().take(MAX_NAME_LEN).collect(),
            user: authcid.to_owned(),
        });
    }
    Ok(PlainMessage {
        authzid,
        authcid,
        password,
    })
}

/// Parses a PLAIN message and checks the password: the principal on
/// success. An unknown user costs the same as a wrong password.
pub fn authenticate_plain(
    store: &CredentialStore,
    message: &[u8],
) -> Result<Principal, PlainError> {
    let msg = parse_plain(message)?;
    if store.verify_plain(msg.authcid, msg.password) {
        return Principal::user(msg.authcid).map_err(PlainError::InvalidUser);
    }
    let user = msg.authcid.to_owned();
    Err(if store.contains(&user) {
        PlainError::WrongPassword { user }
    } else {
        PlainError::UnknownUser { user }
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn store() -> CredentialStore {
        let mut s = CredentialStore::empty("/nonexistent/creds.json");
        s.upsert("alice", "pw", 4096).unwrap();
        s
    }

    #[test]
    fn parses_and_authenticates() {
        let s = store();
        assert_eq!(
            parse_plain(b"\0alice\0pw").unwrap(),
            PlainMessage {
                authzid: "",
                authcid: "alice",
                password: "pw"
            }
        );
        assert_eq!(
            authenticate_plain(&s, b"\0alice\0pw").unwrap().to_string(),
            "User:alice"
        );
        assert_eq!(
            authenticate_plain(&s, b"alice\0alice\0pw").unwrap().name(),
            "alice"
        );
        assert_eq!(
            authenticate_plain(&s, b"\0alice\0nope"),
            Err(PlainError::WrongPassword {
                user: "alice".into()
            })
        );
        assert_eq!(
            authenticate_plain(&s, b"\0bob\0pw"),
            Err(PlainError::UnknownUser { user: "bob".into() })
        );
        assert!(matches!(
            authenticate_plain(&s, b"bob\0alice\0pw"),
            Err(PlainError::AuthzidMismatch { .. })
        ));
    }

    #[test]
    fn malformed_messages() {
        let long_pw = format!("\0alice\0{}", "p".repeat(MAX_PASSWORD_LEN + 1));
        let too_long = vec![b'a'; MAX_PLAIN_MESSAGE_LEN + 1];
        let cases: Vec<&[u8]> = vec![
            b"",
            b"alice",
            b"\0alice",
            b"\0alice\0",
            b"\0\0pw",
            b"\0alice\0pw\0x",
            b"\0al ice\0pw",
            b"\0alice\0\xff",
            long_pw.as_bytes(),
            &too_long,
        ];
        for msg in cases {
            assert!(
                parse_plain(msg).is_err(),
                "{:?}",
                String::from_utf8_lossy(msg)
            );
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = parse_plain(&bytes);
        }
    }
}
