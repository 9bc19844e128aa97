//! The credential store: per user, a SCRAM credential for each of
//! SCRAM-SHA-256 and SCRAM-SHA-512 (salt, iterations, StoredKey, ServerKey
//! as RFC 5802 defines them) in a JSON file — never a password.
//!
//! ```json
//! {
//!   "version": 1,
//!   "unknown_user_secret": "<base64, 32 bytes>",
//!   "users": {
//!     "alice": {
//!       "SCRAM-SHA-256": {"salt": "<base64>", "iterations": 4096,
//!                         "stored_key": "<base64>", "server_key": "<base64>"},
//!       "SCRAM-SHA-512": {"salt": "<base64>", "iterations": 4096,
//!                         "stored_key": "<base64>", "server_key": "<base64>"}
//!     }
//!   }
//! }
//! ```
//!
//! `unknown_user_secret` derives the fake credential an unknown user gets
//! ([`CredentialStore::lookup`]), so a SCRAM exchange or a PLAIN check for a
//! user that does not exist looks and takes as long as a wrong password.
//! [`SharedCredentials`] is the store reloaded when its file changes.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use rand::RngCore;
use serde::{Deserialize, Serialize};

pub use super::mechanism::ScramCredential;
use super::mechanism::{base64_bytes, ct_eq, Mechanism};
use super::principal::{validate_name, PrincipalError, ANONYMOUS_NAME};
use super::watched::{read_json, write_atomic, FileBacked, StoreError, Watched};

/// Fewest PBKDF2 iterations accepted (RFC 7677, Kafka's minimum).
pub const MIN_ITERATIONS: u32 = 4096;
/// The iterations [`CredentialStore::upsert`] callers should use by default.
pub const DEFAULT_ITERATIONS: u32 = 4096;
/// Most iterations accepted: bounds the work of one PLAIN check.
pub const MAX_ITERATIONS: u32 = 1_000_000;
/// Length of a new salt, in bytes.
pub const SALT_LEN: usize = 16;
/// Longest password accepted, in bytes.
pub const MAX_PASSWORD_LEN: usize = 1024;
const SECRET_LEN: usize = 32;
const FORMAT_VERSION: u32 = 1;

/// The store, reloaded when its file changes: share it between threads.
pub type SharedCredentials = Watched<CredentialStore>;

/// Why a credential is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error("invalid user name: {0}")]
    InvalidUser(#[from] PrincipalError),
    #[error("user name {ANONYMOUS_NAME} is reserved for unauthenticated connections")]
    ReservedUser,
    #[error("{iterations} iterations is outside {MIN_ITERATIONS}..={MAX_ITERATIONS}")]
    Iterations { iterations: u32 },
    #[error("the password is empty")]
    EmptyPassword,
    #[error("the password is {len} bytes; the most is {MAX_PASSWORD_LEN}")]
    PasswordTooLong { len: usize },
    #[error("{mechanism} credential: {reason}")]
    Malformed {
        mechanism: Mechanism,
        reason: String,
    },
}

/// The credential [`CredentialStore::lookup`] found, or the fake one.
#[derive(Debug, Clone)]
pub struct Lookup {
    pub credential: ScramCredential,
    /// False when the user (or its entry for this mechanism) does not exist
    /// and `credential` is the fake one.
    pub known: bool,
}

#[derive(Serialize, Deserialize)]
struct File {
    version: u32,
    #[serde(with = "base64_bytes")]
    unknown_user_secret: Vec<u8>,
    users: BTreeMap<String, BTreeMap<Mechanism, ScramCredential>>,
}

/// Users and their SCRAM credentials, loaded from and saved to one file.
#[derive(Clone)]
pub struct CredentialStore {
    path: PathBuf,
    secret: Vec<u8>,
    users: BTreeMap<String, BTreeMap<Mechanism, ScramCredential>>,
    /// The iterations a fake credential gets, per mechanism: the count most
    /// users have (kept current, so a lookup does not scan the users).
    fake_iterations: BTreeMap<Mechanism, u32>,
}

impl fmt::Debug for CredentialStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialStore")
            .field("path", &self.path)
            .field("users", &self.users.len())
            .finish_non_exhaustive()
    }
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    rand::rngs::OsRng.fill_bytes(&mut v);
    v
}

fn check_user(user: &str) -> Result<(), CredentialError> {
    validate_name(user)?;
    if user == ANONYMOUS_NAME {
        return Err(CredentialError::ReservedUser);
    }
    Ok(())
}

impl CredentialStore {
    /// Loads `path`; a missing file is an empty store (saved on
    /// [`CredentialStore::save`]).
    pub fn load(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref();
        let Some(file) = read_json(path, |f: &File| f.version, FORMAT_VERSION)? else {
            return Ok(Self::empty(path));
        };
        let invalid = |reason: String| StoreError::Invalid {
            path: path.to_owned(),
            reason,
        };
        if file.unknown_user_secret.len() < 16 {
            return Err(invalid("unknown_user_secret is under 16 bytes".into()));
        }
        for (user, creds) in &file.users {
            check_user(user).map_err(|e| invalid(format!("user {user:?}: {e}")))?;
            for (m, c) in creds {
                c.check(*m)
                    .map_err(|e| invalid(format!("user {user:?}: {e}")))?;
            }
        }
        let mut store = Self {
            path: path.to_owned(),
            secret: file.unknown_user_secret,
            users: file.users,
            fake_iterations: BTreeMap::new(),
        };
        store.refresh_fake_iterations();
        Ok(store)
    }

    /// An empty store that will be saved to `path`.
    pub fn empty(path: impl AsRef<Path>) -> Self {
        Self {
            path: path.as_ref().to_owned(),
            secret: random_bytes(SECRET_LEN),
            users: BTreeMap::new(),
            fake_iterations: BTreeMap::new(),
        }
    }

    /// The file this store saves to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the store to its file atomically (mode 0600).
    pub fn save(&self) -> Result<(), StoreError> {
        let file = File {
            version: FORMAT_VERSION,
            unknown_user_secret: self.secret.clone(),
            users: self.users.clone(),
        };
        let mut json = serde_json::to_vec_pretty(&file).map_err(|source| StoreError::Parse {
            path: self.path.clone(),
            source,
        })?;
        json.push(b'\n');
        write_atomic(&self.path, &json)
    }

    /// Creates or replaces `user`'s credentials for every mechanism, each
    /// with a new random salt. Takes a few PBKDF2 runs: not for hot paths.
    pub fn upsert(
        &mut self,
        user: &str,
        password: &str,
        iterations: u32,
    ) -> Result<(), CredentialError> {
        check_user(user)?;
        if password.is_empty() {
            return Err(CredentialError::EmptyPassword);
        }
        if password.len() > MAX_PASSWORD_LEN {
            return Err(CredentialError::PasswordTooLong {
                len: password.len(),
            });
        }
        if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
            return Err(CredentialError::Iterations { iterations });
        }
        let creds = Mechanism::ALL
            .into_iter()
            .map(|m| {
                let salt = random_bytes(SALT_LEN);
                (m, ScramCredential::derive(m, password, &salt, iterations))
            })
            .collect();
        self.users.insert(user.to_owned(), creds);
        self.refresh_fake_iterations();
        Ok(())
    }

    /// Sets one mechanism's credential for `user` (e.g. imported).
    pub fn insert(
        &mut self,
        user: &str,
        mechanism: Mechanism,
        credential: ScramCredential,
    ) -> Result<(), CredentialError> {
        check_user(user)?;
        credential.check(mechanism)?;
        self.users
            .entry(user.to_owned())
            .or_default()
            .insert(mechanism, credential);
        self.refresh_fake_iterations();
        Ok(())
    }

    /// Removes `user`; false when there was no such user.
    pub fn remove(&mut self, user: &str) -> bool {
        let removed = self.users.remove(user).is_some();
        self.refresh_fake_iterations();
        removed
    }

    /// The user names, sorted.
    pub fn users(&self) -> impl Iterator<Item = &str> + '_ {
        self.users.keys().map(String::as_str)
    }

    /// Whether `user` exists.
    pub fn contains(&self, user: &str) -> bool {
        self.users.contains_key(user)
    }

    /// `user`'s credential for `mechanism`, if it has one.
    pub fn get(&self, user: &str, mechanism: Mechanism) -> Option<&ScramCredential> {
        self.users.get(user)?.get(&mechanism)
    }

    /// `user`'s credential for `mechanism`, or a fake one derived from the
    /// user name and this store's secret: same salt length, the iterations
    /// most users have, keys no password matches, and the same for every
    /// call, so the reply does not tell whether the user exists.
    pub fn lookup(&self, user: &str, mechanism: Mechanism) -> Lookup {
        // The fake is derived for known users too: the same work either way.
        let fake = self.fake(user, mechanism);
        match self.get(user, mechanism) {
            Some(c) => Lookup {
                credential: c.clone(),
                known: true,
            },
            None => Lookup {
                credential: fake,
                known: false,
            },
        }
    }

    fn fake(&self, user: &str, mechanism: Mechanism) -> ScramCredential {
        let derive = |label: &str| {
            let data = [
                label.as_bytes(),
                mechanism.name().as_bytes(),
                user.as_bytes(),
            ]
            .join(&0u8);
            mechanism.hmac(&self.secret, &data)
        };
        let mut salt = derive("salt");
        salt.truncate(SALT_LEN);
        ScramCredential {
            salt,
            iterations: self
                .fake_iterations
                .get(&mechanism)
                .copied()
                .unwrap_or(DEFAULT_ITERATIONS),
            stored_key: derive("stored_key"),
            server_key: derive("server_key"),
        }
    }

    /// Sets, per mechanism, the iteration count most credentials have.
    fn refresh_fake_iterations(&mut self) {
        self.fake_iterations.clear();
        for m in Mechanism::ALL {
            let mut counts: BTreeMap<u32, usize> = BTreeMap::new();
            for c in self.users.values().filter_map(|creds| creds.get(&m)) {
                *counts.entry(c.iterations).or_default() += 1;
            }
            let common = counts
                .into_iter()
                .max_by_key(|&(iterations, n)| (n, std::cmp::Reverse(iterations)))
                .map_or(DEFAULT_ITERATIONS, |(iterations, _)| iterations);
            self.fake_iterations.insert(m, common);
        }
    }

    /// Whether `password` is `user`'s: recomputes SaltedPassword with the
    /// SCRAM-SHA-256 entry's salt and iterations (SCRAM-SHA-512's when the
    /// user only has that) and compares StoredKey in constant time. An
    /// unknown user costs the same work, against the fake credential.
    pub fn verify_plain(&self, user: &str, password: &str) -> bool {
        let mechanism = if self.get(user, Mechanism::ScramSha256).is_none()
            && self.get(user, Mechanism::ScramSha512).is_some()
        {
            Mechanism::ScramSha512
        } else {
            Mechanism::ScramSha256
        };
        let Lookup { credential, known } = self.lookup(user, mechanism);
        let salted =
            mechanism.salted_password(password.as_bytes(), &credential.salt, credential.iterations);
        let stored_key = mechanism.hash(&mechanism.client_key(&salted));
        ct_eq(&stored_key, &credential.stored_key) & known
    }
}

impl FileBacked for CredentialStore {
    fn load(path: &Path) -> Result<Self, StoreError> {
        CredentialStore::load(path)
    }
    fn save(&self) -> Result<(), StoreError> {
        CredentialStore::save(self)
    }
}

#[cfg(test)]
#[path = "credentials_tests.rs"]
mod tests;
