//! The `vault-mcp` binary: parse the command line, load the configuration, run the command.

use std::process::ExitCode;

use clap::Parser;
use vault_actors::UserId;
use vault_mcp::app::{self, Application};
use vault_mcp::cli::{Cli, Command};
use vault_mcp::config::Config;
use vault_mcp::{stdio, telemetry};

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init();
    // Each live user actor holds its SQLite files open: allow what the system allows.
    if let Err(e) = rlimit::increase_nofile_limit(u64::MAX) {
        tracing::warn!(error = %e, "could not raise the open-file limit");
    }
    let config = match Config::load(
        cli.common.config.as_deref(),
        &|k| std::env::var(k).ok(),
        &cli.common.overrides(),
    ) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("vault-mcp: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("vault-mcp: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => runtime.block_on(async {
            let app = Application::build(config).await?;
            // Listening for signals before the banner says the server is up.
            let stop = app::shutdown_signal();
            app.print_banner();
            app.run_until_stopped(stop).await
        }),
        Command::Token(args) => app::print_token(&config, &args),
        Command::Import(args) => vault_mcp::app::run_import(&config, &args),
        Command::Stdio(args) => match UserId::parse(&args.user) {
            Ok(user) => runtime.block_on(stdio::run(config, user)),
            Err(e) => Err(app::StartError::Token(format!("--user: {e}"))),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vault-mcp: {e}");
            ExitCode::FAILURE
        }
    }
}
