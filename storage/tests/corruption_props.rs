//! Random truncations and bit flips of segment and index files, after a clean
//! or an unclean shutdown: reopening never panics, and every batch the log
//! serves afterwards is exactly a batch that was written at that offset.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use common::{check, meta, payload, small};
use neo_storage::{FsyncPolicy, Log};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Damage {
    Truncate { file: usize, keep: f64 },
    Flip { file: usize, at: f64, bit: u8 },
    Delete { file: usize },
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        (any::<usize>(), 0.0..1.0f64).prop_map(|(file, keep)| Damage::Truncate { file, keep }),
        (any::<usize>(), 0.0..1.0f64, 0u8..8).prop_map(|(file, at, bit)| Damage::Flip {
            file,
            at,
            bit
        }),
        any::<usize>().prop_map(|file| Damage::Delete { file }),
    ]
}

/// Writes a multi-segment log; returns (base offset -> seq).
fn build(dir: &Path, clean: bool) -> HashMap<u64, u64> {
    let (mut log, _) = Log::open(dir, small(FsyncPolicy::Never)).unwrap();
    let mut written = HashMap::new();
    for seq in 0..120u64 {
        let info = log
            .append(
                &meta(seq, 1 + (seq % 3) as u32),
                &payload(seq, 64 + (seq as usize * 53) % 700),
            )
            .unwrap();
        written.insert(info.base_offset, seq);
    }
    if clean {
        log.close().unwrap();
    } else {
        log.sync().unwrap();
    }
    written
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut f: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension()
                .is_some_and(|x| x == "log" || x == "index" || x == "timeindex")
        })
        .collect();
    f.sort();
    f
}

fn apply(dir: &Path, d: &Damage) {
    let f = files(dir);
    let pick = |i: usize| f[i % f.len()].clone();
    match d {
        Damage::Truncate { file, keep } => {
            let p = pick(*file);
            let len = std::fs::metadata(&p).unwrap().len();
            let h = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
            h.set_len((len as f64 * keep) as u64).unwrap();
        }
        Damage::Flip { file, at, bit } => {
            let p = pick(*file);
            let mut b = std::fs::read(&p).unwrap();
            if !b.is_empty() {
                let i = ((b.len() as f64 * at) as usize).min(b.len() - 1);
                b[i] ^= 1 << bit;
                std::fs::write(&p, &b).unwrap();
            }
        }
        Damage::Delete { file } => {
            let p = pick(*file);
            if p.extension().is_some_and(|x| x != "log") {
                std::fs::remove_file(p).unwrap();
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn damaged_files_never_panic_recovery_nor_serve_bad_batches(
        clean in any::<bool>(),
        damages in proptest::collection::vec(damage(), 1..4),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let written = build(dir.path(), clean);
        for d in &damages {
            apply(dir.path(), d);
        }
        let (log, _report) = match Log::open(dir.path(), small(FsyncPolicy::Never)) {
            Ok(x) => x,
            // A typed error is fine (e.g. a segment made unreadable); a panic is not.
            Err(_) => return Ok(()),
        };
        let r = log.reader();
        let mut off = r.start_offset();
        let mut served = 0;
        while off < r.end_offset() {
            match r.fetch(off, 4096) {
                Ok(v) => {
                    let mut last = off;
                    for (h, p) in v.batches() {
                        let seq = written.get(&h.base_offset).copied();
                        prop_assert!(seq.is_some(), "served a batch at {} that was never written", h.base_offset);
                        prop_assert_eq!(check(p), seq, "batch at {} served with other content", h.base_offset);
                        served += 1;
                        last = h.last_offset() + 1;
                    }
                    off = if last > off { last } else { off + 1 };
                }
                Err(_) => off += 1, // corrupt or quarantined: refused, never served
            }
        }
        prop_assert!(served <= written.len());
    }
}
