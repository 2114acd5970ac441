use anyhow::Context;
use clap::{Parser, Subcommand};
use secrecy::SecretString;
use tracing_subscriber::EnvFilter;

use obole::config::Settings;
use obole::domain::{Email, Role};
use obole::startup::Application;
use obole::{accounts, db, demo};

/// obole: the member portal of an association.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the portal (migrations are applied first).
    Serve,
    /// Seed the demo association (once), print its logins, and serve the portal.
    Demo,
    /// Apply database migrations and exit.
    Migrate,
    /// Ask gateways about open payment attempts once, expire abandoned ones, and exit.
    Reconcile,
    /// Create a user (the password is read from OBOLE_NEW_PASSWORD).
    CreateUser {
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "member")]
        role: String,
        #[arg(long)]
        first_name: String,
        #[arg(long)]
        last_name: String,
        #[arg(long, env = "OBOLE_NEW_PASSWORD", hide_env_values = true)]
        password: String,
    },
}

fn main() -> anyhow::Result<()> {
    tune_allocator();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("could not start the runtime")?
        .block_on(run())
}

/// argon2id takes a 19 MiB block per login, and glibc, once such a block is freed, raises
/// its threshold and serves the next ones from per-thread arenas that keep the memory: under
/// a login storm the process grew past 370 MiB. Blocks above 256 KiB mapped and unmapped on
/// their own keep it near 40 MiB. glibc's own `MALLOC_MMAP_THRESHOLD_`, when set, wins.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
        // SAFETY: mallopt only sets an allocator parameter, before any other thread exists.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
        }
    }
}

async fn run() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("OBOLE_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    let settings = Settings::load().context("invalid configuration")?;
    match cli.command {
        Command::Serve => serve(settings).await,
        Command::Demo => {
            let settings = demo_settings(settings);
            let pool = db::connect(&settings.database_url, settings.db_max_connections).await?;
            db::migrate(&pool).await?;
            demo::seed(&pool, &settings.accounts).await?;
            let app = Application::build_with_pool(settings, pool).await?;
            println!("\nobole demo: {}", app.base_url());
            println!("Logins:");
            for login in demo::LOGINS {
                println!(
                    "  {:<10} {:<24} {}",
                    login.role, login.email, login.password
                );
            }
            println!();
            app.run_until_stopped().await?;
            Ok(())
        }
        Command::Reconcile => {
            let pool = db::connect(&settings.database_url, settings.db_max_connections).await?;
            db::migrate(&pool).await?;
            let base_url = settings
                .base_url
                .clone()
                .unwrap_or_else(|| format!("http://{}:{}", settings.host, settings.port));
            let http = reqwest::Client::builder()
                .timeout(std::time::Duration::from_millis(
                    settings.gateway_timeout_ms,
                ))
                .build()?;
            let settings = std::sync::Arc::new(settings);
            let setup =
                obole::gateway_settings::GatewaySetup::new(settings.clone(), &base_url, http)?;
            let gateways = setup.build(&pool).await?;
            let counts = obole::reconcile::run_once(&pool, &gateways, &settings).await?;
            println!(
                "checked {} open attempts: {} posted, {} moved, {} expired, {} flagged, {} errors",
                counts.checked,
                counts.posted,
                counts.moved,
                counts.expired,
                counts.flagged,
                counts.errors
            );
            println!(
                "dues on saved cards: {} charged, {} failed",
                counts.dues_charged, counts.dues_failed
            );
            Ok(())
        }
        Command::Migrate => {
            let pool = db::connect(&settings.database_url, 1).await?;
            db::migrate(&pool).await?;
            println!(
                "migrations applied to {}",
                db::redact_url(&settings.database_url)
            );
            Ok(())
        }
        Command::CreateUser {
            email,
            role,
            first_name,
            last_name,
            password,
        } => {
            let email = Email::parse(&email).context("invalid email")?;
            let role = Role::parse(&role).context("role must be member, manager or admin")?;
            anyhow::ensure!(
                password.len() >= 8,
                "the password needs at least 8 characters"
            );
            let pool = db::connect(&settings.database_url, 1).await?;
            db::migrate(&pool).await?;
            let id = accounts::create_user(
                &pool,
                accounts::NewUser {
                    email: &email,
                    password: SecretString::from(password),
                    role,
                    first_name: &first_name,
                    last_name: &last_name,
                },
            )
            .await?;
            println!("user {email} ({}) has id {id}", role.as_str());
            Ok(())
        }
    }
}

const DEMO_GATEWAYS: [&str; 8] = [
    "sandbox",
    "helloasso",
    "stripe",
    "paypal",
    "mollie",
    "payplug",
    "payzen",
    "stancer",
];

/// The demo offers every gateway, each backed by its emulator served by this very process,
/// and payment in several times where a gateway allows it — unless configured otherwise.
fn demo_settings(mut settings: Settings) -> Settings {
    if std::env::var_os("OBOLE_GATEWAYS").is_none() {
        settings.gateways = DEMO_GATEWAYS.map(String::from).to_vec();
    }
    settings.helloasso.emulator = true;
    settings.stripe.emulator = true;
    settings.mollie.emulator = true;
    settings.payplug.emulator = true;
    settings.paypal.emulator = true;
    settings.payzen.emulator = true;
    settings.stancer.emulator = true;
    if std::env::var_os("OBOLE_INSTALLMENTS_MAX_TERMS").is_none() {
        settings.installments_max_terms = 4;
    }
    // A fixed, published key, so that the demo's admin can save gateway credentials: it
    // protects nothing. A real portal sets its own OBOLE_SETTINGS_KEY.
    if settings.settings_key.is_none() {
        settings.settings_key = Some(SecretString::from(demo::SETTINGS_KEY));
    }
    settings
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let app = Application::build(settings).await?;
    tracing::info!("obole listening on {}", app.base_url());
    app.run_until_stopped().await?;
    Ok(())
}
