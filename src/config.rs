//! `neo serve` settings: built-in defaults, then a TOML file (`--config`),
//! then environment variables (`NEO_*`), then command-line flags — each
//! later source overriding the earlier. Unknown keys in the file are errors.
//!
//! ```toml
//! data_dir = "/var/lib/neo"
//! listen = "0.0.0.0:7400"
//! admin_listen = "127.0.0.1:7401"
//! transport = "tcp"
//! credits = 64
//! max_message = 16777216
//! kafka_listen = "127.0.0.1:9092"   # the Kafka protocol listener (off without it)
//! kafka_advertised = "broker1.example:9092"
//! kafka_auto_create_topics = true
//!
//! [topic_defaults]          # what `neo topics create` starts from
//! partitions = 1
//! fsync = "interval:5"      # never | always | interval:<ms>
//! "retention.ms" = "604800000"
//!
//! [accel]                   # backend per codec; hardware that is not there is an error
//! deflate = "auto"          # auto | software | iaa | qat
//!
//! [tls] / [security] / [quotas]   # see serve_security.rs and docs/security.md
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use neo_broker::protocol::TopicConfig;
use serde::Deserialize;

/// The file's shape. Every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub data_dir: Option<PathBuf>,
    pub listen: Option<SocketAddr>,
    pub admin_listen: Option<SocketAddr>,
    pub transport: Option<String>,
    pub credits: Option<u32>,
    pub max_message: Option<usize>,
    pub kafka_listen: Option<SocketAddr>,
    /// `host:port` Kafka clients are told to connect to.
    pub kafka_advertised: Option<String>,
    pub kafka_auto_create_topics: Option<bool>,
    /// Topic settings by name (`TopicConfig::set`), values as strings or numbers.
    #[serde(default)]
    pub topic_defaults: BTreeMap<String, toml::Value>,
    /// Backend per codec: `deflate = "auto" | "software" | "iaa" | "qat"` (also lz4, zstd).
    #[serde(default)]
    pub accel: BTreeMap<String, String>,
    /// TLS for the TCP listeners (see `serve_security.rs`).
    #[serde(default)]
    pub tls: crate::serve_security::TlsFile,
    /// SASL, Neo authentication, ACLs, audit.
    #[serde(default)]
    pub security: crate::serve_security::SecurityFile,
    /// Byte-rate quotas per principal.
    #[serde(default)]
    pub quotas: crate::serve_security::QuotasFile,
}

impl FileConfig {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("in the config file {}", path.display()))
    }

    /// The topic defaults: the built-in ones changed by the file's table.
    pub fn topic_defaults(&self) -> anyhow::Result<TopicConfig> {
        let mut t = TopicConfig::default();
        for (k, v) in &self.topic_defaults {
            let v = match v {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                other => anyhow::bail!(
                    "topic_defaults.{k}: expected a string or an integer, got {}",
                    other.type_str()
                ),
            };
            t.set(k, &v)
                .map_err(|e| anyhow::anyhow!("topic_defaults: {e}"))?;
        }
        neo_broker::topics::validate_config(&t)
            .map_err(|e| anyhow::anyhow!("topic_defaults: {e}"))?;
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_values_parse_and_unknown_keys_are_refused() {
        let f: FileConfig = toml::from_str(
            "listen = \"127.0.0.1:9000\"\n[topic_defaults]\npartitions = 3\nfsync = \"always\"\n",
        )
        .unwrap();
        assert_eq!(f.listen, Some("127.0.0.1:9000".parse().unwrap()));
        let t = f.topic_defaults().unwrap();
        assert_eq!(t.partitions, 3);
        assert!(toml::from_str::<FileConfig>("lisen = \"x\"").is_err());
        let bad: FileConfig = toml::from_str("[topic_defaults]\nfsync = \"sometimes\"\n").unwrap();
        assert!(bad.topic_defaults().is_err());
    }
}
