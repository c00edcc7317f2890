//! `stand-in-idp`: the stand-in OpenID provider as a process, for the browser suite, which
//! cannot link the library.
//!
//! Its first stdout line is `listening on http://127.0.0.1:PORT`, the issuer URL to configure
//! vault-mcp with. It runs until SIGTERM, SIGINT or the end of stdin, so a parent that dies
//! without cleaning up still takes it down; run it with stdin as a pipe, not /dev/null.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use stand_in_idp::{Account, Idp, IdpConfig};
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::oneshot;

#[derive(Parser)]
#[command(about = "A stand-in OpenID Connect provider on 127.0.0.1 for vault-mcp's tests")]
struct Args {
    /// Port to listen on; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// The only client_id the provider accepts.
    #[arg(long, default_value_t = IdpConfig::default().client_id)]
    client_id: String,
    /// That client's secret.
    #[arg(long, default_value_t = IdpConfig::default().client_secret)]
    client_secret: String,
    /// An account that can sign in, as SUB:USERNAME; repeat for more. Default: alice and bob.
    #[arg(long = "account", value_name = "SUB:USERNAME", value_parser = parse_account)]
    accounts: Vec<Account>,
}

fn parse_account(text: &str) -> Result<Account, String> {
    match text.split_once(':') {
        Some((sub, username)) if !sub.is_empty() && !username.is_empty() => {
            Ok(Account::new(sub, username))
        }
        _ => Err(format!("expected SUB:USERNAME, got {text:?}")),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let mut config = IdpConfig {
        client_id: args.client_id,
        client_secret: args.client_secret,
        ..IdpConfig::default()
    };
    if !args.accounts.is_empty() {
        config.accounts = args.accounts;
    }
    let idp = match start(args.port, config).await {
        Ok(idp) => idp,
        Err(error) => {
            eprintln!(
                "stand-in-idp: cannot listen on 127.0.0.1:{}: {error}",
                args.port
            );
            return ExitCode::FAILURE;
        }
    };

    println!("listening on {}", idp.url());
    // The parent reads this line to learn the port: it must not sit in a buffer.
    if std::io::stdout().flush().is_err() {
        return ExitCode::FAILURE;
    }

    if let Err(error) = stop_requested().await {
        eprintln!("stand-in-idp: cannot wait for signals: {error}");
        return ExitCode::FAILURE;
    }
    // Idle keep-alive connections close at once; a stuck one must not keep the process alive.
    let _ = tokio::time::timeout(Duration::from_secs(5), idp.stop()).await;
    ExitCode::SUCCESS
}

async fn start(port: u16, config: IdpConfig) -> std::io::Result<Idp> {
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    Idp::with_listener(listener, config).await
}

/// Resolves on SIGTERM, SIGINT or the end of stdin.
async fn stop_requested() -> std::io::Result<()> {
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    // A plain thread: tokio's stdin would block the runtime's shutdown until the read returns.
    let (stdin_closed, stdin_end) = oneshot::channel();
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
        let _ = stdin_closed.send(());
    });
    tokio::select! {
        _ = terminate.recv() => {}
        _ = interrupt.recv() => {}
        _ = stdin_end => {}
    }
    Ok(())
}
