//! The `weir` binary: parse the command line, set up logging, hand over to a command.

#[macro_use]
mod output;

mod allocator;
mod backend;
mod cli;
mod commands;
mod config;
mod logging;
mod private;
mod secrets;

use clap::Parser;

fn main() -> std::process::ExitCode {
    allocator::configure();
    private::umask();
    let cli = cli::Cli::parse();
    logging::init(cli.global.verbose);
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime starts");
    match runtime.block_on(commands::dispatch(cli)) {
        Ok(code) => std::process::ExitCode::from(code),
        Err(e) if output::reader_gone(&e) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}
