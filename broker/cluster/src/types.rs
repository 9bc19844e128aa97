//! The openraft type configuration of the controller quorum.

use std::io::Cursor;

use crate::apply::{ApplyResult, Command};

openraft::declare_raft_types!(
    /// Raft types: log data is a [`Command`], each applied entry answers an
    /// [`ApplyResult`]; nodes are `BasicNode`s holding the controller address.
    pub TypeConfig:
        D = Command,
        R = ApplyResult,
);

/// The controller's Raft handle.
pub type Raft = openraft::Raft<TypeConfig>;
/// A log id in this configuration.
pub type LogId = openraft::LogId<crate::meta::NodeId>;
/// A log entry in this configuration.
pub type Entry = openraft::Entry<TypeConfig>;
