//! The accelerator section of `neo doctor`: detection and per-codec choices
//! come from `neo-accel` (one implementation); this only shapes the report.

use serde::Serialize;

use super::sys::Fs;

#[derive(Debug, Serialize)]
pub struct CodecChoice {
    pub codec: &'static str,
    pub backend: String,
    pub implementation: &'static str,
    pub reason: String,
}

#[derive(Debug, Serialize)]
pub struct Accel {
    pub devices: Vec<String>,
    pub codecs: Vec<CodecChoice>,
    pub error: Option<String>,
}

impl Accel {
    pub fn lines(&self) -> Vec<String> {
        let mut out = self.devices.clone();
        for c in &self.codecs {
            out.push(format!(
                "{}: {} ({}) — {}",
                c.codec, c.backend, c.implementation, c.reason
            ));
        }
        if let Some(e) = &self.error {
            out.push(format!("codec configuration error: {e}"));
        }
        out
    }
}

pub fn detect(fs: &Fs) -> Accel {
    let d = neo_accel::Detection::detect(fs.root(), &neo_accel::SystemLibraries);
    let (codecs, error) = match neo_accel::Registry::new(&d, &neo_accel::Overrides::new()) {
        Ok(r) => (
            r.choices()
                .iter()
                .map(|c| CodecChoice {
                    codec: c.codec.name(),
                    backend: format!("{:?}", c.backend).to_lowercase(),
                    implementation: c.implementation,
                    reason: c.reason.clone(),
                })
                .collect(),
            None,
        ),
        Err(e) => (Vec::new(), Some(e)),
    };
    Accel {
        devices: d.lines(),
        codecs,
        error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_codec_has_a_choice_and_a_reason() {
        let t = tempfile::tempdir().unwrap();
        let a = detect(&Fs::new(t.path()));
        assert_eq!(a.codecs.len(), 3);
        assert!(a
            .codecs
            .iter()
            .all(|c| c.backend == "software" && !c.reason.is_empty()));
        assert!(
            a.lines().iter().any(|l| l.starts_with("deflate: software")),
            "{:?}",
            a.lines()
        );
    }
}
