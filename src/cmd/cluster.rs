//! `neo cluster status`: the controller quorum (voters, leader, term),
//! brokers (fenced or not, last heartbeat), and per partition its leader,
//! epoch, replicas, ISR and each replica's lag — the lag as each partition's
//! leader reports it, so every broker is asked.

use std::collections::BTreeMap;

use neo_broker::client::ClientError;
use neo_broker::replication::wire::ReplicaLag;
use neo_broker::replication::METHOD_CLUSTER_STATUS;
use serde_json::Value;

use super::BrokerArgs;

#[derive(clap::Subcommand)]
pub enum Cluster {
    /// Show nodes, the controller leader, partition leaders, ISRs and lag.
    Status {
        /// Print the raw JSON instead of tables.
        #[arg(long)]
        json: bool,
    },
}

fn status_from(b: &BrokerArgs, addr: Option<&str>) -> anyhow::Result<Value> {
    let mut args = b.clone();
    if let Some(a) = addr {
        args.broker = a.to_string();
    }
    let mut admin = args.admin()?;
    let text: String = admin
        .connection()
        .call(METHOD_CLUSTER_STATUS, &())
        .map_err(|e: ClientError| anyhow::anyhow!("{e}"))?;
    Ok(serde_json::from_str(&text)?)
}

pub fn run(cmd: Cluster, b: &BrokerArgs) -> anyhow::Result<()> {
    let Cluster::Status { json } = cmd;
    let mut status = status_from(b, None)?;
    // Each leader knows its followers' lag: ask every broker.
    let mut lags: BTreeMap<(String, u64), ReplicaLag> = BTreeMap::new();
    let brokers = status["brokers"].as_array().cloned().unwrap_or_default();
    for br in &brokers {
        let info = &br["info"];
        if info["fenced"].as_bool() == Some(true) {
            continue;
        }
        let Some(addr) = info["addr"].as_str() else {
            continue;
        };
        match status_from(b, Some(addr)) {
            Ok(s) => {
                let list: Vec<ReplicaLag> =
                    serde_json::from_value(s["replica_lag"].clone()).unwrap_or_default();
                for l in list {
                    lags.insert((l.topic.clone(), l.partition as u64), l);
                }
            }
            Err(e) => eprintln!("warning: broker {addr}: {e:#}"),
        }
    }
    status["replica_lag"] = serde_json::to_value(lags.values().collect::<Vec<_>>())?;
    if json {
        println!("{}", serde_json::to_string_pretty(&status)?);
        return Ok(());
    }
    let s = &status;
    println!(
        "controller leader: {}  term {}  applied index {}",
        s["controller_leader"], s["term"], s["commit_index"]
    );
    println!(
        "\n{:<6} {:<24} {:<8} {:>14}",
        "VOTER", "ADDRESS", "LEADER", "MATCHED_INDEX"
    );
    for v in s["voters"].as_array().into_iter().flatten() {
        println!(
            "{:<6} {:<24} {:<8} {:>14}",
            v["id"].to_string(),
            v["addr"].as_str().unwrap_or("?"),
            v["is_leader"].to_string(),
            v["matched_index"].to_string()
        );
    }
    println!(
        "\n{:<6} {:<24} {:<8} {:>16}",
        "BROKER", "ADDRESS", "FENCED", "HEARTBEAT_MS_AGO"
    );
    for br in &brokers {
        let i = &br["info"];
        println!(
            "{:<6} {:<24} {:<8} {:>16}",
            i["id"].to_string(),
            i["addr"].as_str().unwrap_or("?"),
            i["fenced"].to_string(),
            br["last_heartbeat_ms_ago"].to_string()
        );
    }
    println!(
        "\n{:<20} {:>4} {:>7} {:>6} {:<12} {:<12} {:>10}  LAG (replica:records)",
        "TOPIC", "PART", "LEADER", "EPOCH", "REPLICAS", "ISR", "HW"
    );
    let topics = s["meta"]["topics"].as_object().cloned().unwrap_or_default();
    for (name, t) in &topics {
        for (i, p) in t["partitions"].as_array().into_iter().flatten().enumerate() {
            let ids = |v: &Value| {
                v.as_array()
                    .into_iter()
                    .flatten()
                    .map(|x| x.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            };
            let lag = lags.get(&(name.clone(), i as u64));
            let hw = lag.map_or("-".into(), |l| l.high_watermark.to_string());
            let per: Vec<String> = lag
                .map(|l| {
                    l.replicas
                        .iter()
                        .map(|(r, n)| format!("{r}:{}", n.map_or("?".into(), |n| n.to_string())))
                        .collect()
                })
                .unwrap_or_default();
            println!(
                "{:<20} {:>4} {:>7} {:>6} {:<12} {:<12} {:>10}  {}",
                name,
                i,
                p["leader"].to_string(),
                p["leader_epoch"].to_string(),
                ids(&p["replicas"]),
                ids(&p["isr"]),
                hw,
                per.join(" ")
            );
        }
    }
    Ok(())
}
