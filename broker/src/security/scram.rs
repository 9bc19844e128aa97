//! The server side of SASL SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC
//! 7677) as a sans-IO state machine: feed it each client message, send back
//! what [`ScramServer::step`] returns.
//!
//! * client-first-message: gs2 header `n,,` or `y,,` (`p=` channel binding
//!   is refused), `a=` authzid empty or the user, `n=` saslname (`=2C`,
//!   `=3D`), `r=` printable nonce; `m=` and `tokenauth=true` are refused,
//!   other extensions ignored.
//! * server-first-message: the client nonce plus 24 random bytes (base64),
//!   the salt and the iterations.
//! * client-final-message: `c=` must be the gs2 header (`biws` for `n,,`,
//!   `eSws` for `y,,`), `r=` the combined nonce, `p=` the ClientProof,
//!   checked in constant time; the answer is `v=ServerSignature`.
//!
//! An unknown user gets a fake credential from the store (same salt length
//! and iterations, stable per name), so every reply and every step's work is
//! the same as for a wrong password; only the [`ScramError`] says which, for
//! the server's log. [`ScramError::rfc_error`] is what a client may be told.

use std::ops::Deref;

use rand::RngCore;

use super::credentials::{CredentialStore, ScramCredential, MAX_ITERATIONS, MIN_ITERATIONS};
use super::mechanism::{b64decode, b64encode, ct_eq, xor, Mechanism};
use super::principal::{validate_name, Principal, PrincipalError};
pub(crate) use super::scram_parse::{
    check_extensions, check_nonce, decode_saslname, encode_saslname, printable,
};

pub use super::scram_client::ScramClient;

/// Longest SCRAM message accepted, in bytes.
pub const MAX_MESSAGE_LEN: usize = 4096;
/// Random bytes in the server's part of the nonce.
pub const SERVER_NONCE_BYTES: usize = 24;

/// Why a SCRAM exchange failed. The text is for the server's log (it names
/// the user and says whether it exists); clients get [`ScramError::rfc_error`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScramError {
    #[error("SCRAM message is {len} bytes; the most is {MAX_MESSAGE_LEN}")]
    TooLong { len: usize },
    #[error("malformed {what}: {why}")]
    Malformed { what: &'static str, why: String },
    #[error("the client requires channel binding ({0:?}), which this server does not offer")]
    ChannelBindingNotSupported(String),
    #[error("authorization identity {authzid:?} is not the user {user:?}")]
    AuthzidMismatch { authzid: String, user: String },
    #[error("invalid user name: {0}")]
    InvalidUser(PrincipalError),
    #[error("unsupported SCRAM extension {0:?}")]
    UnsupportedExtension(String),
    #[error("channel binding `c=` does not match the first message's gs2 header")]
    ChannelBindingMismatch,
    #[error("the nonce is not this exchange's (replayed or altered message)")]
    NonceMismatch,
    #[error("unknown user {user:?}")]
    UnknownUser { user: String },
    #[error("wrong password for user {user:?}: the ClientProof does not verify")]
    InvalidProof { user: String },
    #[error("the SCRAM exchange is over; no more messages are expected")]
    Finished,
    #[error("{0} is out of order in this SCRAM exchange")]
    OutOfOrder(&'static str),
    #[error("the server refused: e={0}")]
    ServerRejected(String),
    #[error("the server's signature does not verify: it does not hold this user's credential")]
    InvalidServerSignature,
    #[error("the server asks for {0} iterations, outside {MIN_ITERATIONS}..={MAX_ITERATIONS}")]
    Iterations(u32),
}

impl ScramError {
    /// The RFC 5802 `server-error-value` for this failure: what a client may
    /// be told. An unknown user and a wrong password both give
    /// `invalid-proof`.
    pub fn rfc_error(&self) -> &'static str {
        match self {
            ScramError::ChannelBindingNotSupported(_) => "channel-binding-not-supported",
            ScramError::ChannelBindingMismatch => "channel-bindings-dont-match",
            ScramError::UnknownUser { .. } | ScramError::InvalidProof { .. } => "invalid-proof",
            ScramError::InvalidUser(_) => "invalid-username-encoding",
            ScramError::UnsupportedExtension(_) => "extensions-not-supported",
            ScramError::AuthzidMismatch { .. } => "invalid-username-encoding",
            ScramError::Malformed { .. } | ScramError::TooLong { .. } => "invalid-encoding",
            _ => "other-error",
        }
    }
}

fn malformed(what: &'static str, why: impl Into<String>) -> ScramError {
    ScramError::Malformed {
        what,
        why: why.into(),
    }
}

/// What [`ScramServer::step`] asks the caller to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send this server-first-message and wait for the client's next one.
    Continue(Vec<u8>),
    /// Authenticated as `principal`: send `server_final` (`v=...`).
    Done {
        server_final: Vec<u8>,
        principal: Principal,
    },
}

enum State {
    Initial,
    SentFirst(Box<Exchange>),
    Finished,
}

struct Exchange {
    user: String,
    known: bool,
    credential: ScramCredential,
    gs2_header: String,
    client_first_bare: String,
    server_first: String,
    nonce: String,
}

/// One server-side SCRAM exchange. `S` is the store, borrowed (`&store`) or
/// shared (`Arc<CredentialStore>`, e.g. from a [`super::SharedCredentials`]).
pub struct ScramServer<S> {
    mechanism: Mechanism,
    store: S,
    state: State,
    #[cfg(test)]
    nonce_suffix: Option<String>,
}

impl<S: Deref<Target = CredentialStore>> ScramServer<S> {
    pub fn new(mechanism: Mechanism, store: S) -> Self {
        Self {
            mechanism,
            store,
            state: State::Initial,
            #[cfg(test)]
            nonce_suffix: None,
        }
    }

    /// Uses `suffix` as the server's part of the nonce (the RFC vectors).
    #[cfg(test)]
    pub(crate) fn with_nonce_suffix(mut self, suffix: &str) -> Self {
        self.nonce_suffix = Some(suffix.to_owned());
        self
    }

    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// Takes the client's next message. Any error ends the exchange: later
    /// steps return [`ScramError::Finished`].
    pub fn step(&mut self, client_message: &[u8]) -> Result<Step, ScramError> {
        let state = std::mem::replace(&mut self.state, State::Finished);
        if client_message.len() > MAX_MESSAGE_LEN {
            return Err(ScramError::TooLong {
                len: client_message.len(),
            });
        }
        let text = std::str::from_utf8(client_message)
            .map_err(|_| malformed("SCRAM message", "not UTF-8"))?;
        match state {
            State::Initial => {
                let (exchange, reply) = self.first(text)?;
                self.state = State::SentFirst(Box::new(exchange));
                Ok(Step::Continue(reply))
            }
            State::SentFirst(exchange) => self.last(&exchange, text),
            State::Finished => Err(ScramError::Finished),
        }
    }

    fn first(&self, msg: &str) -> Result<(Exchange, Vec<u8>), ScramError> {
        const WHAT: &str = "client-first-message";
        let (cbind, rest) = msg
            .split_once(',')
            .ok_or_else(|| malformed(WHAT, "no gs2 header"))?;
        match cbind {
            "n" | "y" => {}
            p if p.starts_with("p=") => {
                return Err(ScramError::ChannelBindingNotSupported(printable(&p[2..])))
            }
            _ => return Err(malformed(WHAT, "gs2 flag is not `n`, `y` or `p=`")),
        }
        let (authzid, bare) = rest
            .split_once(',')
            .ok_or_else(|| malformed(WHAT, "gs2 header does not end in `,`"))?;
        let authzid = match authzid {
            "" => None,
            a => Some(decode_saslname(
                a.strip_prefix("a=")
                    .ok_or_else(|| malformed(WHAT, "authzid is not `a=`"))?,
            )?),
        };
        let gs2_header = &msg[..msg.len() - bare.len()];

        let mut attrs = bare.split(',');
        let user = match attrs.next() {
            Some(m) if m.starts_with("m=") => {
                return Err(ScramError::UnsupportedExtension("m".into()))
            }
            Some(n) => decode_saslname(
                n.strip_prefix("n=")
                    .ok_or_else(|| malformed(WHAT, "no `n=` user name"))?,
            )?,
            None => return Err(malformed(WHAT, "empty")),
        };
        validate_name(&user).map_err(ScramError::InvalidUser)?;
        if let Some(a) = authzid {
            if a != user {
                return Err(ScramError::AuthzidMismatch { authzid: a, user });
            }
        }
        let client_nonce = attrs
            .next()
            .and_then(|r| r.strip_prefix("r="))
            .ok_or_else(|| malformed(WHAT, "no `r=` nonce after the user name"))?;
        check_nonce(WHAT, client_nonce)?;
        check_extensions(WHAT, attrs)?;

        let suffix = self.server_nonce_suffix();
        let nonce = format!("{client_nonce}{suffix}");
        let lookup = self.store.lookup(&user, self.mechanism);
        let server_first = format!(
            "r={nonce},s={},i={}",
            b64encode(lookup.credential.salt()),
            lookup.credential.iterations()
        );
        let reply = server_first.clone().into_bytes();
        let exchange = Exchange {
            user,
            known: lookup.known,
            credential: lookup.credential,
            gs2_header: gs2_header.to_owned(),
            client_first_bare: bare.to_owned(),
            server_first,
            nonce,
        };
        Ok((exchange, reply))
    }

    fn server_nonce_suffix(&self) -> String {
        #[cfg(test)]
        if let Some(s) = &self.nonce_suffix {
            return s.clone();
        }
        let mut bytes = [0u8; SERVER_NONCE_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        b64encode(&bytes)
    }

    fn last(&self, ex: &Exchange, msg: &str) -> Result<Step, ScramError> {
        const WHAT: &str = "client-final-message";
        let (without_proof, proof) = msg
            .rsplit_once(",p=")
            .ok_or_else(|| malformed(WHAT, "no `p=` proof at the end"))?;
        let proof = b64decode(proof.as_bytes())
            .ok_or_else(|| malformed(WHAT, "the proof is not base64"))?;
        let mut attrs = without_proof.split(',');
        let cbind = attrs
            .next()
            .and_then(|c| c.strip_prefix("c="))
            .ok_or_else(|| malformed(WHAT, "no `c=` channel binding first"))?;
        let cbind =
            b64decode(cbind.as_bytes()).ok_or_else(|| malformed(WHAT, "`c=` is not base64"))?;
        let nonce = attrs
            .next()
            .and_then(|r| r.strip_prefix("r="))
            .ok_or_else(|| malformed(WHAT, "no `r=` nonce after `c=`"))?;
        check_extensions(WHAT, attrs)?;
        if cbind != ex.gs2_header.as_bytes() {
            return Err(ScramError::ChannelBindingMismatch);
        }
        // The nonce must end with this exchange's whole nonce (client part
        // and the server's random part), Kafka's own rule: librdkafka sends
        // its client nonce again in front of the server's `r=`, and Kafka
        // brokers accept that. What matters for replay, the server's random
        // part, is still checked in full.
        let n = nonce.as_bytes();
        let want = ex.nonce.as_bytes();
        if n.len() < want.len() || !ct_eq(&n[n.len() - want.len()..], want) {
            return Err(ScramError::NonceMismatch);
        }

        let m = self.mechanism;
        let auth_message = format!(
            "{},{},{without_proof}",
            ex.client_first_bare, ex.server_first
        );
        let client_signature = m.hmac(ex.credential.stored_key(), auth_message.as_bytes());
        let client_key = xor(&proof, &client_signature);
        let proof_ok = proof.len() == m.digest_len()
            && ct_eq(&m.hash(&client_key), ex.credential.stored_key());
        if !ex.known {
            return Err(ScramError::UnknownUser {
                user: ex.user.clone(),
            });
        }
        if !proof_ok {
            return Err(ScramError::InvalidProof {
                user: ex.user.clone(),
            });
        }
        let principal = Principal::user(ex.user.clone()).map_err(ScramError::InvalidUser)?;
        let signature = m.hmac(ex.credential.server_key(), auth_message.as_bytes());
        Ok(Step::Done {
            server_final: format!("v={}", b64encode(&signature)).into_bytes(),
            principal,
        })
    }
}

#[cfg(test)]
#[path = "scram_tests.rs"]
mod tests;
