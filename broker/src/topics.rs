//! Topics on disk: `<data>/topics/<name>/topic.json` (the config, written to a
//! temporary file, synced and renamed into place) and one log directory per
//! partition, `<data>/topics/<name>/<partition>/`. A topic directory without
//! its `topic.json` is a create that crashed half way and is removed on start;
//! a delete renames the directory aside first so it never half-exists.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use neo_storage::{FsyncPolicy, LogConfig};

use crate::partition::Partition;
use crate::protocol::{BrokerError, Fsync, TopicConfig};

/// Names starting with this are the broker's own (the offsets log).
pub const INTERNAL_PREFIX: &str = "__";
/// Most partitions one topic may have.
pub const MAX_PARTITIONS: u32 = 4096;

pub struct Topic {
    pub config: TopicConfig,
    pub partitions: Vec<Partition>,
}

pub struct Topics {
    root: PathBuf,
    topics: BTreeMap<String, Topic>,
}

fn io(context: String) -> impl FnOnce(std::io::Error) -> BrokerError {
    move |e| BrokerError::Storage(format!("{context}: {e}"))
}

/// Checks a topic name: 1–249 of `[A-Za-z0-9._-]`, not `.` or `..`, not
/// starting with `__` (reserved).
pub fn validate_name(name: &str) -> Result<(), BrokerError> {
    let bad = |why: &str| {
        Err(BrokerError::InvalidTopicName {
            name: name.chars().take(64).collect(),
            why: why.into(),
        })
    };
    if name.is_empty() || name.len() > 249 {
        return bad("must be 1 to 249 characters");
    }
    if name == "." || name == ".." {
        return bad("`.` and `..` are not topic names");
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return bad(&format!("character {c:?} is not one of A-Z a-z 0-9 . _ -"));
    }
    if name.starts_with(INTERNAL_PREFIX) {
        return bad("names starting with `__` are reserved for the broker");
    }
    Ok(())
}

/// Checks a topic's settings.
pub fn validate_config(c: &TopicConfig) -> Result<(), BrokerError> {
    let bad = |s: String| Err(BrokerError::InvalidConfig(s));
    if c.partitions == 0 || c.partitions > MAX_PARTITIONS {
        return bad(format!(
            "partitions must be 1..={MAX_PARTITIONS}, not {}",
            c.partitions
        ));
    }
    if !["none", "lz4", "zstd", "deflate"].contains(&c.codec.as_str()) {
        return bad(format!(
            "codec `{}`: expected none, lz4, zstd or deflate",
            c.codec
        ));
    }
    if c.segment_bytes < 4096 {
        return bad(format!("segment_bytes {} is below 4096", c.segment_bytes));
    }
    if c.max_batch_bytes == 0 {
        return bad("max_batch_bytes must be > 0".into());
    }
    if c.fsync == Fsync::IntervalMs(0) {
        return bad("fsync interval must be > 0 ms".into());
    }
    if c.replication_factor == 0 || c.min_insync_replicas == 0 {
        return bad("replication.factor and min.insync.replicas must be >= 1".into());
    }
    if c.min_insync_replicas > c.replication_factor {
        return bad(format!(
            "min.insync.replicas {} exceeds replication.factor {}",
            c.min_insync_replicas, c.replication_factor
        ));
    }
    log_config(c)
        .validate()
        .map_err(|e| BrokerError::InvalidConfig(e.to_string()))
}

/// The storage settings of a topic's partition logs.
pub fn log_config(c: &TopicConfig) -> LogConfig {
    LogConfig {
        segment_bytes: c.segment_bytes,
        segment_age: c.segment_ms.map(Duration::from_millis),
        max_batch: c.max_batch_bytes as usize,
        retention_bytes: c.retention_bytes,
        retention_age: c.retention_ms.map(Duration::from_millis),
        fsync: match c.fsync {
            Fsync::Never => FsyncPolicy::Never,
            Fsync::Always => FsyncPolicy::Always,
            Fsync::IntervalMs(ms) => FsyncPolicy::Interval(Duration::from_millis(ms)),
        },
        ..LogConfig::default()
    }
}

fn sync_dir(dir: &Path) -> Result<(), BrokerError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(format!("syncing {}", dir.display())))
}

impl Topics {
    /// Opens every topic under `<data>/topics`, recovering each partition.
    pub fn open(data_dir: &Path) -> Result<Self, BrokerError> {
        let root = data_dir.join("topics");
        fs::create_dir_all(&root).map_err(io(format!("creating {}", root.display())))?;
        let mut topics = BTreeMap::new();
        let entries = fs::read_dir(&root).map_err(io(format!("listing {}", root.display())))?;
        for e in entries {
            let e = e.map_err(io(format!("listing {}", root.display())))?;
            let name = e.file_name().to_string_lossy().into_owned();
            let dir = e.path();
            if name.contains(".deleted-") {
                tracing::info!(dir = %dir.display(), "finishing an interrupted topic delete");
                fs::remove_dir_all(&dir).map_err(io(format!("removing {}", dir.display())))?;
                continue;
            }
            let cfg_path = dir.join("topic.json");
            let text = match fs::read_to_string(&cfg_path) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    tracing::warn!(dir = %dir.display(), "topic directory without topic.json (an interrupted create): removing it");
                    fs::remove_dir_all(&dir).map_err(io(format!("removing {}", dir.display())))?;
                    continue;
                }
                Err(e) => return Err(io(format!("reading {}", cfg_path.display()))(e)),
            };
            let config: TopicConfig = serde_json::from_str(&text).map_err(|e| {
                BrokerError::Storage(format!("{} is not a topic config: {e}", cfg_path.display()))
            })?;
            validate_config(&config)?;
            let partitions = (0..config.partitions)
                .map(|p| Partition::open(&dir.join(p.to_string()), log_config(&config)))
                .collect::<Result<Vec<_>, _>>()?;
            topics.insert(name, Topic { config, partitions });
        }
        Ok(Self { root, topics })
    }

    pub fn get(&self, name: &str) -> Result<&Topic, BrokerError> {
        self.topics
            .get(name)
            .ok_or_else(|| BrokerError::UnknownTopic(name.chars().take(249).collect()))
    }

    pub fn partition(&self, topic: &str, partition: u32) -> Result<&Partition, BrokerError> {
        let t = self.get(topic)?;
        t.partitions
            .get(partition as usize)
            .ok_or_else(|| BrokerError::UnknownPartition {
                topic: topic.into(),
                partition,
                count: t.partitions.len() as u32,
            })
    }

    pub fn partition_mut(
        &mut self,
        topic: &str,
        partition: u32,
    ) -> Result<&mut Partition, BrokerError> {
        let t = self
            .topics
            .get_mut(topic)
            .ok_or_else(|| BrokerError::UnknownTopic(topic.chars().take(249).collect()))?;
        let count = t.partitions.len() as u32;
        t.partitions
            .get_mut(partition as usize)
            .ok_or_else(|| BrokerError::UnknownPartition {
                topic: topic.into(),
                partition,
                count,
            })
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &Topic)> {
        self.topics.iter()
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&String, &mut Topic)> {
        self.topics.iter_mut()
    }

    /// Creates a topic durably: its config is on disk before this returns.
    pub fn create(&mut self, name: &str, config: TopicConfig) -> Result<(), BrokerError> {
        validate_name(name)?;
        validate_config(&config)?;
        if self.topics.contains_key(name) {
            return Err(BrokerError::TopicExists(name.into()));
        }
        let dir = self.root.join(name);
        if dir.exists() {
            fs::remove_dir_all(&dir).map_err(io(format!("removing stale {}", dir.display())))?;
        }
        fs::create_dir_all(&dir).map_err(io(format!("creating {}", dir.display())))?;
        let partitions = (0..config.partitions)
            .map(|p| Partition::open(&dir.join(p.to_string()), log_config(&config)))
            .collect::<Result<Vec<_>, _>>()?;
        let text = serde_json::to_string_pretty(&config)
            .map_err(|e| BrokerError::Storage(format!("encoding topic config: {e}")))?;
        let tmp = dir.join("topic.json.tmp");
        fs::write(&tmp, text).map_err(io(format!("writing {}", tmp.display())))?;
        fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(io(format!("syncing {}", tmp.display())))?;
        fs::rename(&tmp, dir.join("topic.json"))
            .map_err(io(format!("renaming {}", tmp.display())))?;
        sync_dir(&dir)?;
        sync_dir(&self.root)?;
        self.topics
            .insert(name.into(), Topic { config, partitions });
        Ok(())
    }

    /// Deletes a topic and its data.
    pub fn delete(&mut self, name: &str) -> Result<(), BrokerError> {
        let topic = self
            .topics
            .remove(name)
            .ok_or_else(|| BrokerError::UnknownTopic(name.chars().take(249).collect()))?;
        for p in topic.partitions {
            if let Err(e) = p.close() {
                tracing::warn!(topic = name, error = %e, "closing a partition of a deleted topic");
            }
        }
        let dir = self.root.join(name);
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let aside = self.root.join(format!("{name}.deleted-{stamp}"));
        fs::rename(&dir, &aside).map_err(io(format!("renaming {}", dir.display())))?;
        sync_dir(&self.root)?;
        fs::remove_dir_all(&aside).map_err(io(format!("removing {}", aside.display())))
    }

    /// Seals and syncs every partition.
    pub fn close(self) -> Result<(), BrokerError> {
        let mut first = Ok(());
        for (name, t) in self.topics {
            for p in t.partitions {
                if let Err(e) = p.close() {
                    tracing::error!(topic = %name, error = %e, "closing partition");
                    if first.is_ok() {
                        first = Err(e);
                    }
                }
            }
        }
        first
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for ok in ["a", "orders.v2", "A_b-9", &"x".repeat(249)] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "a b", "__x", "é", &"x".repeat(250)] {
            assert!(
                matches!(
                    validate_name(bad),
                    Err(BrokerError::InvalidTopicName { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn configs_are_checked() {
        let ok = TopicConfig::default();
        assert!(validate_config(&ok).is_ok());
        for bad in [
            TopicConfig {
                partitions: 0,
                ..ok.clone()
            },
            TopicConfig {
                codec: "snappy".into(),
                ..ok.clone()
            },
            TopicConfig {
                segment_bytes: 100,
                ..ok.clone()
            },
            TopicConfig {
                max_batch_bytes: 0,
                ..ok.clone()
            },
            TopicConfig {
                segment_bytes: 8192,
                max_batch_bytes: 1 << 20,
                ..ok.clone()
            },
        ] {
            assert!(
                matches!(validate_config(&bad), Err(BrokerError::InvalidConfig(_))),
                "{bad:?}"
            );
        }
    }
}
