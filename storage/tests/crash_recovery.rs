//! Kill -9 while appending with fsync=always: every offset the child reported
//! durable must be present and intact after recovery. 50 rounds in the same
//! directory; prints `rounds=50 acked=<N> lost=<L>` and requires L == 0.
//!
//! The child is this test binary again, in child mode (NEO_CRASH_CHILD set):
//! it appends batches, waits until each is durable, and prints
//! `ACK <base offset> <seq>` for it.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{check, meta, payload, small};
use neo_storage::{FsyncPolicy, Log};
use rand::{Rng, SeedableRng};

const ROUNDS: usize = 50;

fn child(dir: &str) {
    let (mut log, _) = Log::open(dir, small(FsyncPolicy::Always)).expect("child opens the log");
    let out = std::io::stdout();
    let mut out = out.lock();
    // Continue the sequence from what is already there.
    let mut seq = std::env::var("NEO_CRASH_SEQ")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0u64);
    loop {
        let len = 50 + (seq as usize * 97) % 2000;
        let info = log
            .append_durable(
                &meta(seq, 1 + (seq % 4) as u32),
                &payload(seq, len),
                Duration::from_secs(30),
            )
            .expect("append");
        writeln!(out, "ACK {} {}", info.base_offset, seq).unwrap();
        out.flush().unwrap();
        seq += 1;
    }
}

#[test]
fn crash_recovery() {
    if let Ok(dir) = std::env::var("NEO_CRASH_CHILD") {
        child(&dir);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let seed: u64 = std::env::var("NEO_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0xc0ffee);
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
    let exe = std::env::current_exe().unwrap();
    let mut acked: BTreeMap<u64, u64> = BTreeMap::new(); // base offset -> seq
    let mut next_seq = 0u64;
    let mut lost = 0usize;
    for round in 0..ROUNDS {
        let mut c = Command::new(&exe)
            .args([
                "--exact",
                "crash_recovery",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("NEO_CRASH_CHILD", dir.path())
            .env("NEO_CRASH_SEQ", next_seq.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = c.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut acks = Vec::new();
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let mut f = line.split_whitespace();
                if f.next() == Some("ACK") {
                    let off: u64 = f.next().unwrap().parse().unwrap();
                    let seq: u64 = f.next().unwrap().parse().unwrap();
                    acks.push((off, seq));
                }
            }
            acks
        });
        // Let it run a random while (it needs a few ms to start), then kill -9.
        std::thread::sleep(Duration::from_millis(rng.gen_range(20..120)));
        c.kill().unwrap(); // SIGKILL
        c.wait().unwrap();
        for (off, seq) in reader.join().unwrap() {
            acked.insert(off, seq);
            next_seq = next_seq.max(seq + 1);
        }
        // Reopen (recovery) and check every acknowledged batch.
        let t = Instant::now();
        let (log, rep) = Log::open(dir.path(), small(FsyncPolicy::Always)).unwrap();
        let r = log.reader();
        for (&off, &seq) in &acked {
            let ok = r.fetch(off, 1).ok().and_then(|v| {
                let (h, p) = v.batches().next()?;
                (h.base_offset == off && check(p) == Some(seq)).then_some(())
            });
            if ok.is_none() {
                lost += 1;
                eprintln!("round {round}: acknowledged batch at offset {off} (seq {seq}) missing or damaged; {rep:?}");
            }
        }
        assert!(t.elapsed() < Duration::from_secs(20), "recovery too slow");
        // The next child continues after everything that survived.
        next_seq = next_seq.max(acked.values().max().map_or(0, |s| s + 1));
        drop(log);
    }
    println!(
        "rounds={ROUNDS} acked={} lost={lost} seed={seed}",
        acked.len()
    );
    assert!(!acked.is_empty(), "the child never acknowledged anything");
    assert_eq!(lost, 0);
}
