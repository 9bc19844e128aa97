//! [`AclStore`]: the ACLs in a JSON file, saved atomically and (as
//! [`SharedAcls`]) reloaded when the file changes.
//!
//! ```json
//! {
//!   "version": 1,
//!   "acls": [
//!     {"principal": "User:alice", "resource": "Topic", "pattern": "Literal",
//!      "name": "orders", "operation": "Read", "permission": "Allow"}
//!   ]
//! }
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::acl::{Acl, AclError, AclPrincipal, ResourceType};
use super::watched::{read_json, write_atomic, FileBacked, StoreError, Watched};

const FORMAT_VERSION: u32 = 1;

/// The store, reloaded when its file changes: share it between threads.
pub type SharedAcls = Watched<AclStore>;

#[derive(Serialize, Deserialize)]
struct File {
    version: u32,
    acls: Vec<Acl>,
}

/// Which ACLs [`AclStore::list`] returns; `None` fields match any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AclFilter {
    /// Exactly this principal (`User:*` lists the wildcard ACLs only).
    pub principal: Option<AclPrincipal>,
    pub resource: Option<ResourceType>,
    /// Exactly this pattern name.
    pub name: Option<String>,
}

impl AclFilter {
    pub fn matches(&self, acl: &Acl) -> bool {
        self.principal.as_ref().is_none_or(|p| *p == acl.principal)
            && self.resource.is_none_or(|r| r == acl.resource)
            && self.name.as_ref().is_none_or(|n| *n == acl.name)
    }
}

/// ACLs loaded from and saved to one file, in the order they were added,
/// without duplicates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclStore {
    path: PathBuf,
    acls: Vec<Acl>,
}

impl AclStore {
    /// Loads `path`; a missing file is an empty store.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref();
        let Some(file) = read_json(path, |f: &File| f.version, FORMAT_VERSION)? else {
            return Ok(Self::empty(path));
        };
        let mut store = Self::empty(path);
        for acl in file.acls {
            store.push(acl);
        }
        Ok(store)
    }

    /// An empty store that will be saved to `path`.
    pub fn empty(path: impl AsRef<Path>) -> Self {
        Self {
            path: path.as_ref().to_owned(),
            acls: Vec::new(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the store to its file atomically (mode 0600).
    pub fn save(&self) -> Result<(), StoreError> {
        let file = File {
            version: FORMAT_VERSION,
            acls: self.acls.clone(),
        };
        let mut json = serde_json::to_vec_pretty(&file).map_err(|source| StoreError::Parse {
            path: self.path.clone(),
            source,
        })?;
        json.push(b'\n');
        write_atomic(&self.path, &json)
    }

    /// Adds `acl` after checking it; `Ok(false)` when it was already there.
    pub fn add(&mut self, acl: Acl) -> Result<bool, AclError> {
        acl.validate()?;
        Ok(self.push(acl))
    }

    fn push(&mut self, acl: Acl) -> bool {
        if self.acls.contains(&acl) {
            return false;
        }
        self.acls.push(acl);
        true
    }

    /// Removes the ACL equal to `acl`; false when there was none.
    pub fn remove(&mut self, acl: &Acl) -> bool {
        let before = self.acls.len();
        self.acls.retain(|a| a != acl);
        self.acls.len() != before
    }

    /// The ACLs `filter` matches, in order.
    pub fn list(&self, filter: &AclFilter) -> Vec<&Acl> {
        self.acls.iter().filter(|a| filter.matches(a)).collect()
    }

    /// Every ACL, in order.
    pub fn acls(&self) -> &[Acl] {
        &self.acls
    }
}

impl FileBacked for AclStore {
    fn load(path: &Path) -> Result<Self, StoreError> {
        AclStore::load(path)
    }
    fn save(&self) -> Result<(), StoreError> {
        AclStore::save(self)
    }
}
