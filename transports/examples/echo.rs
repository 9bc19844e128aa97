//! A Neo RPC server and client over the TCP transport, in one process.
//!
//! The server registers `demo/Echo` and `demo/Upper`, listens on loopback and
//! runs its poll loop on a thread; the client connects, makes blocking calls,
//! then pipelines calls with `start` + `poll` the way a latency-sensitive
//! client would.
//!
//! `cargo run --release -p neo-transports --example echo`

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use neo_transports::rpc::{Client, ClientConfig, MethodId, Server, ServerConfig, ServiceError};
use neo_transports::tcp::{TcpConfig, TcpTransport};
use neo_transports::Transport;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Server: methods are registered by name and run on the poll loop.
    let mut server = Server::new(
        TcpTransport::new(TcpConfig::default())?,
        ServerConfig::default(),
    );
    server.register("demo", "Echo", |call| {
        let body = call.body();
        call.reply(body)?;
        Ok(())
    })?;
    server.register("demo", "Upper", |call| {
        let body = call.body();
        if !body.is_ascii() {
            return Err(ServiceError::application("Upper takes ASCII only"));
        }
        // Written in place into the transport's transmit buffer.
        call.reply_with(body.len(), |out| {
            for (o, b) in out.iter_mut().zip(body) {
                *o = b.to_ascii_uppercase();
            }
        })?;
        Ok(())
    })?;
    let addr = server.transport().listen("127.0.0.1:0".parse()?)?;
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let thread = std::thread::spawn(move || server.run(&stop2));

    // Client: blocking calls.
    let mut client = Client::new(
        TcpTransport::new(TcpConfig::default())?,
        ClientConfig::default(),
    );
    let conn = client.connect(addr, Duration::from_secs(5))?;
    let timeout = Some(Duration::from_secs(1));
    let upper = MethodId::new("demo", "Upper");
    println!(
        "Upper -> {}",
        String::from_utf8_lossy(&client.call(conn, upper, b"hello neo", timeout)?)
    );
    println!(
        "Upper(non-ASCII) -> {:?}",
        client
            .call(conn, upper, "héllo".as_bytes(), timeout)
            .unwrap_err()
    );

    // Client: ten calls in flight at once, answers reaped by poll.
    let echo = MethodId::new("demo", "Echo");
    let mut pending = 0;
    for i in 0..10u32 {
        client.start(conn, echo, &i.to_le_bytes(), timeout)?;
        pending += 1;
    }
    while pending > 0 {
        client.poll(&mut |_id, result| {
            pending -= 1;
            match result {
                Ok(body) => println!("Echo -> {:?}", body),
                Err(e) => println!("Echo failed: {e}"),
            }
        })?;
    }

    stop.store(true, Ordering::Relaxed);
    thread.join().expect("server thread")?;
    Ok(())
}
