//! The `neo` binary end to end: `serve` answers RPCs and stops cleanly on
//! SIGTERM, `bench rtt --json` prints a well-formed record, `doctor` reports
//! every transport.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const NEO: &str = env!("CARGO_BIN_EXE_neo");

fn bench_json(args: &[&str]) -> serde_json::Value {
    let out = Command::new(NEO)
        .args(["bench", "rtt", "--json"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "neo bench failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let last = stdout.lines().last().expect("output");
    serde_json::from_str(last).unwrap_or_else(|e| panic!("last line is not JSON ({e}): {last}"))
}

fn check_record(v: &serde_json::Value, size: u64, count: u64) {
    assert_eq!(v["bench"], "rtt");
    assert_eq!(v["transport"], "tcp");
    assert_eq!(v["size"], size);
    assert_eq!(v["count"], count);
    let f = |k: &str| {
        v[k].as_f64()
            .unwrap_or_else(|| panic!("{k} missing in {v}"))
    };
    assert!(f("p50_us") > 0.0);
    assert!(
        f("p50_us") <= f("p99_us") && f("p99_us") <= f("p999_us") && f("p999_us") <= f("max_us"),
        "{v}"
    );
    assert!(f("mean_us") > 0.0 && f("mean_us") <= f("max_us"));
}

#[test]
fn bench_rtt_json_record_with_own_server() {
    let v = bench_json(&["--size", "64", "--count", "300", "--warmup", "20"]);
    check_record(&v, 64, 300);
}

#[test]
fn serve_answers_bench_and_stops_on_sigterm() {
    let data = tempfile::tempdir().unwrap();
    let mut child = Command::new(NEO)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--no-admin",
            "--data-dir",
        ])
        .arg(data.path())
        .env("NEO_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // The log line names the bound address. A reader thread keeps the pipe
    // drained; the test gives up after 20 s instead of hanging.
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut addr = None;
    let mut log = Vec::new();
    while addr.is_none() {
        let Ok(line) = rx.recv_timeout(Duration::from_secs(20)) else {
            let _ = child.kill();
            panic!("serve logged no address; log so far: {log:?}");
        };
        addr = line
            .split("addr=")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .map(str::to_string);
        log.push(line);
    }
    let addr = addr.expect("serve logged its address");
    let v = bench_json(&[
        "--connect",
        &addr,
        "--size",
        "1000",
        "--count",
        "200",
        "--warmup",
        "10",
    ]);
    check_record(&v, 1000, 200);

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let t = Instant::now();
    let exit = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "serve did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "serve exited with {exit}");
    reader.join().unwrap();
    let rest: Vec<String> = rx.try_iter().collect();
    assert!(rest.iter().any(|l| l.contains("neo stopped")), "{rest:?}");
}

#[test]
fn bad_arguments_fail_with_a_message() {
    let out = Command::new(NEO)
        .args(["bench", "rtt", "--transport", "carrier-pigeon"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not available in this build"));
    let out = Command::new(NEO)
        .args(["serve", "--listen", "not-an-address"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    // Hardware asked for but not there: a refusal with the reason, not a
    // silent software fallback (there is no IAA on the build machines).
    let data = tempfile::tempdir().unwrap();
    let out = Command::new(NEO)
        .args([
            "serve",
            "--no-admin",
            "--listen",
            "127.0.0.1:0",
            "--accel",
            "deflate=iaa",
            "--data-dir",
        ])
        .arg(data.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("deflate = \"iaa\" was configured, but IAA is unusable"),
        "{err}"
    );
    let cfg = data.path().join("neo.toml");
    std::fs::write(&cfg, "[accel]\nlz4 = \"gpu\"\n").unwrap();
    let out = Command::new(NEO)
        .args(["serve", "--no-admin", "--listen", "127.0.0.1:0", "--config"])
        .arg(&cfg)
        .arg("--data-dir")
        .arg(data.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown backend `gpu`"));
    // A malformed offset is refused before any broker is contacted (none
    // listens at this address).
    for bad in ["orders:x=1", "orders=1", ":0=1", "orders:0=-1"] {
        let out = Command::new(NEO)
            .args(["-b", "127.0.0.1:9", "groups", "commit", "g", bad])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{bad} accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("expected TOPIC:PARTITION=OFFSET"),
            "{bad}: {err}"
        );
    }
}

#[test]
fn doctor_reports_every_transport() {
    let out = Command::new(NEO)
        .args(["doctor", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = v["transports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["rdma", "dpdk", "af-xdp", "tcp"]);
    let tcp = &v["transports"][3];
    assert_eq!(tcp["usable"], true);
    for t in v["transports"].as_array().unwrap() {
        assert!(!t["reasons"].as_array().unwrap().is_empty(), "{t}");
    }
}
