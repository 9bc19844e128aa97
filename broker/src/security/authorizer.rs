//! [`Authorizer`]: Kafka `AclAuthorizer`'s decision rules over a set of
//! [`Acl`]s. Super users are allowed everything; then any matching Deny
//! wins; else any matching Allow allows; else the request is denied. A
//! disabled authorizer allows everything, and its decisions say so.

use std::fmt;
use std::sync::Arc;

use super::acl::{Acl, Operation, Permission, ResourceType, SharedAcls};
use super::principal::Principal;

/// An authorization decision and why, for the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// E.g. `allowed by Allow User:alice Read Topic:orders (literal)`,
    /// `denied by Deny User:* Write Topic:tmp- (prefixed)` or
    /// `denied: no ACL matches (deny by default)`.
    pub reason: String,
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

#[derive(Clone)]
enum Rules {
    Fixed(Arc<Vec<Acl>>),
    Store(SharedAcls),
}

/// Decides what a principal may do. Cheap to clone; share it between
/// connection threads.
#[derive(Clone)]
pub struct Authorizer {
    enabled: bool,
    super_users: Arc<Vec<Principal>>,
    rules: Rules,
}

impl Authorizer {
    /// Allows everything (authorization off).
    pub fn disabled() -> Self {
        Self {
            enabled: false,
            super_users: Arc::new(Vec::new()),
            rules: Rules::Fixed(Arc::new(Vec::new())),
        }
    }

    /// An enabled authorizer with a fixed set of ACLs.
    pub fn new(super_users: Vec<Principal>, acls: Vec<Acl>) -> Self {
        Self {
            enabled: true,
            super_users: Arc::new(super_users),
            rules: Rules::Fixed(Arc::new(acls)),
        }
    }

    /// An enabled authorizer reading the ACLs from `store`, so changes to
    /// the file apply to the next decision.
    pub fn with_store(super_users: Vec<Principal>, store: SharedAcls) -> Self {
        Self {
            enabled: true,
            super_users: Arc::new(super_users),
            rules: Rules::Store(store),
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    pub fn super_users(&self) -> &[Principal] {
        &self.super_users
    }

    /// May `principal` do `operation` on the `resource` named `name`?
    pub fn decide(
        &self,
        principal: &Principal,
        operation: Operation,
        resource: ResourceType,
        name: &str,
    ) -> Decision {
        if !self.enabled {
            return Decision {
                allowed: true,
                reason: "allowed: authorization is disabled".into(),
            };
        }
        if self.super_users.contains(principal) {
            return Decision {
                allowed: true,
                reason: format!("allowed: {principal} is a super user"),
            };
        }
        match &self.rules {
            Rules::Fixed(acls) => decide_acls(acls, principal, operation, resource, name),
            Rules::Store(store) => {
                decide_acls(store.get().acls(), principal, operation, resource, name)
            }
        }
    }
}

/// The ACL rules alone (no super users): a matching Deny wins, else a
/// matching Allow, else deny.
pub fn decide_acls(
    acls: &[Acl],
    principal: &Principal,
    operation: Operation,
    resource: ResourceType,
    name: &str,
) -> Decision {
    let applies =
        |acl: &&Acl| acl.principal.matches(principal) && acl.matches_resource(resource, name);
    let deny = acls
        .iter()
        .filter(applies)
        .find(|acl| acl.permission == Permission::Deny && acl.operation.denies(operation));
    if let Some(acl) = deny {
        return Decision {
            allowed: false,
            reason: format!("denied by {acl}"),
        };
    }
    let allow = acls
        .iter()
        .filter(applies)
        .find(|acl| acl.permission == Permission::Allow && acl.operation.allows(operation));
    match allow {
        Some(acl) => Decision {
            allowed: true,
            reason: format!("allowed by {acl}"),
        },
        None => Decision {
            allowed: false,
            reason: "denied: no ACL matches (deny by default)".into(),
        },
    }
}
