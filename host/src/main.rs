//! The `gateway` binary.

use clap::Parser;
use gateway::cli::Cli;

/// mimalloc rather than the system allocator: a request allocates and frees dozens of
/// small buffers across the HTTP, auth and plugin layers, and glibc's malloc cost ~10%
/// of a `getContact` (README, benchmark profile); mimalloc's thread-local free lists
/// roughly halve that.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
