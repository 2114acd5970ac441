//! One typed settings tree: defaults that run, then an optional TOML file
//! (`OBOLE_CONFIG`, default `obole.toml`), then `OBOLE_*` environment variables
//! (nested keys with a double underscore: `OBOLE_SANDBOX__API_KEY`).

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use secrecy::SecretString;
use serde::Deserialize;

use crate::domain::ChargeCategory;

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Address to listen on.
    pub host: String,
    /// Port to listen on; 0 picks a free one.
    pub port: u16,
    /// `sqlite://path?mode=rwc` or `postgres://user@host/db`.
    pub database_url: String,
    pub db_max_connections: u32,
    /// SQLite only: how long a writer waits for the one holding the lock, in milliseconds.
    pub db_busy_timeout_ms: u64,
    /// Public address of the portal, used in links given to gateways. Defaults to
    /// `http://{host}:{port}`. An `https://` address turns on Secure cookies.
    pub base_url: Option<String>,
    /// Base64 of at least 64 random bytes, signs and encrypts session cookies. When absent,
    /// one is generated on first start and kept in the database.
    pub secret_key: Option<SecretString>,
    /// Base64 of 32 random bytes, encrypts the gateway credentials admins save in the back
    /// office. Never stored; without it, credentials can only come from this configuration.
    pub settings_key: Option<SecretString>,
    pub association_name: String,
    /// Optional image file of the association's logo (PNG, SVG, JPEG or WebP, at most
    /// 512 KiB), shown beside its name and served at `/logo`.
    pub logo: Option<String>,
    /// The association's SIREN (9 digits), which names the FEC file.
    pub siren: String,
    /// Last day of the fiscal year, `MM-DD` (31 December by default).
    pub fiscal_year_end: String,
    /// Highest amount a member may pay at once, in cents. Default: the larger of the
    /// balance owed and 1 000 €.
    pub pay_ceiling_cents: Option<i64>,
    /// Gateways offered to members, in this order.
    pub gateways: Vec<String>,
    /// Most monthly terms a member may split a payment into, with gateways that support
    /// installments (1: paying in several times is not offered).
    pub installments_max_terms: u8,
    /// Days a payment request's link stays valid.
    pub payment_request_expiry_days: i64,
    pub sandbox: SandboxSettings,
    pub helloasso: crate::gateways::helloasso::HelloAssoSettings,
    pub stripe: crate::gateways::stripe::StripeSettings,
    pub mollie: crate::gateways::mollie::MollieSettings,
    pub payplug: crate::gateways::payplug::PayPlugSettings,
    pub paypal: crate::gateways::paypal::PayPalSettings,
    pub payzen: crate::gateways::payzen::PayZenSettings,
    pub stancer: crate::gateways::stancer::StancerSettings,
    pub accounts: ChartOfAccounts,
    pub reconcile: ReconcileSettings,
    pub mail: MailSettings,
    /// Timeout of every call to a gateway, in milliseconds.
    pub gateway_timeout_ms: u64,
    /// Login throttling: failures allowed per account and per address in the window.
    pub login_max_failures_per_account: i64,
    pub login_max_failures_per_address: i64,
    pub login_throttle_window_secs: i64,
    /// Worker threads of the HTTP server (default: one per core).
    pub workers: Option<usize>,
    /// Password hashes (argon2id) computed at once (default: half the cores, at least one).
    pub password_hashes_at_once: Option<usize>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct SandboxSettings {
    /// Serve the sandbox gateway's emulator (API and hosted page) under `/sandbox/`.
    pub emulator: bool,
    /// Where obole's sandbox connector finds the sandbox API; defaults to this portal's own
    /// `/sandbox/api`.
    pub api_base: Option<String>,
    pub api_key: SecretString,
    pub webhook_secret: SecretString,
    /// Delays between the emulator's notification attempts, in milliseconds.
    pub notify_retry_ms: Vec<u64>,
}

/// Outgoing mail.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct MailSettings {
    /// `file` (each mail written as an .eml file in `dir`) or `smtp`.
    pub transport: String,
    pub dir: String,
    /// The sender, e.g. `Association <tresorier@exemple.org>`.
    pub from: String,
    pub smtp_host: String,
    pub smtp_port: u16,
    /// `starttls`, `tls` (implicit, port 465) or `none` (local relays only).
    pub smtp_tls: String,
    pub smtp_username: Option<String>,
    pub smtp_password: Option<SecretString>,
    /// How often the worker looks for mail to send, in milliseconds.
    pub poll_ms: u64,
    /// Attempts before a mail is given up and shown to managers as failed.
    pub max_attempts: i64,
}

impl Default for MailSettings {
    fn default() -> Self {
        MailSettings {
            transport: "file".into(),
            dir: "mail".into(),
            from: "Association de démonstration <tresorier@exemple.org>".into(),
            smtp_host: "localhost".into(),
            smtp_port: 587,
            smtp_tls: "starttls".into(),
            smtp_username: None,
            smtp_password: None,
            poll_ms: 2_000,
            max_attempts: 8,
        }
    }
}

/// The reconciliation sweep of open payment attempts.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ReconcileSettings {
    /// Seconds between sweeps; 0 turns the background sweep off (`obole reconcile` still works).
    pub interval_secs: u64,
    /// Attempts still open this long after creation are asked about at their gateway.
    pub pending_after_secs: i64,
    /// Attempts still unpaid this long after creation are cancelled (where the gateway allows)
    /// and marked expired.
    pub expire_after_secs: i64,
    /// Attempts looked at per sweep.
    pub batch: i64,
    /// Seconds an attempt (or refund) asked about by one process is left alone by the others'
    /// sweeps, so that several processes never ask a gateway about it at once.
    pub lease_secs: i64,
}

impl Default for ReconcileSettings {
    fn default() -> Self {
        ReconcileSettings {
            interval_secs: 300,
            pending_after_secs: 15 * 60,
            expire_after_secs: 2 * 24 * 3600,
            batch: 500,
            lease_secs: 120,
        }
    }
}

/// Accounts of the association's chart (French plan comptable associatif by default).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ChartOfAccounts {
    pub members: String,
    pub gateway_clearing: String,
    pub gateway_fees: String,
    pub income_dues: String,
    pub income_insurance: String,
    pub income_outings: String,
    pub income_shirts: String,
    pub income_other: String,
}

impl ChartOfAccounts {
    /// The translation key of the account's name (`account_name.*`: in French, the names of
    /// the plan comptable associatif, which exports use).
    pub fn label_key(&self, account: &str) -> Option<&'static str> {
        Some(if account == self.members {
            "account_name.members"
        } else if account == self.gateway_clearing {
            "account_name.clearing"
        } else if account == self.gateway_fees {
            "account_name.fees"
        } else if account == self.income_dues {
            "account_name.dues"
        } else if account == self.income_insurance {
            "account_name.insurance"
        } else if account == self.income_outings {
            "account_name.outings"
        } else if account == self.income_shirts {
            "account_name.shirts"
        } else if account == self.income_other {
            "account_name.other"
        } else {
            return None;
        })
    }

    pub fn income_for(&self, category: ChargeCategory) -> &str {
        match category {
            ChargeCategory::Dues => &self.income_dues,
            ChargeCategory::Insurance => &self.income_insurance,
            ChargeCategory::Outings => &self.income_outings,
            ChargeCategory::Shirts => &self.income_shirts,
            ChargeCategory::Other => &self.income_other,
        }
    }
}

impl Default for ChartOfAccounts {
    fn default() -> Self {
        ChartOfAccounts {
            members: "411".into(),
            gateway_clearing: "5112".into(),
            gateway_fees: "627".into(),
            income_dues: "756".into(),
            income_insurance: "7068".into(),
            income_outings: "706".into(),
            income_shirts: "707".into(),
            income_other: "758".into(),
        }
    }
}

impl Default for SandboxSettings {
    fn default() -> Self {
        SandboxSettings {
            emulator: true,
            api_base: None,
            api_key: SecretString::from("sk_sandbox_demo_key"),
            webhook_secret: SecretString::from("whsec_sandbox_demo_secret"),
            notify_retry_ms: vec![0, 500, 2_000, 5_000, 15_000, 60_000],
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            host: "127.0.0.1".into(),
            port: 8080,
            database_url: "sqlite://obole.db?mode=rwc".into(),
            db_max_connections: 8,
            db_busy_timeout_ms: crate::db::DEFAULT_BUSY_TIMEOUT_MS,
            base_url: None,
            secret_key: None,
            settings_key: None,
            association_name: "Association de démonstration".into(),
            logo: None,
            siren: "000000000".into(),
            fiscal_year_end: "12-31".into(),
            pay_ceiling_cents: None,
            gateways: vec!["sandbox".into()],
            installments_max_terms: 1,
            payment_request_expiry_days: 30,
            sandbox: SandboxSettings::default(),
            helloasso: Default::default(),
            stripe: Default::default(),
            mollie: Default::default(),
            payplug: Default::default(),
            paypal: Default::default(),
            payzen: Default::default(),
            stancer: Default::default(),
            accounts: ChartOfAccounts::default(),
            reconcile: ReconcileSettings::default(),
            mail: MailSettings::default(),
            gateway_timeout_ms: 20_000,
            login_max_failures_per_account: 5,
            login_max_failures_per_address: 30,
            login_throttle_window_secs: 15 * 60,
            workers: None,
            password_hashes_at_once: None,
        }
    }
}

impl Settings {
    pub fn load() -> Result<Settings, Box<figment::Error>> {
        let file = std::env::var("OBOLE_CONFIG").unwrap_or_else(|_| "obole.toml".into());
        Figment::new()
            .merge(Toml::file(file))
            .merge(Env::prefixed("OBOLE_").ignore(&["config"]).split("__"))
            .extract()
            .map_err(Box::new)
    }
}
