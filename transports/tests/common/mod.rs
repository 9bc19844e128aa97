//! Shared test fixture: an RPC server with an echo method on a loopback TCP
//! port, run by its own poll loop thread.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use neo_transports::rpc::{Server, ServerConfig, ServerStats};
use neo_transports::tcp::{TcpConfig, TcpTransport};
use neo_transports::Transport;

pub struct TestServer {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<ServerStats>>,
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
            server.stats().clone()
        });
        let addr = addr_rx.recv().unwrap();
        Self {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    /// Stops the poll loop and returns its counters.
    pub fn stop(mut self) -> ServerStats {
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
