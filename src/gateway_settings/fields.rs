//! What an admin may enter for each gateway, how each value is checked, and where it lands in
//! the settings tree that the connectors read.

use std::collections::BTreeMap;

use secrecy::zeroize::Zeroizing;
use secrecy::{ExposeSecret, SecretString};

use crate::config::Settings;

/// Every gateway obole knows, in the order the admin page shows them when none is ordered.
pub const GATEWAY_IDS: [&str; 8] = [
    "sandbox",
    "helloasso",
    "stripe",
    "paypal",
    "mollie",
    "payplug",
    "payzen",
    "stancer",
];

/// The `&'static` id of a known gateway.
pub fn known(id: &str) -> Option<&'static str> {
    GATEWAY_IDS.iter().copied().find(|g| *g == id)
}

/// One credential of a gateway, as the admin form shows it.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub name: &'static str,
    /// The translation key of its label (`gateway_field.*`).
    label_key: &'static str,
    /// Never shown back: only "enregistré (…abcd)".
    pub secret: bool,
    /// The translation key of what a valid value looks like, shown under the field; empty
    /// when there is nothing to say.
    hint_key: &'static str,
}

impl Field {
    /// Its label, in the reader's language.
    pub fn label(&self) -> &'static str {
        crate::i18n::current().t(self.label_key)
    }

    /// What a valid value looks like, in the reader's language (empty: nothing to say).
    pub fn hint(&self) -> &'static str {
        if self.hint_key.is_empty() {
            ""
        } else {
            crate::i18n::current().t(self.hint_key)
        }
    }
}

const fn secret(name: &'static str, label_key: &'static str, hint_key: &'static str) -> Field {
    Field {
        name,
        label_key,
        secret: true,
        hint_key,
    }
}

const fn plain(name: &'static str, label_key: &'static str, hint_key: &'static str) -> Field {
    Field {
        name,
        label_key,
        secret: false,
        hint_key,
    }
}

pub fn fields_of(gateway: &str) -> &'static [Field] {
    const SANDBOX: &[Field] = &[
        secret("api_key", "gateway_field.api_key", ""),
        secret("webhook_secret", "gateway_field.notification_secret", ""),
    ];
    const HELLOASSO: &[Field] = &[
        plain("client_id", "gateway_field.client_id", ""),
        secret("client_secret", "gateway_field.client_secret", ""),
        plain(
            "organization_slug",
            "gateway_field.organization_slug",
            "gateway_field.organization_slug_hint",
        ),
        secret("signature_key", "gateway_field.signature_key", ""),
    ];
    const STRIPE: &[Field] = &[
        secret(
            "secret_key",
            "gateway_field.secret_key",
            "gateway_field.sk_hint",
        ),
        secret(
            "webhook_secret",
            "gateway_field.webhook_secret",
            "gateway_field.whsec_hint",
        ),
    ];
    const PAYPAL: &[Field] = &[
        plain("client_id", "gateway_field.rest_client_id", ""),
        secret("client_secret", "gateway_field.rest_client_secret", ""),
        plain(
            "webhook_id",
            "gateway_field.webhook_id",
            "gateway_field.webhook_id_hint",
        ),
    ];
    const MOLLIE: &[Field] = &[secret(
        "api_key",
        "gateway_field.api_key",
        "gateway_field.mollie_hint",
    )];
    const PAYPLUG: &[Field] = &[secret(
        "secret_key",
        "gateway_field.secret_key",
        "gateway_field.sk_hint",
    )];
    const PAYZEN: &[Field] = &[
        plain(
            "shop_id",
            "gateway_field.shop_id",
            "gateway_field.shop_id_hint",
        ),
        secret(
            "password",
            "gateway_field.rest_password",
            "gateway_field.payzen_hint",
        ),
    ];
    const STANCER: &[Field] = &[secret(
        "secret_key",
        "gateway_field.secret_key",
        "gateway_field.stancer_hint",
    )];
    match gateway {
        "sandbox" => SANDBOX,
        "helloasso" => HELLOASSO,
        "stripe" => STRIPE,
        "paypal" => PAYPAL,
        "mollie" => MOLLIE,
        "payplug" => PAYPLUG,
        "payzen" => PAYZEN,
        "stancer" => STANCER,
        _ => &[],
    }
}

pub fn field_of(gateway: &str, name: &str) -> Option<Field> {
    fields_of(gateway).iter().copied().find(|f| f.name == name)
}

/// Credentials an admin saved for one gateway, by field name. `Debug` shows the names only.
#[derive(Clone, Default)]
pub struct Credentials(BTreeMap<String, SecretString>);

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl Credentials {
    pub fn get(&self, name: &str) -> Option<&SecretString> {
        self.0.get(name)
    }

    pub fn set(&mut self, name: &str, value: SecretString) {
        self.0.insert(name.to_string(), value);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn names(&self) -> Vec<String> {
        self.0.keys().cloned().collect()
    }

    /// The JSON the blob seals, wiped from memory once sealed.
    pub fn to_json(&self) -> anyhow::Result<Zeroizing<Vec<u8>>> {
        let exposed: BTreeMap<&str, &str> = self
            .0
            .iter()
            .map(|(k, v)| (k.as_str(), v.expose_secret()))
            .collect();
        Ok(Zeroizing::new(serde_json::to_vec(&exposed)?))
    }

    pub fn from_json(json: &[u8]) -> anyhow::Result<Credentials> {
        let map: BTreeMap<String, SecretString> = serde_json::from_slice(json)
            .map_err(|_| anyhow::anyhow!("the opened credentials are not a JSON object"))?;
        Ok(Credentials(map))
    }
}

/// Checks a value typed for `field` of `gateway`; the error is the message for the admin, in
/// the reader's language.
pub fn check(gateway: &str, field: &Field, value: &str) -> Result<(), String> {
    let lang = crate::i18n::current();
    let label = field.label();
    if value.chars().count() > 500 {
        return Err(lang.tf("gateway_settings.too_long", &[("label", label)]));
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(lang.tf("gateway_settings.whitespace", &[("label", label)]));
    }
    let starts = |prefixes: &[&str]| prefixes.iter().any(|p| value.starts_with(p));
    let ok = match (gateway, field.name) {
        ("stripe", "secret_key") => starts(&["sk_test_", "sk_live_", "rk_test_", "rk_live_"]),
        ("stripe", "webhook_secret") => starts(&["whsec_"]),
        ("mollie", "api_key") => starts(&["test_", "live_"]),
        ("payplug", "secret_key") => starts(&["sk_test_", "sk_live_"]),
        ("payzen", "shop_id") => value.len() == 8 && value.bytes().all(|b| b.is_ascii_digit()),
        ("payzen", "password") => starts(&["testpassword_", "prodpassword_"]),
        ("stancer", "secret_key") => starts(&["stest_", "sprod_"]),
        // The slug goes into the API's paths.
        ("helloasso", "organization_slug") => value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
        ("paypal", "webhook_id") => value.bytes().all(|b| b.is_ascii_alphanumeric()),
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err(lang.tf(
            "gateway_settings.bad_shape",
            &[("label", label), ("hint", field.hint())],
        ))
    }
}

/// The value a connector would use now for `field` of `gateway`, from `settings`.
pub fn current_value(settings: &Settings, gateway: &str, field: &str) -> Option<SecretString> {
    let plain = |s: &String| (!s.is_empty()).then(|| SecretString::from(s.clone()));
    let secret = |s: &SecretString| {
        (!s.expose_secret().is_empty()).then(|| SecretString::from(s.expose_secret()))
    };
    match (gateway, field) {
        ("sandbox", "api_key") => secret(&settings.sandbox.api_key),
        ("sandbox", "webhook_secret") => secret(&settings.sandbox.webhook_secret),
        ("helloasso", "client_id") => plain(&settings.helloasso.client_id),
        ("helloasso", "client_secret") => secret(&settings.helloasso.client_secret),
        ("helloasso", "organization_slug") => plain(&settings.helloasso.organization_slug),
        ("helloasso", "signature_key") => {
            settings.helloasso.signature_key.as_ref().and_then(secret)
        }
        ("stripe", "secret_key") => secret(&settings.stripe.secret_key),
        ("stripe", "webhook_secret") => secret(&settings.stripe.webhook_secret),
        ("paypal", "client_id") => plain(&settings.paypal.client_id),
        ("paypal", "client_secret") => secret(&settings.paypal.client_secret),
        ("paypal", "webhook_id") => plain(&settings.paypal.webhook_id),
        ("mollie", "api_key") => secret(&settings.mollie.api_key),
        ("payplug", "secret_key") => secret(&settings.payplug.secret_key),
        ("payzen", "shop_id") => plain(&settings.payzen.shop_id),
        ("payzen", "password") => secret(&settings.payzen.password),
        ("stancer", "secret_key") => secret(&settings.stancer.secret_key),
        _ => None,
    }
}

/// Puts what an admin saved for `gateway` over the configuration's values. The test mode is a
/// setting of its own only where the gateway has one (HelloAsso's sandbox, PayPal's live
/// flag); elsewhere the key decides, and the declared mode is checked against it on saving.
pub fn apply(settings: &mut Settings, gateway: &str, saved: &Credentials, test_mode: Option<bool>) {
    let text = |name: &str, into: &mut String| {
        if let Some(v) = saved.get(name) {
            *into = v.expose_secret().to_string();
        }
    };
    let key = |name: &str, into: &mut SecretString| {
        if let Some(v) = saved.get(name) {
            *into = v.clone();
        }
    };
    match gateway {
        "sandbox" => {
            key("api_key", &mut settings.sandbox.api_key);
            key("webhook_secret", &mut settings.sandbox.webhook_secret);
        }
        "helloasso" => {
            let ha = &mut settings.helloasso;
            text("client_id", &mut ha.client_id);
            key("client_secret", &mut ha.client_secret);
            text("organization_slug", &mut ha.organization_slug);
            if let Some(v) = saved.get("signature_key") {
                ha.signature_key = Some(v.clone());
            }
            if let Some(test) = test_mode {
                ha.sandbox = test;
            }
        }
        "stripe" => {
            key("secret_key", &mut settings.stripe.secret_key);
            key("webhook_secret", &mut settings.stripe.webhook_secret);
        }
        "paypal" => {
            let paypal = &mut settings.paypal;
            text("client_id", &mut paypal.client_id);
            key("client_secret", &mut paypal.client_secret);
            text("webhook_id", &mut paypal.webhook_id);
            if let Some(test) = test_mode {
                paypal.live = !test;
            }
        }
        "mollie" => key("api_key", &mut settings.mollie.api_key),
        "payplug" => key("secret_key", &mut settings.payplug.secret_key),
        "payzen" => {
            text("shop_id", &mut settings.payzen.shop_id);
            key("password", &mut settings.payzen.password);
        }
        "stancer" => key("secret_key", &mut settings.stancer.secret_key),
        _ => {}
    }
}

/// Why a gateway would not be in the mode the admin declared, in the admin's words (and
/// language).
pub fn mode_mismatch(gateway: &str, declared_test: bool, emulated: bool) -> String {
    let lang = crate::i18n::current();
    if declared_test {
        let live_key = lang.t(match gateway {
            "stripe" | "payplug" => "gateway_settings.live_key_sk",
            "mollie" => "gateway_settings.live_key_mollie",
            "payzen" => "gateway_settings.live_key_payzen",
            "stancer" => "gateway_settings.live_key_stancer",
            _ => "gateway_settings.live_key_other",
        });
        lang.tf("gateway_settings.test_mode_live_key", &[("key", live_key)])
    } else if gateway == "sandbox" {
        lang.t("gateway_settings.sandbox_always_test").into()
    } else if emulated && matches!(gateway, "helloasso" | "paypal") {
        lang.t("gateway_settings.emulated_stays_test").into()
    } else {
        let test_key = lang.t(match gateway {
            "stripe" | "payplug" => "gateway_settings.test_key_sk",
            "mollie" => "gateway_settings.test_key_mollie",
            "payzen" => "gateway_settings.test_key_payzen",
            "stancer" => "gateway_settings.test_key_stancer",
            _ => "gateway_settings.test_key_other",
        });
        lang.tf("gateway_settings.live_mode_test_key", &[("key", test_key)])
    }
}

/// Whether the configuration points `gateway` at obole's own emulator.
pub fn emulated(settings: &Settings, gateway: &str) -> bool {
    match gateway {
        "sandbox" => true,
        "helloasso" => settings.helloasso.emulator,
        "stripe" => settings.stripe.emulator,
        "paypal" => settings.paypal.emulator,
        "mollie" => settings.mollie.emulator,
        "payplug" => settings.payplug.emulator,
        "payzen" => settings.payzen.emulator,
        "stancer" => settings.stancer.emulator,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_gateway_has_fields_and_each_lands_in_the_settings() {
        for gateway in GATEWAY_IDS {
            assert!(!fields_of(gateway).is_empty(), "{gateway}");
            for field in fields_of(gateway) {
                let mut saved = Credentials::default();
                let value = format!("value_for_{gateway}_{}", field.name);
                saved.set(field.name, SecretString::from(value.clone()));
                let mut settings = Settings::default();
                apply(&mut settings, gateway, &saved, None);
                let now = current_value(&settings, gateway, field.name)
                    .unwrap_or_else(|| panic!("{gateway}.{} is read", field.name));
                assert_eq!(now.expose_secret(), value, "{gateway}.{}", field.name);
            }
        }
    }

    #[test]
    fn every_field_has_a_label_and_its_hint_in_both_languages() {
        for gateway in GATEWAY_IDS {
            for field in fields_of(gateway) {
                for lang in crate::i18n::LANGS {
                    assert_ne!(
                        lang.t(field.label_key),
                        field.label_key,
                        "{gateway}.{}",
                        field.name
                    );
                    if !field.hint_key.is_empty() {
                        assert_ne!(
                            lang.t(field.hint_key),
                            field.hint_key,
                            "{gateway}.{}",
                            field.name
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn credentials_show_their_names_only() {
        let mut saved = Credentials::default();
        saved.set("secret_key", SecretString::from("sk_live_very_secret"));
        let shown = format!("{saved:?}");
        assert!(shown.contains("secret_key"));
        assert!(!shown.contains("very_secret"));
        let back = Credentials::from_json(&saved.to_json().unwrap()).unwrap();
        assert_eq!(
            back.get("secret_key").unwrap().expose_secret(),
            "sk_live_very_secret"
        );
    }

    #[test]
    fn settings_carrying_saved_secrets_never_show_them_in_debug() {
        let mut settings = Settings::default();
        for gateway in GATEWAY_IDS {
            let mut saved = Credentials::default();
            for field in fields_of(gateway).iter().filter(|f| f.secret) {
                saved.set(field.name, SecretString::from("s3cret-value-never-shown"));
            }
            apply(&mut settings, gateway, &saved, Some(true));
        }
        let shown = format!("{settings:?}");
        assert!(!shown.contains("s3cret-value-never-shown"), "{shown}");
    }

    #[test]
    fn values_of_the_wrong_shape_are_refused_with_the_expected_shape() {
        let key = field_of("stripe", "secret_key").unwrap();
        assert!(check("stripe", &key, "sk_test_abc").is_ok());
        let refused = check("stripe", &key, "pk_test_abc").unwrap_err();
        assert!(refused.contains("sk_test_"), "{refused}");
        assert!(check("stripe", &key, "sk_test_a b").is_err());
        let slug = field_of("helloasso", "organization_slug").unwrap();
        assert!(check("helloasso", &slug, "mon-asso-2").is_ok());
        assert!(check("helloasso", &slug, "../admin").is_err());
        let shop = field_of("payzen", "shop_id").unwrap();
        assert!(check("payzen", &shop, "12345678").is_ok());
        assert!(check("payzen", &shop, "1234").is_err());
    }
}
