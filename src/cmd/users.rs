//! `neo users`: the broker's SASL credentials — the file
//! `<data dir>/security/credentials.json` (or `--credentials`), holding
//! salted SCRAM-SHA-256 and SCRAM-SHA-512 keys, never passwords. The
//! password is read from standard input (one line) or `NEO_PASSWORD`. A
//! running broker picks changes up within a second.

use std::io::BufRead;
use std::path::PathBuf;

use anyhow::{bail, Context};
use neo_broker::security::credentials::DEFAULT_ITERATIONS;
use neo_broker::security::CredentialStore;

#[derive(clap::Subcommand)]
pub enum UsersCmd {
    /// Add a user, or set a user's password.
    Add {
        name: String,
        /// PBKDF2 iterations (at least 4096).
        #[arg(long, default_value_t = DEFAULT_ITERATIONS)]
        iterations: u32,
        #[command(flatten)]
        file: FileArgs,
    },
    /// Remove a user.
    Remove {
        name: String,
        #[command(flatten)]
        file: FileArgs,
    },
    /// List the users.
    List {
        #[command(flatten)]
        file: FileArgs,
    },
}

#[derive(clap::Args)]
pub struct FileArgs {
    /// The broker's data directory [default: ./neo-data].
    #[arg(long, env = "NEO_DATA_DIR", default_value = "neo-data")]
    data_dir: PathBuf,
    /// The credential file [default: <data dir>/security/credentials.json].
    #[arg(long)]
    credentials: Option<PathBuf>,
}

impl FileArgs {
    fn load(&self) -> anyhow::Result<CredentialStore> {
        let path = self
            .credentials
            .clone()
            .unwrap_or_else(|| self.data_dir.join("security").join("credentials.json"));
        CredentialStore::load(&path).with_context(|| format!("reading {}", path.display()))
    }
}

fn password() -> anyhow::Result<String> {
    if let Ok(p) = std::env::var("NEO_PASSWORD") {
        return Ok(p);
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    let p = line.trim_end_matches(['\n', '\r']).to_string();
    if p.is_empty() {
        bail!("no password: give it on standard input or in NEO_PASSWORD");
    }
    Ok(p)
}

pub fn run(cmd: UsersCmd) -> anyhow::Result<()> {
    match cmd {
        UsersCmd::Add {
            name,
            iterations,
            file,
        } => {
            let mut store = file.load()?;
            let existed = store.contains(&name);
            store
                .upsert(&name, &password()?, iterations)
                .map_err(|e| anyhow::anyhow!("user `{name}`: {e}"))?;
            save(&store)?;
            println!(
                "{} user {name} (SCRAM-SHA-256, SCRAM-SHA-512; {iterations} iterations)",
                if existed { "updated" } else { "added" }
            );
        }
        UsersCmd::Remove { name, file } => {
            let mut store = file.load()?;
            if !store.remove(&name) {
                bail!("no user `{name}`");
            }
            save(&store)?;
            println!("removed user {name}");
        }
        UsersCmd::List { file } => {
            for u in file.load()?.users() {
                println!("{u}");
            }
        }
    }
    Ok(())
}

/// Saves the store, making its directory (0700) first.
fn save(store: &CredentialStore) -> anyhow::Result<()> {
    super::private_dir_for(store.path())?;
    store.save().context("saving the credential file")
}
