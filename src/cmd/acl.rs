//! `neo acl`: adds, removes and lists the broker's ACLs — the file
//! `<data dir>/security/acls.json` (or `--acl-file`), written atomically.
//! A running broker picks changes up within a second; nothing restarts.
//! Flags as `kafka-acls`: `--allow`/`--deny`, `--principal`, `--operation`
//! (repeatable), and one resource: `--topic`, `--group` or `--cluster`.

use std::path::PathBuf;

use anyhow::{bail, Context};
use neo_broker::security::{
    Acl, AclFilter, AclPrincipal, AclStore, Operation, PatternType, Permission, ResourceType,
};

#[derive(clap::Subcommand)]
pub enum AclCmd {
    /// Add ACLs (one per --operation).
    Add(Spec),
    /// Remove ACLs that match exactly (one per --operation).
    Remove(Spec),
    /// List ACLs, optionally only a principal's or a resource's.
    List {
        #[command(flatten)]
        file: FileArgs,
        #[arg(long)]
        principal: Option<String>,
        #[arg(long)]
        topic: Option<String>,
        #[arg(long)]
        group: Option<String>,
    },
}

#[derive(clap::Args)]
pub struct FileArgs {
    /// The broker's data directory [default: ./neo-data].
    #[arg(long, env = "NEO_DATA_DIR", default_value = "neo-data")]
    data_dir: PathBuf,
    /// The ACL file [default: <data dir>/security/acls.json].
    #[arg(long)]
    acl_file: Option<PathBuf>,
}

impl FileArgs {
    fn path(&self) -> PathBuf {
        self.acl_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("security").join("acls.json"))
    }
}

#[derive(clap::Args)]
pub struct Spec {
    #[command(flatten)]
    file: FileArgs,
    /// An Allow ACL (the default).
    #[arg(long, conflicts_with = "deny")]
    allow: bool,
    /// A Deny ACL (wins over any Allow).
    #[arg(long)]
    deny: bool,
    /// `User:<name>`, or `User:*` for everyone.
    #[arg(long)]
    principal: String,
    /// Read, Write, Create, Delete, Alter, Describe, DescribeConfigs, AlterConfigs, All.
    #[arg(long = "operation", required = true)]
    operations: Vec<String>,
    /// A topic (`*`: every topic).
    #[arg(long, group = "resource")]
    topic: Option<String>,
    /// A consumer group (`*`: every group).
    #[arg(long, group = "resource")]
    group: Option<String>,
    /// The cluster (topic creation, cluster description).
    #[arg(long, group = "resource")]
    cluster: bool,
    /// The name is a prefix (e.g. --topic orders- --prefixed).
    #[arg(long)]
    prefixed: bool,
}

impl Spec {
    fn acls(&self) -> anyhow::Result<Vec<Acl>> {
        let principal: AclPrincipal = self
            .principal
            .parse()
            .map_err(|e| anyhow::anyhow!("--principal `{}`: {e}", self.principal))?;
        let (resource, name) = match (&self.topic, &self.group, self.cluster) {
            (Some(t), None, false) => (ResourceType::Topic, t.clone()),
            (None, Some(g), false) => (ResourceType::Group, g.clone()),
            (None, None, true) => (ResourceType::Cluster, neo_broker::kafka::CLUSTER.into()),
            _ => bail!("name one resource: --topic, --group or --cluster"),
        };
        let mut out = Vec::new();
        for op in &self.operations {
            let operation: Operation = op
                .parse()
                .map_err(|e| anyhow::anyhow!("--operation `{op}`: {e}"))?;
            let acl = Acl {
                principal: principal.clone(),
                resource,
                pattern: match self.prefixed {
                    true => PatternType::Prefixed,
                    false => PatternType::Literal,
                },
                name: name.clone(),
                operation,
                permission: match self.deny {
                    true => Permission::Deny,
                    false => Permission::Allow,
                },
            };
            acl.validate().map_err(|e| anyhow::anyhow!("{acl}: {e}"))?;
            out.push(acl);
        }
        Ok(out)
    }
}

fn load(f: &FileArgs) -> anyhow::Result<AclStore> {
    let path = f.path();
    AclStore::load(&path).with_context(|| format!("reading {}", path.display()))
}

pub fn run(cmd: AclCmd) -> anyhow::Result<()> {
    match cmd {
        AclCmd::Add(spec) => {
            let mut store = load(&spec.file)?;
            for acl in spec.acls()? {
                match store.add(acl.clone()).map_err(anyhow::Error::msg)? {
                    true => println!("added: {acl}"),
                    false => println!("already there: {acl}"),
                }
            }
            save(&store)?;
        }
        AclCmd::Remove(spec) => {
            let mut store = load(&spec.file)?;
            let mut missing = 0;
            for acl in spec.acls()? {
                match store.remove(&acl) {
                    true => println!("removed: {acl}"),
                    false => {
                        missing += 1;
                        eprintln!("no such ACL: {acl}");
                    }
                }
            }
            save(&store)?;
            if missing > 0 {
                bail!("{missing} ACL(s) were not there");
            }
        }
        AclCmd::List {
            file,
            principal,
            topic,
            group,
        } => {
            let store = load(&file)?;
            let mut filter = AclFilter::default();
            if let Some(p) = principal {
                filter.principal = Some(
                    p.parse()
                        .map_err(|e| anyhow::anyhow!("--principal `{p}`: {e}"))?,
                );
            }
            if let Some(t) = topic {
                filter.resource = Some(ResourceType::Topic);
                filter.name = Some(t);
            } else if let Some(g) = group {
                filter.resource = Some(ResourceType::Group);
                filter.name = Some(g);
            }
            for acl in store.list(&filter) {
                println!("{acl}");
            }
        }
    }
    Ok(())
}

/// Saves the store, making its directory (0700) first.
fn save(store: &AclStore) -> anyhow::Result<()> {
    super::private_dir_for(store.path())?;
    store.save().context("saving the ACL file")
}
