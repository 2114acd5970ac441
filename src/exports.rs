//! The journal as files an accountant takes: CSV (for a spreadsheet) and FEC (the French
//! `Fichier des Écritures Comptables`). Rows are streamed from the database through a small
//! bounded channel, so a large journal never sits in memory.

use anyhow::Context;
use bytes::Bytes;
use futures_util::TryStreamExt;
use sqlx::Row;
use tokio::sync::mpsc;

use crate::account_plan::AccountLabels;
use crate::books::{JOURNAL_FROM, JournalFilter};
use crate::config::Settings;
use crate::db::Pool;
use crate::domain::Money;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Fec,
}

/// A fiscal year: first and last day, `YYYY-MM-DD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    pub from: String,
    pub to: String,
}

/// The fiscal year that ends in `year` (with `fiscal_year_end` as `MM-DD`).
pub fn fiscal_year(settings: &Settings, year: i32) -> anyhow::Result<Period> {
    let (month, day) = settings
        .fiscal_year_end
        .split_once('-')
        .context("fiscal_year_end must be MM-DD")?;
    let month: u8 = month.parse().context("fiscal_year_end month")?;
    let day: u8 = day.parse().context("fiscal_year_end day")?;
    let end = time::Date::from_calendar_date(year, time::Month::try_from(month)?, day)
        .context("fiscal_year_end is not a date")?;
    let start = time::Date::from_calendar_date(year - 1, end.month(), 1)?
        .replace_day(day.min(time::util::days_in_month(end.month(), year - 1)))?
        .next_day()
        .context("fiscal year start")?;
    Ok(Period {
        from: iso(start),
        to: iso(end),
    })
}

fn iso(date: time::Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// The legal name of an FEC file: `<SIREN>FEC<closing date AAAAMMJJ>.txt`.
pub fn fec_file_name(siren: &str, period: &Period) -> String {
    format!("{siren}FEC{}.txt", period.to.replace('-', ""))
}

const FEC_HEADER: [&str; 18] = [
    "JournalCode",
    "JournalLib",
    "EcritureNum",
    "EcritureDate",
    "CompteNum",
    "CompteLib",
    "CompAuxNum",
    "CompAuxLib",
    "PieceRef",
    "PieceDate",
    "EcritureLib",
    "Debit",
    "Credit",
    "EcritureLet",
    "DateLet",
    "ValidDate",
    "Montantdevise",
    "Idevise",
];

fn journal_label(code: &str) -> &'static str {
    match code {
        crate::ledger::JOURNAL_CHARGES => "Cotisations et ventes",
        crate::ledger::JOURNAL_RECEIPTS => "Encaissements",
        _ => "Opérations diverses",
    }
}

/// FEC fields hold no tabs or line breaks.
fn fec_field(value: &str) -> String {
    value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Streams the journal lines the filter selects (for the FEC: a whole fiscal year) in the
/// given format.
pub fn stream(
    pool: Pool,
    labels: AccountLabels,
    format: Format,
    filter: JournalFilter,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    tokio::spawn(async move {
        if let Err(error) = produce(&pool, &labels, format, &filter, &tx).await {
            tracing::error!(error = ?error, "journal export interrupted");
        }
    });
    futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (Ok(chunk), rx))
    })
}

async fn produce(
    pool: &Pool,
    labels: &AccountLabels,
    format: Format,
    filter: &JournalFilter,
    tx: &mpsc::Sender<Bytes>,
) -> anyhow::Result<()> {
    let mut buffer: Vec<u8> = Vec::with_capacity(64 * 1024);
    let csv_writer = || {
        csv::WriterBuilder::new()
            .delimiter(b';')
            .buffer_capacity(512)
            .from_writer(Vec::with_capacity(512))
    };
    let mut csv_out = csv_writer();
    match format {
        Format::Fec => {
            buffer.extend_from_slice(FEC_HEADER.join("\t").as_bytes());
            buffer.push(b'\n');
        }
        Format::Csv => {
            // A BOM so that spreadsheets read the file as UTF-8.
            buffer.extend_from_slice("\u{feff}".as_bytes());
            csv_out.write_record([
                "Date",
                "Journal",
                "Écriture",
                "Libellé",
                "Membre",
                "Compte",
                "Débit",
                "Crédit",
            ])?;
        }
    }
    let (where_clause, binds) = filter.where_clause();
    let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT e.id, e.journal, e.entry_date, e.label, e.payment_id, l.account, l.member_id, \
                l.label AS line_label, l.debit_cents, l.credit_cents, u.first_name, u.last_name\
         {JOURNAL_FROM}{where_clause} ORDER BY e.entry_date, e.id, l.line_no"
    )));
    for value in binds {
        query = query.bind(value);
    }
    let mut rows = query.fetch(pool);
    let mut entry_number = 0u64;
    let mut previous_entry = String::new();
    while let Some(row) = rows
        .try_next()
        .await
        .context("could not read the journal")?
    {
        let entry_id: String = row.try_get("id")?;
        if entry_id != previous_entry {
            entry_number += 1;
            previous_entry = entry_id.clone();
        }
        let journal: String = row.try_get("journal")?;
        let date: String = row.try_get("entry_date")?;
        let label: String = row.try_get("label")?;
        let account: String = row.try_get("account")?;
        let member_id: Option<String> = row.try_get("member_id")?;
        let member = match (
            row.try_get::<Option<String>, _>("first_name")?,
            row.try_get::<Option<String>, _>("last_name")?,
        ) {
            (Some(first), Some(last)) => format!("{first} {last}"),
            _ => String::new(),
        };
        let debit = Money::from_cents(row.try_get("debit_cents")?);
        let credit = Money::from_cents(row.try_get("credit_cents")?);
        match format {
            Format::Fec => {
                let compact_date = date.replace('-', "");
                let piece = row
                    .try_get::<Option<String>, _>("payment_id")?
                    .unwrap_or_else(|| entry_id.clone());
                let fields = [
                    journal.clone(),
                    journal_label(&journal).to_string(),
                    format!("{journal}{entry_number:06}"),
                    compact_date.clone(),
                    account.clone(),
                    labels.get(&account).to_string(),
                    member_id.clone().unwrap_or_default(),
                    member.clone(),
                    piece,
                    compact_date.clone(),
                    label.clone(),
                    debit.to_input_string(),
                    credit.to_input_string(),
                    String::new(),
                    String::new(),
                    compact_date,
                    String::new(),
                    String::new(),
                ];
                let line: Vec<String> = fields.iter().map(|f| fec_field(f)).collect();
                buffer.extend_from_slice(line.join("\t").as_bytes());
                buffer.push(b'\n');
            }
            Format::Csv => {
                csv_out.write_record([
                    date.as_str(),
                    journal.as_str(),
                    &entry_number.to_string(),
                    label.as_str(),
                    member.as_str(),
                    account.as_str(),
                    &debit.to_input_string(),
                    &credit.to_input_string(),
                ])?;
            }
        }
        if format == Format::Csv {
            let mut written = std::mem::replace(&mut csv_out, csv_writer())
                .into_inner()
                .map_err(|e| anyhow::anyhow!("csv: {e}"))?;
            buffer.append(&mut written);
        }
        if buffer.len() >= 32 * 1024 {
            if tx
                .send(Bytes::from(std::mem::take(&mut buffer)))
                .await
                .is_err()
            {
                return Ok(()); // the client went away
            }
            buffer.reserve(64 * 1024);
        }
    }
    if format == Format::Csv {
        let mut written = csv_out
            .into_inner()
            .map_err(|e| anyhow::anyhow!("csv: {e}"))?;
        buffer.append(&mut written);
    }
    if !buffer.is_empty() {
        let _ = tx.send(Bytes::from(buffer)).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fiscal_years_and_fec_names() {
        let mut settings = Settings::default();
        let period = fiscal_year(&settings, 2026).unwrap();
        assert_eq!(period.from, "2026-01-01");
        assert_eq!(period.to, "2026-12-31");
        assert_eq!(
            fec_file_name("123456789", &period),
            "123456789FEC20261231.txt"
        );
        settings.fiscal_year_end = "08-31".into();
        let period = fiscal_year(&settings, 2027).unwrap();
        assert_eq!(period.from, "2026-09-01");
        assert_eq!(period.to, "2027-08-31");
        settings.fiscal_year_end = "02-30".into();
        assert!(fiscal_year(&settings, 2027).is_err());
    }

    #[test]
    fn fec_fields_hold_no_tabs_or_newlines() {
        assert_eq!(fec_field("a\tb\nc"), "a b c");
    }
}
