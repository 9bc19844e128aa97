//! Detection and the registry on crafted sysfs/PCI trees, with the library
//! loader answered by the test.

use std::fs;
use std::path::Path;

use neo_accel::{Backend, CodecId, Detection, LibraryProbe, Overrides, Registry};

#[derive(Default)]
struct Libs {
    qpl: bool,
    qatzip: bool,
}

impl Libs {
    fn qpl(qpl: bool) -> Self {
        Self { qpl, qatzip: false }
    }
}

impl LibraryProbe for Libs {
    fn load(&self, candidates: &[&str]) -> Result<String, String> {
        let c = candidates[0];
        if (self.qpl && c.starts_with("libqpl")) || (self.qatzip && c.starts_with("libqatzip")) {
            Ok(c.to_string())
        } else {
            Err(format!("{c}: cannot open shared object file"))
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
    write(t.path(), "dev/iax/wq1.0", "");
    let d = Detection::detect(t.path(), &Libs::qpl(false));
    assert_eq!(d.usable_iaa_queues(), 1);
    assert_eq!(d.iaa_work_queues.len(), 1, "the DSA queue must not count");
    assert_eq!(
        d.lines()[0],
        "IAA: 1 device(s), 1 enabled user work queue(s), 1 with a /dev/iax node"
    );
    let c = deflate(&Registry::new(&d, &Overrides::new()).unwrap());
    assert_eq!(c.backend, Backend::Software);
    assert!(c.reason.contains("libqpl does not load"), "{}", c.reason);
}

#[test]
fn iaa_with_qpl_present_picks_iaa_for_deflate_only() {
    let t = tempfile::tempdir().unwrap();
    iaa(t.path(), "enabled");
    let d = Detection::detect(t.path(), &Libs::qpl(true));
    let r = Registry::new(&d, &Overrides::new()).unwrap();
    let c = deflate(&r);
    assert_eq!(c.backend, Backend::Iaa);
    assert_eq!(c.implementation, "QPL hardware path");
    assert!(
        c.reason.contains("1 enabled IAA work queue(s)"),
        "{}",
        c.reason
    );
    for other in r.choices().iter().filter(|c| c.codec != CodecId::Deflate) {
        assert_eq!(other.backend, Backend::Software, "{other:?}");
    }
    let forced = Overrides::from([("deflate".to_string(), "iaa".to_string())]);
    assert_eq!(
        deflate(&Registry::new(&d, &forced).unwrap()).backend,
        Backend::Iaa
    );
}

#[test]
fn iaa_present_but_disabled() {
    let t = tempfile::tempdir().unwrap();
    iaa(t.path(), "disabled");
    let d = Detection::detect(t.path(), &Libs::qpl(true));
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
    let d = Detection::detect(t.path(), &Libs::qpl(false));
    assert_eq!(
        d.qat_pci,
        vec!["0000:6b:00.0 4xxx PF (no driver)".to_string()]
    );
    assert_eq!(d.qat_device_nodes, vec!["/dev/qat_adf_ctl".to_string()]);
    let r = Registry::new(&d, &Overrides::new()).unwrap();
    assert!(r.choices().iter().all(|c| c.backend == Backend::Software));
    let zstd = r.choice(CodecId::Zstd).unwrap();
    assert!(
        zstd.reason.contains("libqatzip does not load"),
        "{}",
        zstd.reason
    );
    let mut o = Overrides::new();
    o.insert("zstd".into(), "qat".into());
    let e = Registry::new(&d, &o).unwrap_err();
    assert!(e.contains("libqatzip does not load"), "{e}");
    let with_qatzip = Libs {
        qpl: false,
        qatzip: true,
    };
    let d = Detection::detect(t.path(), &with_qatzip);
    let e = Registry::new(&d, &o).unwrap_err();
    assert!(e.contains("no QATzip path"), "{e}");
    assert!(d
        .lines()
        .iter()
        .any(|l| l.contains("QATzip: libqatzip.so.3 loads")));
}

#[test]
fn qat_virtual_function_with_vfio_group() {
    let t = tempfile::tempdir().unwrap();
    write(
        t.path(),
        "sys/bus/pci/devices/0000:6b:00.1/vendor",
        "0x8086",
    );
    write(
        t.path(),
        "sys/bus/pci/devices/0000:6b:00.1/device",
        "0x37c9",
    );
    write(t.path(), "dev/vfio/vfio", "");
    write(t.path(), "dev/vfio/42", "");
    let d = Detection::detect(t.path(), &Libs::default());
    assert_eq!(
        d.qat_pci,
        vec!["0000:6b:00.1 C62x VF (no driver)".to_string()]
    );
    assert_eq!(d.qat_device_nodes, vec!["/dev/vfio/42".to_string()]);
}

#[test]
fn qpl_present_without_a_device_is_software_with_the_reason() {
    let t = tempfile::tempdir().unwrap();
    let d = Detection::detect(t.path(), &Libs::qpl(true));
    assert!(d.lines().iter().any(|l| l == "QPL: libqpl.so.1 loads"));
    let c = deflate(&Registry::new(&d, &Overrides::new()).unwrap());
    assert_eq!(c.backend, Backend::Software);
    assert!(c.reason.contains("no IAA work queue"), "{}", c.reason);
}

#[test]
fn qpl_absent_is_reported_by_the_real_loader() {
    // libqpl is not installed on the build machines: the real probe must say
    // so and the registry must still pick software.
    let t = tempfile::tempdir().unwrap();
    iaa(t.path(), "enabled");
    let d = Detection::detect(t.path(), &neo_accel::SystemLibraries);
    if d.qpl.is_ok() {
        eprintln!("libqpl is installed here; skipping the absent-library case");
        return;
    }
    assert!(d
        .lines()
        .iter()
        .any(|l| l.contains("libqpl.so.1 not installed")));
    let r = Registry::detect(t.path(), &Overrides::new()).unwrap();
    let c = deflate(&r);
    assert_eq!(c.backend, Backend::Software);
    assert!(c.reason.contains("libqpl does not load"), "{}", c.reason);
}

#[test]
fn nothing_present_and_overrides() {
    let t = tempfile::tempdir().unwrap();
    let d = Detection::detect(t.path(), &Libs::qpl(false));
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
    o.remove("lz4");
    o.insert("zstd".into(), "iaa".into());
    assert!(Registry::new(&d, &o)
        .unwrap_err()
        .contains("IAA speaks deflate only"));
    o.remove("zstd");
    o.insert("lz5".into(), "software".into());
    assert!(Registry::new(&d, &o)
        .unwrap_err()
        .contains("unknown codec `lz5`"));
}

#[test]
fn broken_tree_gives_reasons_not_panics() {
    let t = tempfile::tempdir().unwrap();
    // Directories where files should be: every read fails.
    fs::create_dir_all(t.path().join("sys/bus/dsa/devices/iax3/state")).unwrap();
    fs::create_dir_all(t.path().join("sys/bus/dsa/devices/wq3.0/state")).unwrap();
    fs::create_dir_all(t.path().join("sys/bus/pci/devices/0000:01:00.0/vendor")).unwrap();
    let d = Detection::detect(t.path(), &Libs::qpl(false));
    assert_eq!(d.iaa_work_queues[0].state, "unreadable");
    assert_eq!(d.usable_iaa_queues(), 0);
    assert!(d.iaa_devices[0].1.contains("iax3/state"));
    let r = Registry::new(&d, &Overrides::new()).unwrap();
    assert!(r.codec(CodecId::Deflate).is_some());
}

#[test]
fn unlistable_directories_are_reasons() {
    let t = tempfile::tempdir().unwrap();
    // Files where the bus directories should be: listing them fails (as root
    // too, unlike permission bits).
    write(t.path(), "sys/bus/dsa/devices", "not a directory");
    write(t.path(), "sys/bus/pci/devices", "not a directory");
    let d = Detection::detect(t.path(), &Libs::default());
    assert!(d.dsa_error.is_some() && d.pci_error.is_some());
    let lines = d.lines();
    assert!(
        lines[0].contains("/sys/bus/dsa/devices is unreadable"),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("PCI tree is unreadable")),
        "{lines:?}"
    );
    let r = Registry::new(&d, &Overrides::new()).unwrap();
    let c = deflate(&r);
    assert_eq!(c.backend, Backend::Software);
    assert!(c.reason.contains("cannot list IAA devices"), "{}", c.reason);
    assert!(c.reason.contains("cannot list PCI devices"), "{}", c.reason);
}
