//! `neo topics create|list|describe|delete`.

use anyhow::bail;

use super::BrokerArgs;

#[derive(clap::Subcommand)]
pub enum Topics {
    /// Create a topic from the broker's defaults.
    Create {
        name: String,
        /// Partitions [default: the broker's topic default].
        #[arg(long, short = 'p')]
        partitions: Option<u32>,
        /// Setting as key=value (repeatable): retention.ms, retention.bytes, segment.bytes,
        /// segment.ms, max.message.bytes, compression.type, fsync (never|always|interval:MS).
        #[arg(long = "config", short = 'c')]
        configs: Vec<String>,
    },
    /// List topics.
    List,
    /// Show a topic's settings and partitions.
    Describe { name: String },
    /// Delete a topic and its data.
    Delete { name: String },
}

pub fn run(cmd: Topics, b: &BrokerArgs) -> anyhow::Result<()> {
    let mut a = b.admin()?;
    match cmd {
        Topics::Create {
            name,
            partitions,
            configs,
        } => {
            let mut pairs = Vec::new();
            for c in configs {
                let Some((k, v)) = c.split_once('=') else {
                    bail!("--config `{c}`: expected key=value");
                };
                pairs.push((k.trim().to_string(), v.trim().to_string()));
            }
            let cfg = a.create_topic_with(&name, partitions, pairs)?;
            println!(
                "created topic {name} with {} partition(s), fsync {}",
                cfg.partitions, cfg.fsync
            );
        }
        Topics::List => {
            for t in a.list_topics()? {
                println!("{t}");
            }
        }
        Topics::Describe { name } => {
            let d = a.describe_topic(&name)?;
            println!("topic {}", d.name);
            for (k, v) in d.config.pairs() {
                println!("  {k:<18} {v}");
            }
            println!(
                "  {:<9} {:>14} {:>14} {:>14}",
                "PARTITION", "START", "END", "DURABLE_END"
            );
            for p in d.partitions {
                println!(
                    "  {:<9} {:>14} {:>14} {:>14}",
                    p.partition, p.start_offset, p.end_offset, p.durable_end
                );
            }
        }
        Topics::Delete { name } => {
            a.delete_topic(&name)?;
            println!("deleted topic {name}");
        }
    }
    Ok(())
}
