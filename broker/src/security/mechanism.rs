//! The SCRAM mechanisms (RFC 5802 with RFC 7677's SHA-256, and SHA-512 as
//! Kafka has it) and their primitives: `H()`, `HMAC()`, `Hi()` (PBKDF2) and
//! the key derivation `SaltedPassword → ClientKey → StoredKey, ServerKey`.
//! [`ScramCredential`], what a server keeps per user and mechanism, and the
//! base64 helpers the wire format and the files use.

use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

use super::credentials::{CredentialError, MAX_ITERATIONS, MIN_ITERATIONS};

/// A SCRAM mechanism Neo serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Mechanism {
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
}

/// A mechanism name that is not one of [`Mechanism::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown SCRAM mechanism {0:?}; known: SCRAM-SHA-256, SCRAM-SHA-512")]
pub struct UnknownMechanism(pub String);

impl Mechanism {
    /// Every mechanism, in the order credentials are written.
    pub const ALL: [Mechanism; 2] = [Mechanism::ScramSha256, Mechanism::ScramSha512];

    /// The SASL name, `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }

    /// The hash's output length: StoredKey, ServerKey and proofs have it.
    pub fn digest_len(self) -> usize {
        match self {
            Mechanism::ScramSha256 => 32,
            Mechanism::ScramSha512 => 64,
        }
    }

    /// `H(data)`.
    pub(crate) fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            Mechanism::ScramSha256 => Sha256::digest(data).to_vec(),
            Mechanism::ScramSha512 => Sha512::digest(data).to_vec(),
        }
    }

    /// `HMAC(key, data)`.
    pub(crate) fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        // HMAC takes keys of any length: `new_from_slice` cannot fail.
        match self {
            Mechanism::ScramSha256 => {
                let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC key of any length");
                mac.update(data);
                mac.finalize().into_bytes().to_vec()
            }
            Mechanism::ScramSha512 => {
                let mut mac = Hmac::<Sha512>::new_from_slice(key).expect("HMAC key of any length");
                mac.update(data);
                mac.finalize().into_bytes().to_vec()
            }
        }
    }

    /// `SaltedPassword = Hi(password, salt, iterations)`, PBKDF2-HMAC.
    pub(crate) fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        let mut out = vec![0u8; self.digest_len()];
        match self {
            Mechanism::ScramSha256 => {
                pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out)
            }
            Mechanism::ScramSha512 => {
                pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out)
            }
        }
        out
    }

    /// `ClientKey = HMAC(SaltedPassword, "Client Key")`.
    pub(crate) fn client_key(self, salted_password: &[u8]) -> Vec<u8> {
        self.hmac(salted_password, b"Client Key")
    }

    /// `ServerKey = HMAC(SaltedPassword, "Server Key")`.
    pub(crate) fn server_key(self, salted_password: &[u8]) -> Vec<u8> {
        self.hmac(salted_password, b"Server Key")
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Mechanism {
    type Err = UnknownMechanism;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Mechanism::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| UnknownMechanism(s.chars().take(64).collect()))
    }
}

/// Constant-time equality (the lengths are not secret).
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// `a XOR b`, as long as the shorter.
pub(crate) fn xor(a: &[u8], b: &[u8]) -> Vec<u8> {
    a.iter().zip(b).map(|(x, y)| x ^ y).collect()
}

pub(crate) fn b64encode(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

pub(crate) fn b64decode(text: &[u8]) -> Option<Vec<u8>> {
    STANDARD.decode(text).ok()
}

/// Serde for `Vec<u8>` as standard base64 with padding.
pub(crate) mod base64_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::b64encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        super::b64decode(text.as_bytes())
            .ok_or_else(|| serde::de::Error::custom("not valid base64"))
    }
}

/// One user's credential for one mechanism (RFC 5802 section 3).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramCredential {
    #[serde(with = "base64_bytes")]
    pub(crate) salt: Vec<u8>,
    pub(crate) iterations: u32,
    #[serde(with = "base64_bytes")]
    pub(crate) stored_key: Vec<u8>,
    #[serde(with = "base64_bytes")]
    pub(crate) server_key: Vec<u8>,
}

impl fmt::Debug for ScramCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramCredential")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl ScramCredential {
    /// Derives the credential for `password` with `salt` and `iterations`.
    pub fn derive(mechanism: Mechanism, password: &str, salt: &[u8], iterations: u32) -> Self {
        let salted = mechanism.salted_password(password.as_bytes(), salt, iterations);
        Self {
            salt: salt.to_vec(),
            iterations,
            stored_key: mechanism.hash(&mechanism.client_key(&salted)),
            server_key: mechanism.server_key(&salted),
        }
    }

    /// A credential from its parts (e.g. imported from Kafka), checked.
    pub fn from_parts(
        mechanism: Mechanism,
        salt: Vec<u8>,
        iterations: u32,
        stored_key: Vec<u8>,
        server_key: Vec<u8>,
    ) -> Result<Self, CredentialError> {
        let c = Self {
            salt,
            iterations,
            stored_key,
            server_key,
        };
        c.check(mechanism)?;
        Ok(c)
    }

    pub(crate) fn check(&self, mechanism: Mechanism) -> Result<(), CredentialError> {
        let bad = |reason: String| Err(CredentialError::Malformed { mechanism, reason });
        if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&self.iterations) {
            return Err(CredentialError::Iterations {
                iterations: self.iterations,
            });
        }
        if self.salt.is_empty() || self.salt.len() > 1024 {
            return bad(format!("salt is {} bytes", self.salt.len()));
        }
        let n = mechanism.digest_len();
        if self.stored_key.len() != n || self.server_key.len() != n {
            return bad(format!("keys must be {n} bytes"));
        }
        Ok(())
    }

    pub fn salt(&self) -> &[u8] {
        &self.salt
    }
    pub fn iterations(&self) -> u32 {
        self.iterations
    }
    pub fn stored_key(&self) -> &[u8] {
        &self.stored_key
    }
    pub fn server_key(&self) -> &[u8] {
        &self.server_key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for m in Mechanism::ALL {
            assert_eq!(m.name().parse::<Mechanism>().unwrap(), m);
            assert_eq!(m.hash(b"").len(), m.digest_len());
            assert_eq!(m.hmac(b"k", b"d").len(), m.digest_len());
        }
        assert!("SCRAM-SHA-1".parse::<Mechanism>().is_err());
        assert_eq!(
            serde_json::to_string(&Mechanism::ScramSha512).unwrap(),
            "\"SCRAM-SHA-512\""
        );
    }

    #[test]
    fn rfc7677_keys() {
        // RFC 7677 section 3: user "user", password "pencil".
        let m = Mechanism::ScramSha256;
        let salt = b64decode(b"W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let salted = m.salted_password(b"pencil", &salt, 4096);
        let server_key = m.server_key(&salted);
        let auth = b"n=user,r=rOprNGfwEbeRWgbNEkqO,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        assert_eq!(
            b64encode(&m.hmac(&server_key, auth)),
            "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
    }

    #[test]
    fn ct_eq_and_xor() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
        assert_eq!(xor(&[1, 2, 3], &[1, 0]), vec![0, 2]);
    }
}
