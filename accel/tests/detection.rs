//! Detection and the registry on crafted sysfs/PCI trees, with the library
//! loader answered by the test.

use std::fs;
use std::path::Path;

use neo_accel::{Backend, CodecId, Detection, LibraryProbe, Overrides, Registry};

struct Libs {
    qpl: bool,
}

impl LibraryProbe for Libs {
    fn load(&self, candidates: &[&str]) -> Result<String, String> {
        if self.qpl && candidates[0].starts_with("libqpl") {
            Ok(candidates[0].to_string())
        } else {
            Err(format!("{}: not found", candidates[0]))
        }
    }
}

fn write(root: &Path, rel: &str, content: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, content).unwrap();
}

fn iaa(root: &Path, wq_state: &str) {
    write(root, "sys/bus/dsa/devices/iax1/state", "enabled");
    write(root, "sys/bus/dsa/devices/wq1.0/state", wq_state);
    write(root, "sys/bus/dsa/devices/wq1.0/type", "user");
    write(root, "sys/bus/dsa/devices/wq1.0/mode", "shared");
    // A DSA device and queue on the same bus must not count.
    write(root, "sys/bus/dsa/devices/dsa0/state", "enabled");
    write(root, "sys/bus/dsa/devices/wq0.0/state", "enabled");
    write(root, "sys/bus/dsa/devices/wq0.0/type", "user");
}

fn deflate(r: &Registry) -> neo_accel::Choice {
    r.choices()
        .iter()
        .find(|c| c.codec == CodecId::Deflate)
        .unwrap()
        .clone()
}

#[test]
fn iaa_with_enabled_queue_and_qpl_absent_is_software_with_the_reason() {
    let t = tempfile::tempdir().unwrap();
    iaa(t.path(), "enabled");
    let d = Detection::detect(t.path(), &Libs { qpl: false });
    assert_eq!(d.usable_iaa_queues(), 1);
    let c = deflate(&Registry::new(&d, &Overrides::new()).unwrap());
    assert_eq!(c.backend, Backend::Software);
    assert!(c.reason.contains("libqpl does not load"), "{}", c.reason);
}

#[test]
fn iaa_with_qpl_present_is_reported_and_stays_software() {
    let t = tempfile::tempdir().unwrap();
    iaa(t.path(), "enabled");
    let d = Detection::detect(t.path(), &Libs { qpl: true });
    let c = deflate(&Registry::new(&d, &Overrides::new()).unwrap());
    assert_eq!(c.backend, Backend::Software);
    assert!(c.reason.contains("no QPL job path"), "{}", c.reason);
}

#[test]
fn iaa_present_but_disabled() {
    let t = tempfile::tempdir().unwrap();
    iaa(t.path(), "disabled");
    let d = Detection::detect(t.path(), &Libs { qpl: true });
    assert_eq!(d.usable_iaa_queues(), 0);
    assert!(d.lines()[0].contains("no enabled user work queue"));
    let c = deflate(&Registry::new(&d, &Overrides::new()).unwrap());
    assert!(
        c.reason.contains("no enabled user work queue"),
        "{}",
        c.reason
    );
}

#[test]
fn qat_present_by_pci_id_with_endpoints() {
    let t = tempfile::tempdir().unwrap();
    write(
        t.path(),
        "sys/bus/pci/devices/0000:6b:00.0/vendor",
        "0x8086",
    );
    write(
        t.path(),
        "sys/bus/pci/devices/0000:6b:00.0/device",
        "0x4940",
    );
    write(
        t.path(),
        "sys/bus/pci/devices/0000:00:02.0/vendor",
        "0x10de",
    );
    write(t.path(), "dev/qat_adf_ctl", "");
    let d = Detection::detect(t.path(), &Libs { qpl: false });
    assert_eq!(
        d.qat_pci,
        vec!["0000:6b:00.0 4xxx PF (no driver)".to_string()]
    );
    assert_eq!(d.qat_device_nodes, vec!["/dev/qat_adf_ctl".to_string()]);
    let mut o = Overrides::new();
    o.insert("zstd".into(), "qat".into());
    let e = Registry::new(&d, &o).unwrap_err();
    assert!(e.contains("no QATzip path"), "{e}");
}

#[test]
fn nothing_present_and_overrides() {
    let t = tempfile::tempdir().unwrap();
    let d = Detection::detect(t.path(), &Libs { qpl: false });
    let r = Registry::new(&d, &Overrides::new()).unwrap();
    assert!(r.choices().iter().all(|c| c.backend == Backend::Software));
    assert!(deflate(&r).reason.contains("no IAA work queue"));
    let mut o = Overrides::new();
    o.insert("deflate".into(), "iaa".into());
    assert!(Registry::new(&d, &o)
        .unwrap_err()
        .contains("IAA is unusable"));
    o.insert("deflate".into(), "software".into());
    assert_eq!(
        deflate(&Registry::new(&d, &o).unwrap()).reason,
        "software forced by configuration"
    );
    o.insert("lz4".into(), "gpu".into());
    assert!(Registry::new(&d, &o)
        .unwrap_err()
        .contains("unknown backend"));
}

#[test]
fn broken_tree_gives_reasons_not_panics() {
    let t = tempfile::tempdir().unwrap();
    // Directories where files should be: every read fails.
    fs::create_dir_all(t.path().join("sys/bus/dsa/devices/iax3/state")).unwrap();
    fs::create_dir_all(t.path().join("sys/bus/dsa/devices/wq3.0/state")).unwrap();
    fs::create_dir_all(t.path().join("sys/bus/pci/devices/0000:01:00.0/vendor")).unwrap();
    let d = Detection::detect(t.path(), &Libs { qpl: false });
    assert_eq!(d.iaa_work_queues[0].state, "unreadable");
    assert_eq!(d.usable_iaa_queues(), 0);
    assert!(d.iaa_devices[0].1.contains("iax3/state"));
    let r = Registry::new(&d, &Overrides::new()).unwrap();
    assert!(r.codec(CodecId::Deflate).is_some());
}
