//! Gateway settings an admin saves in the back office, over the configuration: which gateways
//! members are offered and in what order, the default one, each gateway's test mode, and its
//! credentials, sealed with the key from the environment (see `sealed`).
//!
//! The effective settings are the configuration (file and environment) with what an admin
//! saved on top. The registry is rebuilt from them after each save, and every process looks
//! for changes made by another one every little while.

mod fields;
pub mod sealed;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};
use sqlx::Row;

pub use self::fields::{
    Credentials, Field, GATEWAY_IDS, check, current_value, field_of, fields_of, known,
};
pub use self::sealed::{KeyError, OpenError, SettingsKey};
use crate::config::Settings;
use crate::db::{self, Pool};
use crate::gateways::{self, Gateway, Lineup, Registry, RegistryHandle};

/// How often a process looks for settings saved by another process.
const REFRESH_EVERY: Duration = Duration::from_secs(30);

/// What an admin saved for one gateway.
#[derive(Debug, Clone)]
pub struct Stored {
    pub enabled: bool,
    pub test_mode: bool,
    pub position: i64,
    pub is_default: bool,
    /// The sealed credentials and the fingerprint of the key that sealed them.
    sealed: Option<(String, String)>,
    pub revision: i64,
    pub updated_at: String,
    pub updated_by: Option<String>,
}

impl Stored {
    /// The fingerprint of the key that sealed the saved credentials, if any are saved.
    pub fn key_fingerprint(&self) -> Option<&str> {
        self.sealed.as_ref().map(|(_, key)| key.as_str())
    }
}

/// The saved credentials of one gateway, as they stand with the current key.
#[derive(Debug, Clone)]
pub enum Saved {
    Nothing,
    Open(Credentials),
    Locked(Lock),
}

/// Why saved credentials cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lock {
    /// Credentials are stored, but no key is set.
    NoKey,
    Sealed(OpenError),
}

/// One gateway as it stands: the configuration, then what an admin saved.
#[derive(Debug, Clone)]
pub struct GatewayState {
    pub id: &'static str,
    pub enabled: bool,
    pub position: i64,
    pub is_default: bool,
    pub stored: Option<Stored>,
    pub saved: Saved,
}

impl GatewayState {
    pub fn revision(&self) -> i64 {
        self.stored.as_ref().map_or(0, |s| s.revision)
    }

    pub fn lock(&self) -> Option<&Lock> {
        match &self.saved {
            Saved::Locked(lock) => Some(lock),
            _ => None,
        }
    }
}

/// Every gateway's state, the settings tree the connectors read, and who is offered.
pub struct Snapshot {
    pub gateways: Vec<GatewayState>,
    /// The configuration with the admins' values over it.
    pub settings: Settings,
    pub lineup: Lineup,
}

impl Snapshot {
    pub fn get(&self, id: &str) -> Option<&GatewayState> {
        self.gateways.iter().find(|g| g.id == id)
    }
}

/// An admin's change to one gateway, already parsed.
pub struct Change {
    pub enabled: bool,
    pub test_mode: bool,
    pub position: i64,
    pub is_default: bool,
    /// Drop the saved credentials (the configuration's apply again), before `values`.
    pub forget: bool,
    /// Values typed (empty fields are left out: they keep what is saved).
    pub values: Vec<(Field, SecretString)>,
    /// The revision the form was made from.
    pub revision: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    /// Refused, with the message for the admin (in the request's language).
    #[error("{0}")]
    Invalid(String),
    /// Someone saved this gateway since the form was shown.
    #[error("changed in the meantime")]
    Conflict,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// What a save changed, for the flash message.
#[derive(Debug)]
pub struct SaveOutcome {
    /// Names of the credentials changed (values never leave this module).
    pub credentials_changed: Vec<String>,
}

/// Builds registries from the configuration and the stored settings, one at a time.
pub struct GatewaySetup {
    config: Arc<Settings>,
    key: Option<SettingsKey>,
    base_url: String,
    http: reqwest::Client,
    /// The stored settings' fingerprint when the registry in use was built.
    loaded: tokio::sync::Mutex<Option<(i64, i64)>>,
}

impl std::fmt::Debug for GatewaySetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewaySetup")
            .field("key", &self.key)
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl GatewaySetup {
    /// Reads the settings key from the configuration: a malformed key stops the start.
    pub fn new(
        config: Arc<Settings>,
        base_url: &str,
        http: reqwest::Client,
    ) -> anyhow::Result<GatewaySetup> {
        let key = match &config.settings_key {
            Some(encoded) => Some(SettingsKey::parse(encoded.expose_secret()).context(
                "invalid OBOLE_SETTINGS_KEY: set it to the base64 of 32 random bytes \
                 (openssl rand -base64 32)",
            )?),
            None => None,
        };
        Ok(GatewaySetup {
            config,
            key,
            base_url: base_url.to_string(),
            http,
            loaded: tokio::sync::Mutex::new(None),
        })
    }

    pub fn key(&self) -> Option<&SettingsKey> {
        self.key.as_ref()
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The connector of gateway `id` as `settings` configure it, offered or not (to show what
    /// it can do, and to test its connection).
    pub fn connector(&self, settings: &Settings, id: &str) -> anyhow::Result<Arc<dyn Gateway>> {
        gateways::connector(id, settings, &self.base_url, self.http.clone())
    }

    pub async fn snapshot(&self, pool: &Pool) -> anyhow::Result<Snapshot> {
        snapshot(pool, &self.config, self.key.as_ref()).await
    }

    /// A registry from the configuration and the stored settings. Credentials that do not open
    /// leave their gateway out (said in the log and on the admin page), never half-configured.
    pub async fn build(&self, pool: &Pool) -> anyhow::Result<Registry> {
        let fingerprint = stored_fingerprint(pool).await?;
        let snapshot = self.snapshot(pool).await?;
        for state in &snapshot.gateways {
            if let Some(lock) = state.lock() {
                tracing::error!(
                    gateway = state.id,
                    problem = ?lock,
                    "saved credentials of this gateway cannot be opened: it is left out until \
                     the right OBOLE_SETTINGS_KEY is set or an admin enters them again"
                );
            }
        }
        let registry = Registry::from_lineup(
            &snapshot.settings,
            &snapshot.lineup,
            &self.base_url,
            self.http.clone(),
        )?;
        *self.loaded.lock().await = Some(fingerprint);
        Ok(registry)
    }

    /// Rebuilds the registry and puts it in use. Rebuilds run one at a time, each reading the
    /// latest stored settings, so the last one wins.
    pub async fn reload(&self, pool: &Pool, handle: &RegistryHandle) -> anyhow::Result<()> {
        let mut loaded = self.loaded.lock().await;
        let fingerprint = stored_fingerprint(pool).await?;
        let snapshot = self.snapshot(pool).await?;
        let registry = Registry::from_lineup(
            &snapshot.settings,
            &snapshot.lineup,
            &self.base_url,
            self.http.clone(),
        )?;
        handle.replace(registry);
        *loaded = Some(fingerprint);
        Ok(())
    }

    /// Looks every little while for settings saved by another process, and reloads then.
    pub fn spawn_refresh(self: Arc<Self>, pool: Pool, handle: RegistryHandle) {
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(REFRESH_EVERY);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticker.tick().await;
            loop {
                ticker.tick().await;
                let changed = match stored_fingerprint(&pool).await {
                    Ok(now) => *self.loaded.lock().await != Some(now),
                    Err(error) => {
                        tracing::warn!(error = ?error, "could not look for new gateway settings");
                        false
                    }
                };
                if changed && let Err(error) = self.reload(&pool, &handle).await {
                    tracing::error!(error = ?error, "could not reload the gateway settings");
                }
            }
        });
    }

    /// Saves an admin's change to `gateway`: checked whole, then written in one transaction
    /// with its audit entry (which names the credentials changed, never their values).
    pub async fn save(
        &self,
        pool: &Pool,
        gateway: &'static str,
        change: Change,
        actor_id: &str,
    ) -> Result<SaveOutcome, SaveError> {
        let snapshot = self.snapshot(pool).await?;
        let state = snapshot
            .get(gateway)
            .ok_or_else(|| anyhow::anyhow!("unknown gateway {gateway}"))?;
        if change.revision != state.revision() {
            return Err(SaveError::Conflict);
        }
        if change.is_default && !change.enabled {
            return Err(SaveError::Invalid(
                crate::i18n::current()
                    .t("gateway_settings.default_disabled")
                    .into(),
            ));
        }

        // The credentials after the change; None keeps a blob that does not open as it is.
        let before_names = match &state.saved {
            Saved::Open(saved) => saved.names(),
            _ => Vec::new(),
        };
        let mut changed: Vec<String> = Vec::new();
        let next = match &state.saved {
            Saved::Locked(_) if !change.forget && change.values.is_empty() => None,
            Saved::Open(saved) if !change.forget => Some(saved.clone()),
            _ => {
                if change.forget {
                    changed.extend(before_names.iter().cloned());
                }
                Some(Credentials::default())
            }
        };
        let next = next.map(|mut next| {
            for (field, value) in &change.values {
                let now = fields::current_value(&snapshot.settings, gateway, field.name);
                let same = now.is_some_and(|n| n.expose_secret() == value.expose_secret());
                if change.forget || !same {
                    next.set(field.name, value.clone());
                    if !changed.iter().any(|c| c == field.name) {
                        changed.push(field.name.to_string());
                    }
                }
            }
            next
        });
        let rewrite = !changed.is_empty()
            || (matches!(state.saved, Saved::Locked(_)) && next.is_some())
            || (change.forget && state.stored.as_ref().is_some_and(|s| s.sealed.is_some()));

        // The mode the gateway would really be in, with these credentials.
        if let Some(next) = &next {
            let mut settings = (*self.config).clone();
            fields::apply(&mut settings, gateway, next, Some(change.test_mode));
            let connector = self.connector(&settings, gateway)?;
            if connector.test_mode() != change.test_mode {
                return Err(SaveError::Invalid(fields::mode_mismatch(
                    gateway,
                    change.test_mode,
                    fields::emulated(&settings, gateway),
                )));
            }
        }

        let sealed = match (&next, rewrite) {
            (Some(next), true) if !next.is_empty() => {
                let key = self.key.as_ref().ok_or_else(|| {
                    SaveError::Invalid(crate::i18n::current().t("gateway_settings.no_key").into())
                })?;
                Some((
                    key.seal(gateway, &next.to_json()?)?,
                    key.fingerprint().to_string(),
                ))
            }
            (_, true) => None,
            (_, false) => state.stored.as_ref().and_then(|s| s.sealed.clone()),
        };

        let mut tx = pool
            .begin()
            .await
            .context("could not start a transaction")?;
        let written = if state.stored.is_some() {
            sqlx::query(
                "UPDATE gateway_settings SET enabled = $1, test_mode = $2, position = $3, \
                 is_default = $4, credentials = $5, key_id = $6, revision = revision + 1, \
                 updated_at = $7, updated_by = $8 WHERE gateway = $9 AND revision = $10",
            )
            .bind(i64::from(change.enabled))
            .bind(i64::from(change.test_mode))
            .bind(change.position)
            .bind(i64::from(change.is_default))
            .bind(sealed.as_ref().map(|s| s.0.clone()))
            .bind(sealed.as_ref().map(|s| s.1.clone()))
            .bind(db::now_text())
            .bind(actor_id)
            .bind(gateway)
            .bind(change.revision)
            .execute(&mut *tx)
            .await
        } else {
            sqlx::query(
                "INSERT INTO gateway_settings (gateway, enabled, test_mode, position, is_default, \
                 credentials, key_id, revision, updated_at, updated_by) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, $9) ON CONFLICT (gateway) DO NOTHING",
            )
            .bind(gateway)
            .bind(i64::from(change.enabled))
            .bind(i64::from(change.test_mode))
            .bind(change.position)
            .bind(i64::from(change.is_default))
            .bind(sealed.as_ref().map(|s| s.0.clone()))
            .bind(sealed.as_ref().map(|s| s.1.clone()))
            .bind(db::now_text())
            .bind(actor_id)
            .execute(&mut *tx)
            .await
        }
        .context("could not save the gateway settings")?;
        if written.rows_affected() != 1 {
            return Err(SaveError::Conflict);
        }
        if change.is_default {
            // Another gateway's form that still says "default" is now out of date.
            sqlx::query(
                "UPDATE gateway_settings SET is_default = 0, revision = revision + 1 \
                 WHERE gateway <> $1 AND is_default = 1",
            )
            .bind(gateway)
            .execute(&mut *tx)
            .await
            .context("could not move the default gateway")?;
        }
        let after_names = match (&next, rewrite) {
            (Some(next), true) => next.names(),
            _ => before_names.clone(),
        };
        crate::audit::record(
            &mut *tx,
            actor_id,
            "gateway.settings",
            &format!("gateway:{gateway}"),
            Some(serde_json::json!({
                "enabled": state.enabled,
                "test_mode": state.stored.as_ref().map(|s| s.test_mode),
                "position": state.position,
                "is_default": state.is_default,
                "credentials_saved": before_names,
            })),
            Some(serde_json::json!({
                "enabled": change.enabled,
                "test_mode": change.test_mode,
                "position": change.position,
                "is_default": change.is_default,
                "credentials_saved": after_names,
                "credentials_changed": changed,
            })),
        )
        .await?;
        tx.commit()
            .await
            .context("could not save the gateway settings")?;
        Ok(SaveOutcome {
            credentials_changed: changed,
        })
    }
}

async fn stored_fingerprint(pool: &Pool) -> anyhow::Result<(i64, i64)> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(revision), 0) AS BIGINT) AS r \
         FROM gateway_settings",
    )
    .fetch_one(pool)
    .await
    .context("could not read the gateway settings")?;
    Ok((row.try_get("n")?, row.try_get("r")?))
}

async fn load_stored(pool: &Pool) -> anyhow::Result<HashMap<String, Stored>> {
    let rows = sqlx::query(
        "SELECT g.gateway, g.enabled, g.test_mode, g.position, g.is_default, g.credentials, \
         g.key_id, g.revision, g.updated_at, u.email \
         FROM gateway_settings g LEFT JOIN users u ON u.id = g.updated_by",
    )
    .fetch_all(pool)
    .await
    .context("could not read the gateway settings")?;
    rows.iter()
        .map(|r| {
            let credentials: Option<String> = r.try_get("credentials")?;
            let key_id: Option<String> = r.try_get("key_id")?;
            Ok((
                r.try_get::<String, _>("gateway")?,
                Stored {
                    enabled: r.try_get::<i64, _>("enabled")? != 0,
                    test_mode: r.try_get::<i64, _>("test_mode")? != 0,
                    position: r.try_get("position")?,
                    is_default: r.try_get::<i64, _>("is_default")? != 0,
                    sealed: credentials.map(|c| (c, key_id.unwrap_or_default())),
                    revision: r.try_get("revision")?,
                    updated_at: r.try_get("updated_at")?,
                    updated_by: r.try_get("email")?,
                },
            ))
        })
        .collect()
}

/// Every gateway's state and the settings tree: the configuration, then what admins saved.
async fn snapshot(
    pool: &Pool,
    config: &Settings,
    key: Option<&SettingsKey>,
) -> anyhow::Result<Snapshot> {
    if let Some(unknown) = config.gateways.iter().find(|g| known(g).is_none()) {
        anyhow::bail!("unknown gateway {unknown:?} in settings.gateways");
    }
    let mut stored = load_stored(pool).await?;
    let paid_through: HashSet<String> = sqlx::query("SELECT DISTINCT gateway FROM payments")
        .fetch_all(pool)
        .await
        .context("could not read the gateways of payments")?
        .iter()
        .map(|r| r.try_get::<String, _>("gateway"))
        .collect::<Result<_, _>>()?;
    let mut settings = config.clone();
    let mut gateways = Vec::new();
    for (index, id) in GATEWAY_IDS.iter().copied().enumerate() {
        let configured = config.gateways.iter().position(|g| g == id);
        let stored = stored.remove(id);
        let saved = match stored.as_ref().and_then(|s| s.sealed.as_ref()) {
            None => Saved::Nothing,
            Some((blob, key_id)) => match key {
                None => Saved::Locked(Lock::NoKey),
                Some(key) => match key.open(id, blob, key_id) {
                    Ok(json) => match Credentials::from_json(&json) {
                        Ok(credentials) => Saved::Open(credentials),
                        Err(_) => Saved::Locked(Lock::Sealed(OpenError::Damaged)),
                    },
                    Err(problem) => Saved::Locked(Lock::Sealed(problem)),
                },
            },
        };
        let state = match &stored {
            Some(s) => GatewayState {
                id,
                enabled: s.enabled,
                position: s.position,
                is_default: s.is_default,
                stored: stored.clone(),
                saved,
            },
            None => GatewayState {
                id,
                enabled: configured.is_some(),
                // After those the configuration offers, in the page's order.
                position: configured
                    .map_or((config.gateways.len() + index) as i64 + 1, |p| p as i64 + 1),
                is_default: false,
                stored: None,
                saved,
            },
        };
        if let Some(s) = &state.stored {
            let none = Credentials::default();
            let credentials = match &state.saved {
                Saved::Open(credentials) => credentials,
                _ => &none,
            };
            fields::apply(&mut settings, id, credentials, Some(s.test_mode));
        }
        gateways.push((index, state));
    }

    let mut offered: Vec<&(usize, GatewayState)> = gateways
        .iter()
        .filter(|(_, g)| g.enabled && g.lock().is_none())
        .collect();
    offered.sort_by_key(|(index, g)| (g.position, *index));
    let default = offered
        .iter()
        .find(|(_, g)| g.is_default)
        .map(|(_, g)| g.id.to_string());
    let offered: Vec<String> = offered.iter().map(|(_, g)| g.id.to_string()).collect();
    let kept = gateways
        .iter()
        .filter(|(_, g)| {
            !offered.iter().any(|o| o == g.id)
                && g.lock().is_none()
                && (g.stored.is_some()
                    || config.gateways.iter().any(|c| c == g.id)
                    || paid_through.contains(g.id))
        })
        .map(|(_, g)| g.id.to_string())
        .collect();
    Ok(Snapshot {
        gateways: gateways.into_iter().map(|(_, g)| g).collect(),
        settings,
        lineup: Lineup {
            offered,
            kept,
            default,
        },
    })
}
