//! The `coffer` binary: configuration, CLI, and wiring of the engine to the HTTP server.
//!
//! Exit codes: 0 success, 2 usage error (from clap), 1 runtime error with a one-line cause.

mod config;
mod registry;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use coffer_core::{KeyId, MerchantId, OrderId, OrderStatus, PayoutId, PayoutKind, PayoutStatus};
use coffer_engine::{Engine, EngineParts, EngineSettings, Methods, SystemClock};
use coffer_store::OrderQuery;
use serde_json::json;

use crate::config::{Config, LogFormat};

#[derive(Parser)]
#[command(
    name = "coffer",
    version,
    about = "Self-hosted, non-custodial crypto payment gateway"
)]
struct Cli {
    /// Configuration file (TOML). Without it, defaults and COFFER_* variables apply.
    #[arg(long, global = true, env = "COFFER_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server (migrates the database first).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage merchants.
    #[command(subcommand)]
    Merchant(MerchantCommand),
    /// Manage API keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Inspect orders.
    #[command(subcommand)]
    Order(OrderCommand),
    /// Payout requests (refunds, withdrawals): list, approve, reject, record as paid.
    #[command(subcommand)]
    Payout(PayoutCommand),
    /// Merchants' receiving wallets (account xpubs).
    #[command(subcommand)]
    Wallet(WalletCommand),
    /// Print or check configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// The web console at /console.
    #[command(subcommand)]
    Console(ConsoleCommand),
}

#[derive(Subcommand)]
enum ConsoleCommand {
    /// Print a one-time link that makes whoever opens it the console's first operator
    /// (earlier setup links stop working). Refused once an operator exists.
    SetupLink,
}

#[derive(Args)]
struct Output {
    /// Machine-readable JSON output.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum MerchantCommand {
    /// Create a merchant and its first API key (scope admin). The key is shown once.
    Create {
        #[arg(long)]
        name: String,
        #[command(flatten)]
        out: Output,
    },
    /// List merchants.
    List {
        #[command(flatten)]
        out: Output,
    },
    /// Set (or replace) a merchant's console login, exchanged for its Aurpay API-Key by
    /// `POST /api/plugin/key/aurpay`. The password is read from standard input.
    Login {
        #[arg(long)]
        merchant: String,
        #[arg(long)]
        username: String,
        /// Read the password from standard input (first line).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Change a merchant's settings for new orders.
    Set {
        #[arg(long)]
        merchant: String,
        /// Confirmations per chain, `CHAIN=N` (repeatable): bitcoin takes 0, 1, 2 or 6 (0 =
        /// zero-conf for transactions that do not signal RBF); `CHAIN=default` goes back to the
        /// chain's configured default.
        #[arg(long = "confirmations", value_name = "CHAIN=N")]
        confirmations: Vec<String>,
        #[command(flatten)]
        out: Output,
    },
    /// Set settings a vendor dialect keeps in its console, `DIALECT.NAME=VALUE` (repeatable;
    /// an empty value clears).
    Dialect {
        #[arg(long)]
        merchant: String,
        #[arg(value_name = "DIALECT.NAME=VALUE", required = true, help = dialect_settings_help())]
        settings: Vec<String>,
    },
    /// Set how the merchant's checkout page looks (replaces earlier settings; what is left
    /// out is cleared).
    Brand {
        #[arg(long)]
        merchant: String,
        /// Name shown to buyers (default: the merchant's name).
        #[arg(long)]
        display_name: Option<String>,
        /// Brand colour, e.g. "#1d4ed8".
        #[arg(long)]
        color: Option<String>,
        /// Logo image (PNG, JPEG, WebP, GIF or SVG, at most 24 KiB): embedded in the page.
        #[arg(long)]
        logo: Option<PathBuf>,
        #[command(flatten)]
        out: Output,
    },
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Create an API key, or with --dialect a vendor-dialect credential. Shown once.
    Create {
        #[arg(long)]
        merchant: String,
        /// Comma-separated: orders:read, orders:write, refunds:write, wallets:write, admin.
        #[arg(long, required_unless_present = "dialect", conflicts_with = "dialect")]
        scopes: Option<String>,
        #[arg(long, help = dialect_key_help())]
        dialect: Option<String>,
        #[arg(long, default_value = "")]
        label: String,
        /// Lifetime, e.g. 90d or 12h. Default: no expiry.
        #[arg(long)]
        expires_in: Option<String>,
        #[command(flatten)]
        out: Output,
    },
    /// List a merchant's keys (never their secrets).
    List {
        #[arg(long)]
        merchant: String,
        #[command(flatten)]
        out: Output,
    },
    /// Revoke a key (key_…) or a dialect credential (dcr_…) at once.
    Revoke {
        #[arg(long)]
        merchant: String,
        #[arg(long)]
        key: String,
    },
}

#[derive(Subcommand)]
enum OrderCommand {
    /// List orders, newest first.
    List {
        #[arg(long)]
        merchant: Option<String>,
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[command(flatten)]
        out: Output,
    },
    /// Show one order with its timeline and payments.
    Show {
        id: String,
        #[command(flatten)]
        out: Output,
    },
    /// Accept payments recorded outside the auto-match window (0.5×–1.2×): those of one
    /// transaction (--txid) or all; with --accept-amount, settle with what was received.
    Repair {
        id: String,
        #[arg(long)]
        txid: Option<String>,
        #[arg(long)]
        accept_amount: bool,
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        out: Output,
    },
}

#[derive(Subcommand)]
enum PayoutCommand {
    /// List a merchant's payout requests, newest first.
    List {
        #[arg(long)]
        merchant: String,
        /// refund or withdrawal.
        #[arg(long)]
        kind: Option<String>,
        /// requested, approved, rejected, sent, completed or failed.
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[command(flatten)]
        out: Output,
    },
    /// Move a payout request along requested → approved|rejected, approved → sent|rejected,
    /// sent → completed|failed; --txid (with sent or completed) records the transaction that
    /// paid it out.
    Set {
        id: String,
        #[arg(long)]
        merchant: String,
        #[arg(long)]
        status: String,
        #[arg(long)]
        txid: Option<String>,
        #[command(flatten)]
        out: Output,
    },
}

#[derive(Subcommand)]
enum WalletCommand {
    /// Set a merchant's receiving wallet on a chain: the account xpub (for EVM chains the key
    /// at m/44'/60'/0', for TRON m/44'/195'/0'). Order addresses are derived as …/0/i; no
    /// private key is ever needed.
    Set {
        #[arg(long)]
        merchant: String,
        #[arg(long)]
        chain: String,
        #[arg(long)]
        xpub: String,
        #[command(flatten)]
        out: Output,
    },
    /// List a merchant's wallets.
    List {
        #[arg(long)]
        merchant: String,
        #[command(flatten)]
        out: Output,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print a commented example configuration.
    Example,
    /// Validate the configuration (file from --config or COFFER_CONFIG, plus COFFER_* variables).
    Check,
}

fn main() -> ExitCode {
    // clap exits with code 2 on usage errors and 0 for --help/--version.
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let cause = format!("{err:#}")
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            eprintln!("error: {cause}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    if let Command::Config(ConfigCommand::Example) = cli.command {
        print!("{}", config::EXAMPLE);
        return Ok(());
    }
    let config = Config::load(cli.config.as_deref())?;
    if let Command::Config(ConfigCommand::Check) = cli.command {
        println!("configuration ok");
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let outcome = runtime.block_on(async move {
        match cli.command {
            Command::Serve => serve(config).await,
            Command::Migrate => {
                let engine = engine(&config).await?;
                println!("database migrated ({})", engine.database_kind());
                Ok(())
            }
            Command::Merchant(cmd) => merchant(&engine(&config).await?, cmd).await,
            Command::Key(cmd) => {
                let master = coffer_webhooks::MasterKey::load(&config.data_dir)
                    .context("cannot load the master key")?;
                key(&engine(&config).await?, &master, cmd).await
            }
            Command::Order(cmd) => order(&engine(&config).await?, cmd).await,
            Command::Payout(cmd) => payout(&engine(&config).await?, cmd).await,
            Command::Wallet(cmd) => wallet(&engine(&config).await?, cmd).await,
            Command::Console(ConsoleCommand::SetupLink) => {
                let token = engine(&config).await?.console_setup_token().await?;
                println!(
                    "{}\n\nOpen it in a browser within 24 hours to create the first operator account.",
                    coffer_console::setup_link(&config.public_url(), &token)
                );
                Ok(())
            }
            Command::Config(_) => Ok(()),
        }
    });
    // Blocking work still running (a DNS lookup, a file write) must not hold the exit: serve
    // has already given everything its `shutdown_timeout`.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    outcome
}

/// Open and migrate the database, and build the engine.
async fn engine(config: &Config) -> Result<Engine> {
    Ok(open(config).await?.0)
}

/// Open and migrate the database; the engine over it, and the store itself for the adapters
/// that are storage consumers by nature (the webhook dispatcher and sender).
async fn open(config: &Config) -> Result<(Engine, Arc<dyn coffer_store::Store>)> {
    let store = coffer_store::open(
        config.database_url.as_ref().map(|s| s.expose()),
        &config.data_dir,
        config.database_max_connections,
    )
    .await
    .context("cannot open the database")?;
    store
        .migrate()
        .await
        .context("cannot migrate the database")?;
    let engine = Engine::new(EngineParts {
        store: store.clone(),
        rates: rate_source(config)?.0,
        assets: Arc::new(config.registry()?),
        methods: registry::rails()
            .iter()
            .fold(Methods::default(), |methods, rail| {
                methods.with(rail.kind(), rail.method())
            }),
        clock: Arc::new(SystemClock),
        settings: Arc::new(EngineSettings {
            public_url: config.public_url(),
            default_expires_in: config.orders.default_expires_in.0,
            monitor_for: config.orders.monitor_for.0,
            ..EngineSettings::default()
        }),
    });
    Ok((engine, store))
}

/// The engine's rate source, and the market providers' handle when their background refresh
/// must run.
type RateSetup = (
    Arc<dyn coffer_core::RateSource>,
    Option<Arc<coffer_rates::AggregatedRates>>,
);

/// The fixed table (offline, or with the ECB's fiat legs), or the market providers.
fn rate_source(config: &Config) -> Result<RateSetup> {
    let providers = match config.rates_settings()? {
        Some(settings) => Some(Arc::new(
            coffer_rates::AggregatedRates::new(settings)
                .context("cannot set up the rate providers")?,
        )),
        None => None,
    };
    match (config.uses_fixed_rates(), providers) {
        (true, fiat) => {
            let mut table = config.fixed_rates()?;
            if let Some(fiat) = &fiat {
                table = table.with_fiat(fiat.clone());
            }
            Ok((Arc::new(table), fiat))
        }
        (false, Some(market)) => Ok((market.clone(), Some(market))),
        (false, None) => anyhow::bail!("no rate source is configured"),
    }
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.init(),
    }
}

async fn serve(config: Config) -> Result<()> {
    init_logging(&config);
    tracing::info!("starting coffer {}", env!("CARGO_PKG_VERSION"));
    let edge = edge_settings(&config, raise_open_file_limit())?;
    let (engine, store) = open(&config).await?;
    log_startup_summary(&config, &engine);
    let (rates, refresher) = rate_source(&config)?;
    let engine = engine.with_rates(rates);
    let state = coffer_api::AppState {
        engine: engine.clone(),
        metrics: coffer_api::metrics_handle(),
    };
    let dialects = registry::dialects();
    let http = http_settings(&config, &dialects)?;
    let key = coffer_webhooks::MasterKey::load(&config.data_dir)
        .context("cannot load the master key of webhook secrets")?;
    let webhook_settings = config.webhooks.settings();
    // Every dialect of the registry: its routes, its envelope for framework-level errors under
    // its paths, and the formatter of callbacks of what it created.
    let dialect_deps = coffer_dialect::DialectDeps {
        engine: engine.clone(),
        master: Arc::new(key.clone()),
        retry: webhook_settings.retry.clone(),
    };
    let mut formatters = coffer_webhooks::Formatters::new(webhook_settings.retry.clone());
    let mut shapes = coffer_api::ErrorShapes::default();
    let mut dialect_routes = axum::Router::new();
    for dialect in &dialects {
        formatters = formatters.with(dialect.name(), dialect.formatter(&dialect_deps));
        dialect_routes = dialect_routes.merge(dialect.routes(&dialect_deps));
        let envelope = dialect.clone();
        shapes = shapes.with(dialect.path_prefixes(), move |status, message| {
            envelope.framework_error(status, message)
        });
    }
    let console_key = key.clone();
    let webhooks =
        coffer_webhooks::Webhooks::new(store, engine.clock().clone(), key, webhook_settings)
            .with_formatters(formatters);
    let api = coffer_api::webhooks_routes::router(coffer_api::webhooks_routes::WebhooksApi {
        engine: engine.clone(),
        service: webhooks.service(),
    });
    let native = coffer_api::v1::router(
        &state,
        &coffer_api::v1::ApiSettings {
            rate_limit_per_minute: config.api.rate_limit_per_minute,
            body_limit: config.http.body_limit,
            dialect_settings: dialects.iter().map(|d| (d.name(), d.settings())).collect(),
            ..coffer_api::v1::ApiSettings::default()
        },
    );
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let checkout = coffer_checkout::router(coffer_checkout::Checkout::new(
        engine.clone(),
        coffer_checkout::CheckoutSettings {
            explorers: config.explorers()?,
            max_streams_per_order: config.checkout.max_streams_per_order,
            max_streams_per_client: config.checkout.max_streams_per_client,
            client_of: coffer_api::edge::client::client_key_of,
            ..coffer_checkout::CheckoutSettings::default()
        },
        stop_rx.clone(),
    ));
    let console = console(
        &config,
        &engine,
        console_key,
        webhooks.service(),
        dialects.iter().map(|d| d.credential_shape()).collect(),
    )
    .await?;
    let api = api
        .merge(native)
        .merge(checkout)
        .merge(console)
        .merge(dialect_routes.with_state(()));
    let app = coffer_api::router_with(state.clone(), &http, api, shapes);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let local = listener.local_addr()?;
    // Printed for scripts and tests that bind port 0.
    tracing::info!(address = %local, database = engine.database_kind(), tls = edge.tls.is_some(), "listening");

    let mut tasks = tokio::task::JoinSet::new();
    if let Some(admin) = config.admin_listen {
        let admin_listener = tokio::net::TcpListener::bind(admin)
            .await
            .with_context(|| format!("cannot listen on {admin} (admin_listen)"))?;
        tracing::info!(address = %admin_listener.local_addr()?, "admin listener");
        let admin_app = coffer_api::admin_router(state.clone());
        let rx = stop_rx.clone();
        let settings = edge.admin.clone();
        tasks.spawn(async move {
            let _ = coffer_api::edge::server::serve_with(
                admin_listener,
                admin_app,
                settings,
                wait_stop(rx),
            )
            .await;
        });
    }
    tasks.spawn(reload_tls_on_sighup(edge.tls.clone(), stop_rx.clone()));
    {
        let engine = engine.clone();
        let every = config.orders.expiry_sweep_interval.std();
        let mut rx = stop_rx.clone();
        tasks.spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        match engine.expire_due(500).await {
                            Ok(0) => {}
                            Ok(n) => tracing::info!(expired = n, "expired orders past their rate lock"),
                            Err(e) => tracing::warn!(error = %e, "expiry sweep failed; retrying next tick"),
                        }
                    }
                    _ = rx.changed() => break,
                }
            }
        });
    }
    if engine.database_kind() == "postgres" {
        // Checkout live updates are pushed within an instance; other instances sharing the
        // database change orders too: one query a second finds those (engine::live).
        let engine = engine.clone();
        let mut rx = stop_rx.clone();
        tasks.spawn(async move {
            let mut cursor = coffer_engine::live::ResyncCursor::new(engine.now());
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        if let Err(e) = engine.resync_live(&mut cursor).await {
                            tracing::warn!(error = %e, "live-update resync failed; retrying");
                        }
                    }
                    _ = rx.changed() => break,
                }
            }
        });
    }
    if let Some(rates) = refresher {
        let names: Vec<_> = rates.providers().iter().map(|p| p.name()).collect();
        tracing::info!(sources = ?names, quorum = rates.settings().quorum, "refreshing exchange rates");
        tasks.spawn(rates.run(stop_rx.clone()));
    }
    {
        // Idempotency keys are kept 24 h; older ones are purged hourly.
        let engine = engine.clone();
        let mut rx = stop_rx.clone();
        tasks.spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        match engine.purge_idempotency().await {
                            Ok(0) => {}
                            Ok(n) => tracing::info!(purged = n, "purged idempotency keys older than 24 h"),
                            Err(e) => tracing::warn!(error = %e, "idempotency purge failed; retrying next hour"),
                        }
                        if let Err(e) = engine.purge_console_sessions().await {
                            tracing::warn!(error = %e, "console session purge failed; retrying next hour");
                        }
                    }
                    _ = rx.changed() => break,
                }
            }
        });
    }
    {
        // Webhook dispatcher and sender: on stop they claim nothing more and let attempts in
        // flight finish; anything unfinished is retried after a restart.
        let rx = stop_rx.clone();
        tasks.spawn(async move {
            if let Err(e) = webhooks.run(rx).await {
                tracing::error!(error = %e, "webhook delivery stopped");
            }
        });
    }
    // Every chain kind through the one watcher: built, its node checked, its health
    // registered with `/readyz`, its loop spawned.
    let mut watchers: Vec<Box<dyn coffer_rail::RunningWatcher>> = Vec::new();
    for chain in config.chains()? {
        let id = chain.chain().id;
        watchers.extend(
            chain
                .watcher(&engine)
                .with_context(|| format!("chain {id}"))?,
        );
    }
    for watcher in watchers {
        let chain = watcher.chain().clone();
        // A node that is down at start-up is retried by the watcher; a wrong one is not.
        match watcher.check().await {
            Err(e @ coffer_rail::SourceError::Mismatch(_)) => {
                return Err(anyhow::Error::new(e)
                    .context(format!("chain {chain}: start-up check of the node")));
            }
            Err(e) => tracing::warn!(%chain, error = %e, "chain node not reachable yet; retrying"),
            Ok(()) => {}
        }
        let health = watcher.health();
        coffer_api::register_readiness(
            &format!("chain:{chain}"),
            Arc::new(move || {
                health
                    .lock()
                    .map(|h| h.clone())
                    .unwrap_or_default()
                    .readiness()
            }),
        );
        tracing::info!(%chain, "starting the chain watcher");
        tasks.spawn(watcher.run(stop_rx.clone()));
    }
    {
        let metrics = state.metrics.clone();
        let mut rx = stop_rx.clone();
        tasks.spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
            loop {
                tokio::select! {
                    _ = tick.tick() => metrics.run_upkeep(),
                    _ = rx.changed() => break,
                }
            }
        });
    }

    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down: finishing in-flight requests");
        let _ = stop_tx.send(true);
    });
    let limit = config.shutdown_timeout.std();
    finish_within(limit, stop_rx.clone(), async move {
        coffer_api::edge::server::serve_with(listener, app, edge.main, wait_stop(stop_rx)).await?;
        if !tasks.is_empty() {
            tracing::info!(
                tasks = tasks.len(),
                "listeners closed; waiting for background tasks"
            );
        }
        while tasks.join_next().await.is_some() {}
        Ok(())
    })
    .await?;
    tracing::info!("stopped");
    Ok(())
}

/// What the listeners are given (issue 23): connection caps shared by both, timeouts, and on
/// the main listener TLS when configured.
struct Edge {
    main: coffer_api::edge::server::ServerSettings,
    admin: coffer_api::edge::server::ServerSettings,
    tls: Option<Arc<coffer_api::edge::tls::ReloadingCert>>,
}

fn edge_settings(config: &Config, open_files: Option<u64>) -> Result<Edge> {
    let h = &config.http;
    let max_connections = connection_cap(h.max_connections, open_files);
    let connections = coffer_api::edge::server::ConnectionLimiter::new(
        max_connections,
        h.max_connections_per_client,
        h.addressing()?,
    );
    let tls = match h.tls_files() {
        Some((cert, key)) => Some(
            coffer_api::edge::tls::ReloadingCert::load(cert, key).context(
                "cannot load the TLS certificate (http.tls_cert_file, http.tls_key_file)",
            )?,
        ),
        None => None,
    };
    let admin = coffer_api::edge::server::ServerSettings {
        header_read_timeout: h.header_read_timeout.std(),
        idle_timeout: h.idle_timeout.std(),
        shutdown_timeout: h.shutdown_timeout.std(),
        connections,
        tls: None,
    };
    let main = coffer_api::edge::server::ServerSettings {
        tls: tls.as_ref().map(|t| t.acceptor()).transpose()?,
        ..admin.clone()
    };
    Ok(Edge { main, admin, tls })
}

/// `http.max_connections`, lowered to leave room for everything else under the open-file
/// limit (database, chain nodes, webhooks, files): a quarter of it, 64 to 1,024 files.
fn connection_cap(configured: usize, open_files: Option<u64>) -> usize {
    let Some(limit) = open_files.and_then(|l| usize::try_from(l).ok()) else {
        return configured;
    };
    let room = limit.saturating_sub((limit / 4).clamp(64, 1024)).max(1);
    if configured > room {
        tracing::warn!(
            configured,
            open_file_limit = limit,
            max_connections = room,
            "http.max_connections lowered to fit the open-file limit"
        );
    }
    configured.min(room)
}

/// Raise the soft open-file limit to the hard limit (every connection is a file); `None`
/// where it cannot be read.
fn raise_open_file_limit() -> Option<u64> {
    let before = rlimit::Resource::NOFILE.get().ok();
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(now) => {
            let (soft, hard) = before.unwrap_or((now, now));
            if now < 4096 {
                tracing::warn!(
                    soft_before = soft,
                    hard,
                    open_file_limit = now,
                    "the open-file limit is low: raise it (LimitNOFILE= under systemd, ulimit -n) so the connection caps, not the limit, decide who is served"
                );
            } else {
                tracing::info!(
                    soft_before = soft,
                    hard,
                    open_file_limit = now,
                    "open-file limit"
                );
            }
            Some(now)
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot read or raise the open-file limit");
            None
        }
    }
}

/// The router's `http.*` settings: body limit, request timeout, client addresses and the
/// per-client limits of the unauthenticated routes (the checkout's and the dialects').
fn http_settings(
    config: &Config,
    dialects: &[Arc<dyn coffer_dialect::Dialect>],
) -> Result<coffer_api::HttpSettings> {
    use coffer_api::edge::limit::RouteClass;
    use coffer_dialect::OpenPath;
    let h = &config.http;
    let mut paths = vec![
        ("/pay/", RouteClass::Public),
        ("/readyz", RouteClass::Public),
        // Each console sign-in and setup costs an Argon2 hash.
        ("/console/login", RouteClass::Login),
        ("/console/join", RouteClass::Login),
    ];
    for (path, open) in dialects.iter().flat_map(|d| d.open_paths()) {
        let class = match open {
            OpenPath::Lookup => RouteClass::Public,
            OpenPath::Login => RouteClass::Login,
        };
        paths.push((path, class));
    }
    Ok(coffer_api::HttpSettings {
        body_limit: h.body_limit,
        metrics_on_main: config.admin_listen.is_none(),
        request_timeout: Some(h.request_timeout.std()),
        addressing: h.addressing()?,
        client_limits: coffer_api::edge::limit::ClientLimitSettings {
            public_per_minute: h.public_rate_limit_per_minute,
            login_per_minute: h.login_rate_limit_per_minute,
            paths: paths.iter().map(|(p, c)| ((*p).to_owned(), *c)).collect(),
            ..Default::default()
        },
    })
}

/// On SIGHUP, read the TLS certificate and key again; connections keep theirs.
async fn reload_tls_on_sighup(
    tls: Option<Arc<coffer_api::edge::tls::ReloadingCert>>,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            return;
        };
        let stopped = wait_stop(stop);
        tokio::pin!(stopped);
        loop {
            tokio::select! {
                () = &mut stopped => return,
                _ = hup.recv() => match &tls {
                    None => tracing::info!("SIGHUP: nothing to reload (no TLS configured)"),
                    Some(cert) => match cert.reload() {
                        Ok(()) => tracing::info!("SIGHUP: TLS certificate reloaded"),
                        Err(e) => tracing::error!(error = %e, "SIGHUP: TLS certificate not reloaded; the previous one stays"),
                    },
                },
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (tls, stop);
    }
}

/// The web console's routes; while no operator exists, a one-time setup link in the log.
async fn console(
    config: &Config,
    engine: &Engine,
    key: coffer_webhooks::MasterKey,
    webhooks: coffer_webhooks::WebhookService,
    credentials: Vec<coffer_engine::dialect_keys::CredentialShape>,
) -> Result<axum::Router<coffer_api::AppState>> {
    let public_url = config.public_url();
    if engine.console_needs_setup().await? {
        let token = engine.console_setup_token().await?;
        tracing::warn!(
            link = %coffer_console::setup_link(&public_url, &token),
            "the console has no operator yet: open this one-time link within 24 hours to create one (or print a new one with `coffer console setup-link`)"
        );
    }
    let settings = coffer_console::ConsoleSettings {
        public_url,
        explorers: config.explorers()?,
        health: coffer_api::readiness_snapshot,
        server: coffer_console::ServerFacts {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            started_at: engine.now(),
            listen: config.listen.to_string(),
        },
        credentials,
    };
    Ok(coffer_console::router(coffer_console::Console::new(
        engine.clone(),
        key,
        webhooks,
        settings,
    )))
}

/// One short, readable line of what this server runs with (secrets never appear: the
/// database URL without its password, chains by id and name, rate sources by name).
fn log_startup_summary(config: &Config, engine: &Engine) {
    let database = config.database_label();
    let chains: Vec<String> = engine
        .assets()
        .chains()
        .map(|c| {
            let assets: Vec<String> = engine
                .assets()
                .assets()
                .filter(|a| a.id.chain() == &c.id)
                .map(|a| a.symbol().to_string())
                .collect();
            format!("{} ({})", c.id, assets.join(", "))
        })
        .collect();
    let rates = if config.rates.sources.is_empty() {
        "fixed".to_owned()
    } else {
        config.rates.sources.join(", ")
    };
    tracing::info!(
        listen = %config.listen,
        public_url = %config.public_url(),
        database = %database,
        chains = %if chains.is_empty() { "none".to_owned() } else { chains.join("; ") },
        rates = %rates,
        "configuration"
    );
    if chains.is_empty() {
        tracing::warn!(
            "no chain is configured: orders cannot be paid and are refused until a [[chains]] entry is added (the console's first-run checklist lists what is missing)"
        );
    }
}

/// Run `work` (the listeners and background tasks) to its end, but once a stop is asked for,
/// give it at most `limit` (`shutdown_timeout`). Whatever still runs then (a request, a webhook
/// attempt, a watcher's step) is dropped with the runtime: its transaction, never committed,
/// is rolled back by the database, so a watcher's cursor moves with its batch or not at all,
/// and an unanswered request or delivery is retried after the restart.
async fn finish_within(
    limit: std::time::Duration,
    stop: tokio::sync::watch::Receiver<bool>,
    work: impl std::future::Future<Output = Result<()>>,
) -> Result<()> {
    tokio::pin!(work);
    tokio::select! {
        done = &mut work => return done,
        () = wait_stop(stop) => {}
    }
    match tokio::time::timeout(limit, work).await {
        Ok(done) => done,
        Err(_) => {
            tracing::warn!(
                shutdown_timeout = ?limit,
                "shutdown_timeout reached: abandoning the work still in progress"
            );
            Ok(())
        }
    }
}

async fn wait_stop(mut rx: tokio::sync::watch::Receiver<bool>) {
    while !*rx.borrow() {
        if rx.changed().await.is_err() {
            return;
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

async fn wallet(engine: &Engine, cmd: WalletCommand) -> Result<()> {
    match cmd {
        WalletCommand::Set {
            merchant,
            chain,
            xpub,
            out,
        } => {
            let merchant = parse_merchant(&merchant)?;
            let w = engine.set_wallet(&merchant, &chain, &xpub).await?;
            if out.json {
                println!(
                    "{}",
                    json!({"merchant_id": w.merchant_id, "chain": w.chain, "xpub": w.descriptor, "next_index": w.next_index})
                );
            } else {
                println!(
                    "wallet set for {} on {}; next derivation index {}",
                    w.merchant_id, w.chain, w.next_index
                );
            }
        }
        WalletCommand::List { merchant, out } => {
            let merchant = parse_merchant(&merchant)?;
            let wallets = engine.list_wallets(&merchant).await?;
            if out.json {
                let list: Vec<_> = wallets
                    .iter()
                    .map(|w| json!({"chain": w.chain, "xpub": w.descriptor, "next_index": w.next_index}))
                    .collect();
                println!("{}", serde_json::Value::Array(list));
            } else {
                for w in wallets {
                    println!("{}  next index {}  {}", w.chain, w.next_index, w.descriptor);
                }
            }
        }
    }
    Ok(())
}

/// An image file as a `data:` URL, its type from the file name.
fn logo_data_url(path: &std::path::Path) -> Result<String> {
    use base64::Engine as _;
    let kind = match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("png") => "png",
        Some("jpg" | "jpeg") => "jpeg",
        Some("webp") => "webp",
        Some("gif") => "gif",
        Some("svg") => "svg+xml",
        _ => bail!(
            "--logo {}: use a .png, .jpg, .webp, .gif or .svg file",
            path.display()
        ),
    };
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(format!(
        "data:image/{kind};base64,{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    ))
}

fn parse_merchant(raw: &str) -> Result<MerchantId> {
    raw.parse()
        .with_context(|| format!("{raw:?} is not a merchant id (mch_…)"))
}

async fn merchant(engine: &Engine, cmd: MerchantCommand) -> Result<()> {
    match cmd {
        MerchantCommand::Create { name, out } => {
            let (m, key) = engine.create_merchant(&name).await?;
            if out.json {
                println!(
                    "{}",
                    json!({"merchant_id": m.id, "name": m.name, "api_key": key.token, "key_id": key.credential.id})
                );
            } else {
                println!(
                    "merchant id: {}\nname:        {}\napi key:     {}\n\nThe API key is shown only once. Store it now.",
                    m.id, m.name, key.token
                );
            }
        }
        MerchantCommand::Set {
            merchant,
            confirmations,
            out,
        } => {
            let id = parse_merchant(&merchant)?;
            if confirmations.is_empty() {
                anyhow::bail!("nothing to set: give --confirmations CHAIN=N");
            }
            let mut last = None;
            for raw in &confirmations {
                let (chain, n) = raw
                    .split_once('=')
                    .with_context(|| format!("--confirmations {raw:?}: expected CHAIN=N"))?;
                let n = match n.trim() {
                    "default" => None,
                    v => Some(v.parse::<u32>().with_context(|| {
                        format!("--confirmations {raw:?}: {v:?} is not a number")
                    })?),
                };
                last = Some(engine.set_chain_confirmations(&id, chain.trim(), n).await?);
            }
            if let Some(m) = last {
                if out.json {
                    println!("{}", serde_json::to_string(&m)?);
                } else {
                    let per_chain: Vec<String> = m
                        .policy
                        .chain_confirmations
                        .iter()
                        .map(|(c, n)| format!("{c}={n}"))
                        .collect();
                    println!("{}  confirmations: {}", m.id, per_chain.join(" "));
                }
            }
        }
        MerchantCommand::Brand {
            merchant,
            display_name,
            color,
            logo,
            out,
        } => {
            let merchant = parse_merchant(&merchant)?;
            let logo = logo.map(|path| logo_data_url(&path)).transpose()?;
            let b = engine
                .set_branding(
                    &merchant,
                    coffer_engine::branding::Branding {
                        display_name,
                        logo,
                        color,
                    },
                )
                .await?;
            if out.json {
                println!(
                    "{}",
                    json!({"merchant_id": b.merchant_id, "display_name": b.display_name, "color": b.color, "logo_bytes": b.logo.as_ref().map(String::len)})
                );
            } else {
                println!("checkout branding set for {}", b.merchant_id);
            }
        }
        MerchantCommand::Dialect { merchant, settings } => {
            let merchant = parse_merchant(&merchant)?;
            // Per dialect, all its settings at once: checked before any is written.
            let mut by_dialect: std::collections::BTreeMap<String, Vec<(String, Option<String>)>> =
                std::collections::BTreeMap::new();
            for raw in &settings {
                let (key, value) = raw
                    .split_once('=')
                    .with_context(|| format!("{raw:?}: expected DIALECT.NAME=VALUE"))?;
                let (dialect, name) = key
                    .split_once('.')
                    .with_context(|| format!("{key:?}: expected DIALECT.NAME"))?;
                by_dialect
                    .entry(dialect.trim().to_owned())
                    .or_default()
                    .push((name.trim().to_owned(), Some(value.to_owned())));
            }
            // Every dialect named must exist before any is written.
            let dialects = registry::dialects();
            let mut named = Vec::with_capacity(by_dialect.len());
            for (name, changes) in &by_dialect {
                named.push((coffer_dialect::by_name(&dialects, name)?, changes));
            }
            for (dialect, changes) in named {
                engine
                    .set_dialect_settings(&merchant, dialect.name(), dialect.settings(), changes)
                    .await?;
                for (name, value) in changes {
                    let what = if value.as_deref().is_some_and(|v| !v.trim().is_empty()) {
                        "set"
                    } else {
                        "cleared"
                    };
                    println!("{}.{name} {what} for {merchant}", dialect.name());
                }
            }
        }
        MerchantCommand::List { out } => {
            let merchants = engine.list_merchants().await?;
            if out.json {
                println!("{}", serde_json::to_string(&merchants)?);
            } else {
                for m in merchants {
                    println!(
                        "{}  {}  {}",
                        m.id,
                        coffer_engine::view::rfc3339(m.created_at),
                        m.name
                    );
                }
            }
        }
        MerchantCommand::Login {
            merchant,
            username,
            password_stdin: _,
        } => {
            let mut password = String::new();
            std::io::stdin()
                .read_line(&mut password)
                .context("cannot read the password from standard input")?;
            let password = password.trim_end_matches(['\r', '\n']);
            engine
                .set_merchant_login(&parse_merchant(&merchant)?, &username, password)
                .await?;
            println!("login set for {merchant} (username {username})");
        }
    }
    Ok(())
}

const DIALECT_ID_PREFIX: &str = coffer_engine::dialect_keys::CREDENTIAL_ID_PREFIX;

/// `--dialect` of `key create`: each dialect and what its credential consists of.
fn dialect_key_help() -> String {
    let dialects: Vec<String> = registry::dialects()
        .iter()
        .map(|d| {
            let shape = d.credential_shape();
            let labels: Vec<&str> = [
                Some(shape.key),
                shape.token,
                Some(shape.secret),
                shape.callback_token,
                shape.callback_secret,
            ]
            .into_iter()
            .flatten()
            .collect();
            format!("{} ({})", d.name(), labels.join(", "))
        })
        .collect();
    format!(
        "Create a credential of a vendor-compatible dialect instead: {}",
        dialects.join("; ")
    )
}

/// The settings of `merchant dialect`: every dialect's, named `DIALECT.NAME`.
fn dialect_settings_help() -> String {
    let settings: Vec<String> = registry::dialects()
        .iter()
        .flat_map(|d| {
            d.settings()
                .iter()
                .map(|s| format!("{}.{} ({})", d.name(), s.name, s.meaning))
        })
        .collect();
    format!("Settings to change: {}", settings.join("; "))
}

/// Create a vendor-dialect credential and print it once, named as the vendor names it.
async fn dialect_key(
    engine: &Engine,
    master: &coffer_webhooks::MasterKey,
    merchant: &MerchantId,
    dialect: &str,
    as_json: bool,
) -> Result<()> {
    let shape = coffer_dialect::by_name(&registry::dialects(), dialect)?.credential_shape();
    let c = engine
        .create_dialect_credential(master, merchant, &shape)
        .await?;
    if as_json {
        println!(
            "{}",
            json!({"credential_id": c.id, "dialect": c.dialect, "key": c.key, "secret": c.secret,
                "token": c.token, "callback_token": c.callback_token,
                "callback_secret": c.callback_secret})
        );
        return Ok(());
    }
    println!("credential id:   {}", c.id);
    for (label, value) in shape.labelled(&c) {
        println!("{:<17}{value}", format!("{label}:"));
    }
    println!("\nThese values are shown only once. Store them now.");
    Ok(())
}

async fn key(engine: &Engine, master: &coffer_webhooks::MasterKey, cmd: KeyCommand) -> Result<()> {
    match cmd {
        KeyCommand::Create {
            merchant,
            scopes,
            dialect,
            label,
            expires_in,
            out,
        } => {
            let merchant = parse_merchant(&merchant)?;
            if let Some(dialect) = dialect {
                return dialect_key(engine, master, &merchant, &dialect, out.json).await;
            }
            let scopes = coffer_core::merchant::parse_scopes(scopes.as_deref().unwrap_or(""))?;
            let expires_at = match expires_in {
                Some(raw) => {
                    let d: config::ConfigDuration = raw
                        .parse()
                        .map_err(|e: String| anyhow::anyhow!("--expires-in: {e}"))?;
                    Some(engine.now() + d.0)
                }
                None => None,
            };
            let key = engine
                .create_key(&merchant, &label, scopes, expires_at)
                .await?;
            if out.json {
                println!(
                    "{}",
                    json!({"key_id": key.credential.id, "api_key": key.token, "scopes": key.credential.scopes, "expires_at": key.credential.expires_at.map(coffer_engine::view::rfc3339)})
                );
            } else {
                println!(
                    "key id:  {}\napi key: {}\n\nThe API key is shown only once. Store it now.",
                    key.credential.id, key.token
                );
            }
        }
        KeyCommand::List { merchant, out } => {
            let merchant = parse_merchant(&merchant)?;
            let keys = engine.list_keys(&merchant).await?;
            let dialect_keys = engine.list_dialect_credentials(&merchant, None).await?;
            if out.json {
                // One array: API keys, then dialect credentials (they carry `dialect`).
                let mut all: Vec<serde_json::Value> = keys
                    .iter()
                    .map(serde_json::to_value)
                    .collect::<Result<_, _>>()?;
                all.extend(dialect_keys.iter().map(|k| {
                    json!({"id": k.id, "dialect": k.dialect, "key_prefix": k.key_prefix,
                        "created_at": coffer_engine::view::rfc3339(k.created_at),
                        "revoked_at": k.revoked_at.map(coffer_engine::view::rfc3339)})
                }));
                println!("{}", serde_json::Value::Array(all));
            } else {
                for k in &dialect_keys {
                    let state = if k.revoked_at.is_some() {
                        "revoked"
                    } else {
                        "active"
                    };
                    println!("{}  {:7}  {}  {}…", k.id, state, k.dialect, k.key_prefix);
                }
                for k in keys {
                    let state = if k.revoked_at.is_some() {
                        "revoked"
                    } else if k.is_active(engine.now()) {
                        "active"
                    } else {
                        "expired"
                    };
                    let scopes: Vec<_> = k.scopes.iter().map(|s| s.as_str()).collect();
                    println!("{}  {:7}  {}  {}", k.id, state, scopes.join(","), k.label);
                }
            }
        }
        KeyCommand::Revoke { merchant, key } if key.starts_with(DIALECT_ID_PREFIX) => {
            engine
                .revoke_dialect_credential(&parse_merchant(&merchant)?, &key)
                .await?;
            println!("revoked {key}");
        }
        KeyCommand::Revoke { merchant, key } => {
            let id: KeyId = key
                .parse()
                .with_context(|| format!("{key:?} is not a key id (key_…)"))?;
            engine.revoke_key(&parse_merchant(&merchant)?, &id).await?;
            println!("revoked {id}");
        }
    }
    Ok(())
}

async fn order(engine: &Engine, cmd: OrderCommand) -> Result<()> {
    match cmd {
        OrderCommand::List {
            merchant,
            status,
            limit,
            out,
        } => {
            let query = OrderQuery {
                merchant_id: merchant.as_deref().map(parse_merchant).transpose()?,
                status: status
                    .as_deref()
                    .map(str::parse::<OrderStatus>)
                    .transpose()?,
                limit,
                ..OrderQuery::default()
            };
            let orders = engine.list_orders(&query).await?;
            if out.json {
                let list: Vec<_> = orders
                    .iter()
                    .map(|o| coffer_engine::view::order_json(o, engine))
                    .collect();
                println!("{}", serde_json::Value::Array(list));
            } else {
                for o in orders {
                    println!(
                        "{}  {:10} {:12} {:>14} {:4}  {}  {}",
                        o.id,
                        o.state.status,
                        o.state.reason,
                        o.amount,
                        o.currency,
                        coffer_engine::view::rfc3339(o.created_at),
                        o.order_no.unwrap_or_default()
                    );
                }
            }
        }
        OrderCommand::Show { id, out } => {
            let id: OrderId = id
                .parse()
                .with_context(|| format!("{id:?} is not an order id (ord_…)"))?;
            let Some(o) = engine.find_order(&id).await? else {
                bail!("order {id} not found");
            };
            let timeline = engine.timeline(&id).await?;
            let payments = engine.payments_of(&o).await?;
            let mut view = coffer_engine::view::order_json(&o, engine);
            view["merchant_id"] = json!(o.merchant_id);
            view["timeline"] = serde_json::to_value(&timeline)?;
            view["payments"] = serde_json::to_value(&payments)?;
            if out.json {
                println!("{view}");
            } else {
                println!("{}", serde_json::to_string_pretty(&view)?);
            }
        }
        OrderCommand::Repair {
            id,
            txid,
            accept_amount,
            reason,
            out,
        } => {
            let id: OrderId = id
                .parse()
                .with_context(|| format!("{id:?} is not an order id (ord_…)"))?;
            let Some(o) = engine.find_order(&id).await? else {
                bail!("order {id} not found");
            };
            let repaired = engine
                .repair_order(
                    &o.merchant_id,
                    &id,
                    coffer_engine::RepairInput {
                        txid,
                        accept_amount,
                        note: reason,
                    },
                )
                .await?;
            let view = coffer_engine::view::order_json(&repaired, engine);
            if out.json {
                println!("{view}");
            } else {
                println!(
                    "{}  {} ({})",
                    repaired.id, repaired.state.status, repaired.state.reason
                );
            }
        }
    }
    Ok(())
}

async fn payout(engine: &Engine, cmd: PayoutCommand) -> Result<()> {
    match cmd {
        PayoutCommand::List {
            merchant,
            kind,
            status,
            limit,
            out,
        } => {
            let query = coffer_store::PayoutQuery {
                kind: kind
                    .as_deref()
                    .map(str::parse::<PayoutKind>)
                    .transpose()
                    .context("--kind must be refund or withdrawal")?,
                status: status
                    .as_deref()
                    .map(str::parse::<PayoutStatus>)
                    .transpose()
                    .context(
                        "--status must be requested, approved, rejected, sent, completed or failed",
                    )?,
                limit,
                ..coffer_store::PayoutQuery::default()
            };
            let (payouts, _) = engine
                .list_payouts(&parse_merchant(&merchant)?, query)
                .await?;
            if out.json {
                let list: Vec<_> = payouts.iter().map(coffer_engine::payout_json).collect();
                println!("{}", serde_json::Value::Array(list));
            } else {
                for p in payouts {
                    let amount = match (&p.asset, p.amount) {
                        (Some(asset), Some(units)) => match engine.assets().asset(asset) {
                            Some(a) => format!("{} {}", units.format(a.decimals), asset),
                            None => format!("{units} base units of {asset}"),
                        },
                        _ => String::new(),
                    };
                    println!(
                        "{}  {:10} {:9}  {}  {}  {}  {}",
                        p.id,
                        p.kind.as_str(),
                        p.status,
                        coffer_engine::view::rfc3339(p.created_at),
                        amount,
                        p.destination.unwrap_or_default(),
                        p.txid.unwrap_or_default()
                    );
                }
            }
        }
        PayoutCommand::Set {
            id,
            merchant,
            status,
            txid,
            out,
        } => {
            let id: PayoutId = id
                .parse()
                .with_context(|| format!("{id:?} is not a payout id (pout_…)"))?;
            let to: PayoutStatus = status
                .parse()
                .context("--status must be approved, rejected, sent, completed or failed")?;
            let updated = engine
                .set_payout_status(&parse_merchant(&merchant)?, &id, to, txid)
                .await?;
            if out.json {
                println!("{}", coffer_engine::payout_json(&updated));
            } else {
                match &updated.txid {
                    Some(t) => println!("{}  {} ({t})", updated.id, updated.status),
                    None => println!("{}  {}", updated.id, updated.status),
                }
            }
        }
    }
    Ok(())
}
