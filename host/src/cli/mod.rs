//! The `sluice` command line: one file per subcommand; this file parses, sets up logging
//! and maps errors to the documented exit codes.

mod backfill;
mod check_compat;
mod combine;
mod digest;
mod inspect;
mod plan;
mod plugin;
mod replay;
mod run;
mod show;
mod test;
mod verify;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

use crate::error::Error;

/// Run sandboxed WebAssembly transform plugins over Arrow data.
#[derive(Debug, Parser)]
#[command(name = "sluice", version, about, long_about = None)]
pub struct Cli {
    /// Log format on stderr: `human` (default) or `json` (one JSON object per line).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human, env = "SLUICE_LOG_FORMAT")]
    pub log_format: LogFormat,
    /// Log filter, e.g. `info`, `debug`, `sluice_host=debug,plugin=trace`.
    #[arg(long, global = true, default_value = "info", env = "SLUICE_LOG")]
    pub log: String,
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// Log output formats.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    /// Readable lines.
    Human,
    /// JSON lines, for log collectors.
    Json,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run input files through a chain of plugins into an output directory.
    Run(Box<run::RunArgs>),
    /// Show a plugin's name, version, ABI version, sha256 and interface.
    Inspect(inspect::InspectArgs),
    /// Print the first rows of a data file or an output directory as a table.
    Show(show::ShowArgs),
    /// Re-hash a finished run's files against its run record; name every mismatch.
    Verify(verify::VerifyArgs),
    /// Re-execute a recorded run and compare, or reprocess it with a new plugin version.
    Replay(replay::ReplayArgs),
    /// Run a pipeline over many partitions, skipping those already done.
    Backfill(backfill::BackfillArgs),
    /// Compare two plugin versions' output schemas: additive (exit 0) or breaking (exit 3).
    CheckCompat(check_compat::CheckCompatArgs),
    /// Estimate a pipeline run's rows, bytes, CPU time and output size from input metadata
    /// and one sample chunk, without writing output.
    Plan(plan::PlanArgs),
    /// Manage the plugin store (versioned, content-addressed artifacts).
    Plugin(plugin::PluginArgs),
    /// Check a plugin against conformance cases: expected output, determinism, checkpoints.
    Test(test::TestArgs),
    /// Fold a distributed job's task reports (Spark, Ray) into one verifiable run record.
    Combine(combine::CombineArgs),
    /// Print the row count and the order-independent row-set digest of data files.
    Digest(digest::DigestArgs),
}

/// Entry point of the `sluice` binary.
pub fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    init_logging(cli.log_format, &cli.log);
    crate::progress::enable_if_terminal(cli.log_format == LogFormat::Human);
    let result = match &cli.command {
        Command::Run(args) => run::execute(args, matches.subcommand_matches("run").expect("run matches")),
        Command::Inspect(args) => inspect::execute(args),
        Command::Show(args) => show::execute(args),
        Command::Verify(args) => verify::execute(args),
        Command::Replay(args) => replay::execute(args),
        Command::Backfill(args) => backfill::execute(args),
        Command::Plugin(args) => plugin::execute(args),
        Command::Plan(args) => plan::execute(args),
        Command::CheckCompat(args) => check_compat::execute(args),
        Command::Test(args) => test::execute(args),
        Command::Combine(args) => combine::execute(args),
        Command::Digest(args) => digest::execute(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => report(&e, cli.log_format),
    }
}

/// Set by a command that already printed its own JSON summary line for a failure, so the
/// generic one is not printed after it (the summary is always the last stdout line).
static SUMMARY_PRINTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Note that the command printed its final summary line itself.
pub(crate) fn summary_printed() {
    SUMMARY_PRINTED.store(true, std::sync::atomic::Ordering::SeqCst);
}

fn report(e: &Error, format: LogFormat) -> ExitCode {
    let code = e.exit_code() as u8;
    match format {
        LogFormat::Human => eprintln!("error: {e}"),
        LogFormat::Json => tracing::error!(category = e.category(), exit_code = code, "{e}"),
    }
    if !SUMMARY_PRINTED.load(std::sync::atomic::Ordering::SeqCst) {
        let summary = serde_json::json!({
            "status": "failed",
            "error": { "category": e.category(), "message": e.to_string() },
            "exit_code": code,
        });
        println!("{summary}");
    }
    ExitCode::from(code)
}

fn init_logging(format: LogFormat, filter: &str) {
    let filter =
        tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        // Colours only on a terminal: scheduler logs (Airflow, CI) get plain text.
        LogFormat::Human => b
            .with_target(false)
            .without_time()
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
        LogFormat::Json => b.json().flatten_event(true).with_current_span(false).try_init(),
    };
}
