//! The cluster test harness: three `neo serve` nodes, each in its own
//! network namespace on a bridge (10.77.0.1-3), the test's clients in the
//! bridge's namespace (10.77.0.100); faults are SIGKILL and a full cut of a
//! node with nftables inside its namespace. Everything is made and removed
//! by the harness.

#![allow(dead_code)]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const NEO: &str = env!("CARGO_BIN_EXE_neo");
pub const BROKER_PORT: u16 = 7400;
pub const CONTROLLER_PORT: u16 = 7500;

/// Runs a command, panicking with its output if it fails.
pub fn sh(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// The namespaces and the bridge; removed on drop.
pub struct Net {
    pub tag: String,
}

impl Net {
    pub fn hub(tag: &str) -> String {
        format!("{tag}h")
    }
    pub fn node_ns(tag: &str, i: u64) -> String {
        format!("{tag}n{i}")
    }
    pub fn ip(i: u64) -> String {
        format!("10.77.0.{i}")
    }

    pub fn up(tag: &str, nodes: u64) -> Net {
        let net = Net { tag: tag.into() };
        net.remove();
        let hub = Self::hub(tag);
        sh(&["ip", "netns", "add", &hub]);
        sh(&["ip", "-n", &hub, "link", "set", "lo", "up"]);
        sh(&["ip", "-n", &hub, "link", "add", "br0", "type", "bridge"]);
        sh(&[
            "ip",
            "-n",
            &hub,
            "addr",
            "add",
            "10.77.0.100/24",
            "dev",
            "br0",
        ]);
        sh(&["ip", "-n", &hub, "link", "set", "br0", "up"]);
        for i in 1..=nodes {
            let ns = Self::node_ns(tag, i);
            let (a, b) = (format!("{tag}a{i}"), format!("{tag}b{i}"));
            sh(&["ip", "netns", "add", &ns]);
            sh(&["ip", "link", "add", &a, "type", "veth", "peer", "name", &b]);
            sh(&["ip", "link", "set", &a, "netns", &hub]);
            sh(&["ip", "link", "set", &b, "netns", &ns]);
            sh(&["ip", "-n", &hub, "link", "set", &a, "master", "br0"]);
            sh(&["ip", "-n", &hub, "link", "set", &a, "up"]);
            sh(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
            let cidr = format!("{}/24", Self::ip(i));
            sh(&["ip", "-n", &ns, "addr", "add", &cidr, "dev", &b]);
            sh(&["ip", "-n", &ns, "link", "set", &b, "up"]);
        }
        net
    }

    fn remove(&self) {
        let list = Command::new("ip").args(["netns", "list"]).output();
        let text = list
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        for line in text.lines() {
            let name = line.split_whitespace().next().unwrap_or("");
            let ours = name == Self::hub(&self.tag)
                || (name.starts_with(&format!("{}n", self.tag))
                    && name.len() <= self.tag.len() + 3);
            if ours {
                let _ = Command::new("ip").args(["netns", "del", name]).status();
            }
        }
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        self.remove();
    }
}

/// Cuts node `i` off: inside its namespace every packet not on loopback is
/// dropped, both ways (a partition, not a crash: the process runs on).
pub fn cut(tag: &str, i: u64) {
    let rules = "table inet neocut {\n chain in { type filter hook input priority 0; policy accept; iifname != \"lo\" drop; }\n chain out { type filter hook output priority 0; policy accept; oifname != \"lo\" drop; }\n}\n";
    let mut c = Command::new("ip")
        .args(["netns", "exec", &Net::node_ns(tag, i), "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("nft");
    use std::io::Write;
    c.stdin.take().unwrap().write_all(rules.as_bytes()).unwrap();
    assert!(c.wait().unwrap().success(), "nft cut of node {i}");
}

pub fn heal(tag: &str, i: u64) {
    sh(&[
        "ip",
        "netns",
        "exec",
        &Net::node_ns(tag, i),
        "nft",
        "delete",
        "table",
        "inet",
        "neocut",
    ]);
}

/// One `neo serve` cluster member.
pub struct Node {
    pub id: u64,
    pub dir: PathBuf,
    tag: String,
    voters: String,
    child: Option<Child>,
    starts: u32,
}

impl Node {
    pub fn new(tag: &str, id: u64, root: &Path, nodes: u64) -> Node {
        let voters = (1..=nodes)
            .map(|n| format!("{n}={}:{CONTROLLER_PORT}", Net::ip(n)))
            .collect::<Vec<_>>()
            .join(",");
        Node {
            id,
            dir: root.join(format!("node{id}")),
            tag: tag.into(),
            voters,
            child: None,
            starts: 0,
        }
    }

    pub fn running(&self) -> bool {
        self.child.is_some()
    }

    pub fn addr(&self) -> String {
        format!("{}:{BROKER_PORT}", Net::ip(self.id))
    }

    pub fn start(&mut self) {
        assert!(self.child.is_none(), "node {} already runs", self.id);
        self.starts += 1;
        std::fs::create_dir_all(&self.dir).unwrap();
        let log = File::create(self.dir.with_extension(format!("log.{}", self.starts))).unwrap();
        let ip = Net::ip(self.id);
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &Net::node_ns(&self.tag, self.id),
                NEO,
                "serve",
                "--no-admin",
            ])
            .arg("--data-dir")
            .arg(&self.dir)
            .args(["--listen", &format!("{ip}:{BROKER_PORT}")])
            .args(["--node-id", &self.id.to_string()])
            .args(["--controller-listen", &format!("{ip}:{CONTROLLER_PORT}")])
            .args(["--controller-voters", &self.voters])
            .args([
                "--replica-lag-max-ms",
                "1000",
                "--session-timeout-ms",
                "1500",
            ])
            .env(
                "NEO_LOG",
                std::env::var("NEO_CF_LOG").unwrap_or_else(|_| "info,openraft=error".into()),
            )
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawning neo serve");
        self.child = Some(child);
    }

    /// SIGKILL: no controlled shutdown, no clean close.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait (bounded), then SIGKILL.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").arg(c.id().to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The last lines of every log this node wrote (for a failure message).
    pub fn log_tail(&self) -> String {
        let mut out = String::new();
        for k in 1..=self.starts {
            let p = self.dir.with_extension(format!("log.{k}"));
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            out += &format!("--- {} (last 15 lines)\n", p.display());
            for l in &lines[lines.len().saturating_sub(15)..] {
                out += l;
                out.push('\n');
            }
        }
        out
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}
