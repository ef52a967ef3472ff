//! The `driftwatch` binary: a thin layer of commands over the library crates.

mod cmd;
mod diff;
mod exit;
mod logging;
mod progress;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use crate::exit::Failure;

/// Keeps container images flowing from registries through Git into Kubernetes, and finds and
/// fixes every place where the three disagree.
#[derive(Debug, Parser)]
#[command(name = "driftwatch", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = logging::LogFormat::Text)]
    log_format: logging::LogFormat,
    /// Which log lines to show: a level (error, warn, info, debug, trace) or a filter such as
    /// `info,driftwatch_service=debug`; `RUST_LOG` wins when set. Debug adds span durations.
    #[arg(long, global = true, value_name = "FILTER", default_value = "info")]
    log_level: String,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the updater: scan registries, choose tags, write them back to Git, on an interval.
    Run(cmd::run::RunArgs),
    /// Report drift between the registries and Git for every tracked image (exit 2 on drift).
    Check(cmd::run::CheckArgs),
    /// Render an application's manifests at its branch head (JSON, one object per line).
    Render(cmd::diff::RenderArgs),
    /// Compare an application's rendering with a live snapshot (`kubectl get -o yaml`).
    Diff(cmd::diff::DiffArgs),
    /// Apply an application's manifests to the cluster with server-side apply (and prune).
    Sync(cmd::diff::SyncArgs),
    /// Every application's sync status (Synced/OutOfSync) and health against the cluster.
    Status(cmd::diff::StatusArgs),
    /// Roll an application back to a Git revision, as a new commit (the next sync applies it).
    Rollback(cmd::diff::RollbackArgs),
    /// Show the updates driftwatch made, newest first.
    History(cmd::run::HistoryArgs),
    /// Lift the hold a rollback put on an image: the next cycle writes the policy's choice again.
    Release(cmd::run::ReleaseArgs),
    /// Approve the update an application's image waits for (`approval: required`).
    Approve(cmd::run::DecideArgs),
    /// Reject the update an application's image waits for: that version is not written.
    Reject(cmd::run::DecideArgs),
    /// Choose a tag from a list read on stdin, as the updater would.
    Select(cmd::select::Args),
    /// Write a new tag for an image into a kustomization, Helm values, .argocd-source file,
    /// Flux-marked file or plain manifests, changing nothing else.
    SetImage(cmd::set_image::Args),
    /// Apply image edits to a Git repository as one commit and push it.
    WriteBack(cmd::write_back::Args),
    /// List a repository's tags.
    Tags(cmd::registry::TagsArgs),
    /// Scan an image's registry and show which tag the policy picks, and why each other is not.
    Test(cmd::registry::TestArgs),
    /// Print a shell completion script.
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version are successes; every other usage error is bad input (exit 1), so
            // that exit 2 and 3 keep their documented meanings.
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(exit::BAD_INPUT)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    logging::init(cli.log_format, &cli.log_level);
    let result = match cli.command {
        Command::Run(args) => cmd::run::run(&args, cli.log_format),
        Command::Check(args) => cmd::run::check(&args),
        Command::History(args) => cmd::run::history(&args),
        Command::Release(args) => cmd::run::release(&args),
        Command::Approve(args) => cmd::run::decide(&args, true),
        Command::Reject(args) => cmd::run::decide(&args, false),
        Command::Render(args) => cmd::diff::render_cmd(&args),
        Command::Diff(args) => cmd::diff::diff_cmd(&args),
        Command::Sync(args) => cmd::diff::sync_cmd(&args),
        Command::Status(args) => cmd::diff::status_cmd(&args),
        Command::Rollback(args) => cmd::diff::rollback_cmd(&args),
        Command::Select(args) => cmd::select::run(&args),
        Command::SetImage(args) => cmd::set_image::run(&args),
        Command::WriteBack(args) => cmd::write_back::run(&args),
        Command::Tags(args) => cmd::registry::tags(&args),
        Command::Test(args) => cmd::registry::test(&args),
        Command::Completions { shell } => {
            let mut command = Cli::command();
            clap_complete::generate(shell, &mut command, "driftwatch", &mut std::io::stdout());
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Quiet(code)) => ExitCode::from(code),
        Err(Failure::Error(code, err)) => {
            // Not through the log filter: a failed command always says why.
            eprintln!("error: {err:#}");
            ExitCode::from(code)
        }
    }
}
