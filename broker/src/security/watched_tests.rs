//! Tests of the atomic save and the reload-on-change wrapper.

use super::*;

#[derive(Clone, Debug, PartialEq)]
struct Lines {
    path: PathBuf,
    lines: Vec<String>,
}

impl FileBacked for Lines {
    fn load(path: &Path) -> Result<Self, StoreError> {
        let bytes = read_optional(path)?.unwrap_or_default();
        let text = String::from_utf8(bytes).map_err(|_| StoreError::Invalid {
            path: path.to_owned(),
            reason: "not UTF-8".into(),
        })?;
        if text.contains("BROKEN") {
            return Err(StoreError::Invalid {
                path: path.to_owned(),
                reason: "broken".into(),
            });
        }
        Ok(Lines {
            path: path.to_owned(),
            lines: text.lines().map(str::to_owned).collect(),
        })
    }
    fn save(&self) -> Result<(), StoreError> {
        write_atomic(&self.path, self.lines.join("\n").as_bytes())
    }
}

#[test]
fn atomic_write_is_0600_and_leaves_no_temp_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.json");
    write_atomic(&path, b"one").unwrap();
    write_atomic(&path, b"two").unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"two");
    let mode = fs::metadata(&path).unwrap().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(names.len(), 1);
}

#[test]
fn reloads_on_change_at_most_once_per_interval_and_keeps_old_on_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lines");
    fs::write(&path, "a").unwrap();
    let w: Watched<Lines> = Watched::open(&path).unwrap();
    let t0 = Instant::now();
    assert_eq!(w.get_at(t0).lines, ["a"]);

    write_atomic(&path, b"a\nb").unwrap();
    // Not due yet: the old value.
    assert_eq!(w.get_at(t0).lines, ["a"]);
    let t1 = t0 + RELOAD_CHECK_INTERVAL;
    assert_eq!(w.get_at(t1).lines, ["a", "b"]);

    write_atomic(&path, b"BROKEN").unwrap();
    let t2 = t1 + RELOAD_CHECK_INTERVAL;
    assert_eq!(w.get_at(t2).lines, ["a", "b"]);
    assert!(w.reload_if_changed().is_ok_and(|changed| !changed));

    write_atomic(&path, b"c").unwrap();
    let t3 = t2 + RELOAD_CHECK_INTERVAL;
    assert_eq!(w.get_at(t3).lines, ["c"]);
}

#[test]
fn missing_file_is_empty_and_update_saves() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lines");
    let w: Watched<Lines> = Watched::open(&path).unwrap();
    assert!(w.get().lines.is_empty());
    let before = w.snapshot();
    w.update(|l| l.lines.push("x".into())).unwrap();
    assert!(before.lines.is_empty(), "a reader's snapshot never changes");
    assert_eq!(w.snapshot().lines, ["x"]);
    assert_eq!(fs::read_to_string(&path).unwrap(), "x");
    // The save itself is not seen as an outside change.
    assert!(!w.reload_if_changed().unwrap());
}

#[test]
fn shared_across_threads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lines");
    let w: Watched<Lines> = Watched::open(&path).unwrap();
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let w = w.clone();
            std::thread::spawn(move || {
                w.update(|l| l.lines.push(format!("{i}"))).unwrap();
                w.get().lines.len()
            })
        })
        .collect();
    for h in handles {
        assert!(h.join().unwrap() >= 1);
    }
    assert_eq!(w.snapshot().lines.len(), 4);
}

#[test]
fn a_deleted_file_keeps_the_old_contents_until_a_new_one_appears() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lines");
    fs::write(&path, "a").unwrap();
    let w: Watched<Lines> = Watched::open_with_interval(&path, Duration::ZERO).unwrap();
    fs::remove_file(&path).unwrap();
    assert_eq!(w.get().lines, ["a"]);
    fs::write(&path, "b").unwrap();
    assert_eq!(w.get().lines, ["b"]);
}
