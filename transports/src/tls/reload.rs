//! The server certificate resolver that picks up a replaced certificate/key
//! pair without a restart.
//!
//! On a handshake, at most once per [`CHECK_INTERVAL`], it stats both files;
//! when either one's modification time or length differs from the pair it
//! serves, it loads both again. A failed load (a half-written file, a key
//! that does not match the certificate) keeps the old pair serving, logs a
//! warning, and is tried again on a later check.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::{pem, TlsError};

/// How often a handshake may stat the certificate files.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// What identifies one version of a file without reading it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some(Stamp {
        modified: meta.modified().ok(),
        len: meta.len(),
    })
}

struct State {
    current: Arc<CertifiedKey>,
    /// Stamps of the files the current pair was loaded from.
    loaded: (Option<Stamp>, Option<Stamp>),
    /// Stamps of the last failed attempt, so one bad file warns once.
    failed: Option<(Option<Stamp>, Option<Stamp>)>,
    last_check: Instant,
}

/// A [`ResolvesServerCert`] serving the pair at `cert`/`key`, reloaded when
/// the files change.
pub(crate) struct ReloadingCert {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    state: Mutex<State>,
}

impl ReloadingCert {
    /// Loads the pair once; failing here fails the configuration.
    pub(crate) fn new(
        cert: &Path,
        key: &Path,
        provider: Arc<CryptoProvider>,
    ) -> Result<Self, TlsError> {
        let loaded = (stamp(cert), stamp(key));
        let current = pem::certified_key(cert, key, &provider)?;
        Ok(Self {
            cert: cert.to_owned(),
            key: key.to_owned(),
            provider,
            state: Mutex::new(State {
                current,
                loaded,
                failed: None,
                last_check: Instant::now(),
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent even if a holder panicked: every field
        // is replaced whole.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Loads the pair now, whatever the stamps say; on failure the previous
    /// pair keeps serving and the error is returned.
    pub(crate) fn reload_now(&self) -> Result<(), TlsError> {
        let mut state = self.lock();
        state.last_check = Instant::now();
        let stamps = (stamp(&self.cert), stamp(&self.key));
        self.try_load(&mut state, stamps)
    }

    /// The pair served now (for tests and diagnostics).
    pub(crate) fn current(&self) -> Arc<CertifiedKey> {
        self.lock().current.clone()
    }

    fn try_load(
        &self,
        state: &mut State,
        stamps: (Option<Stamp>, Option<Stamp>),
    ) -> Result<(), TlsError> {
        // Stamps are taken before reading: a write landing during the read
        // changes them again and is picked up by a later check.
        match pem::certified_key(&self.cert, &self.key, &self.provider) {
            Ok(pair) => {
                state.current = pair;
                state.loaded = stamps;
                state.failed = None;
                tracing::info!(
                    cert = %self.cert.display(),
                    key = %self.key.display(),
                    "TLS certificate reloaded"
                );
                Ok(())
            }
            Err(e) => {
                if state.failed != Some(stamps) {
                    tracing::warn!(
                        cert = %self.cert.display(),
                        key = %self.key.display(),
                        error = %e,
                        "TLS certificate reload failed; still serving the previous certificate"
                    );
                } else {
                    tracing::debug!(error = %e, "TLS certificate reload failed again");
                }
                state.failed = Some(stamps);
                Err(e)
            }
        }
    }

    /// The once-per-interval check a handshake runs.
    fn check(&self, state: &mut State) {
        let now = Instant::now();
        if now.duration_since(state.last_check) < CHECK_INTERVAL {
            return;
        }
        state.last_check = now;
        let stamps = (stamp(&self.cert), stamp(&self.key));
        if stamps != state.loaded {
            let _ = self.try_load(state, stamps);
        }
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let mut state = self.lock();
        self.check(&mut state);
        Some(state.current.clone())
    }
}

impl fmt::Debug for ReloadingCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloadingCert")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}
