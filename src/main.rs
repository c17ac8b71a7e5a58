//! The `curator` binary: parse arguments, set up logging, dispatch, map the result to an exit
//! code. Everything else lives in the library.

use std::io::ErrorKind;
use std::process::ExitCode;

use clap::Parser;
use curator::cli::{Cli, Command, Exit};
use curator::config::{Config, LogFormat, Overrides};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    quiet_on_closed_stdout();
    let cli = Cli::parse();
    // The file's log settings count from the first line on; a broken file gives none here and
    // is reported by the command itself.
    let file = Config::load(cli.config.as_deref(), &Overrides::from_env()).ok();
    let file_level = file.as_ref().and_then(|c| c.log_level.clone());
    let format = cli.log_format.or(file.and_then(|c| c.log_format)).unwrap_or(LogFormat::Human);
    // The server logs its lifecycle; one-shot commands speak through their output.
    // notify reports watches it lost to a deleted directory at info and warn; the watcher handles
    // those itself.
    let default_level = if matches!(cli.command, Command::Serve) {
        "info,notify=error"
    } else {
        "warn,notify=error"
    };
    // A filter that does not parse is passed over for the next; saying so beats a silent
    // default when someone is trying to get more detail out of a problem.
    for var in ["CURATOR_LOG", "RUST_LOG"] {
        if let Some(value) = std::env::var(var).ok().filter(|v| !v.is_empty())
            && let Err(e) = EnvFilter::try_new(&value)
        {
            eprintln!("warning: {var}=`{value}` is not a log filter ({e}); it is ignored");
        }
    }
    let filter = EnvFilter::try_from_env("CURATOR_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .or_else(|_| EnvFilter::try_new(file_level.as_deref().unwrap_or(default_level)))
        .unwrap_or_else(|_| EnvFilter::new(default_level));
    // Colour only for a person at a terminal, never in a file or a log collector.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour);
    match format {
        LogFormat::Human => builder.init(),
        // Span fields are flattened into each line's `span` and `spans`, so a line logged
        // inside a run carries its job's ID and file.
        LogFormat::Json => builder.json().with_current_span(true).with_span_list(true).init(),
    }

    match curator::cli::dispatch(cli).await {
        Ok(exit) => ExitCode::from(exit as u8),
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => match e.downcast_ref::<curator::config::ConfigError>() {
            // A config that cannot be read is the caller's to fix, like a bad argument.
            Some(config) => {
                eprint!("{}", config.lines());
                eprintln!("error: {}", config.summary());
                ExitCode::from(Exit::Usage as u8)
            }
            None => {
                eprintln!("error: {}", curator::cli::described(&e));
                ExitCode::from(Exit::Invalid as u8)
            }
        },
    }
}

/// A reader that stops early (`curator man | head -1`) closes our stdout: that is the end the
/// reader asked for, not a failure, so it exits 0 without a word.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == ErrorKind::BrokenPipe)
    })
}

/// `print!` panics when stdout is a closed pipe; the same early end as [`is_broken_pipe`], so
/// that panic exits 0 quietly and every other panic keeps its report.
fn quiet_on_closed_stdout() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(0);
        }
        report(info);
    }));
}
