//! On-disk recovery: a torn or garbled log tail is cut on open, corrupt
//! vote and snapshot files are clear errors.

mod common;

use std::fs::{self, OpenOptions};
use std::io::Write;

use common::*;
use neo_cluster::log_store::LogStore;
use neo_cluster::{ClusterError, Controller};

/// A single-voter controller in `root` with `n` topics created.
fn populate(root: &std::path::Path, n: usize) -> std::path::PathBuf {
    let v = voters(1);
    let c = Controller::start(config(1, &v, root)).unwrap();
    assert!(wait_until(T, || registered_unfenced(&c.meta(), &[1])));
    for i in 0..n {
        c.create_topic(&format!("t{i}"), 1, 1, serde_json::Value::Null, T)
            .unwrap();
    }
    c.shutdown();
    root.join("n1")
}

#[test]
fn torn_and_garbled_log_tails_are_cut_and_the_rest_served() {
    let root = tempfile::tempdir().unwrap();
    let dir = populate(root.path(), 3);
    let log = dir.join("raft.log");
    let full = LogStore::open(&dir).unwrap().indexes();
    assert!(full.len() >= 5, "{full:?}");
    let len = fs::metadata(&log).unwrap().len();

    // Garbage appended after the last record: cut, every entry kept.
    OpenOptions::new()
        .append(true)
        .open(&log)
        .unwrap()
        .write_all(b"\x05\x00\x00\x00garbage!")
        .unwrap();
    assert_eq!(LogStore::open(&dir).unwrap().indexes(), full);
    assert_eq!(
        fs::metadata(&log).unwrap().len(),
        len,
        "tail cut back on open"
    );

    // A torn last record: that entry is dropped, the rest served.
    OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(len - 3)
        .unwrap();
    let torn = LogStore::open(&dir).unwrap().indexes();
    assert_eq!(torn, full[..full.len() - 1]);
    assert!(fs::metadata(&log).unwrap().len() < len - 3);

    // A flipped byte inside a middle record: cut from there.
    let mut bytes = fs::read(&log).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    fs::write(&log, &bytes).unwrap();
    let cut = LogStore::open(&dir).unwrap().indexes();
    assert!(!cut.is_empty() && cut.len() < torn.len());
    assert_eq!(cut, torn[..cut.len()], "a prefix survives");

    // The controller still starts on the cut log.
    let v = voters(1);
    let c = Controller::start(config(1, &v, root.path())).unwrap();
    assert!(wait_until(T, || c.leader() == Some(1)
        && registered_unfenced(&c.meta(), &[1])));
    c.create_topic("after", 1, 1, serde_json::Value::Null, T)
        .unwrap();
    c.shutdown();
}

#[test]
fn corrupt_vote_or_snapshot_file_is_an_error_naming_it() {
    let root = tempfile::tempdir().unwrap();
    let dir = populate(root.path(), 1);
    fs::write(dir.join("vote.json"), b"\x00\x01not json").unwrap();
    let Err(ClusterError::Io(msg)) = LogStore::open(&dir).map(|_| ()) else {
        panic!("garbage vote accepted")
    };
    assert!(msg.contains("vote.json"), "{msg}");
    let v = voters(1);
    let err = Controller::start(config(1, &v, root.path())).err();
    assert!(
        matches!(&err, Some(ClusterError::Io(m)) if m.contains("vote.json")),
        "{err:?}"
    );

    fs::remove_file(dir.join("vote.json")).unwrap();
    fs::write(dir.join("snapshot.json"), b"{\"meta\":").unwrap();
    let err = Controller::start(config(1, &v, root.path())).err();
    assert!(
        matches!(&err, Some(ClusterError::Io(m)) if m.contains("snapshot.json")),
        "{err:?}"
    );
}

#[test]
fn bad_configuration_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let v = voters(1);
    let mut cfg = config(1, &v, root.path());
    cfg.node_id = 7;
    assert!(matches!(
        Controller::start(cfg).err(),
        Some(ClusterError::InvalidRequest(_))
    ));
    let mut cfg = config(1, &v, root.path());
    cfg.session_timeout = cfg.heartbeat_interval;
    assert!(matches!(
        Controller::start(cfg).err(),
        Some(ClusterError::InvalidRequest(_))
    ));
}

#[test]
fn no_leader_is_a_timeout_error_not_a_hang() {
    // One of three voters alone never elects a leader.
    let root = tempfile::tempdir().unwrap();
    let v = voters(3);
    let c = Controller::start(config(1, &v, root.path())).unwrap();
    let t0 = std::time::Instant::now();
    let r = c.create_topic(
        "x",
        1,
        1,
        serde_json::Value::Null,
        std::time::Duration::from_millis(800),
    );
    assert!(matches!(r, Err(ClusterError::NoLeader(_))), "{r:?}");
    assert!(t0.elapsed() < std::time::Duration::from_secs(3));
    c.shutdown();
}
