//! `neo groups list|describe`.

use super::BrokerArgs;

#[derive(clap::Subcommand)]
pub enum Groups {
    /// List groups (with members or committed offsets).
    List,
    /// Show a group's state, members, assignment, committed offsets and lag.
    Describe { group: String },
}

pub fn run(cmd: Groups, b: &BrokerArgs) -> anyhow::Result<()> {
    let mut a = b.admin()?;
    match cmd {
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
