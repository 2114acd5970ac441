//! Languages of the pages and mails: French by default, English offered. Every text lives in
//! `locales/<code>/<area>.toml` (sections of keys, one file per area of the application, every
//! file embedded at build time); code and templates name keys, never sentences.
//!
//! The language of the request being served is task-local, set by a middleware from the
//! session (the user's saved choice, or a visitor's): amounts and dates printed while handling
//! the request follow it without being passed around.

use std::collections::HashMap;
use std::future::Future;
use std::sync::LazyLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Fr,
    En,
}

pub const LANGS: [Lang; 2] = [Lang::Fr, Lang::En];

type Catalog = HashMap<String, String>;

mod files {
    include!(concat!(env!("OUT_DIR"), "/locales.rs"));
}

static FR: LazyLock<Catalog> = LazyLock::new(|| load_all(files::FR));
static EN: LazyLock<Catalog> = LazyLock::new(|| load_all(files::EN));

tokio::task_local! {
    static CURRENT: Lang;
    static PATH: String;
}

/// Every file of one language in one catalog; a key defined twice is a mistake.
fn load_all(sources: &[(&str, &str)]) -> Catalog {
    let mut all = Catalog::new();
    for (name, source) in sources {
        for (key, text) in load(source) {
            if all.insert(key.clone(), text).is_some() {
                panic!("translation key {key} is defined twice (again in {name}.toml)");
            }
        }
    }
    all
}

/// Flattens `[section] key = "text"` into `section.key`.
fn load(source: &str) -> Catalog {
    fn walk(prefix: &str, value: &toml::Value, out: &mut Catalog) {
        match value {
            toml::Value::Table(table) => {
                for (key, value) in table {
                    let path = if prefix.is_empty() {
                        key.clone()
                    } else {
                        format!("{prefix}.{key}")
                    };
                    walk(&path, value, out);
                }
            }
            toml::Value::String(text) => {
                out.insert(prefix.to_string(), text.clone());
            }
            other => panic!("translation {prefix} is not text: {other}"),
        }
    }
    let value: toml::Value = toml::from_str(source).expect("translation file is valid TOML");
    let mut out = Catalog::new();
    walk("", &value, &mut out);
    out
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Fr => "fr",
            Lang::En => "en",
        }
    }

    /// The language's own name, for the language switch.
    pub fn name(self) -> &'static str {
        match self {
            Lang::Fr => "Français",
            Lang::En => "English",
        }
    }

    pub fn parse(code: &str) -> Option<Lang> {
        match code.trim().to_ascii_lowercase().as_str() {
            "fr" => Some(Lang::Fr),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    fn catalog(self) -> &'static Catalog {
        match self {
            Lang::Fr => &FR,
            Lang::En => &EN,
        }
    }

    /// The text of `key` in this language (French if missing, the key itself as a last resort,
    /// so a missing text shows instead of breaking a page; a test keeps both files complete).
    pub fn t(self, key: &'static str) -> &'static str {
        self.catalog()
            .get(key)
            .or_else(|| FR.get(key))
            .map(String::as_str)
            .unwrap_or(key)
    }

    /// `t` with `{name}` placeholders replaced.
    pub fn tf(self, key: &'static str, args: &[(&str, &str)]) -> String {
        let mut text = self.t(key).to_string();
        for (name, value) in args {
            text = text.replace(&format!("{{{name}}}"), value);
        }
        text
    }

    /// A stored `YYYY-MM-DDTHH:MM:SSZ` moment as readers of this language write it, to the
    /// minute and marked UTC (as stored: the portal keeps no time zone); a bare date stays a date.
    pub fn date_time(self, iso: &str) -> String {
        let date = self.date(iso);
        match (iso.get(10..11), iso.get(11..16)) {
            (Some("T" | " "), Some(hm)) if hm.as_bytes().get(2) == Some(&b':') => {
                format!("{date} {hm} UTC")
            }
            _ => date,
        }
    }

    /// A `YYYY-MM-DD…` date as readers of this language write it.
    pub fn date(self, iso: &str) -> String {
        let (Some(y), Some(m), Some(d)) = (iso.get(0..4), iso.get(5..7), iso.get(8..10)) else {
            return iso.to_string();
        };
        match self {
            Lang::Fr => format!("{d}/{m}/{y}"),
            Lang::En => {
                let month = match m {
                    "01" => "Jan",
                    "02" => "Feb",
                    "03" => "Mar",
                    "04" => "Apr",
                    "05" => "May",
                    "06" => "Jun",
                    "07" => "Jul",
                    "08" => "Aug",
                    "09" => "Sep",
                    "10" => "Oct",
                    "11" => "Nov",
                    "12" => "Dec",
                    _ => return iso.to_string(),
                };
                format!("{} {month} {y}", d.trim_start_matches('0'))
            }
        }
    }
}

/// The language of the request (or mail) being handled; French outside of one.
pub fn current() -> Lang {
    CURRENT.try_with(|lang| *lang).unwrap_or_default()
}

/// The path (and query) of the page being served, where the language switch comes back.
pub fn current_path() -> String {
    PATH.try_with(Clone::clone)
        .unwrap_or_else(|_| "/".to_string())
}

/// Runs `future` in `lang`.
pub async fn scope<F: Future>(lang: Lang, future: F) -> F::Output {
    CURRENT.scope(lang, future).await
}

/// Serves a request in `lang`, remembering its path for the language switch.
pub async fn scope_request<F: Future>(lang: Lang, path: String, future: F) -> F::Output {
    PATH.scope(path, CURRENT.scope(lang, future)).await
}

/// Runs `f` in `lang` (synchronous code, e.g. rendering a mail).
pub fn sync_scope<R>(lang: Lang, f: impl FnOnce() -> R) -> R {
    CURRENT.sync_scope(lang, f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_languages_have_the_same_files() {
        let names =
            |files: &[(&str, &str)]| files.iter().map(|(n, _)| n.to_string()).collect::<Vec<_>>();
        assert_eq!(names(files::FR), names(files::EN));
    }

    #[test]
    fn both_languages_have_the_same_keys() {
        let fr: std::collections::BTreeSet<_> = FR.keys().collect();
        let en: std::collections::BTreeSet<_> = EN.keys().collect();
        let only_fr: Vec<_> = fr.difference(&en).collect();
        let only_en: Vec<_> = en.difference(&fr).collect();
        assert!(only_fr.is_empty(), "missing in en.toml: {only_fr:?}");
        assert!(only_en.is_empty(), "missing in fr.toml: {only_en:?}");
        assert!(fr.len() > 20);
    }

    /// Every key a template or the code names exists (`t("…")`, `tf("…"`).
    #[test]
    fn every_key_used_exists() {
        let mut missing = Vec::new();
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        let mut dirs = vec![root.join("templates"), root.join("src")];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(dir).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    dirs.push(path);
                } else {
                    files.push(path);
                }
            }
        }
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            for marker in ["t(\"", "tf(\""] {
                for (at, _) in text.match_indices(marker) {
                    let rest = &text[at + marker.len()..];
                    let key = &rest[..rest.find('"').unwrap_or(0)];
                    let is_key = key.contains('.')
                        && key.starts_with(|c: char| c.is_ascii_lowercase())
                        && key.chars().all(|c| {
                            c.is_ascii_lowercase() || c.is_ascii_digit() || "._".contains(c)
                        });
                    if is_key && !FR.contains_key(key) {
                        missing.push(format!("{}: {key}", file.display()));
                    }
                }
            }
        }
        assert!(
            missing.is_empty(),
            "keys missing from the translation files: {missing:#?}"
        );
    }

    #[test]
    fn dates_and_placeholders() {
        assert_eq!(Lang::Fr.date("2026-11-02T10:00:00Z"), "02/11/2026");
        assert_eq!(Lang::En.date("2026-11-02"), "2 Nov 2026");
        assert_eq!(
            Lang::Fr.date_time("2026-11-02T09:05:00Z"),
            "02/11/2026 09:05 UTC"
        );
        assert_eq!(
            Lang::En.date_time("2026-11-02T09:05:00Z"),
            "2 Nov 2026 09:05 UTC"
        );
        assert_eq!(Lang::En.date_time("2026-11-02"), "2 Nov 2026");
        assert_eq!(Lang::Fr.date_time("garbage"), "garbage");
        assert_eq!(Lang::parse("EN"), Some(Lang::En));
        assert_eq!(Lang::parse("de"), None);
    }
}
