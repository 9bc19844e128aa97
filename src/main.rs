//! `neo`: the command-line entry point of the Neo broker appliance.
//!
//! * `neo serve` — runs the server (today: Neo RPC with the built-in echo
//!   service; the broker issue turns it into the broker).
//! * `neo doctor` — reports what this node offers each transport and why.
//! * `neo bench rtt` — request/response round trips over Neo RPC, as an HDR
//!   histogram.

mod bench;
mod doctor;
mod fast;
mod serve;

use clap::{Parser, Subcommand};

/// Neo: a kernel-bypass message broker.
#[derive(Parser)]
#[command(name = "neo", version = env!("NEO_VERSION"), about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve(serve::Args),
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
        Command::Doctor(args) => doctor::run(args),
        Command::Bench(b) => bench::run(b),
    };
    if let Err(e) = result {
        eprintln!("neo: error: {e:#}");
        std::process::exit(1);
    }
}
