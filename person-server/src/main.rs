//! `person-api`: the Person API server binary.
//!
//! `person-api [--config FILE] [serve]` serves the API (the default); `person-api migrate` applies the store's
//! schema migrations and exits. Configuration: see `config.rs` and the README.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use person_server::config::Config;

#[derive(Debug, Parser)]
#[command(name = "person-api", version, about = "The council's Person API")]
struct Cli {
    /// TOML configuration file (environment variables PERSON_API_* override it).
    #[arg(long, global = true, env = "PERSON_API_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API (default).
    Serve,
    /// Apply the store's schema migrations, then exit.
    Migrate,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref(), &|key| std::env::var(key).ok()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("person-api: configuration error: {}", chain(&e));
            return ExitCode::from(2);
        }
    };
    person_server::telemetry::init(&config);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("person-api: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => {
                let listener = tokio::net::TcpListener::bind(config.bind)
                    .await
                    .map_err(|e| anyhow::anyhow!(e).context(format!("cannot listen on {}", config.bind)))?;
                person_server::serve(&config, listener, person_server::shutdown_signal()).await
            }
            Command::Migrate => {
                person_server::store::migrate(&config.store).await?;
                println!("person-api: migrations applied");
                Ok(())
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %chain(e.as_ref()), "person-api failed");
            eprintln!("person-api: {}", chain(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}

/// The error and its sources on one line (`a: b: c`).
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
