//! `neo`: the command-line entry point of the Neo broker appliance.
//!
//! * `neo serve` — runs the broker (`serve.rs`, settings in `config.rs`,
//!   the HTTP admin endpoint in `admin_http.rs`).
//! * `neo topics|produce|consume|groups` — client commands (`cmd/`).
//! * `neo users|acl` — the broker's credential and ACL files (`cmd/`).
//! * `neo doctor` — reports what this node offers each transport and why.
//! * `neo bench rtt` — request/response round trips over Neo RPC, as an HDR
//!   histogram.

mod admin_http;
mod admin_metrics;
mod bench;
mod bench_e2e;
mod cmd;
mod config;
mod doctor;
mod serve;
mod serve_cluster;
mod serve_security;

use clap::{Parser, Subcommand};

/// Neo: a kernel-bypass message broker.
#[derive(Parser)]
#[command(name = "neo", version = env!("NEO_VERSION"), about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    broker: cmd::BrokerArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run the broker.
    Serve(Box<serve::Args>),
    /// Create, list, describe and delete topics.
    #[command(subcommand)]
    Topics(cmd::topics::Topics),
    /// Produce records: lines from standard input, or generated load.
    Produce(cmd::produce::Args),
    /// Consume records from an offset, or as a member of a group.
    Consume(cmd::consume::Args),
    /// List and describe consumer groups.
    #[command(subcommand)]
    Groups(cmd::groups::Groups),
    /// Cluster state: controller quorum, brokers, partition leaders, ISRs, lag.
    #[command(subcommand)]
    Cluster(cmd::cluster::Cluster),
    /// Manage SASL users (the broker's credential file).
    #[command(subcommand)]
    Users(cmd::users::UsersCmd),
    /// Manage ACLs (the broker's ACL file).
    #[command(subcommand)]
    Acl(cmd::acl::AclCmd),
    /// Report what this node offers each transport, and why.
    Doctor(doctor::Args),
    /// Measure Neo against its baselines.
    #[command(subcommand)]
    Bench(bench::Bench),
}

/// Logs to standard error: `NEO_LOG` filters (default `info`);
/// `NEO_LOG_FORMAT=json` writes one JSON object per event (fields, span
/// and target included) for log shippers, else human-readable lines.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("NEO_LOG").unwrap_or_else(|_| {
        // openraft logs routine election races at WARN; errors still show.
        "info,openraft=error".into()
    });
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match std::env::var("NEO_LOG_FORMAT").as_deref() {
        Ok("json") => b.json().with_ansi(false).init(),
        Ok("text") | Err(_) => b
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        Ok(other) => {
            b.with_ansi(false).init();
            tracing::warn!(
                value = other,
                "NEO_LOG_FORMAT: expected json or text; using text"
            );
        }
    }
}

fn main() {
    init_logging();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(*args),
        Command::Topics(t) => cmd::topics::run(t, &cli.broker),
        Command::Produce(args) => cmd::produce::run(args, &cli.broker),
        Command::Consume(args) => cmd::consume::run(args, &cli.broker),
        Command::Groups(g) => cmd::groups::run(g, &cli.broker),
        Command::Cluster(c) => cmd::cluster::run(c, &cli.broker),
        Command::Users(c) => cmd::users::run(c),
        Command::Acl(c) => cmd::acl::run(c),
        Command::Doctor(args) => doctor::run(args),
        Command::Bench(b) => bench::run(b),
    };
    if let Err(e) = result {
        eprintln!("neo: error: {e:#}");
        std::process::exit(1);
    }
}
