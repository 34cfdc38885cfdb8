//! The battle-status server binary: serves until Ctrl-C or SIGTERM, or
//! mints a join token (`battle-status token`).

use std::{
    process::ExitCode,
    time::{SystemTime, UNIX_EPOCH},
};

use battle_status::server::{
    config::{Config, TokenArgs},
    token::{self, Claims},
    Server,
};
use clap::{Parser, Subcommand};
use leptos::config::get_configuration;
use tracing_subscriber::EnvFilter;

/// Live opponent status for coding battles: serves the lobby, the battle
/// page and the room relay at /ws/battle/<room>/.
#[derive(Debug, Parser)]
#[command(
    name = "battle-status",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: Config,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print a signed join token for one player (or spectator) of one
    /// battle, for a host application or a tester.
    Token(TokenArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Token(args)) = cli.command {
        println!("{}", mint(args));
        return ExitCode::SUCCESS;
    }
    let logs = tracing_subscriber::fmt().with_env_filter(
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    );
    if cli.serve.log_format == "json" {
        logs.json().init();
    } else {
        logs.init();
    }
    match serve(cli.serve).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("battle-status: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn mint(args: TokenArgs) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let claims = Claims {
        room: args.room,
        player: args.player,
        role: args.role,
        name: args.name,
        exp: now.saturating_add(args.ttl_secs),
    };
    token::mint(&args.token_secret, &claims)
}

async fn serve(config: Config) -> anyhow::Result<()> {
    // cargo-leptos passes the site's layout in LEPTOS_* variables (and
    // compiles in the output name); the defaults fit `cargo leptos build`.
    let mut leptos = get_configuration(None)?.leptos_options;
    if leptos.output_name.is_empty() {
        leptos.output_name = env!("CARGO_PKG_NAME").into();
    }
    // cargo leptos build writes the content hashes of the site's files next
    // to the binary: the pages then name the hashed files.
    let hashes = std::env::current_exe()?.with_file_name(leptos.hash_file.as_ref());
    leptos.hash_files |= hashes.exists();
    let server = Server::bind(config, leptos).await?;
    server.run(shutdown_signal()).await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
