//! `neo groups list|describe|commit`.

use super::BrokerArgs;

#[derive(clap::Subcommand)]
pub enum Groups {
    /// List groups (with members or committed offsets).
    List,
    /// Show a group's state, members, assignment, committed offsets and lag.
    Describe { group: String },
    /// Set a group's committed offsets (the next offset its members read),
    /// e.g. to rewind it: `neo groups commit g orders:0=120 orders:1=0`.
    /// Refused while the group has members.
    Commit {
        group: String,
        /// TOPIC:PARTITION=OFFSET, one or more.
        #[arg(required = true)]
        offsets: Vec<String>,
    },
}

/// `TOPIC:PARTITION=OFFSET`.
fn parse_offset(s: &str) -> anyhow::Result<neo_broker::protocol::CommittedOffset> {
    let bad = || anyhow::anyhow!("`{s}`: expected TOPIC:PARTITION=OFFSET");
    let (tp, offset) = s.rsplit_once('=').ok_or_else(bad)?;
    let (topic, partition) = tp.rsplit_once(':').ok_or_else(bad)?;
    if topic.is_empty() {
        return Err(bad());
    }
    Ok(neo_broker::protocol::CommittedOffset {
        topic: topic.to_string(),
        partition: partition.parse().map_err(|_| bad())?,
        offset: offset.parse().map_err(|_| bad())?,
        metadata: String::new(),
    })
}

pub fn run(cmd: Groups, b: &BrokerArgs) -> anyhow::Result<()> {
    if let Groups::Commit { offsets, .. } = &cmd {
        // Bad input is refused before anything is sent.
        for o in offsets {
            parse_offset(o)?;
        }
    }
    let mut a = b.admin()?;
    match cmd {
        Groups::Commit { group, offsets } => {
            let offsets = offsets
                .iter()
                .map(|o| parse_offset(o))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let n = offsets.len();
            a.commit_offsets(&group, offsets)?;
            println!("committed {n} offset(s) for group {group}");
        }
        Groups::List => {
            for g in a.list_groups()? {
                println!("{g}");
            }
        }
        Groups::Describe { group } => {
            let d = a.describe_group(&group)?;
            println!(
                "group {} state {} generation {} assignor {:?}",
                d.group, d.state, d.generation, d.assignor
            );
            for m in &d.members {
                let parts: Vec<String> = m
                    .assignment
                    .iter()
                    .map(|tp| format!("{}:{:?}", tp.topic, tp.partitions))
                    .collect();
                println!("  member {} -> {}", m.member_id, parts.join(" "));
            }
            println!(
                "  {:<24} {:>9} {:>14} {:>10}",
                "TOPIC", "PARTITION", "COMMITTED", "LAG"
            );
            for o in d.offsets {
                let c = o.committed.map_or("-".into(), |c| c.to_string());
                let l = o.lag.map_or("-".into(), |l| l.to_string());
                println!("  {:<24} {:>9} {:>14} {:>10}", o.topic, o.partition, c, l);
            }
        }
    }
    Ok(())
}
