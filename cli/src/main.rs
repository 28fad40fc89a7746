//! `purple-rain`: a Purple Rain event bus from the shell (what kcat is to Kafka).
//!
//! Each subcommand starts a bus from the config it is given (a file, JSON text or flags), does
//! its one job and shuts the bus down cleanly, also on Ctrl-C. Failures print one line and exit
//! with the code for their cause (the table in `exit.rs`, shown by `--help`).

mod bench;
mod config;
mod consume;
mod exit;
mod interrupt;
mod output;
mod produce;
mod progress;
mod stats;
mod units;

use clap::{Parser, Subcommand};
use interrupt::Interrupt;
use std::process::ExitCode;

/// Produce, consume, tail, inspect and benchmark a Purple Rain event bus.
#[derive(Parser, Debug)]
#[command(name = "purple-rain", version, after_help = exit::HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Ingest events from stdin or files (JSON lines or length-prefixed raw) and report what was
    /// stored; exits 6 when anything was lost, naming the cause.
    #[command(after_help = exit::HELP)]
    Produce(produce::Args),
    /// Print events from a cursor (with a filter, an order, a limit, or following new ones) and
    /// then the cursor to resume from.
    #[command(after_help = exit::HELP)]
    Consume(consume::Args),
    /// Events per shard (or a consumer cursor's lag) and the adapter's own figures, once or
    /// every --watch interval, as a table, JSON or Prometheus text.
    #[command(after_help = exit::HELP)]
    Stats(stats::Args),
    /// Ingest and poll throughput and latency percentiles, as a Markdown table.
    #[command(after_help = exit::HELP)]
    Bench(bench::Args),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version print to stdout and succeed; usage errors exit 2.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { exit::USAGE } else { exit::OK });
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::IO);
        }
    };
    let result = runtime.block_on(async {
        let interrupt = Interrupt::install();
        match cli.command {
            Command::Produce(args) => produce::run(args, interrupt).await,
            Command::Consume(args) => consume::run(args, interrupt).await,
            Command::Stats(args) => stats::run(args, interrupt).await,
            Command::Bench(args) => bench::run(args, interrupt).await,
        }
    });
    match result {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            eprintln!("error: {failure}");
            ExitCode::from(failure.code)
        }
    }
}
