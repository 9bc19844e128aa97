//! A follower authenticating its fetch session to a leader that requires
//! it (`--neo-auth`): the SCRAM exchange of the Rust client, as steps a poll
//! loop can drive — [`FetchAuth::next_step`] gives the next `Authenticate`
//! call's body, [`FetchAuth::on_reply`] takes its answer. SCRAM only: the
//! session has no TLS, and PLAIN would send the password as it is.

use crate::client::{decode_answer, ClientAuth};
use crate::protocol::{AuthReply, AuthStep};
use crate::security::{SaslMechanism, ScramClient};

pub(crate) struct FetchAuth {
    client: ScramClient,
    mechanism: &'static str,
    /// Messages sent so far (client-first, client-final).
    sent: u8,
    /// The server-first message, until the client-final is made from it.
    server_first: Option<Vec<u8>>,
}

impl FetchAuth {
    pub(crate) fn new(auth: &ClientAuth) -> Result<Self, String> {
        let SaslMechanism::Scram(m) = auth.mechanism else {
            return Err("replication authenticates with SCRAM only: its connections have no TLS, and PLAIN would send the password as it is".into());
        };
        let client = ScramClient::new(m, &auth.user, &auth.password).map_err(|e| e.to_string())?;
        Ok(Self {
            client,
            mechanism: auth.mechanism.name(),
            sent: 0,
            server_first: None,
        })
    }

    /// The body of the next `Authenticate` call.
    pub(crate) fn next_step(&mut self) -> Result<Vec<u8>, String> {
        let message = match self.sent {
            0 => self.client.client_first(),
            1 => {
                let first = self
                    .server_first
                    .take()
                    .ok_or("no server-first message to answer")?;
                self.client.handle_server_first(&first)
            }
            _ => return Err("the SCRAM exchange has no further step".into()),
        }
        .map_err(|e| format!("SCRAM: {e}"))?;
        self.sent += 1;
        postcard::to_stdvec(&AuthStep {
            mechanism: self.mechanism.into(),
            message,
        })
        .map_err(|e| e.to_string())
    }

    /// Takes the answer to the last step: `Ok(true)` once authenticated,
    /// `Ok(false)` when another step is due.
    pub(crate) fn on_reply(&mut self, body: &[u8]) -> Result<bool, String> {
        let r: AuthReply = decode_answer(body).map_err(|e| e.to_string())?;
        match self.sent {
            1 => {
                self.server_first = Some(r.message);
                Ok(false)
            }
            2 => {
                self.client
                    .handle_server_final(&r.message)
                    .map_err(|e| format!("SCRAM: {e}"))?;
                if !r.done {
                    return Err("the leader did not complete the SCRAM exchange".into());
                }
                Ok(true)
            }
            _ => Err("an authentication answer that was not asked for".into()),
        }
    }
}
