//! ACLs the Kafka way: who ([`AclPrincipal`], `User:*` for everyone) may or
//! may not ([`Permission`]) do what ([`Operation`]) to which resources
//! ([`ResourceType`] and a literal or prefixed name; literal `*` is every
//! name). [`Authorizer`] decides with Kafka's `AclAuthorizer` rules, and
//! [`AclStore`] keeps the ACLs in a JSON file.
//!
//! The compact text form, which [`Acl`]'s `Display` writes and `FromStr`
//! reads (the pattern suffix is optional on input, literal by default):
//!
//! ```text
//! Allow User:alice Read Topic:orders (literal)
//! Deny User:* Write Topic:tmp- (prefixed)
//! Allow User:ops All Cluster:kafka-cluster (literal)
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::principal::{Principal, PrincipalError};

pub use super::acl_store::{AclFilter, AclStore, SharedAcls};
pub use super::authorizer::{decide_acls, Authorizer, Decision};

/// Longest resource name in an ACL, in bytes.
pub const MAX_RESOURCE_NAME_LEN: usize = 1024;
/// The literal name that matches every resource of its type.
pub const WILDCARD: &str = "*";

/// Why an ACL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AclError {
    #[error("ACL {0:?} is not `<Allow|Deny> <principal> <operation> <Type>:<name> [(literal)|(prefixed)]`")]
    Format(String),
    #[error("invalid principal: {0}")]
    Principal(#[from] PrincipalError),
    #[error("unknown {what} {value:?}")]
    Unknown { what: &'static str, value: String },
    #[error("invalid resource name: {0}")]
    Name(&'static str),
}

macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident, $what:literal, { $($variant:ident),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL_VALUES: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => stringify!($variant)),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = AclError;
            /// The name, case-insensitively.
            fn from_str(s: &str) -> Result<Self, AclError> {
                Self::ALL_VALUES
                    .iter()
                    .copied()
                    .find(|v| v.as_str().eq_ignore_ascii_case(s))
                    .ok_or_else(|| AclError::Unknown { what: $what, value: s.chars().take(64).collect() })
            }
        }
    };
}

text_enum!(
    /// What an ACL is about.
    ResourceType, "resource type", { Topic, Group, Cluster }
);
text_enum!(
    /// How an ACL's name matches: the whole name, or a prefix of it.
    PatternType, "pattern type", { Literal, Prefixed }
);
text_enum!(
    /// What a principal does. `All` in an ACL matches every operation.
    Operation, "operation", {
        Read, Write, Create, Delete, Alter, Describe, DescribeConfigs, AlterConfigs, All,
    }
);
text_enum!(
    /// Whether a matching ACL allows or denies.
    Permission, "permission", { Allow, Deny }
);

impl Operation {
    /// Whether an Allow ACL for `self` allows `requested`: `All` allows
    /// everything; Read, Write, Delete and Alter imply Describe;
    /// AlterConfigs implies DescribeConfigs.
    pub fn allows(self, requested: Operation) -> bool {
        use Operation::*;
        self == requested
            || self == All
            || match requested {
                Describe => matches!(self, Read | Write | Delete | Alter),
                DescribeConfigs => self == AlterConfigs,
                _ => false,
            }
    }

    /// Whether a Deny ACL for `self` denies `requested`: the same operation
    /// or `All` (implications only widen what is allowed, as in Kafka).
    pub fn denies(self, requested: Operation) -> bool {
        self == requested || self == Operation::All
    }
}

/// The principal an ACL names: one user, or `User:*`, everyone.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AclPrincipal {
    Any,
    User(Principal),
}

impl AclPrincipal {
    pub fn matches(&self, principal: &Principal) -> bool {
        match self {
            AclPrincipal::Any => true,
            AclPrincipal::User(p) => p == principal,
        }
    }
}

impl fmt::Display for AclPrincipal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AclPrincipal::Any => f.write_str("User:*"),
            AclPrincipal::User(p) => p.fmt(f),
        }
    }
}

impl FromStr for AclPrincipal {
    type Err = PrincipalError;
    fn from_str(s: &str) -> Result<Self, PrincipalError> {
        if s == "User:*" {
            return Ok(AclPrincipal::Any);
        }
        s.parse().map(AclPrincipal::User)
    }
}

impl From<Principal> for AclPrincipal {
    fn from(p: Principal) -> Self {
        AclPrincipal::User(p)
    }
}

impl Serialize for AclPrincipal {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for AclPrincipal {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// One ACL. Check one built by hand with [`Acl::validate`]; parsing,
/// deserializing and [`AclStore::add`] do.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "AclFields")]
pub struct Acl {
    pub principal: AclPrincipal,
    pub resource: ResourceType,
    pub pattern: PatternType,
    pub name: String,
    pub operation: Operation,
    pub permission: Permission,
}

#[derive(Deserialize)]
struct AclFields {
    principal: AclPrincipal,
    resource: ResourceType,
    pattern: PatternType,
    name: String,
    operation: Operation,
    permission: Permission,
}

impl TryFrom<AclFields> for Acl {
    type Error = AclError;
    fn try_from(f: AclFields) -> Result<Self, AclError> {
        let acl = Acl {
            principal: f.principal,
            resource: f.resource,
            pattern: f.pattern,
            name: f.name,
            operation: f.operation,
            permission: f.permission,
        };
        acl.validate()?;
        Ok(acl)
    }
}

impl Acl {
    /// Checks the name: 1 to [`MAX_RESOURCE_NAME_LEN`] bytes, no control
    /// characters, and not a prefixed `*` (a literal `*` is every name).
    pub fn validate(&self) -> Result<(), AclError> {
        if self.name.is_empty() {
            return Err(AclError::Name("empty"));
        }
        if self.name.len() > MAX_RESOURCE_NAME_LEN {
            return Err(AclError::Name("longer than 1024 bytes"));
        }
        if self.name.chars().any(char::is_control) {
            return Err(AclError::Name("contains a control character"));
        }
        if self.pattern == PatternType::Prefixed && self.name == WILDCARD {
            return Err(AclError::Name(
                "a prefixed `*`; use a literal `*` for every name",
            ));
        }
        Ok(())
    }

    /// Whether this ACL's resource pattern covers `resource`/`name`.
    pub fn matches_resource(&self, resource: ResourceType, name: &str) -> bool {
        self.resource == resource
            && match self.pattern {
                PatternType::Literal => self.name == WILDCARD || self.name == name,
                PatternType::Prefixed => name.starts_with(&self.name),
            }
    }
}

impl fmt::Display for Acl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pattern = match self.pattern {
            PatternType::Literal => "literal",
            PatternType::Prefixed => "prefixed",
        };
        write!(
            f,
            "{} {} {} {}:{} ({pattern})",
            self.permission, self.principal, self.operation, self.resource, self.name
        )
    }
}

impl FromStr for Acl {
    type Err = AclError;

    fn from_str(s: &str) -> Result<Self, AclError> {
        let format = || AclError::Format(s.chars().take(128).collect());
        let mut rest = s.trim();
        let mut word = || -> Result<&str, AclError> {
            let (w, r) = rest.split_once(' ').ok_or_else(format)?;
            rest = r.trim_start();
            Ok(w)
        };
        let permission = word()?.parse()?;
        let principal = word()?.parse()?;
        let operation = word()?.parse()?;
        let (resource, named) = rest.split_once(':').ok_or_else(format)?;
        let resource = resource.parse()?;
        let (name, pattern) = if let Some(n) = named.strip_suffix(" (literal)") {
            (n, PatternType::Literal)
        } else if let Some(n) = named.strip_suffix(" (prefixed)") {
            (n, PatternType::Prefixed)
        } else {
            (named, PatternType::Literal)
        };
        let acl = Acl {
            principal,
            resource,
            pattern,
            name: name.to_owned(),
            operation,
            permission,
        };
        acl.validate()?;
        Ok(acl)
    }
}

#[cfg(test)]
#[path = "acl_tests.rs"]
mod tests;
