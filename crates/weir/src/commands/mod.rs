//! One module per command; each returns the process exit code.

mod alarms;
mod aws;
mod check;
mod credentials;
mod demo;
mod dlq;
mod gc;
mod infer;
mod init;
mod jobs;
mod postgres;
mod process;
mod put;
mod report;
mod reprocess;
mod run;
mod schedules;
mod serve;

use anyhow::Result;

use crate::cli::{Cli, Command, SetupCommand};

pub async fn dispatch(cli: Cli) -> Result<u8> {
    match cli.command {
        Command::Run(args) => run::run(&cli.global, args).await,
        Command::Credentials(args) => credentials::run(&cli.global, args).await,
        Command::Put(args) => put::run(&cli.global, args).await,
        Command::Process(args) => process::run(&cli.global, args),
        Command::Jobs(args) => jobs::run(&cli.global, args).await,
        Command::Init(args) => init::run(args),
        Command::Infer(args) => infer::run(args),
        Command::Check => check::run(&cli.global).await,
        Command::Demo(args) => demo::run(&cli.global, args).await,
        Command::Dlq(cmd) => dlq::run(&cli.global, cmd).await,
        Command::Reprocess(args) => reprocess::run(&cli.global, args).await,
        Command::Alarms(args) => alarms::run(&cli.global, args).await,
        Command::Report(cmd) => report::run(&cli.global, cmd).await,
        Command::Setup(SetupCommand::Aws(args)) => aws::setup_aws(&cli.global, args).await,
        Command::Setup(SetupCommand::Postgres) => postgres::setup(&cli.global).await,
        Command::Worker(args) => aws::worker(&cli.global, args).await,
        Command::Schedules(args) => schedules::run(&cli.global, args).await,
        Command::Gc(args) => gc::run(&cli.global, args).await,
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler installs");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
