//! Picks, per codec, hardware when it is present and usable, else software,
//! and records the reason; an explicit override in configuration wins (and an
//! override naming hardware that is not there is an error, not a silent
//! fallback).

use std::collections::HashMap;

use crate::codec::{Codec, CodecId};
use crate::detect::Detection;
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

/// The choices for every codec.
#[derive(Debug, Clone)]
pub struct Registry {
    choices: Vec<Choice>,
    zstd_level: i32,
    deflate_level: u8,
}

impl Registry {
    pub fn new(d: &Detection, overrides: &Overrides) -> Result<Self, String> {
        let mut choices = Vec::new();
        for codec in [CodecId::Lz4, CodecId::Zstd, CodecId::Deflate] {
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

    pub fn choices(&self) -> &[Choice] {
        &self.choices
    }

    /// A codec instance as chosen (software today in every case; see `choose`).
    pub fn codec(&self, id: CodecId) -> Option<Box<dyn Codec>> {
        Some(match id {
            CodecId::None => return None,
            CodecId::Lz4 => Box::new(Lz4),
            CodecId::Zstd => Box::new(Zstd::new(self.zstd_level).ok()?),
            CodecId::Deflate => Box::new(Deflate::new(self.deflate_level)),
        })
    }
}

fn software(codec: CodecId) -> &'static str {
    match codec {
        CodecId::Lz4 => "lz4_flex",
        CodecId::Zstd => "libzstd",
        _ if cfg!(feature = "isal") => "ISA-L igzip",
        _ => "miniz_oxide (built without the isal feature)",
    }
}

fn choose(codec: CodecId, wanted: &str, d: &Detection) -> Result<Choice, String> {
    let sw = |reason: String| Choice {
        codec,
        backend: Backend::Software,
        implementation: software(codec),
        reason,
    };
    let iaa_hw = d.usable_iaa_queues() > 0;
    let iaa_why = if !iaa_hw {
        if d.iaa_devices.is_empty() {
            "no IAA work queue under /sys/bus/dsa/devices".to_string()
        } else {
            "IAA present but no enabled user work queue".to_string()
        }
    } else if let Err(e) = &d.qpl {
        format!("IAA work queues present but libqpl does not load ({e})")
    } else {
        // Library present and device present: the job path is what is missing.
        "IAA and libqpl present, but this build has no QPL job path yet".to_string()
    };
    match (codec, wanted) {
        (_, "software") => Ok(sw("software forced by configuration".into())),
        (CodecId::Deflate, "iaa") => Err(format!(
            "deflate = \"iaa\" was configured, but IAA is unusable: {iaa_why}"
        )),
        (_, "iaa") => Err(format!(
            "{} cannot run on IAA (IAA speaks deflate only)",
            codec.name()
        )),
        (_, "qat") => Err(format!(
            "{} = \"qat\" was configured, but {}",
            codec.name(),
            if d.qat_pci.is_empty() {
                "no QAT device is present".into()
            } else {
                "this build has no QATzip path yet".to_string()
            }
        )),
        (_, "auto") => Ok(match codec {
            CodecId::Deflate => sw(iaa_why),
            _ => sw(format!(
                "no offload engine for {} (IAA speaks deflate)",
                codec.name()
            )),
        }),
        (_, other) => Err(format!(
            "unknown backend `{other}` for {} (auto, software, iaa, qat)",
            codec.name()
        )),
    }
}
