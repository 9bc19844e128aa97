//! Durability: the fsync policy and the flusher thread that runs group
//! commit. The writer appends and moves on; the flusher syncs every file
//! written since its last pass with one `fdatasync` each and then advances
//! the durable offset, waking whoever waits for it (a broker answering
//! `acks=all`). Appends that arrive while a sync runs share the next one.

use std::fs::File;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// When data reaches the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// Only when a segment is sealed (roll) and on close.
    Never,
    /// At most this long after an append (group commit on a timer).
    Interval(Duration),
    /// As soon as possible after every append (group commit).
    Always,
}

/// The durable end of the log: every offset below it is on disk.
pub struct Durability {
    end: Mutex<u64>,
    cv: Condvar,
}

impl Durability {
    pub fn new(end: u64) -> Self {
        Self {
            end: Mutex::new(end),
            cv: Condvar::new(),
        }
    }

    /// Offsets below this are durable.
    pub fn end(&self) -> u64 {
        *self.end.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn advance(&self, to: u64) {
        let mut e = self.end.lock().unwrap_or_else(|p| p.into_inner());
        if to > *e {
            *e = to;
            self.cv.notify_all();
        }
    }

    /// After truncation the durable end may move back.
    pub(crate) fn reset(&self, to: u64) {
        *self.end.lock().unwrap_or_else(|p| p.into_inner()) = to;
        self.cv.notify_all();
    }

    /// Waits until `offset` is durable; false on timeout.
    pub fn wait_for(&self, offset: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut e = self.end.lock().unwrap_or_else(|p| p.into_inner());
        while *e <= offset {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            e = self
                .cv
                .wait_timeout(e, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        true
    }
}

#[derive(Default)]
struct Pending {
    /// Files written since the last sync (sealed segments, then the active one).
    files: Vec<Arc<File>>,
    /// The log end the writer reached when it last registered work.
    target: u64,
    stop: bool,
    error: Option<String>,
}

/// The flusher: a thread plus the hand-off it shares with the writer.
pub struct Flusher {
    shared: Arc<(Mutex<Pending>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Flusher {
    pub fn start(policy: FsyncPolicy, durability: Arc<Durability>) -> Self {
        let shared = Arc::new((Mutex::new(Pending::default()), Condvar::new()));
        let thread = match policy {
            FsyncPolicy::Never => None,
            _ => {
                let s = shared.clone();
                Some(
                    std::thread::Builder::new()
                        .name("neo-flusher".into())
                        .spawn(move || run(policy, &s, &durability))
                        .expect("spawning the flusher thread"),
                )
            }
        };
        Self { shared, thread }
    }

    /// The writer reached `end` in `file`.
    pub fn written(&self, file: &Arc<File>, end: u64) {
        if self.thread.is_none() {
            return;
        }
        let (m, cv) = &*self.shared;
        let mut p = m.lock().unwrap_or_else(|p| p.into_inner());
        if !p.files.last().is_some_and(|f| Arc::ptr_eq(f, file)) {
            p.files.push(file.clone());
        }
        p.target = end;
        cv.notify_one();
    }

    /// The last sync failure, if any (the durable offset stops advancing).
    pub fn error(&self) -> Option<String> {
        self.shared
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .error
            .clone()
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            self.shared.0.lock().unwrap_or_else(|p| p.into_inner()).stop = true;
            self.shared.1.notify_one();
            let _ = t.join();
        }
    }
}

fn run(policy: FsyncPolicy, shared: &(Mutex<Pending>, Condvar), durability: &Durability) {
    let (m, cv) = shared;
    loop {
        {
            let mut p = m.lock().unwrap_or_else(|p| p.into_inner());
            while p.files.is_empty() && !p.stop {
                p = cv.wait(p).unwrap_or_else(|p| p.into_inner());
            }
            if p.files.is_empty() && p.stop {
                return;
            }
        }
        if let FsyncPolicy::Interval(d) = policy {
            // Let appends accumulate for one interval, then sync them
            // together; a stop (close) cuts the wait short.
            let deadline = Instant::now() + d;
            let mut p = m.lock().unwrap_or_else(|p| p.into_inner());
            while !p.stop {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                p = cv
                    .wait_timeout(p, left)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
        }
        let (files, target) = {
            let mut p = m.lock().unwrap_or_else(|p| p.into_inner());
            (std::mem::take(&mut p.files), p.target)
        };
        let failed = files.iter().find_map(|f| f.sync_data().err());
        match failed {
            None => durability.advance(target),
            Some(e) => {
                tracing::error!(error = %e, "fsync failed; the durable offset stops here");
                let mut p = m.lock().unwrap_or_else(|p| p.into_inner());
                p.error = Some(e.to_string());
                // Keep the files so a later pass retries.
                let mut rest = files;
                rest.append(&mut p.files);
                p.files = rest;
                drop(p);
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}
