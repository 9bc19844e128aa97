//! A client's SASL exchange (PLAIN, SCRAM) as steps, no I/O:
//! [`SaslClient::next_message`] gives what the next `Authenticate` call
//! carries, [`SaslClient::on_reply`] takes the broker's answer. The Rust
//! client drives it with blocking calls on a new connection; a follower
//! broker drives it from its poll loop on a fetch session.

use super::ClientAuth;
use crate::protocol::AuthReply;
use crate::security::{SaslMechanism, ScramClient};

pub struct SaslClient {
    mechanism: SaslMechanism,
    /// PLAIN's one message; SCRAM's client.
    plain: Option<Vec<u8>>,
    scram: Option<ScramClient>,
    /// Messages sent so far.
    sent: u8,
    /// SCRAM's server-first message, until the client-final is made.
    server_first: Option<Vec<u8>>,
}

impl SaslClient {
    pub fn new(auth: &ClientAuth) -> Result<Self, String> {
        let (plain, scram) = match auth.mechanism {
            SaslMechanism::Plain => (
                Some(format!("\0{}\0{}", auth.user, auth.password).into_bytes()),
                None,
            ),
            SaslMechanism::Scram(m) => (
                None,
                Some(
                    ScramClient::new(m, &auth.user, &auth.password)
                        .map_err(|e| format!("SASL: {e}"))?,
                ),
            ),
        };
        Ok(Self {
            mechanism: auth.mechanism,
            plain,
            scram,
            sent: 0,
            server_first: None,
        })
    }

    /// The mechanism's name, as `AuthStep::mechanism` carries it.
    pub fn mechanism(&self) -> &'static str {
        self.mechanism.name()
    }

    /// The next message to send.
    pub fn next_message(&mut self) -> Result<Vec<u8>, String> {
        let scram_err = |e: crate::security::ScramError| format!("SASL: {e}");
        let m = match (&mut self.scram, self.sent) {
            (None, 0) => self.plain.take().ok_or("PLAIN has no message left")?,
            (Some(c), 0) => c.client_first().map_err(scram_err)?,
            (Some(c), 1) => {
                let first = self
                    .server_first
                    .take()
                    .ok_or("no server-first message to answer")?;
                c.handle_server_first(&first).map_err(scram_err)?
            }
            _ => return Err(format!("{} has no further step", self.mechanism())),
        };
        self.sent += 1;
        Ok(m)
    }

    /// Takes the broker's answer to the last message: `Ok(true)` once
    /// authenticated, `Ok(false)` when another message is due.
    pub fn on_reply(&mut self, r: AuthReply) -> Result<bool, String> {
        let name = self.mechanism();
        match (&mut self.scram, self.sent) {
            (Some(_), 1) => {
                self.server_first = Some(r.message);
                return Ok(false);
            }
            (Some(c), 2) => c
                .handle_server_final(&r.message)
                .map_err(|e| format!("SASL: {e}"))?,
            (None, 1) => {}
            _ => return Err(format!("{name}: an answer that was not asked for")),
        }
        match r.done {
            true => Ok(true),
            false => Err(format!("{name} did not complete")),
        }
    }
}
