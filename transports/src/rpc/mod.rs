//! Neo RPC: request/response over any [`Transport`](crate::Transport).
//!
//! * Methods are registered by name (`service/method`) on the [`Server`]; on the
//!   wire a call names its method by a 32-bit id, the CRC32C of that name, so no
//!   lookup round trip is needed. The server refuses a registration whose id
//!   collides with another name.
//! * Every call carries a correlation id (in the [frame](crate::frame) header)
//!   and a deadline as a relative budget in microseconds (clocks of two hosts
//!   are not comparable; the budget is).
//! * Each connection has a credit limit: the number of calls outstanding at
//!   once. The client does not exceed it; a server answers a call beyond it
//!   with [`ErrorCode::Overloaded`] instead of queueing without bound.
//! * Failures travel back as typed error frames ([`ErrorCode`] plus text).
//! * Handlers run to completion on the poll loop; a handler that must wait
//!   (a long-poll fetch) defers its answer and completes it later.
//!
//! Request payload: `method u32 LE | budget_us u32 LE (0 = none) | body`.
//! Response payload: the body. Error payload: `code u16 LE | 0u16 | UTF-8 text`.

mod client;
mod server;

pub use client::{CallId, Client, ClientConfig, ClientStats};
pub use server::outbound::Outcome;
pub use server::{Call, Deferred, Server, ServerConfig, ServerStats};

use std::fmt;
use std::io;
use std::time::Duration;

use crate::frame::FrameError;
use crate::transport::{CloseReason, SendError};

/// Bytes of the request sub-header (method id, budget).
pub const REQUEST_HEADER_LEN: usize = 8;
/// Bytes of the error sub-header (code, reserved).
pub const ERROR_HEADER_LEN: usize = 4;

/// Wire id of a method: CRC32C of `"service/method"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MethodId(pub u32);

impl MethodId {
    pub fn new(service: &str, method: &str) -> Self {
        let crc = crc32c::crc32c(service.as_bytes());
        let crc = crc32c::crc32c_append(crc, b"/");
        Self(crc32c::crc32c_append(crc, method.as_bytes()))
    }
}

/// Error codes carried in error frames. Values are stable on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum ErrorCode {
    UnknownMethod = 1,
    DeadlineExceeded = 2,
    /// The connection has no credit left for another call.
    Overloaded = 3,
    /// The frame failed to decode (bad magic, checksum, length ...).
    MalformedFrame = 4,
    /// The frame decoded but the request sub-header is short.
    MalformedRequest = 5,
    /// The handler failed without saying why, or did not answer.
    Internal = 6,
    /// A handler-defined failure; the text says what.
    Application = 7,
    /// The answer would exceed the transport's maximum message size.
    TooLarge = 8,
    /// A code this build does not know (sent by a newer peer).
    Unknown = 0xffff,
}

impl ErrorCode {
    pub fn from_u16(v: u16) -> Self {
        match v {
            1 => Self::UnknownMethod,
            2 => Self::DeadlineExceeded,
            3 => Self::Overloaded,
            4 => Self::MalformedFrame,
            5 => Self::MalformedRequest,
            6 => Self::Internal,
            7 => Self::Application,
            8 => Self::TooLarge,
            _ => Self::Unknown,
        }
    }
}

/// A failure a handler reports; it becomes an error frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceError {
    pub code: ErrorCode,
    pub message: String,
}

impl ServiceError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
    pub fn application(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Application, message)
    }
}

impl From<SendError> for ServiceError {
    fn from(e: SendError) -> Self {
        let code = match e {
            SendError::TooLarge { .. } => ErrorCode::TooLarge,
            SendError::Full { .. } => ErrorCode::Overloaded,
            SendError::Closed => ErrorCode::Internal,
        };
        Self::new(code, e.to_string())
    }
}

/// Why a call failed, as the caller sees it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RpcError {
    #[error("server answered {code:?}: {message}")]
    Remote { code: ErrorCode, message: String },
    #[error("deadline exceeded")]
    DeadlineExceeded,
    #[error("connection closed: {0}")]
    ConnectionClosed(CloseReason),
    #[error("no credit left on this connection ({0} calls outstanding)")]
    NoCredit(u32),
    #[error("send refused: {0}")]
    Send(#[from] SendError),
    #[error("malformed answer: {0}")]
    Malformed(FrameError),
    #[error("not connected")]
    NotConnected,
    #[error("I/O error: {0}")]
    Io(io::ErrorKind),
}

impl From<io::Error> for RpcError {
    fn from(e: io::Error) -> Self {
        Self::Io(e.kind())
    }
}

impl fmt::Display for MethodId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#010x}", self.0)
    }
}

/// Encodes a request sub-header.
pub(crate) fn request_header(
    method: MethodId,
    budget: Option<Duration>,
) -> [u8; REQUEST_HEADER_LEN] {
    let us = budget.map_or(0, |d| d.as_micros().clamp(1, u32::MAX as u128) as u32);
    let mut h = [0u8; REQUEST_HEADER_LEN];
    h[..4].copy_from_slice(&method.0.to_le_bytes());
    h[4..].copy_from_slice(&us.to_le_bytes());
    h
}

/// Splits a request payload into method, budget and body.
pub(crate) fn parse_request(payload: &[u8]) -> Option<(MethodId, Option<Duration>, &[u8])> {
    let head = payload.get(..REQUEST_HEADER_LEN)?;
    let method = MethodId(u32::from_le_bytes(head[..4].try_into().ok()?));
    let us = u32::from_le_bytes(head[4..].try_into().ok()?);
    let budget = (us != 0).then(|| Duration::from_micros(us as u64));
    Some((method, budget, &payload[REQUEST_HEADER_LEN..]))
}

/// Parses an error payload; a short one is itself reported as malformed.
pub(crate) fn parse_error(payload: &[u8]) -> RpcError {
    match payload.get(..ERROR_HEADER_LEN) {
        Some(h) => RpcError::Remote {
            code: ErrorCode::from_u16(u16::from_le_bytes([h[0], h[1]])),
            message: String::from_utf8_lossy(&payload[ERROR_HEADER_LEN..]).into_owned(),
        },
        None => RpcError::Malformed(FrameError::Truncated {
            have: payload.len(),
        }),
    }
}
