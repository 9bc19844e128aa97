//! A follower authenticating its fetch session to a leader that requires
//! it (`--neo-auth`): the client's SASL steps ([`SaslClient`]) as bodies of
//! `Authenticate` calls a poll loop sends — [`FetchAuth::next_step`] gives
//! the next body, [`FetchAuth::on_reply`] takes its answer. SCRAM only: the
//! session may have no TLS, and PLAIN would send the password as it is.

use crate::client::sasl::SaslClient;
use crate::client::{decode_answer, ClientAuth};
use crate::protocol::{AuthReply, AuthStep};
use crate::security::SaslMechanism;

pub(crate) struct FetchAuth(SaslClient);

impl FetchAuth {
    pub(crate) fn new(auth: &ClientAuth) -> Result<Self, String> {
        if auth.mechanism == SaslMechanism::Plain {
            return Err(
                "replication authenticates with SCRAM only: PLAIN would send the password as it is"
                    .into(),
            );
        }
        SaslClient::new(auth).map(Self)
    }

    /// The body of the next `Authenticate` call.
    pub(crate) fn next_step(&mut self) -> Result<Vec<u8>, String> {
        let step = AuthStep {
            mechanism: self.0.mechanism().into(),
            message: self.0.next_message()?,
        };
        postcard::to_stdvec(&step).map_err(|e| e.to_string())
    }

    /// Takes the answer to the last step: `Ok(true)` once authenticated,
    /// `Ok(false)` when another step is due.
    pub(crate) fn on_reply(&mut self, body: &[u8]) -> Result<bool, String> {
        let r: AuthReply = decode_answer(body).map_err(|e| e.to_string())?;
        self.0.on_reply(r)
    }
}
