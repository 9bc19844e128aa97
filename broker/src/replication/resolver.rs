//! Name resolution off the poll loop for the fetch sessions: a leader's
//! advertised address may be a host name, and `getaddrinfo` blocks for as
//! long as the resolver likes (seconds, with a DNS server gone). The poll
//! loop asks [`Resolver::lookup`], which answers at once — an IP literal
//! parsed, a name from its cache, or [`Lookup::Pending`] while one helper
//! thread resolves it. A session that fails forgets its leader's address
//! ([`Resolver::forget`]): the next connect tries the name's next address
//! (IPv6 and IPv4, say), and after the last one the name is looked up
//! afresh, so a leader that moved is found.

use std::collections::{HashMap, HashSet};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A resolved name is used this long before it is looked up again.
pub const TTL: Duration = Duration::from_secs(30);

/// What [`Resolver::lookup`] knows now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    Ready(SocketAddr),
    /// Being resolved; ask again on a later round.
    Pending,
    /// The last attempt failed (why); the next lookup tries again.
    Failed(String),
}

type Answers = Arc<Mutex<HashMap<String, Result<Vec<SocketAddr>, String>>>>;

/// A resolved name: its addresses, the one in use, when it was resolved.
struct Entry {
    addrs: Vec<SocketAddr>,
    next: usize,
    at: Instant,
}

impl Entry {
    fn current(&self) -> SocketAddr {
        self.addrs[self.next]
    }
}

/// A cache of resolved names and the helper thread that fills it.
#[derive(Default)]
pub struct Resolver {
    cache: HashMap<String, Entry>,
    asked: HashSet<String>,
    answers: Answers,
    helper: Option<Sender<String>>,
}

impl Resolver {
    /// Never blocks on the network.
    pub fn lookup(&mut self, addr: &str, now: Instant) -> Lookup {
        if let Ok(a) = addr.parse() {
            return Lookup::Ready(a);
        }
        self.collect(now);
        if let Some(e) = self.cache.get(addr) {
            if now.duration_since(e.at) < TTL {
                return Lookup::Ready(e.current());
            }
        }
        let failed = self.answers_take(addr);
        if let Some(Err(why)) = failed {
            return Lookup::Failed(why);
        }
        if !self.asked.contains(addr) {
            if let Err(why) = self.ask(addr) {
                return Lookup::Failed(why);
            }
            self.asked.insert(addr.to_string());
        }
        // A stale entry still names where the leader was: better than none
        // while the new answer is on its way.
        match self.cache.get(addr) {
            Some(e) => Lookup::Ready(e.current()),
            None => Lookup::Pending,
        }
    }

    /// The address `lookup` gave for `addr` failed: the next lookup gives
    /// the name's next address, or after its last one resolves it afresh.
    pub fn forget(&mut self, addr: &str) {
        match self.cache.get_mut(addr) {
            Some(e) if e.next + 1 < e.addrs.len() => e.next += 1,
            Some(_) => {
                self.cache.remove(addr);
            }
            None => {}
        }
    }

    /// Moves the helper's successful answers into the cache.
    fn collect(&mut self, now: Instant) {
        let mut answers = self.answers.lock().unwrap_or_else(|p| p.into_inner());
        let done: Vec<String> = answers
            .iter()
            .filter(|(_, r)| r.is_ok())
            .map(|(k, _)| k.clone())
            .collect();
        for name in done {
            if let Some(Ok(addrs)) = answers.remove(&name) {
                self.asked.remove(&name);
                let e = Entry {
                    addrs,
                    next: 0,
                    at: now,
                };
                self.cache.insert(name, e);
            }
        }
    }

    fn answers_take(&mut self, addr: &str) -> Option<Result<Vec<SocketAddr>, String>> {
        let got = self
            .answers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(addr);
        if got.is_some() {
            self.asked.remove(addr);
        }
        got
    }

    /// Hands `addr` to the helper thread, starting it on first use.
    fn ask(&mut self, addr: &str) -> Result<(), String> {
        if self.helper.is_none() {
            let (tx, rx) = mpsc::channel::<String>();
            let answers = self.answers.clone();
            std::thread::Builder::new()
                .name("neo-resolve".into())
                .spawn(move || {
                    // Ends when the resolver (the sender) is dropped.
                    while let Ok(name) = rx.recv() {
                        let got = match name.to_socket_addrs() {
                            Ok(it) => Some(it.collect::<Vec<_>>())
                                .filter(|v| !v.is_empty())
                                .ok_or_else(|| format!("{name}: no address")),
                            Err(e) => Err(format!("{name}: {e}")),
                        };
                        answers
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .insert(name, got);
                    }
                })
                .map_err(|e| format!("starting the resolver thread: {e}"))?;
            self.helper = Some(tx);
        }
        self.helper
            .as_ref()
            .and_then(|h| h.send(addr.to_string()).ok())
            .ok_or_else(|| "the resolver thread is gone".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn until_settled(r: &mut Resolver, addr: &str) -> Lookup {
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            match r.lookup(addr, Instant::now()) {
                Lookup::Pending if Instant::now() < end => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                other => return other,
            }
        }
    }

    #[test]
    fn ip_literals_are_ready_at_once_and_start_no_thread() {
        let mut r = Resolver::default();
        let now = Instant::now();
        assert_eq!(
            r.lookup("10.0.0.1:7400", now),
            Lookup::Ready("10.0.0.1:7400".parse().unwrap())
        );
        assert_eq!(
            r.lookup("[::1]:7400", now),
            Lookup::Ready("[::1]:7400".parse().unwrap())
        );
        assert!(r.helper.is_none());
    }

    #[test]
    fn a_name_is_pending_then_ready_then_cached_until_forgotten() {
        let mut r = Resolver::default();
        let first = r.lookup("localhost:7400", Instant::now());
        assert!(
            matches!(first, Lookup::Pending | Lookup::Ready(_)),
            "{first:?}"
        );
        let Lookup::Ready(a) = until_settled(&mut r, "localhost:7400") else {
            panic!("localhost did not resolve");
        };
        assert!(a.ip().is_loopback() && a.port() == 7400, "{a}");
        // Cached: ready at once, nothing asked.
        assert_eq!(r.lookup("localhost:7400", Instant::now()), Lookup::Ready(a));
        assert!(r.asked.is_empty());
        // Stale: the old address while the new lookup runs.
        let later = Instant::now() + TTL + Duration::from_secs(1);
        assert_eq!(r.lookup("localhost:7400", later), Lookup::Ready(a));
        // Forgotten: resolved afresh.
        r.forget("localhost:7400");
        assert_eq!(until_settled(&mut r, "localhost:7400"), Lookup::Ready(a));
    }

    #[test]
    fn a_failed_address_gives_way_to_the_names_next_then_to_a_new_lookup() {
        let mut r = Resolver::default();
        let (v6, v4): (SocketAddr, SocketAddr) = (
            "[::1]:7400".parse().unwrap(),
            "127.0.0.1:7400".parse().unwrap(),
        );
        let now = Instant::now();
        r.cache.insert(
            "leader:7400".into(),
            Entry {
                addrs: vec![v6, v4],
                next: 0,
                at: now,
            },
        );
        assert_eq!(r.lookup("leader:7400", now), Lookup::Ready(v6));
        r.forget("leader:7400");
        assert_eq!(r.lookup("leader:7400", now), Lookup::Ready(v4));
        r.forget("leader:7400");
        assert!(!r.cache.contains_key("leader:7400"), "resolved afresh next");
    }

    #[test]
    fn a_name_that_does_not_resolve_fails_with_why_and_is_tried_again() {
        let mut r = Resolver::default();
        // RFC 2606: .invalid never resolves.
        let got = until_settled(&mut r, "leader.invalid:7400");
        let Lookup::Failed(why) = got else {
            panic!("{got:?}")
        };
        assert!(why.contains("leader.invalid"), "{why}");
        // The next lookup asks again rather than repeating the failure.
        assert_eq!(
            r.lookup("leader.invalid:7400", Instant::now()),
            Lookup::Pending
        );
    }
}
