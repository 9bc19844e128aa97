//! The client side of SCRAM-SHA-256/512: for the tests and for Neo's own
//! client library. Sans-IO: [`ScramClient::client_first`], then
//! [`ScramClient::handle_server_first`] gives the client-final-message, then
//! [`ScramClient::handle_server_final`] checks the server's signature (a
//! server that does not hold the credential cannot forge it).
//!
//! The gs2 header is `n,,` (no channel binding, no authzid).

use rand::RngCore;

use super::credentials::{MAX_ITERATIONS, MIN_ITERATIONS};
use super::mechanism::{b64decode, b64encode, ct_eq, xor, Mechanism};
use super::principal::validate_name;
use super::scram::{check_nonce, encode_saslname, ScramError, MAX_MESSAGE_LEN};

const GS2_HEADER: &str = "n,,";

enum State {
    Initial,
    SentFirst { client_first_bare: String },
    SentFinal { server_signature: Vec<u8> },
    Finished,
}

/// One client-side SCRAM exchange.
pub struct ScramClient {
    mechanism: Mechanism,
    user: String,
    password: String,
    nonce: String,
    state: State,
}

impl ScramClient {
    /// A client for `user` (checked like a principal name) and `password`.
    pub fn new(mechanism: Mechanism, user: &str, password: &str) -> Result<Self, ScramError> {
        validate_name(user).map_err(ScramError::InvalidUser)?;
        let mut bytes = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Ok(Self {
            mechanism,
            user: user.to_owned(),
            password: password.to_owned(),
            nonce: b64encode(&bytes),
            state: State::Initial,
        })
    }

    /// Uses `nonce` as the client nonce (the RFC vectors).
    #[cfg(test)]
    pub(crate) fn with_nonce(mut self, nonce: &str) -> Self {
        self.nonce = nonce.to_owned();
        self
    }

    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// The client-first-message, `n,,n=<user>,r=<nonce>`.
    pub fn client_first(&mut self) -> Result<Vec<u8>, ScramError> {
        if !matches!(self.state, State::Initial) {
            return Err(ScramError::OutOfOrder("client-first-message"));
        }
        let bare = format!("n={},r={}", encode_saslname(&self.user), self.nonce);
        let msg = format!("{GS2_HEADER}{bare}").into_bytes();
        self.state = State::SentFirst {
            client_first_bare: bare,
        };
        Ok(msg)
    }

    /// Takes the server-first-message; returns the client-final-message.
    pub fn handle_server_first(&mut self, msg: &[u8]) -> Result<Vec<u8>, ScramError> {
        const WHAT: &str = "server-first-message";
        let State::SentFirst { client_first_bare } =
            std::mem::replace(&mut self.state, State::Finished)
        else {
            return Err(ScramError::OutOfOrder(WHAT));
        };
        let msg = text(WHAT, msg)?;
        let mut attrs = msg.split(',');
        let nonce = match attrs.next() {
            Some(m) if m.starts_with("m=") => {
                return Err(ScramError::UnsupportedExtension("m".into()))
            }
            Some(r) => r
                .strip_prefix("r=")
                .ok_or_else(|| malformed(WHAT, "no `r=` nonce first"))?,
            None => return Err(malformed(WHAT, "empty")),
        };
        check_nonce(WHAT, nonce)?;
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err(ScramError::NonceMismatch);
        }
        let salt = attrs
            .next()
            .and_then(|s| s.strip_prefix("s="))
            .and_then(|s| b64decode(s.as_bytes()))
            .filter(|s| !s.is_empty())
            .ok_or_else(|| malformed(WHAT, "no base64 `s=` salt after the nonce"))?;
        let iterations: u32 = attrs
            .next()
            .and_then(|i| i.strip_prefix("i="))
            .and_then(|i| i.parse().ok())
            .ok_or_else(|| malformed(WHAT, "no `i=` iteration count after the salt"))?;
        if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
            return Err(ScramError::Iterations(iterations));
        }

        let m = self.mechanism;
        let salted = m.salted_password(self.password.as_bytes(), &salt, iterations);
        let client_key = m.client_key(&salted);
        let stored_key = m.hash(&client_key);
        let without_proof = format!("c={},r={nonce}", b64encode(GS2_HEADER.as_bytes()));
        let auth_message = format!("{client_first_bare},{msg},{without_proof}");
        let client_signature = m.hmac(&stored_key, auth_message.as_bytes());
        let proof = xor(&client_key, &client_signature);
        let server_signature = m.hmac(&m.server_key(&salted), auth_message.as_bytes());
        self.state = State::SentFinal { server_signature };
        Ok(format!("{without_proof},p={}", b64encode(&proof)).into_bytes())
    }

    /// Takes the server-final-message: `Ok` when the server proved it holds
    /// the credential.
    pub fn handle_server_final(&mut self, msg: &[u8]) -> Result<(), ScramError> {
        const WHAT: &str = "server-final-message";
        let State::SentFinal { server_signature } =
            std::mem::replace(&mut self.state, State::Finished)
        else {
            return Err(ScramError::OutOfOrder(WHAT));
        };
        let msg = text(WHAT, msg)?;
        let first = msg.split(',').next().unwrap_or_default();
        if let Some(e) = first.strip_prefix("e=") {
            return Err(ScramError::ServerRejected(
                e.chars().filter(|c| !c.is_control()).take(64).collect(),
            ));
        }
        let v = first
            .strip_prefix("v=")
            .and_then(|v| b64decode(v.as_bytes()))
            .ok_or_else(|| malformed(WHAT, "no base64 `v=` signature"))?;
        if !ct_eq(&v, &server_signature) {
            return Err(ScramError::InvalidServerSignature);
        }
        Ok(())
    }
}

fn text<'a>(what: &'static str, msg: &'a [u8]) -> Result<&'a str, ScramError> {
    if msg.len() > MAX_MESSAGE_LEN {
        return Err(ScramError::TooLong { len: msg.len() });
    }
    std::str::from_utf8(msg).map_err(|_| malformed(what, "not UTF-8"))
}

fn malformed(what: &'static str, why: &str) -> ScramError {
    ScramError::Malformed {
        what,
        why: why.into(),
    }
}

#[cfg(test)]
#[path = "scram_client_tests.rs"]
mod tests;
