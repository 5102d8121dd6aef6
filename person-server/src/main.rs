//! `person-api`: the Person API server binary.
//!
//! `person-api [--config FILE] [serve]` serves the API (the default); `person-api migrate` applies the store's
//! schema migrations and exits; `person-api export [--output FILE]` writes every person as NDJSON;
//! `person-api import FILE` loads persons from NDJSON or a Hackney DynamoDB export; `person-api backup --output FILE`
//! copies an SQLite store while it serves. Configuration: see `config.rs` and the README.

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
    /// Write every person (any state) as NDJSON, one Person JSON per line, in id order, then exit.
    Export {
        /// Output file (written as `<file>.partial`, renamed when complete); standard output when absent.
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Write a consistent copy of the SQLite store to a new file while servers keep using it, then exit
    /// (PostgreSQL and DynamoDB: see docs/reliability.md).
    Backup {
        /// The new file (it must not exist; written as `<file>.partial`, renamed when complete).
        #[arg(long)]
        output: PathBuf,
    },
    /// Load persons from a file (NDJSON of the Person JSON, or a Hackney DynamoDB JSON export), keeping their ids
    /// and personRefs; invalid, refused and probable duplicate records go to a report file. Resumable.
    Import {
        /// The input file (gzip-compressed or not).
        file: PathBuf,
        /// The input format.
        #[arg(long, value_enum, default_value = "ndjson")]
        format: person_server::import::InputFormat,
        /// The report file (one JSON line per record not simply imported); default `<FILE>.report.ndjson`.
        #[arg(long)]
        report: Option<PathBuf>,
        /// Records per store write, 1 to 100,000 (10,000 on DynamoDB); default 50,000 on SQLite and PostgreSQL,
        /// 1,000 on DynamoDB.
        #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=100_000))]
        batch: Option<usize>,
        /// No progress bar (a line every 100,000 records instead).
        #[arg(long)]
        no_progress: bool,
        /// Ignore the checkpoint of an interrupted run and start from the first line.
        #[arg(long)]
        restart: bool,
    },
    /// Print a token signed with the configured HS256 secret (for local use and tests).
    Token {
        /// The subject (`sub` claim): who the token speaks for.
        #[arg(long)]
        sub: String,
        /// Groups, comma-separated (mapped to permissions by the `[groups]` configuration).
        #[arg(long, value_delimiter = ',')]
        groups: Vec<String>,
        /// Lifetime: a number with s, m, h or d (e.g. 90s, 15m, 1h, 7d).
        #[arg(long, default_value = "1h")]
        ttl: String,
        /// Display name (`name` claim).
        #[arg(long)]
        name: Option<String>,
        /// E-mail address (`email` claim).
        #[arg(long)]
        email: Option<String>,
    },
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
    if let Some(Command::Token { sub, groups, ttl, name, email }) = &cli.command {
        return mint_token(&config, sub, groups, ttl, name.clone(), email.clone());
    }
    if matches!(cli.command, Some(Command::Backup { .. })) && !person_server::store::is_sqlite(&config.store) {
        eprintln!("person-api: {}", person_server::store::BackupError::NotSqlite);
        return ExitCode::from(2);
    }
    if let Some(Command::Import { batch, .. }) = &cli.command
        && let Err(e) = person_server::store::import_batch(&config.store, *batch)
    {
        eprintln!("person-api: {e}");
        return ExitCode::from(2);
    }
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
                person_server::store::migrate(&config.store, &config.store_options).await?;
                println!("person-api: migrations applied");
                Ok(())
            }
            Command::Export { output } => {
                let store = person_server::store::open_repository(
                    &config.store,
                    &config.store_options,
                    person_core::storage::QueryRecorder::none(),
                )
                .await?;
                let exported = person_server::export::export(store.as_ref(), output.as_deref(), 100_000).await;
                store.close().await;
                eprintln!("person-api export: {} persons written", exported?);
                Ok(())
            }
            Command::Backup { output } => {
                let bytes = person_server::store::backup(&config.store, &output).await?;
                eprintln!("person-api backup: {} bytes written to {}", bytes, output.display());
                Ok(())
            }
            Command::Import { file, format, report, batch, no_progress, restart } => {
                // A batch changes thousands of index pages: a larger SQLite writer cache keeps them until its commit.
                let store_options = person_server::store::StoreOptions {
                    sqlite_writer_cache_mib: Some(person_sqlite::IMPORT_WRITER_CACHE_MIB),
                    ..config.store_options.clone()
                };
                let store = person_server::store::open_repository(
                    &config.store,
                    &store_options,
                    person_core::storage::QueryRecorder::none(),
                )
                .await?;
                let service = person_core::PersonService::new(
                    person_core::Repositories::from_dyn(store.clone()),
                    std::sync::Arc::new(person_core::ports::SystemClock),
                    std::sync::Arc::new(person_core::ports::RandomIds),
                );
                let options = person_server::import::ImportOptions {
                    input: file,
                    format,
                    report,
                    batch: person_server::store::import_batch(&config.store, batch)?,
                    progress: !no_progress,
                    restart,
                };
                let ctx = person_server::import::import_context();
                let imported = person_server::import::run(&service, &ctx, &options).await;
                store.close().await;
                eprintln!("person-api import: {}", imported?);
                Ok(())
            }
            Command::Token { .. } => Ok(()),
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

fn mint_token(
    config: &Config,
    sub: &str,
    groups: &[String],
    ttl: &str,
    name: Option<String>,
    email: Option<String>,
) -> ExitCode {
    let Some(secret) = &config.auth.hs256_secret else {
        eprintln!("person-api: token needs an HS256 secret: set PERSON_API_JWT_SECRET or PERSON_API_JWT_SECRET_FILE");
        return ExitCode::from(2);
    };
    let Some(ttl) = person_server::parse_ttl(ttl) else {
        eprintln!("person-api: invalid --ttl `{ttl}`: expected a number with s, m, h or d, e.g. 1h");
        return ExitCode::from(2);
    };
    let claims = person_http::auth::MintClaims { sub: sub.to_owned(), name, email, groups: groups.to_vec() };
    match person_http::auth::mint_hs256(secret.expose(), &claims, ttl) {
        Ok(token) => {
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("person-api: cannot mint a token: {}", chain(&e));
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
