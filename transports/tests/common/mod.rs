//! Shared test fixture: an RPC server with an echo method on a loopback TCP
//! port, run by its own poll loop thread.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use neo_transports::rpc::{Server, ServerConfig, ServerStats};
use neo_transports::tcp::{TcpConfig, TcpTransport, TlsStats};
use neo_transports::Transport;

/// What the server's poll loop reports when stopped.
pub struct Stopped {
    pub rpc: ServerStats,
    pub tls: TlsStats,
    pub stats_line: String,
}

pub struct TestServer {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Stopped>>,
}

impl TestServer {
    /// Starts a server with `echo/Echo` plus whatever `setup` registers.
    pub fn start(
        tcp: TcpConfig,
        cfg: ServerConfig,
        setup: impl FnOnce(&mut Server<TcpTransport>) + Send + 'static,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let stop2 = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut server = Server::new(TcpTransport::new(tcp).unwrap(), cfg);
            server
                .register("echo", "Echo", |call| {
                    let body = call.body();
                    call.reply(body)?;
                    Ok(())
                })
                .unwrap();
            setup(&mut server);
            let addr = server
                .transport()
                .listen("127.0.0.1:0".parse().unwrap())
                .unwrap();
            addr_tx.send(addr).unwrap();
            server.run(&stop2).unwrap();
            Stopped {
                rpc: server.stats().clone(),
                tls: server.transport().tls_stats(),
                stats_line: server.transport().stats_line(),
            }
        });
        let addr = addr_rx.recv().unwrap();
        Self {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    /// Stops the poll loop and returns its RPC counters.
    pub fn stop(self) -> ServerStats {
        self.stop_all().rpc
    }

    /// Stops the poll loop and returns everything it counted.
    pub fn stop_all(mut self) -> Stopped {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
