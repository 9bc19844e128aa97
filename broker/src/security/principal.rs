//! Who a connection is: a Kafka-style principal, `User:<name>`.
//!
//! A name is 1–255 bytes of printable characters: no control characters and
//! no whitespace (so the ACL text form can split on spaces). `*` is not a
//! name: `User:*` is the ACL wildcard, see [`super::acl::AclPrincipal`].
//! `User:ANONYMOUS` is the principal of an unauthenticated connection.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The only principal type Neo knows (Kafka's `KafkaPrincipal.USER_TYPE`).
pub const USER_TYPE: &str = "User";
/// The name of the unauthenticated principal (Kafka's `ANONYMOUS`).
pub const ANONYMOUS_NAME: &str = "ANONYMOUS";
/// Longest principal name, in bytes.
pub const MAX_NAME_LEN: usize = 255;

/// Why a principal or a user name is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrincipalError {
    #[error("principal name is empty")]
    Empty,
    #[error("principal name is {len} bytes; the most is {MAX_NAME_LEN}")]
    TooLong { len: usize },
    #[error("principal name contains {0:?}, which is a control or whitespace character")]
    NotPrintable(char),
    #[error("`*` is the ACL wildcard, not a user name")]
    Wildcard,
    #[error("principal {0:?} is not of the form `User:<name>`")]
    BadFormat(String),
}

/// Checks a user name: non-empty, at most [`MAX_NAME_LEN`] bytes, no control
/// or whitespace characters, not `*`.
pub fn validate_name(name: &str) -> Result<(), PrincipalError> {
    if name.is_empty() {
        return Err(PrincipalError::Empty);
    }
    if name.len() > MAX_NAME_LEN {
        return Err(PrincipalError::TooLong { len: name.len() });
    }
    if let Some(c) = name.chars().find(|c| c.is_control() || c.is_whitespace()) {
        return Err(PrincipalError::NotPrintable(c));
    }
    if name == "*" {
        return Err(PrincipalError::Wildcard);
    }
    Ok(())
}

/// A principal `User:<name>` with a validated name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Principal {
    name: String,
}

impl Principal {
    /// `User:<name>`, the name checked by [`validate_name`].
    pub fn user(name: impl Into<String>) -> Result<Self, PrincipalError> {
        let name = name.into();
        validate_name(&name)?;
        Ok(Self { name })
    }

    /// `User:ANONYMOUS`, the principal of an unauthenticated connection.
    pub fn anonymous() -> Self {
        Self {
            name: ANONYMOUS_NAME.to_owned(),
        }
    }

    /// The user name, without the `User:` type.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether this is `User:ANONYMOUS`.
    pub fn is_anonymous(&self) -> bool {
        self.name == ANONYMOUS_NAME
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{USER_TYPE}:{}", self.name)
    }
}

impl FromStr for Principal {
    type Err = PrincipalError;

    /// Parses `User:<name>`; the type is case-sensitive, as in Kafka.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once(':') {
            Some((USER_TYPE, name)) => Self::user(name),
            _ => Err(PrincipalError::BadFormat(s.chars().take(64).collect())),
        }
    }
}

impl Serialize for Principal {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Principal {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_and_display_round_trip() {
        let p = Principal::user("alice").unwrap();
        assert_eq!(p.to_string(), "User:alice");
        assert_eq!(p.name(), "alice");
        assert_eq!("User:alice".parse::<Principal>().unwrap(), p);
        // A colon inside the name is kept.
        let p: Principal = "User:a:b".parse().unwrap();
        assert_eq!(p.name(), "a:b");
        assert_eq!(p.to_string(), "User:a:b");
    }

    #[test]
    fn anonymous() {
        let a = Principal::anonymous();
        assert_eq!(a.to_string(), "User:ANONYMOUS");
        assert!(a.is_anonymous());
        assert!(!Principal::user("bob").unwrap().is_anonymous());
    }

    #[test]
    fn validation() {
        assert_eq!(Principal::user(""), Err(PrincipalError::Empty));
        assert_eq!(
            Principal::user("x".repeat(256)),
            Err(PrincipalError::TooLong { len: 256 })
        );
        assert!(Principal::user("x".repeat(255)).is_ok());
        assert_eq!(
            Principal::user("a\nb"),
            Err(PrincipalError::NotPrintable('\n'))
        );
        assert_eq!(
            Principal::user("a b"),
            Err(PrincipalError::NotPrintable(' '))
        );
        assert_eq!(Principal::user("*"), Err(PrincipalError::Wildcard));
        assert!(Principal::user("zoë").is_ok());
        assert!(matches!(
            "Group:x".parse::<Principal>(),
            Err(PrincipalError::BadFormat(_))
        ));
        assert!(matches!(
            "alice".parse::<Principal>(),
            Err(PrincipalError::BadFormat(_))
        ));
        assert_eq!("User:".parse::<Principal>(), Err(PrincipalError::Empty));
    }

    #[test]
    fn serde_as_string() {
        let p = Principal::user("alice").unwrap();
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(json, "\"User:alice\"");
        assert_eq!(serde_json::from_str::<Principal>(&json).unwrap(), p);
        assert!(serde_json::from_str::<Principal>("\"User:\"").is_err());
    }
}
