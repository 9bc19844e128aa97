//! The admin endpoint of `neo serve` (`--admin-listen`): a small HTTP/1.1
//! server on its own thread, off the data path. `GET /health` answers 200
//! while the process and broker are alive; `GET /ready` answers 200 only
//! while the broker's poll loop serves (503 before it starts and once it
//! stops); `GET /metrics` is the Prometheus scrape ([`crate::admin_metrics`]);
//! `GET /status` returns topics, groups and counters as JSON.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Mutex, Weak};
use std::time::{Duration, Instant};

use anyhow::Context;
use neo_broker::Broker;

/// Largest request head read.
const MAX_HEAD: usize = 8192;

pub struct AdminInfo {
    pub transport: &'static str,
    pub listen: SocketAddr,
    pub started: Instant,
    /// The Kafka listener's address and counters, when it runs.
    pub kafka: Option<(SocketAddr, std::sync::Arc<neo_broker::kafka::KafkaStats>)>,
    /// What the poll loop publishes (RPC and transport counters, serving).
    pub published: neo_broker::service::Published,
    /// Security counters (authentications, decisions, throttle time).
    pub security: std::sync::Arc<neo_broker::security::Security>,
}

/// Binds and serves on a thread; the thread holds only a weak reference,
/// so it never keeps the broker from closing.
pub fn start(
    addr: SocketAddr,
    broker: Weak<Mutex<Broker>>,
    info: AdminInfo,
) -> anyhow::Result<SocketAddr> {
    let listener =
        TcpListener::bind(addr).with_context(|| format!("binding the admin endpoint {addr}"))?;
    let bound = listener.local_addr()?;
    std::thread::Builder::new()
        .name("neo-admin".into())
        .spawn(move || {
            for stream in listener.incoming() {
                match stream {
                    Ok(s) => {
                        if let Err(e) = handle(s, &broker, &info) {
                            tracing::debug!(error = %e, "admin request failed");
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "admin accept failed"),
                }
            }
        })?;
    Ok(bound)
}

fn handle(mut s: TcpStream, broker: &Weak<Mutex<Broker>>, info: &AdminInfo) -> std::io::Result<()> {
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    s.set_write_timeout(Some(Duration::from_secs(2)))?;
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
        if head.len() > MAX_HEAD {
            return respond(&mut s, 431, "text/plain", "request head too large\n");
        }
    }
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if method != "GET" {
        return respond(&mut s, 405, "text/plain", "only GET\n");
    }
    match path {
        "/health" => match broker.upgrade() {
            Some(_) => respond(&mut s, 200, "application/json", "{\"status\":\"ok\"}\n"),
            None => respond(
                &mut s,
                503,
                "application/json",
                "{\"status\":\"stopping\"}\n",
            ),
        },
        "/ready" => {
            let serving = broker.upgrade().is_some()
                && info
                    .published
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .serving;
            match serving {
                true => respond(&mut s, 200, "application/json", "{\"status\":\"ready\"}\n"),
                false => respond(
                    &mut s,
                    503,
                    "application/json",
                    "{\"status\":\"not serving\"}\n",
                ),
            }
        }
        "/metrics" => {
            let b = broker.upgrade();
            let body = {
                let guard = b.as_ref().map(|b| neo_broker::service::lock(b));
                crate::admin_metrics::render(guard.as_deref(), info)
            };
            drop(b);
            respond(
                &mut s,
                200,
                "text/plain; version=0.0.4; charset=utf-8",
                &body,
            )
        }
        "/status" => {
            let Some(b) = broker.upgrade() else {
                return respond(
                    &mut s,
                    503,
                    "application/json",
                    "{\"status\":\"stopping\"}\n",
                );
            };
            let body = status(&neo_broker::service::lock(&b), info).to_string();
            drop(b);
            respond(&mut s, 200, "application/json", &(body + "\n"))
        }
        _ => respond(
            &mut s,
            404,
            "text/plain",
            "not found: try /health, /ready, /metrics or /status\n",
        ),
    }
}

fn status(b: &Broker, info: &AdminInfo) -> serde_json::Value {
    let topics: Vec<serde_json::Value> = b
        .list_topics()
        .iter()
        .filter_map(|t| b.describe_topic(t).ok())
        .map(|d| serde_json::json!({ "name": d.name, "config": d.config.pairs().into_iter().collect::<std::collections::BTreeMap<_, _>>(), "partitions": d.partitions.iter().map(|p| serde_json::json!({"partition": p.partition, "start_offset": p.start_offset, "end_offset": p.end_offset, "durable_end": p.durable_end})).collect::<Vec<_>>() }))
        .collect();
    serde_json::json!({
        "version": env!("NEO_VERSION"),
        "transport": info.transport,
        "listen": info.listen.to_string(),
        "uptime_s": info.started.elapsed().as_secs(),
        "data_dir": b.data_dir().display().to_string(),
        "topics": topics,
        "groups": b.list_groups(),
        "stats": b.stats(),
        "kafka": info.kafka.as_ref().map(|(addr, k)| serde_json::json!({
            "listen": addr.to_string(),
            "counters": k.snapshot(),
        })),
    })
}

fn respond(s: &mut TcpStream, code: u16, ctype: &str, body: &str) -> std::io::Result<()> {
    let reason = match code {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Error",
    };
    write!(
        s,
        "HTTP/1.1 {code} {reason}\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}
