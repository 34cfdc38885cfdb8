//! The battle-status server binary: reads its configuration, serves until
//! Ctrl-C or SIGTERM.

use std::process::ExitCode;

use battle_status::server::{config::Config, Server};
use clap::Parser;
use leptos::config::get_configuration;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    match serve(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("battle-status: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    // cargo-leptos passes the site's layout in LEPTOS_* variables (and
    // compiles in the output name); the defaults fit `cargo leptos build`.
    let mut leptos = get_configuration(None)?.leptos_options;
    if leptos.output_name.is_empty() {
        leptos.output_name = env!("CARGO_PKG_NAME").into();
    }
    let server = Server::bind(config, leptos).await?;
    server.run(shutdown_signal()).await?;
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
    tracing::info!("shutting down");
}
