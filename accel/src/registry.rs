//! Picks, per codec, hardware when it is present and usable, else software,
//! and records the reason; an explicit override in configuration wins (and an
//! override naming hardware that is not there is an error, not a silent
//! fallback).

use std::collections::HashMap;
use std::path::Path;

use crate::codec::{Codec, CodecId};
use crate::detect::{Detection, SystemLibraries};
use crate::software::{Deflate, Lz4, Zstd};

/// Where a codec runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Software,
    Iaa,
    Qat,
}

/// The decision for one codec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub codec: CodecId,
    pub backend: Backend,
    pub implementation: &'static str,
    pub reason: String,
}

/// Configured backends per codec name ("deflate" -> "software" | "iaa" | "qat" | "auto").
pub type Overrides = HashMap<String, String>;

/// The codecs the registry decides for, in the order it reports them.
pub const CODECS: [CodecId; 3] = [CodecId::Lz4, CodecId::Zstd, CodecId::Deflate];

/// The choices for every codec.
#[derive(Debug, Clone)]
pub struct Registry {
    choices: Vec<Choice>,
    zstd_level: i32,
    deflate_level: u8,
}

impl Registry {
    /// Decides per codec from a detection. An override naming an unknown
    /// codec or backend, or hardware that cannot run the codec here, is an
    /// error with the reason.
    pub fn new(d: &Detection, overrides: &Overrides) -> Result<Self, String> {
        if let Some(k) = overrides
            .keys()
            .find(|k| !CODECS.iter().any(|c| c.name() == k.as_str()))
        {
            return Err(format!(
                "unknown codec `{k}` in the accel overrides (lz4, zstd, deflate)"
            ));
        }
        let mut choices = Vec::new();
        for codec in CODECS {
            let wanted = overrides
                .get(codec.name())
                .map(String::as_str)
                .unwrap_or("auto");
            choices.push(choose(codec, wanted, d)?);
        }
        Ok(Self {
            choices,
            zstd_level: 3,
            deflate_level: 6,
        })
    }

    /// Detects this node under `root` (`/` in production) with the real
    /// dynamic loader, then decides as [`Registry::new`].
    pub fn detect(root: &Path, overrides: &Overrides) -> Result<Self, String> {
        let mut r = Self::new(&Detection::detect(root, &SystemLibraries), overrides)?;
        // Detection saw work queues and the library; only a job proves the
        // hardware path (permissions, libaccel-config, CPU support).
        let forced = overrides.get("deflate").is_some_and(|v| v == "iaa");
        if let Some(c) = r.choices.iter_mut().find(|c| c.backend == Backend::Iaa) {
            if let Err(e) = crate::qpl::QplDeflate::open(neo_ffi_qpl::ExecPath::Hardware, 1) {
                if forced {
                    return Err(format!("deflate = \"iaa\" was configured, but {e}"));
                }
                *c = Choice {
                    codec: c.codec,
                    backend: Backend::Software,
                    implementation: software(c.codec),
                    reason: format!("{}, but {e}", c.reason),
                };
            }
        }
        Ok(r)
    }

    /// Levels for the codecs [`Registry::codec`] builds (zstd 1..=22, default
    /// 3; deflate 0..=9, default 6).
    pub fn with_levels(mut self, zstd_level: i32, deflate_level: u8) -> Self {
        self.zstd_level = zstd_level;
        self.deflate_level = deflate_level;
        self
    }

    pub fn choices(&self) -> &[Choice] {
        &self.choices
    }

    /// The choice for one codec (`None` for [`CodecId::None`]).
    pub fn choice(&self, id: CodecId) -> Option<&Choice> {
        self.choices.iter().find(|c| c.codec == id)
    }

    fn is_iaa(&self, id: CodecId) -> bool {
        self.choice(id).is_some_and(|c| c.backend == Backend::Iaa)
    }

    /// A codec instance as chosen (software today in every case; see `choose`).
    /// `None` for [`CodecId::None`] (the payload is stored as is) or a zstd
    /// level libzstd refuses.
    pub fn codec(&self, id: CodecId) -> Option<Box<dyn Codec>> {
        Some(match id {
            CodecId::None => return None,
            CodecId::Lz4 => Box::new(Lz4),
            CodecId::Zstd => Box::new(Zstd::new(self.zstd_level).ok()?),
            CodecId::Deflate if self.is_iaa(CodecId::Deflate) => Box::new(
                crate::qpl::QplDeflate::open(neo_ffi_qpl::ExecPath::Hardware, self.deflate_level)
                    .ok()?,
            ),
            CodecId::Deflate => Box::new(Deflate::new(self.deflate_level)),
        })
    }
}

fn software(codec: CodecId) -> &'static str {
    match codec {
        CodecId::Lz4 => "lz4_flex",
        CodecId::Zstd => "libzstd",
        _ if cfg!(feature = "isal") => "ISA-L igzip",
        _ => "miniz_oxide; built without the isal feature",
    }
}

/// Why IAA does not run deflate here.
fn iaa_why(d: &Detection) -> String {
    if d.usable_iaa_queues() == 0 {
        if let (true, Some(e)) = (d.iaa_devices.is_empty(), &d.dsa_error) {
            format!("cannot list IAA devices ({e})")
        } else if d.iaa_devices.is_empty() {
            "no IAA work queue under /sys/bus/dsa/devices".to_string()
        } else {
            "IAA present but no enabled user work queue".to_string()
        }
    } else if let Err(e) = &d.qpl {
        format!("IAA work queues present but libqpl does not load ({e})")
    } else {
        // Both present: `choose` picks IAA; `Registry::detect` then checks
        // that a hardware job initialises.
        format!(
            "{} enabled IAA work queue(s) and {} loads",
            d.usable_iaa_queues(),
            d.qpl.as_deref().unwrap_or("libqpl")
        )
    }
}

/// Whether IAA can run deflate here as far as detection can tell.
fn iaa_usable(d: &Detection) -> bool {
    d.usable_iaa_queues() > 0 && d.qpl.is_ok()
}

/// Why QAT does not run any codec here.
fn qat_why(d: &Detection) -> String {
    if d.qat_pci.is_empty() {
        match &d.pci_error {
            Some(e) => format!("cannot list PCI devices ({e})"),
            None => "no QAT device".to_string(),
        }
    } else if let Err(e) = &d.qatzip {
        format!("QAT present but libqatzip does not load ({e})")
    } else {
        "QAT and QATzip present, but this build has no QATzip path yet".to_string()
    }
}

fn choose(codec: CodecId, wanted: &str, d: &Detection) -> Result<Choice, String> {
    let sw = |reason: String| Choice {
        codec,
        backend: Backend::Software,
        implementation: software(codec),
        reason,
    };
    match (codec, wanted) {
        (_, "software") => Ok(sw("software forced by configuration".into())),
        (CodecId::Deflate, "iaa" | "auto") if iaa_usable(d) => Ok(Choice {
            codec,
            backend: Backend::Iaa,
            implementation: "QPL hardware path",
            reason: iaa_why(d),
        }),
        (CodecId::Deflate, "iaa") => Err(format!(
            "deflate = \"iaa\" was configured, but IAA is unusable: {}",
            iaa_why(d)
        )),
        (_, "iaa") => Err(format!(
            "{} cannot run on IAA (IAA speaks deflate only)",
            codec.name()
        )),
        (_, "qat") => Err(format!(
            "{} = \"qat\" was configured, but QAT is unusable: {}",
            codec.name(),
            qat_why(d)
        )),
        (CodecId::Deflate, "auto") => Ok(sw(format!("{}; {}", iaa_why(d), qat_why(d)))),
        (_, "auto") => Ok(sw(format!("IAA speaks deflate only; {}", qat_why(d)))),
        (_, other) => Err(format!(
            "unknown backend `{other}` for {} (auto, software, iaa, qat)",
            codec.name()
        )),
    }
}
