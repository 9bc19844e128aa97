//! A broker on TCP loopback, on its own poll-loop thread, for tests.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use neo_broker::client::{Admin, ConnectConfig};
use neo_broker::protocol::{Fsync, TopicConfig};
use neo_broker::{Broker, BrokerConfig, BrokerService, BrokerStats};
use neo_transports::rpc::{Server, ServerConfig};
use neo_transports::tcp::{TcpConfig, TcpTransport};
use neo_transports::Transport;

pub struct TestBroker {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    stats: Arc<Mutex<Option<BrokerStats>>>,
    broker: std::sync::Weak<Mutex<Broker>>,
}

pub fn tcp() -> TcpTransport {
    TcpTransport::new(TcpConfig::default()).expect("tcp transport")
}

pub fn cfg(addr: SocketAddr) -> ConnectConfig {
    let mut c = ConnectConfig::new(addr);
    c.request_timeout = Duration::from_secs(20);
    c
}

pub fn admin(addr: SocketAddr) -> Admin<TcpTransport> {
    Admin::connect(tcp(), cfg(addr)).expect("admin connects")
}

pub fn topic(partitions: u32, fsync: Fsync) -> TopicConfig {
    TopicConfig {
        partitions,
        fsync,
        segment_bytes: 1 << 20,
        max_batch_bytes: 256 << 10,
        ..TopicConfig::default()
    }
}

impl TestBroker {
    pub fn start(dir: &Path) -> Self {
        Self::start_secured(dir, Arc::new(neo_broker::security::Security::off()))
    }

    /// A broker whose Neo protocol is behind `security`.
    pub fn start_secured(dir: &Path, security: Arc<neo_broker::security::Security>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(Mutex::new(None));
        let (tx, rx) = std::sync::mpsc::channel();
        let (stop2, stats2, dir) = (stop.clone(), stats.clone(), dir.to_path_buf());
        let thread = std::thread::spawn(move || {
            let broker = Broker::open(BrokerConfig::new(dir)).expect("broker opens");
            let mut server = Server::new(tcp(), ServerConfig::default());
            let addr = server
                .transport()
                .listen("127.0.0.1:0".parse().unwrap())
                .unwrap();
            let shared = Arc::new(Mutex::new(broker));
            let weak = Arc::downgrade(&shared);
            let mut svc = BrokerService::with_security(server, shared, security).unwrap();
            tx.send((addr, weak)).unwrap();
            svc.run(&stop2).expect("poll loop");
            *stats2.lock().unwrap() = Some(neo_broker::service::lock(svc.broker()).stats().clone());
            svc.shutdown().expect("clean shutdown");
        });
        let (addr, broker) = rx.recv().expect("broker thread started");
        Self {
            addr,
            stop,
            thread: Some(thread),
            stats,
            broker,
        }
    }

    /// The running broker's counters.
    pub fn live_stats(&self) -> BrokerStats {
        let b = self.broker.upgrade().expect("broker running");
        let s = neo_broker::service::lock(&b).stats().clone();
        s
    }

    /// Stops the broker (logs closed cleanly) and returns its counters.
    pub fn stop(mut self) -> BrokerStats {
        self.halt();
        self.stats.lock().unwrap().take().expect("stats")
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().expect("broker thread did not panic");
        }
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        self.halt();
    }
}
