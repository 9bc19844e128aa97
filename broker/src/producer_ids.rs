//! Producer ids, unique across restarts: ids are handed out from blocks
//! whose end is written to `<data>/producer_ids` (temporary file, fsync,
//! rename) before any id of the block is used. A restart skips the rest of
//! the last block.

use std::fs;
use std::path::{Path, PathBuf};

use crate::protocol::BrokerError;

const BLOCK: i64 = 1000;

pub struct ProducerIds {
    path: PathBuf,
    next: i64,
    block_end: i64,
}

impl ProducerIds {
    pub fn open(data_dir: &Path) -> Result<Self, BrokerError> {
        let path = data_dir.join("producer_ids");
        let next = match fs::read_to_string(&path) {
            Ok(s) => s.trim().parse::<i64>().map_err(|e| {
                BrokerError::Storage(format!("{} is not a producer id: {e}", path.display()))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => {
                return Err(BrokerError::Storage(format!(
                    "reading {}: {e}",
                    path.display()
                )))
            }
        };
        Ok(Self {
            path,
            next,
            block_end: next,
        })
    }

    pub fn next(&mut self) -> Result<i64, BrokerError> {
        if self.next == self.block_end {
            let end = self
                .block_end
                .checked_add(BLOCK)
                .ok_or_else(|| BrokerError::Storage("producer ids exhausted".into()))?;
            let tmp = self.path.with_extension("tmp");
            let io = |what: &str, e: std::io::Error| {
                BrokerError::Storage(format!("{what} {}: {e}", tmp.display()))
            };
            fs::write(&tmp, end.to_string()).map_err(|e| io("writing", e))?;
            fs::File::open(&tmp)
                .and_then(|f| f.sync_all())
                .map_err(|e| io("syncing", e))?;
            fs::rename(&tmp, &self.path).map_err(|e| io("renaming", e))?;
            if let Some(dir) = self.path.parent() {
                fs::File::open(dir)
                    .and_then(|d| d.sync_all())
                    .map_err(|e| io("syncing the directory of", e))?;
            }
            self.block_end = end;
        }
        let id = self.next;
        self.next += 1;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_never_repeat_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = ProducerIds::open(dir.path()).unwrap();
        let first: Vec<i64> = (0..3).map(|_| a.next().unwrap()).collect();
        assert_eq!(first, vec![0, 1, 2]);
        drop(a);
        let mut b = ProducerIds::open(dir.path()).unwrap();
        assert_eq!(b.next().unwrap(), BLOCK);
    }
}
