//! What compression hardware and libraries a node has: Intel IAA work queues
//! (idxd, under `sys/bus/dsa/devices`), IAA and QAT PCI functions (by PCI id),
//! QAT device nodes (`/dev/qat_*`, vfio groups), and whether QPL, qatlib and
//! QATzip load. Everything is read under a root directory so tests use crafted
//! trees; unreadable entries become reasons, never panics.

use std::path::{Path, PathBuf};

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
    ("0x18ee", "200xx", "PF"),
    ("0x18ef", "200xx", "VF"),
    ("0x6f54", "D15xx", "PF"),
    ("0x6f55", "D15xx", "VF"),
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

/// Loads optional libraries; tests substitute their own answers.
pub trait LibraryProbe {
    /// The soname that loaded, or why none did.
    fn load(&self, candidates: &[&str]) -> Result<String, String>;
}

/// The real dynamic loader.
pub struct SystemLibraries;

impl LibraryProbe for SystemLibraries {
    fn load(&self, candidates: &[&str]) -> Result<String, String> {
        neo_ffi_dl::load_first(candidates).map(|l| l.name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkQueue {
    pub name: String,
    pub state: String,
    pub mode: String,
    pub kind: String,
    /// `/dev/iax/<name>` exists: the character device QPL opens.
    pub dev_node: bool,
}

/// Everything detection found.
#[derive(Debug, Clone)]
pub struct Detection {
    pub iaa_devices: Vec<(String, String)>,
    pub iaa_work_queues: Vec<WorkQueue>,
    pub iaa_pci: Vec<String>,
    pub qat_pci: Vec<String>,
    pub qat_device_nodes: Vec<String>,
    pub qpl: Result<String, String>,
    pub qatlib: Result<String, String>,
    pub qatzip: Result<String, String>,
    /// Why `sys/bus/dsa/devices` could not be listed (absent is not an error).
    pub dsa_error: Option<String>,
    /// Why `sys/bus/pci/devices` could not be listed (absent is not an error).
    pub pci_error: Option<String>,
}

struct Fs<'a>(&'a Path);

impl Fs<'_> {
    fn path(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }
    fn read(&self, rel: &str) -> Result<String, String> {
        let p = self.path(rel);
        std::fs::read_to_string(&p)
            .map(|s| s.trim().to_string())
            .map_err(|e| format!("{}: {e}", p.display()))
    }
    /// Sorted names in a directory; a missing directory is empty, any other
    /// failure is the error.
    fn try_list(&self, rel: &str) -> Result<Vec<String>, String> {
        let p = self.path(rel);
        let mut v: Vec<String> = match std::fs::read_dir(&p) {
            Ok(d) => d
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(format!("{}: {e}", p.display())),
        };
        v.sort();
        Ok(v)
    }
    fn list(&self, rel: &str) -> Vec<String> {
        self.try_list(rel).unwrap_or_default()
    }
    fn link_name(&self, rel: &str) -> Option<String> {
        std::fs::read_link(self.path(rel))
            .ok()?
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
    }
}

impl Detection {
    /// Detects under `root` (`/` in production).
    pub fn detect(root: &Path, libs: &dyn LibraryProbe) -> Self {
        let fs = Fs(root);
        let mut d = Detection {
            iaa_devices: Vec::new(),
            iaa_work_queues: Vec::new(),
            iaa_pci: Vec::new(),
            qat_pci: Vec::new(),
            qat_device_nodes: Vec::new(),
            qpl: libs.load(&["libqpl.so.1", "libqpl.so"]),
            qatlib: libs.load(&["libqat.so.4", "libqat.so.3", "libqat.so.2", "libqat_s.so"]),
            qatzip: libs.load(&["libqatzip.so.3", "libqatzip.so"]),
            dsa_error: None,
            pci_error: None,
        };
        let dsa = fs.try_list("sys/bus/dsa/devices").unwrap_or_else(|e| {
            d.dsa_error = Some(e);
            Vec::new()
        });
        for dev in dsa {
            let base = format!("sys/bus/dsa/devices/{dev}");
            if dev.starts_with("iax") {
                d.iaa_devices.push((
                    dev.clone(),
                    fs.read(&format!("{base}/state")).unwrap_or_else(|e| e),
                ));
            } else if dev.starts_with("wq") {
                let read = |f: &str| {
                    fs.read(&format!("{base}/{f}"))
                        .unwrap_or_else(|_| "unreadable".into())
                };
                d.iaa_work_queues.push(WorkQueue {
                    state: read("state"),
                    mode: read("mode"),
                    kind: read("type"),
                    dev_node: fs.path(&format!("dev/iax/{dev}")).exists(),
                    name: dev,
                });
            }
        }
        // Work queues are wqD.Q; keep those of IAA devices (DSA shares the bus).
        let ids: Vec<String> = d
            .iaa_devices
            .iter()
            .map(|(n, _)| n.trim_start_matches("iax").to_string())
            .collect();
        d.iaa_work_queues.retain(|w| {
            ids.iter()
                .any(|i| w.name.trim_start_matches("wq").split('.').next() == Some(i))
        });
        let pci = fs.try_list("sys/bus/pci/devices").unwrap_or_else(|e| {
            d.pci_error = Some(e);
            Vec::new()
        });
        for addr in pci {
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
                d.iaa_pci.push(format!("{addr} ({driver})"));
            } else if let Some((_, generation, func)) = QAT_PCI.iter().find(|(p, _, _)| *p == id) {
                d.qat_pci
                    .push(format!("{addr} {generation} {func} ({driver})"));
            }
        }
        d.qat_device_nodes = fs
            .list("dev")
            .into_iter()
            .filter(|n| n.starts_with("qat_"))
            .map(|n| format!("/dev/{n}"))
            .collect();
        if !d.qat_pci.is_empty() {
            d.qat_device_nodes.extend(
                fs.list("dev/vfio")
                    .into_iter()
                    .filter(|n| n != "vfio")
                    .map(|n| format!("/dev/vfio/{n}")),
            );
        }
        d
    }

    /// Enabled user-mode IAA work queues: the ones QPL can submit to.
    pub fn usable_iaa_queues(&self) -> usize {
        self.iaa_work_queues
            .iter()
            .filter(|w| w.state == "enabled" && w.kind == "user")
            .count()
    }

    /// One line per device family and library, for `neo doctor`.
    pub fn lines(&self) -> Vec<String> {
        let mut out = vec![match (self.iaa_devices.len(), self.usable_iaa_queues()) {
            (0, _) if self.dsa_error.is_some() => format!(
                "IAA: unknown, /sys/bus/dsa/devices is unreadable ({})",
                self.dsa_error.as_deref().unwrap_or_default()
            ),
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
            (n, q) => {
                let nodes = self
                    .iaa_work_queues
                    .iter()
                    .filter(|w| w.state == "enabled" && w.kind == "user" && w.dev_node)
                    .count();
                format!(
                    "IAA: {n} device(s), {q} enabled user work queue(s), {nodes} with a /dev/iax node"
                )
            }
        }];
        out.push(match &self.qpl {
            Ok(n) => format!("QPL: {n} loads"),
            Err(_) => "QPL: libqpl.so.1 not installed".into(),
        });
        out.push(
            if let (true, Some(e)) = (self.qat_pci.is_empty(), &self.pci_error) {
                format!("QAT: unknown, the PCI tree is unreadable ({e})")
            } else if self.qat_pci.is_empty() {
                "QAT: none (no QAT PCI function)".into()
            } else {
                format!("QAT: {}", self.qat_pci.join("; "))
            },
        );
        if !self.qat_device_nodes.is_empty() {
            out.push(format!(
                "QAT endpoints: {}",
                self.qat_device_nodes.join(" ")
            ));
        }
        out.push(match &self.qatlib {
            Ok(n) => format!("qatlib: {n} loads"),
            Err(_) => "qatlib: not installed".into(),
        });
        out.push(match &self.qatzip {
            Ok(n) => format!("QATzip: {n} loads"),
            Err(_) => "QATzip: libqatzip.so.3 not installed".into(),
        });
        out
    }
}
