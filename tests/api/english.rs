//! What still reads French in a page or a mail that should be English: French words and
//! letters left once the data (what the association typed, what the demo seeded) is set aside.
//! Shared by the tests of every translated area.

use std::collections::BTreeSet;

use crate::helpers::{Page, TestApp};

/// Words only a French text has, gathered from the pages' and mails' former French texts.
#[rustfmt::skip]
const FRENCH_WORDS: &[&str] = &[
    // Pages.
    "Paiement", "Paiements", "paiement", "paiements", "Montant", "Rembourser", "Remboursement",
    "Remboursements", "Aucun", "Aucune", "Compte", "Comptes", "compte", "comptes", "Statut",
    "Moyen", "moyen", "Membre", "Membres", "membre", "membres", "Filtrer", "Solde", "Soldes",
    "Totaux", "Enregistrer", "Identifiants", "identifiants", "Tous", "Toutes", "Exporter",
    "Ajouter", "Supprimer", "prestataire", "Encaissements", "Frais", "Annuler", "Confirmer",
    "Tester", "connexion", "Historique", "Quand", "Qui", "Avant", "Rechercher", "Voir", "voir",
    "Envoyer", "Demande", "Demandes", "demande", "Modifier", "Importer", "Fichier", "Ligne",
    "Prénom", "Nom", "Libellé", "Saison", "Afficher", "Actifs", "dus", "jour", "crédit",
    "Inscrire", "facultatif", "courriel", "Mois", "oui",
    // Mails.
    "Bonjour", "Merci", "merci", "votre", "Votre", "reçu", "panier", "lien", "carte", "Carte",
    "mot", "passe", "Payer", "jusqu", "dû",
    // Small words.
    "le", "la", "les", "de", "des", "du", "au", "aux", "et", "ou", "est", "sur", "Sur", "pas",
    "une", "avec", "dans", "pour", "Pour", "puis", "ne", "par", "vous", "Vous", "ce", "Ce",
    "qui",
];

/// Letters and signs English does not use.
const FRENCH_LETTERS: &str = "éèêëàâîïôûùüçœÉÈÊÀÂÎÔÛÇŒ«»";

/// The text a reader sees or hears (text, and the labels, titles, placeholders and alt texts
/// of elements), without what is code (references, raw notifications, scripts, styles).
pub fn visible_text(html: &str) -> String {
    let html = scraper::Html::parse_document(html);
    let mut out = Vec::new();
    for node in html.root_element().descendants() {
        let hidden = node.ancestors().any(|a| {
            a.value()
                .as_element()
                .is_some_and(|e| matches!(e.name(), "code" | "pre" | "script" | "style"))
        });
        if hidden {
            continue;
        }
        if let Some(text) = node.value().as_text() {
            out.push(text.to_string());
        }
        if let Some(element) = node.value().as_element() {
            for attribute in ["aria-label", "title", "placeholder", "alt"] {
                if let Some(value) = element.attr(attribute) {
                    out.push(value.to_string());
                }
            }
        }
    }
    out.join(" ")
}

/// What the association entered or obole named for it (people, categories, basket, journal and
/// request texts, imported files, the association's and the sandbox's names): shown as written.
pub async fn data_of(app: &TestApp) -> Vec<String> {
    let mut data = BTreeSet::new();
    for sql in [
        "SELECT first_name || ' ' || last_name FROM users",
        "SELECT first_name FROM users",
        "SELECT last_name FROM users",
        "SELECT email FROM users",
        "SELECT label FROM categories",
        "SELECT label FROM basket_lines",
        "SELECT label FROM journal_entries",
        "SELECT label FROM journal_lines",
        "SELECT COALESCE(message, '') FROM payment_requests",
        "SELECT file_name FROM member_imports",
    ] {
        let found: Vec<String> = sqlx::query_scalar(sql)
            .fetch_all(&app.pool)
            .await
            .expect(sql);
        data.extend(found);
    }
    data.insert(app.settings.association_name.clone());
    data.insert("Sandbox (paiement de test)".to_string());
    // The language switch names each language in itself.
    data.insert("Français".to_string());
    data.into_iter().filter(|d| !d.trim().is_empty()).collect()
}

/// `text` without `data` (longest first: a label may hold a name).
pub fn without_data(text: &str, data: &[impl AsRef<str>]) -> String {
    let mut data: Vec<&str> = data.iter().map(AsRef::as_ref).collect();
    data.sort_by_key(|d| std::cmp::Reverse(d.chars().count()));
    let mut text = text.to_string();
    for d in data {
        text = text.replace(d, " ");
    }
    text
}

/// The French words and letters left in `text` once `data` is set aside, with the words
/// around the first one to find it quickly.
pub fn french_left(text: &str, data: &[impl AsRef<str>]) -> Vec<String> {
    let text = without_data(text, data);
    let is_french = |w: &str| FRENCH_WORDS.contains(&w);
    let mut left: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| is_french(w))
        .map(str::to_string)
        .collect();
    left.extend(
        text.chars()
            .filter(|c| FRENCH_LETTERS.contains(*c))
            .map(String::from),
    );
    if !left.is_empty() {
        let words: Vec<&str> = text.split_whitespace().collect();
        let at = words
            .iter()
            .position(|w| {
                w.contains(|c: char| FRENCH_LETTERS.contains(c))
                    || is_french(w.trim_matches(|c: char| !c.is_alphanumeric()))
            })
            .unwrap_or(0);
        let near = words[at.saturating_sub(8)..words.len().min(at + 8)].join(" ");
        left.push(format!("[near: {near}]"));
    }
    left
}

/// Asserts the page is English: it holds each of `expected`, and no French is left once
/// `data` is set aside.
pub fn assert_english(page: &Page, data: &[impl AsRef<str>], expected: &[&str]) {
    assert!(page.body.contains("<html lang=\"en\">"), "{}", page.body);
    let text = without_data(&visible_text(&page.body), data);
    for phrase in expected {
        assert!(
            page.body.contains(phrase) || text.contains(phrase),
            "missing {phrase:?} in {text}"
        );
    }
    let left = french_left(&text, data);
    assert!(left.is_empty(), "French left: {left:?}\n{text}");
}
