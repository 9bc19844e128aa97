//! File access under a root, hugepages and CPU features.

use std::path::{Path, PathBuf};

use serde::Serialize;

/// Reads files under a root directory (`/` in production, a crafted tree in tests).
pub struct Fs {
    root: PathBuf,
}

impl Fs {
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
        }
    }
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// Whether this reads the live system (so external tools may be asked too).
    pub fn is_real_root(&self) -> bool {
        self.root == Path::new("/")
    }
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel.trim_start_matches('/'))
    }
    pub fn exists(&self, rel: &str) -> bool {
        self.path(rel).exists()
    }
    /// A file's contents, trimmed; `Err` says what could not be read.
    pub fn read(&self, rel: &str) -> Result<String, String> {
        let p = self.path(rel);
        std::fs::read_to_string(&p)
            .map(|s| s.trim().to_string())
            .map_err(|e| format!("{}: {e}", p.display()))
    }
    /// Names in a directory, sorted; empty if it does not exist or is unreadable.
    pub fn list(&self, rel: &str) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.path(rel))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }
    /// Final component of a symlink's target (e.g. a device's driver).
    pub fn link_name(&self, rel: &str) -> Option<String> {
        std::fs::read_link(self.path(rel))
            .ok()?
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
    }
}

#[derive(Debug, Serialize, Default)]
pub struct Hugepages {
    pub page_size_kib: u64,
    pub total: u64,
    pub free: u64,
    /// Mount points of hugetlbfs.
    pub mounts: Vec<String>,
    pub error: Option<String>,
}

impl Hugepages {
    pub fn summary(&self) -> String {
        if let Some(e) = &self.error {
            return format!("hugepages unknown ({e})");
        }
        let mounts = if self.mounts.is_empty() {
            "no hugetlbfs mounted".to_string()
        } else {
            format!("hugetlbfs at {}", self.mounts.join(", "))
        };
        if self.total == 0 {
            format!(
                "no hugepages reserved ({} KiB pages; DPDK runs with --no-huge); {mounts}",
                self.page_size_kib
            )
        } else {
            format!(
                "{} of {} hugepages of {} KiB free; {mounts}",
                self.free, self.total, self.page_size_kib
            )
        }
    }
}

pub fn hugepages(fs: &Fs) -> Hugepages {
    let meminfo = match fs.read("proc/meminfo") {
        Ok(m) => m,
        Err(e) => {
            return Hugepages {
                error: Some(e),
                ..Default::default()
            }
        }
    };
    let field = |name: &str| {
        meminfo
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let mounts = fs
        .read("proc/mounts")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.split_whitespace().nth(2) == Some("hugetlbfs"))
        .filter_map(|l| l.split_whitespace().nth(1).map(String::from))
        .collect();
    Hugepages {
        page_size_kib: field("Hugepagesize:"),
        total: field("HugePages_Total:"),
        free: field("HugePages_Free:"),
        mounts,
        error: None,
    }
}

#[derive(Debug, Serialize, Default)]
pub struct Cpu {
    pub model: String,
    pub logical_cpus: usize,
    /// Features Neo uses, present.
    pub features: Vec<String>,
    /// Features Neo uses, absent.
    pub missing: Vec<String>,
}

/// CPU flags that matter to Neo and what for.
const FLAGS: &[(&str, &str)] = &[
    ("sse4_2", "crc32c in hardware"),
    ("pclmulqdq", "folded crc32c"),
    ("avx2", "lz4/zstd fast paths"),
    ("avx512f", "wide copies"),
    ("movdir64b", "IAA/DSA descriptor submission"),
    ("enqcmd", "shared IAA work queues"),
    ("constant_tsc", "cheap timestamps"),
];

pub fn cpu(fs: &Fs) -> Cpu {
    let info = fs.read("proc/cpuinfo").unwrap_or_default();
    let model = info
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let logical_cpus = info.lines().filter(|l| l.starts_with("processor")).count();
    let flags: Vec<&str> = info
        .lines()
        .find(|l| l.starts_with("flags"))
        .and_then(|l| l.split(':').nth(1))
        .map(|f| f.split_whitespace().collect())
        .unwrap_or_default();
    let (mut features, mut missing) = (Vec::new(), Vec::new());
    for (flag, why) in FLAGS {
        let entry = format!("{flag} ({why})");
        if flags.contains(flag) {
            features.push(entry)
        } else {
            missing.push(entry)
        }
    }
    Cpu {
        model,
        logical_cpus,
        features,
        missing,
    }
}
