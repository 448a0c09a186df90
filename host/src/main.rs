//! The `gateway` binary.

use clap::Parser;
use gateway::cli::Cli;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match gateway::commands::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gateway: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
