//! The `curator` binary: parse arguments, set up logging, dispatch, map the result to an exit
//! code. Everything else lives in the library.

use std::process::ExitCode;

use clap::Parser;
use curator::cli::{Cli, Command, Exit, LogFormat};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // The server logs its lifecycle; one-shot commands speak through their output.
    // notify reports watches it lost to a deleted directory at info and warn; the watcher handles
    // those itself.
    let default_level = if matches!(cli.command, Command::Serve) {
        "info,notify=error"
    } else {
        "warn,notify=error"
    };
    let filter =
        EnvFilter::try_from_env("CURATOR_LOG").unwrap_or_else(|_| EnvFilter::new(default_level));
    // Colour only for a person at a terminal, never in a file or a log collector.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour);
    match cli.log_format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }

    match curator::cli::dispatch(cli).await {
        Ok(exit) => ExitCode::from(exit as u8),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(Exit::Invalid as u8)
        }
    }
}
