//! The command-line reference in Markdown (`docs/cli.md`), written from the clap definitions
//! that parse the arguments, so the page, `--help`, the man pages and the completions agree.

use std::fmt::Write as _;

use clap::CommandFactory as _;

/// The reference page: every command with its usage, arguments and options.
pub fn markdown() -> String {
    let mut command = super::Cli::command();
    command.build();
    let mut out = String::new();
    out.push_str("# Command-line reference\n\n");
    out.push_str(
        "<!-- Generated from the clap definitions by `curator::cli::reference`; do not edit. \
         `CURATOR_UPDATE_DOCS=1 cargo test --lib reference` rewrites it. -->\n\n",
    );
    out.push_str("Options of `curator` itself apply to every command.\n\n");
    section(&mut out, &command, "curator");
    out.trim_end().to_string() + "\n"
}

fn section(out: &mut String, command: &clap::Command, path: &str) {
    let heading = if path == "curator" { "##" } else { "###" };
    let _ = writeln!(out, "{heading} `{path}`\n");
    if let Some(about) = command.get_long_about().or(command.get_about()) {
        let _ = writeln!(out, "{about}\n");
    }
    let usage = command.clone().bin_name(path).render_usage().to_string();
    let usage = usage.trim_start_matches("Usage: ");
    let _ = writeln!(out, "```text\n{usage}\n```\n");
    let args: Vec<&clap::Arg> = command
        .get_arguments()
        .filter(|a| !a.is_hide_set() && !matches!(a.get_id().as_str(), "help" | "version"))
        .filter(|a| !a.is_global_set() || path == "curator")
        .collect();
    if !args.is_empty() {
        out.push_str("| argument | description |\n|---|---|\n");
        for arg in args {
            let _ = writeln!(out, "| {} | {} |", name(arg), describe(arg));
        }
        out.push('\n');
    }
    for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
        section(out, sub, &format!("{path} {}", sub.get_name()));
    }
}

fn name(arg: &clap::Arg) -> String {
    let value = arg
        .get_value_names()
        .and_then(|v| v.first())
        .map(|v| v.to_string())
        .unwrap_or_else(|| arg.get_id().as_str().to_uppercase());
    match arg.get_long() {
        Some(long) if arg.get_action().takes_values() => format!("`--{long} <{value}>`"),
        Some(long) => format!("`--{long}`"),
        None => format!("`{value}`"),
    }
}

fn describe(arg: &clap::Arg) -> String {
    let mut text = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
    let values: Vec<String> = arg
        .get_possible_values()
        .iter()
        .filter(|v| !v.is_hide_set())
        .map(|v| format!("`{}`", v.get_name()))
        .collect();
    if !values.is_empty() {
        let _ = write!(text, " One of {}.", values.join(", "));
    }
    let defaults: Vec<String> =
        arg.get_default_values().iter().map(|v| v.to_string_lossy().into_owned()).collect();
    if !defaults.is_empty() && arg.get_action().takes_values() {
        let _ = write!(text, " Default: `{}`.", defaults.join(" "));
    }
    if let Some(env) = arg.get_env() {
        let _ = write!(text, " Environment: `{}`.", env.to_string_lossy());
    }
    text.trim().replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    /// `docs/cli.md` is this module's output.
    #[test]
    fn the_cli_reference_matches_the_command_definitions() {
        crate::spec::reference::assert_doc_current("docs/cli.md", &super::markdown());
    }
}
