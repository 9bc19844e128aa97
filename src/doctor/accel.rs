//! Compression accelerators: Intel IAA work queues (idxd, under
//! /sys/bus/dsa/devices) and QAT endpoints (by PCI id), plus whether their user
//! libraries load. The codec registry that acts on this belongs to `neo-accel`.

use serde::Serialize;

use super::sys::Fs;

const INTEL: &str = "0x8086";
/// IAA (In-Memory Analytics Accelerator) PCI device id.
const IAA_PCI: &str = "0x0cfe";
/// QAT PCI device ids: (id, generation, physical or virtual function).
const QAT_PCI: &[(&str, &str, &str)] = &[
    ("0x0435", "DH895xCC", "PF"),
    ("0x0443", "DH895xCC", "VF"),
    ("0x37c8", "C62x", "PF"),
    ("0x37c9", "C62x", "VF"),
    ("0x19e2", "C3xxx", "PF"),
    ("0x19e3", "C3xxx", "VF"),
    ("0x18a0", "C4xxx", "PF"),
    ("0x18a1", "C4xxx", "VF"),
    ("0x4940", "4xxx", "PF"),
    ("0x4941", "4xxx", "VF"),
    ("0x4942", "401xx", "PF"),
    ("0x4943", "401xx", "VF"),
    ("0x4944", "402xx", "PF"),
    ("0x4945", "402xx", "VF"),
    ("0x4946", "420xx", "PF"),
    ("0x4947", "420xx", "VF"),
    ("0x4948", "6xxx", "PF"),
    ("0x4949", "6xxx", "VF"),
];

#[derive(Debug, Serialize)]
pub struct WorkQueue {
    pub name: String,
    pub state: String,
    pub mode: String,
    pub kind: String,
}

#[derive(Debug, Serialize)]
pub struct Accel {
    /// IAA devices (iax*) with their work queues.
    pub iaa_devices: Vec<(String, String)>,
    pub iaa_work_queues: Vec<WorkQueue>,
    /// IAA PCI functions seen, bound or not.
    pub iaa_pci: Vec<String>,
    /// QAT PCI functions: address, generation, PF/VF, bound driver.
    pub qat_pci: Vec<String>,
    pub qpl: Result<String, String>,
    pub qatlib: Result<String, String>,
}

impl Accel {
    /// Enabled user-mode IAA work queues, the ones QPL can submit to.
    pub fn usable_iaa_queues(&self) -> usize {
        self.iaa_work_queues
            .iter()
            .filter(|w| w.state == "enabled" && w.kind == "user")
            .count()
    }

    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        out.push(match (self.iaa_devices.len(), self.usable_iaa_queues()) {
            (0, _) if self.iaa_pci.is_empty() => {
                "IAA: none (no iax device under /sys/bus/dsa/devices)".to_string()
            }
            (0, _) => format!(
                "IAA: PCI function(s) {} present but no iax device: is the idxd driver loaded?",
                self.iaa_pci.join(", ")
            ),
            (n, 0) => format!(
                "IAA: {n} device(s) but no enabled user work queue (configure with accel-config)"
            ),
            (n, q) => format!("IAA: {n} device(s), {q} enabled user work queue(s)"),
        });
        out.push(match &self.qpl {
            Ok(n) => format!("QPL: {n} loads"),
            Err(_) => "QPL: libqpl.so.1 not installed (IAA offload unavailable without it)".into(),
        });
        out.push(if self.qat_pci.is_empty() {
            "QAT: none (no QAT PCI function)".into()
        } else {
            format!("QAT: {}", self.qat_pci.join("; "))
        });
        out.push(match &self.qatlib {
            Ok(n) => format!("qatlib: {n} loads"),
            Err(_) => "qatlib: not installed".into(),
        });
        out
    }
}

pub fn detect(fs: &Fs) -> Accel {
    let mut a = Accel {
        iaa_devices: Vec::new(),
        iaa_work_queues: Vec::new(),
        iaa_pci: Vec::new(),
        qat_pci: Vec::new(),
        qpl: neo_ffi_dl::load_first(&["libqpl.so.1", "libqpl.so"]).map(|l| l.name),
        qatlib: neo_ffi_dl::load_first(&["libqat.so.4", "libqat.so"]).map(|l| l.name),
    };
    for dev in fs.list("sys/bus/dsa/devices") {
        let base = format!("sys/bus/dsa/devices/{dev}");
        if dev.starts_with("iax") {
            a.iaa_devices.push((
                dev.clone(),
                fs.read(&format!("{base}/state")).unwrap_or_else(|e| e),
            ));
        } else if dev.starts_with("wq") {
            // Work queues are wqD.Q; which device they belong to is in the
            // name's D, matched against iax devices below.
            let read = |f: &str| {
                fs.read(&format!("{base}/{f}"))
                    .unwrap_or_else(|_| "unreadable".into())
            };
            a.iaa_work_queues.push(WorkQueue {
                state: read("state"),
                mode: read("mode"),
                kind: read("type"),
                name: dev,
            });
        }
    }
    // Keep only work queues of IAA devices (DSA queues live in the same bus).
    let iaa_ids: Vec<String> = a
        .iaa_devices
        .iter()
        .map(|(d, _)| d.trim_start_matches("iax").to_string())
        .collect();
    a.iaa_work_queues.retain(|w| {
        let dev = w
            .name
            .trim_start_matches("wq")
            .split('.')
            .next()
            .unwrap_or("");
        iaa_ids.iter().any(|i| i == dev)
    });
    for addr in fs.list("sys/bus/pci/devices") {
        let base = format!("sys/bus/pci/devices/{addr}");
        if fs.read(&format!("{base}/vendor")).as_deref() != Ok(INTEL) {
            continue;
        }
        let Ok(id) = fs.read(&format!("{base}/device")) else {
            continue;
        };
        let driver = fs
            .link_name(&format!("{base}/driver"))
            .unwrap_or_else(|| "no driver".into());
        if id == IAA_PCI {
            a.iaa_pci.push(format!("{addr} ({driver})"));
        } else if let Some((_, generation, func)) = QAT_PCI.iter().find(|(p, _, _)| *p == id) {
            a.qat_pci
                .push(format!("{addr} {generation} {func} ({driver})"));
        }
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn write(root: &std::path::Path, rel: &str, content: &str) {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
    }

    #[test]
    fn iaa_queues_enabled_disabled_and_dsa_filtered() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        write(r, "sys/bus/dsa/devices/iax1/state", "enabled\n");
        for (wq, state, ty) in [
            ("wq1.0", "enabled", "user"),
            ("wq1.1", "disabled", "user"),
            ("wq1.2", "enabled", "kernel"),
        ] {
            write(r, &format!("sys/bus/dsa/devices/{wq}/state"), state);
            write(r, &format!("sys/bus/dsa/devices/{wq}/type"), ty);
            write(r, &format!("sys/bus/dsa/devices/{wq}/mode"), "shared");
        }
        // A DSA device and its queue must not count as IAA.
        write(r, "sys/bus/dsa/devices/dsa0/state", "enabled");
        write(r, "sys/bus/dsa/devices/wq0.0/state", "enabled");
        write(r, "sys/bus/dsa/devices/wq0.0/type", "user");
        let a = detect(&Fs::new(r));
        assert_eq!(a.iaa_devices.len(), 1);
        assert_eq!(a.iaa_work_queues.len(), 3);
        assert_eq!(a.usable_iaa_queues(), 1);
        assert!(
            a.lines()[0].contains("1 enabled user work queue"),
            "{:?}",
            a.lines()
        );
    }

    #[test]
    fn qat_found_by_pci_id_and_absent_tree_reports_none() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        write(r, "sys/bus/pci/devices/0000:6b:00.0/vendor", "0x8086");
        write(r, "sys/bus/pci/devices/0000:6b:00.0/device", "0x4940");
        write(r, "sys/bus/pci/devices/0000:00:01.0/vendor", "0x8086");
        write(r, "sys/bus/pci/devices/0000:00:01.0/device", "0x1234");
        write(r, "sys/bus/pci/devices/0000:00:02.0/vendor", "0x10de");
        let a = detect(&Fs::new(r));
        assert_eq!(
            a.qat_pci,
            vec!["0000:6b:00.0 4xxx PF (no driver)".to_string()]
        );
        let empty = tempfile::tempdir().unwrap();
        let none = detect(&Fs::new(empty.path()));
        assert!(none.qat_pci.is_empty() && none.iaa_devices.is_empty());
        assert!(none.lines()[0].starts_with("IAA: none"));
    }

    #[test]
    fn unreadable_entries_are_reported_not_fatal() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        // Directories where files should be: every read fails.
        fs::create_dir_all(r.join("sys/bus/dsa/devices/iax3/state")).unwrap();
        fs::create_dir_all(r.join("sys/bus/dsa/devices/wq3.0/state")).unwrap();
        fs::create_dir_all(r.join("sys/bus/pci/devices/0000:01:00.0/vendor")).unwrap();
        let a = detect(&Fs::new(r));
        assert_eq!(a.iaa_work_queues[0].state, "unreadable");
        assert_eq!(a.usable_iaa_queues(), 0);
        assert!(
            a.iaa_devices[0].1.contains("iax3/state"),
            "{:?}",
            a.iaa_devices
        );
    }
}
