//! `neo`: the command-line entry point of the Neo broker appliance.
//!
//! * `neo serve` — runs the broker (`serve.rs`, settings in `config.rs`,
//!   the HTTP admin endpoint in `admin_http.rs`).
//! * `neo topics|produce|consume|groups` — client commands (`cmd/`).
//! * `neo doctor` — reports what this node offers each transport and why.
//! * `neo bench rtt` — request/response round trips over Neo RPC, as an HDR
//!   histogram.

mod admin_http;
mod bench;
mod bench_e2e;
mod cmd;
mod config;
mod doctor;
mod serve;

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
    Serve(serve::Args),
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
    /// Report what this node offers each transport, and why.
    Doctor(doctor::Args),
    /// Measure Neo against its baselines.
    #[command(subcommand)]
    Bench(bench::Bench),
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("NEO_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Topics(t) => cmd::topics::run(t, &cli.broker),
        Command::Produce(args) => cmd::produce::run(args, &cli.broker),
        Command::Consume(args) => cmd::consume::run(args, &cli.broker),
        Command::Groups(g) => cmd::groups::run(g, &cli.broker),
        Command::Doctor(args) => doctor::run(args),
        Command::Bench(b) => bench::run(b),
    };
    if let Err(e) = result {
        eprintln!("neo: error: {e:#}");
        std::process::exit(1);
    }
}
