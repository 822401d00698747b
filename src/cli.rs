//! The `tenantry` command line: `serve` (default), `worker`, `migrate`, `openapi`, `admin`.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio::net::TcpListener;

use crate::{
    App, AppState, Config,
    auth::password::Password,
    background::Background,
    config::AppEnv,
    db::{self, migrate},
    http,
    services::{identity, users::Email},
    subsystem::Subsystem,
    telemetry,
};

#[derive(Debug, Parser)]
#[command(
    name = "tenantry",
    version,
    about = "Multi-tenant SaaS backend platform"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the HTTP API (the default).
    Serve {
        /// Do not run background workers in this process.
        #[arg(long)]
        no_workers: bool,
    },
    /// Run background job workers only (no HTTP API), to scale them separately.
    Worker,
    /// Apply shared migrations, then bring every tenant schema up to date.
    Migrate {
        /// Skip the shared schema; migrate tenant schemas only.
        #[arg(long)]
        tenants_only: bool,
        /// Tenants migrated at the same time (default: MIGRATE_CONCURRENCY, 4).
        #[arg(long)]
        concurrency: Option<usize>,
    },
    /// Print the OpenAPI document (JSON) to stdout.
    Openapi,
    /// Platform administration.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Create a platform operator, or reset the password of an existing one.
    CreatePlatformAdmin {
        #[arg(long)]
        email: String,
        /// Also read from TENANTRY_ADMIN_PASSWORD, to keep it out of the shell history.
        #[arg(long, env = "TENANTRY_ADMIN_PASSWORD", hide_env_values = true)]
        password: String,
    },
}

/// Runs the command line; the exit code says whether it succeeded.
pub async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Openapi) = cli.command {
        println!("{}", http::docs::openapi_text());
        return ExitCode::SUCCESS;
    }
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("tenantry: {e}");
            return ExitCode::from(2);
        }
    };
    // Held to the end of `main`: dropping it writes out the queued log lines.
    let _log_guard = telemetry::init_tracing(&config);
    let result = match cli.command.unwrap_or(Command::Serve { no_workers: false }) {
        Command::Serve { no_workers } => serve(config, no_workers).await,
        Command::Worker => run_worker(config).await,
        Command::Migrate {
            tenants_only,
            concurrency,
        } => run_migrate(config, tenants_only, concurrency).await,
        Command::Admin {
            command: AdminCommand::CreatePlatformAdmin { email, password },
        } => create_platform_admin(config, &email, password).await,
        Command::Openapi => unreachable!("handled above"),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "tenantry failed");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config, no_workers: bool) -> anyhow::Result<ExitCode> {
    if config.app_env != AppEnv::Production {
        // Development convenience: the database and shared schema appear by themselves.
        db::ensure_database(&config.database.url).await?;
    }
    let listener = TcpListener::bind(config.http.bind_addr)
        .await
        .with_context(|| format!("failed to bind {}", config.http.bind_addr))?;
    let workers = config.workers_enabled && !no_workers;
    let state = AppState::new(App::connect(config).await?);
    if let (Some(email), Some(password)) = (
        &state.config.auth.platform_admin_email,
        &state.config.auth.platform_admin_password,
    ) {
        upsert_admin(&state, email, password.clone()).await?;
    }
    tracing::info!(workers, "starting");
    // Replicas that start after a logout learn of it before serving anybody.
    match tokio::time::timeout(crate::redis::TIMEOUT, state.invalidations.load_deny_list()).await {
        Ok(Ok(loaded)) => tracing::info!(loaded, "deny-list loaded"),
        _ => tracing::warn!("could not load the deny-list from Redis; the listener retries"),
    }
    // Rate-limit overrides are in memory before the first request, and kept current.
    match tokio::time::timeout(
        crate::redis::TIMEOUT,
        state.limits.overrides.reload(&state.db),
    )
    .await
    {
        Ok(Ok(loaded)) => tracing::info!(loaded, "rate-limit overrides loaded"),
        _ => tracing::warn!("could not load rate-limit overrides; the refresher retries"),
    }
    let subsystems = if workers {
        Subsystem::SERVE
    } else {
        Subsystem::API
    };
    let signal = crate::background::shutdown_signal();
    let background = Background::start(&state, subsystems);
    background.stop_when(signal);
    let metrics = serve_metrics(&state, &background).await?;
    let served = http::serve(state.clone(), listener, background.stopping()).await;
    // The requests in flight have finished: the running jobs finish, then what both
    // recorded is written, before the pool closes.
    background.shutdown().await;
    if let Some(metrics) = metrics {
        let _ = metrics.await;
    }
    served?;
    state.db.close().await;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// `tenantry worker`: the background work without HTTP, until SIGTERM.
async fn run_worker(config: Config) -> anyhow::Result<ExitCode> {
    if config.app_env != AppEnv::Production {
        db::ensure_database(&config.database.url).await?;
    }
    let state = AppState::new(App::new(config).await?);
    if state.config.app_env != AppEnv::Production {
        migrate::run_shared(&state.db).await?;
    }
    let signal = crate::background::shutdown_signal();
    let background = Background::start(&state, Subsystem::WORKER);
    background.stop_when(signal);
    let metrics = serve_metrics(&state, &background).await?;
    background.stopping().await;
    background.shutdown().await;
    if let Some(metrics) = metrics {
        let _ = metrics.await;
    }
    state.db.close().await;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// `/metrics` on `METRICS_BIND_ADDR`, when set, until the background stops.
async fn serve_metrics(
    state: &AppState,
    background: &Background,
) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    let Some(addr) = state.config.telemetry.metrics_bind_addr else {
        return Ok(None);
    };
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("failed to bind METRICS_BIND_ADDR {addr}"))?;
    tracing::info!(%addr, "metrics listening");
    let router = http::ops::metrics::router(state.clone());
    let stopping = background.stopping();
    Ok(Some(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router)
            .with_graceful_shutdown(stopping)
            .await
        {
            tracing::error!(error = %e, "metrics listener failed");
        }
    })))
}

async fn upsert_admin(app: &App, email: &str, password: String) -> anyhow::Result<()> {
    let email = Email::parse("email", email).map_err(|e| anyhow::anyhow!("email {}", e.message))?;
    let password = Password::parse(password).map_err(|e| anyhow::anyhow!("password {e}"))?;
    identity::set_platform_admin(&app.db, &app.invalidations, &email, password).await?;
    tracing::info!(email = email.as_str(), "platform operator ready");
    Ok(())
}

async fn create_platform_admin(
    config: Config,
    email: &str,
    password: String,
) -> anyhow::Result<ExitCode> {
    if config.app_env != AppEnv::Production {
        db::ensure_database(&config.database.url).await?;
    }
    let app = App::new(config).await?;
    migrate::run_shared(&app.db).await?;
    upsert_admin(&app, email, password).await?;
    Ok(ExitCode::SUCCESS)
}

async fn run_migrate(
    config: Config,
    tenants_only: bool,
    concurrency: Option<usize>,
) -> anyhow::Result<ExitCode> {
    if config.app_env != AppEnv::Production {
        db::ensure_database(&config.database.url).await?;
    }
    let concurrency = concurrency
        .unwrap_or(config.database.migrate_concurrency)
        .max(1);
    let pool = db::connect(
        &config.database.url,
        u32::try_from(concurrency + 1).unwrap_or(u32::MAX),
    )?;
    if !tenants_only {
        migrate::run_shared(&pool).await?;
        tracing::info!("shared schema is current");
    }
    let mut lock_conn = db::connect_one(&config.database.url).await?;
    let report = migrate::run_tenants(&pool, &mut lock_conn, concurrency).await?;
    tracing::info!(
        migrated = report.migrated.len(),
        skipped = report.skipped,
        failed = report.failed.len(),
        "tenant migrations finished"
    );
    Ok(if report.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
