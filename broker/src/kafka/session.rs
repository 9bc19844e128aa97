//! One Kafka connection's security state: who it is (TLS client
//! certificate, SASL), the SASL exchange (SaslHandshake v1 then
//! SaslAuthenticate, KIP-152), the gate that refuses everything but
//! ApiVersions and SASL before authentication, and the throttle owed to a
//! quota.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::{
    ApiKey, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
    SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::Shared;
use crate::kafka_batch::code::*;
use crate::security::{Listener, Principal, SaslSession, SaslStep};

/// What one connection is, and what it owes.
pub struct Session {
    pub peer: SocketAddr,
    /// Host and port this connection is told to use.
    pub advertised: (String, u16),
    /// `User:ANONYMOUS` until a certificate or SASL says otherwise.
    pub principal: Principal,
    /// Broker requests are allowed (true at once when SASL is not required).
    pub authenticated: bool,
    sasl: Sasl,
    /// Close once the current response is written (failed authentication).
    pub close_after: bool,
    /// Read nothing more from this connection for this long (a quota's
    /// throttle: Kafka mutes the channel; the client sees throttle_time_ms).
    pub mute: Duration,
}

enum Sasl {
    /// No handshake yet.
    Idle,
    /// Handshake done; the next SaslAuthenticate starts this exchange.
    Exchange(SaslSession),
    Done,
}

impl Session {
    pub fn new(shared: &Shared, peer: SocketAddr, advertised: (String, u16)) -> Self {
        Self {
            peer,
            advertised,
            principal: Principal::anonymous(),
            authenticated: !shared.security.kafka_sasl,
            sasl: Sasl::Idle,
            close_after: false,
            mute: Duration::ZERO,
        }
    }

    /// Before authentication only ApiVersions and the SASL requests are
    /// served; anything else closes the connection (as Kafka does).
    pub fn gate(&self, api: ApiKey) -> Result<(), String> {
        if self.authenticated
            || matches!(
                api,
                ApiKey::ApiVersions | ApiKey::SaslHandshake | ApiKey::SaslAuthenticate
            )
        {
            return Ok(());
        }
        Err(format!(
            "{api:?} before SASL authentication (the listener requires SASL)"
        ))
    }

    pub fn handshake(&mut self, shared: &Shared, r: SaslHandshakeRequest) -> SaslHandshakeResponse {
        let sec = &shared.security;
        let mut resp = SaslHandshakeResponse::default();
        resp.mechanisms = sec
            .mechanisms
            .iter()
            .map(|m| StrBytes::from_static_str(m.name()))
            .collect();
        if !sec.kafka_sasl {
            resp.error_code = ILLEGAL_SASL_STATE;
            return resp;
        }
        if !matches!(self.sasl, Sasl::Idle) {
            resp.error_code = ILLEGAL_SASL_STATE;
            self.close_after = true;
            return resp;
        }
        match sec.sasl_start(&r.mechanism) {
            Ok(s) => self.sasl = Sasl::Exchange(s),
            Err(why) => {
                tracing::info!(peer = %self.peer, %why, "Kafka SASL handshake refused");
                resp.error_code = UNSUPPORTED_SASL_MECHANISM;
            }
        }
        resp
    }

    pub fn authenticate(
        &mut self,
        shared: &Shared,
        r: SaslAuthenticateRequest,
    ) -> SaslAuthenticateResponse {
        let mut resp = SaslAuthenticateResponse::default();
        let Sasl::Exchange(s) = &mut self.sasl else {
            resp.error_code = ILLEGAL_SASL_STATE;
            resp.error_message = Some(StrBytes::from_static_str(
                "SaslAuthenticate without a SaslHandshake, or after authentication",
            ));
            self.close_after = true;
            return resp;
        };
        match s.step(&shared.security, self.peer, Listener::Kafka, &r.auth_bytes) {
            SaslStep::Continue(challenge) => resp.auth_bytes = Bytes::from(challenge),
            SaslStep::Done { last, principal } => {
                tracing::info!(peer = %self.peer, %principal, mechanism = s.mechanism().name(), "Kafka client authenticated");
                resp.auth_bytes = Bytes::from(last);
                self.principal = principal;
                self.authenticated = true;
                self.sasl = Sasl::Done;
            }
            SaslStep::Failed { client_message } => {
                resp.error_code = SASL_AUTHENTICATION_FAILED;
                resp.error_message = Some(StrBytes::from_static_str(client_message));
                self.sasl = Sasl::Done;
                self.close_after = true;
            }
        }
        resp
    }
}
