//! Importing members from the CSV file a spreadsheet exports: `;` or `,` separated, UTF-8
//! with or without BOM (Windows-1252 as Excel writes it is read too), a header row with French
//! or English column names. The file is kept in `member_imports` between its preview and its
//! confirmation; confirming creates every valid row in one transaction, or nothing when
//! anything changed since the preview.

use std::collections::{HashMap, HashSet};

use anyhow::Context;
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::accounts::User;
use crate::audit;
use crate::db::{self, Pool, Tx};
use crate::domain::{self, Email, PersonError, Role};
use crate::members::{self, MemberDetails};
use crate::password_links;

pub const MAX_FILE_BYTES: usize = 2 * 1024 * 1024;
pub const MAX_ROWS: usize = 5000;

/// The columns obole reads; any other column is ignored (and said so in the preview).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Column {
    LastName,
    FirstName,
    Email,
    Phone,
    Address,
}

impl Column {
    const REQUIRED: [Column; 3] = [Column::LastName, Column::FirstName, Column::Email];

    /// A header cell, in French or English, whatever its case, accents or separators.
    fn from_header(header: &str) -> Option<Column> {
        let spaced: String = header
            .chars()
            .map(|c| if matches!(c, '_' | '-' | '.') { ' ' } else { c })
            .collect();
        match domain::fold(&spaced).as_str() {
            "nom" | "nom de famille" | "last name" | "lastname" | "surname" | "family name" => {
                Some(Column::LastName)
            }
            "prenom" | "first name" | "firstname" | "given name" => Some(Column::FirstName),
            "email" | "e mail" | "courriel" | "mail" | "adresse email" | "adresse e mail"
            | "adresse mail" | "email address" | "e mail address" => Some(Column::Email),
            "telephone"
            | "tel"
            | "phone"
            | "phone number"
            | "mobile"
            | "portable"
            | "numero de telephone" => Some(Column::Phone),
            "adresse" | "adresse postale" | "address" | "postal address" => Some(Column::Address),
            _ => None,
        }
    }

    /// The column's name in the reader's language (`prénom`, `first_name`).
    pub fn label(self) -> &'static str {
        crate::i18n::current().t(match self {
            Column::LastName => "member_import.column_last_name",
            Column::FirstName => "member_import.column_first_name",
            Column::Email => "member_import.column_email",
            Column::Phone => "member_import.column_phone",
            Column::Address => "member_import.column_address",
        })
    }
}

/// The file's text and the encoding it was read with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    pub text: String,
    pub encoding: &'static str,
}

/// UTF-8 (a BOM is dropped), UTF-16 with a BOM, else Windows-1252 (Excel's "CSV" in France).
pub fn decode(bytes: &[u8]) -> Decoded {
    if let Some((encoding, bom)) = encoding_rs::Encoding::for_bom(bytes) {
        let (text, _) = encoding.decode_without_bom_handling(&bytes[bom..]);
        return Decoded {
            text: text.into_owned(),
            encoding: encoding.name(),
        };
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => Decoded {
            text: text.to_string(),
            encoding: "UTF-8",
        },
        Err(_) => {
            let (text, _) = encoding_rs::WINDOWS_1252.decode_without_bom_handling(bytes);
            Decoded {
                text: text.into_owned(),
                encoding: "windows-1252",
            }
        }
    }
}

/// A data row as found in the file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceRow {
    /// Line of the file where the row starts (the header is line 1).
    pub line: u64,
    pub last_name: String,
    pub first_name: String,
    pub email: String,
    pub phone: String,
    pub address: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedFile {
    pub separator: char,
    pub ignored_columns: Vec<String>,
    pub rows: Vec<SourceRow>,
}

/// What makes a whole file unusable; said in the reader's language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileError {
    Empty,
    MissingColumns(Vec<Column>),
    DuplicateColumn(Column),
    TooManyRows,
    TooLarge,
    Unreadable(u64),
}

impl std::fmt::Display for FileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let lang = crate::i18n::current();
        let text = match self {
            FileError::Empty => lang.t("member_import.error_empty").to_string(),
            FileError::MissingColumns(columns) => {
                let names: Vec<&str> = columns.iter().map(|c| c.label()).collect();
                lang.tf(
                    "member_import.error_missing_columns",
                    &[("columns", &names.join(", "))],
                )
            }
            FileError::DuplicateColumn(column) => lang.tf(
                "member_import.error_duplicate_column",
                &[("column", column.label())],
            ),
            FileError::TooManyRows => lang.tf(
                "member_import.error_too_many_rows",
                &[("max", &MAX_ROWS.to_string())],
            ),
            FileError::TooLarge => lang.t("member_import.error_too_large").to_string(),
            FileError::Unreadable(line) => lang.tf(
                "member_import.error_unreadable",
                &[("line", &line.to_string())],
            ),
        };
        f.write_str(&text)
    }
}

impl std::error::Error for FileError {}

/// Why a row is set aside; said in the reader's language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowError {
    Person(PersonError),
    MissingEmail,
    /// The address as typed.
    InvalidEmail(String),
    /// The line where the file first has this address.
    DuplicateEmail(u64),
    AlreadyRegistered,
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let lang = crate::i18n::current();
        match self {
            RowError::Person(e) => e.fmt(f),
            RowError::MissingEmail => f.write_str(lang.t("member_import.row_missing_email")),
            RowError::InvalidEmail(email) => {
                f.write_str(&lang.tf("member_import.row_invalid_email", &[("email", email)]))
            }
            RowError::DuplicateEmail(line) => f.write_str(&lang.tf(
                "member_import.row_duplicate",
                &[("line", &line.to_string())],
            )),
            RowError::AlreadyRegistered => f.write_str(lang.t("member_import.row_existing")),
        }
    }
}

/// `;` or `,`: whichever the header line holds more of, outside quotes.
fn detect_separator(text: &str) -> u8 {
    let header = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let (mut semicolons, mut commas, mut quoted) = (0, 0, false);
    for c in header.chars() {
        match c {
            '"' => quoted = !quoted,
            ';' if !quoted => semicolons += 1,
            ',' if !quoted => commas += 1,
            _ => {}
        }
    }
    if semicolons > commas { b';' } else { b',' }
}

pub fn parse(text: &str) -> Result<ParsedFile, FileError> {
    if text.trim().is_empty() {
        return Err(FileError::Empty);
    }
    // One kind of line end (CRLF from Windows, CR from old Macs), so that line numbers are right.
    let text = &text.replace("\r\n", "\n").replace('\r', "\n");
    let separator = detect_separator(text);
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(separator)
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut records = reader.records();
    let header = loop {
        match records.next() {
            None => return Err(FileError::Empty),
            Some(Err(e)) => {
                return Err(FileError::Unreadable(e.position().map_or(1, |p| p.line())));
            }
            Some(Ok(record)) if record.iter().all(|f| f.trim().is_empty()) => continue,
            Some(Ok(record)) => break record,
        }
    };
    let mut columns: HashMap<Column, usize> = HashMap::new();
    let mut ignored_columns = Vec::new();
    for (index, name) in header.iter().enumerate() {
        match Column::from_header(name) {
            Some(column) => {
                if columns.insert(column, index).is_some() {
                    return Err(FileError::DuplicateColumn(column));
                }
            }
            None if name.trim().is_empty() => {}
            None => ignored_columns.push(name.trim().to_string()),
        }
    }
    let missing: Vec<Column> = Column::REQUIRED
        .into_iter()
        .filter(|c| !columns.contains_key(c))
        .collect();
    if !missing.is_empty() {
        return Err(FileError::MissingColumns(missing));
    }
    let mut rows = Vec::new();
    for record in records {
        let record =
            record.map_err(|e| FileError::Unreadable(e.position().map_or(0, |p| p.line())))?;
        if record.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        if rows.len() == MAX_ROWS {
            return Err(FileError::TooManyRows);
        }
        let field = |column: Column| {
            columns
                .get(&column)
                .and_then(|&i| record.get(i))
                .unwrap_or("")
                .to_string()
        };
        rows.push(SourceRow {
            line: record.position().map_or(0, |p| p.line()),
            last_name: field(Column::LastName),
            first_name: field(Column::FirstName),
            email: field(Column::Email),
            phone: field(Column::Phone),
            address: field(Column::Address),
        });
    }
    Ok(ParsedFile {
        separator: char::from(separator),
        ignored_columns,
        rows,
    })
}

/// A row and what confirming will do with it: create the member, or skip the row because of
/// its errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedRow {
    pub source: SourceRow,
    pub errors: Vec<RowError>,
    pub member: Option<MemberDetails>,
}

impl PlannedRow {
    pub fn will_create(&self) -> bool {
        self.member.is_some()
    }
}

/// Checks every row against the others and against the accounts that exist.
pub fn plan(file: &ParsedFile, existing_emails: &HashSet<String>) -> Vec<PlannedRow> {
    let mut first_line_of: HashMap<String, u64> = HashMap::new();
    file.rows
        .iter()
        .map(|row| {
            let mut errors = Vec::new();
            let last_name = domain::parse_last_name(&row.last_name)
                .map_err(|e| errors.push(RowError::Person(e)))
                .ok();
            let first_name = domain::parse_first_name(&row.first_name)
                .map_err(|e| errors.push(RowError::Person(e)))
                .ok();
            let email = if row.email.trim().is_empty() {
                errors.push(RowError::MissingEmail);
                None
            } else {
                match Email::parse(&row.email) {
                    Ok(email) => Some(email),
                    Err(_) => {
                        errors.push(RowError::InvalidEmail(row.email.trim().to_string()));
                        None
                    }
                }
            };
            if let Some(email) = &email {
                match first_line_of.get(email.as_str()) {
                    Some(line) => errors.push(RowError::DuplicateEmail(*line)),
                    None => {
                        first_line_of.insert(email.as_str().to_string(), row.line);
                    }
                }
                if existing_emails.contains(email.as_str()) {
                    errors.push(RowError::AlreadyRegistered);
                }
            }
            let phone = domain::parse_phone(&row.phone)
                .map_err(|e| errors.push(RowError::Person(e)))
                .ok();
            let address = domain::parse_address(&row.address)
                .map_err(|e| errors.push(RowError::Person(e)))
                .ok();
            let member = match (last_name, first_name, email, phone, address) {
                (Some(last_name), Some(first_name), Some(email), Some(phone), Some(address))
                    if errors.is_empty() =>
                {
                    Some(MemberDetails {
                        first_name,
                        last_name,
                        email,
                        phone,
                        address,
                        role: Role::Member,
                        locale: None,
                    })
                }
                _ => None,
            };
            PlannedRow {
                source: row.clone(),
                errors,
                member,
            }
        })
        .collect()
}

/// Names what a preview promised: the rows that will be created and the rows skipped.
pub fn digest(rows: &[PlannedRow]) -> String {
    let mut hasher = Sha256::new();
    for row in rows {
        let action = match &row.member {
            Some(member) => format!("create {}", member.email),
            None => "skip".to_string(),
        };
        hasher.update(format!("{}\t{action}\n", row.source.line).as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// An uploaded file waiting for (or done with) its confirmation.
#[derive(Debug, Clone)]
pub struct Staged {
    pub id: String,
    pub file_name: String,
    pub encoding: String,
    pub imported: bool,
    pub imported_count: i64,
    content: String,
}

/// Keeps the uploaded file until it is confirmed, under a random id.
pub async fn stage(
    pool: &Pool,
    uploader: &User,
    file_name: &str,
    decoded: &Decoded,
) -> anyhow::Result<String> {
    // Files never confirmed are not kept beyond a week.
    let week_ago = db::format_timestamp(time::OffsetDateTime::now_utc() - time::Duration::days(7));
    sqlx::query("DELETE FROM member_imports WHERE status = 'pending' AND created_at < $1")
        .bind(week_ago)
        .execute(pool)
        .await
        .context("could not forget old uploads")?;
    let id = uuid::Uuid::new_v4().to_string();
    let file_name: String = file_name
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    sqlx::query(
        "INSERT INTO member_imports (id, uploaded_by, file_name, content, encoding, status, \
         created_at) VALUES ($1, $2, $3, $4, $5, 'pending', $6)",
    )
    .bind(&id)
    .bind(&uploader.id)
    .bind(file_name)
    .bind(&decoded.text)
    .bind(decoded.encoding)
    .bind(db::now_text())
    .execute(pool)
    .await
    .context("could not keep the uploaded file")?;
    Ok(id)
}

/// The staged file, only for the manager who uploaded it.
pub async fn load(pool: &Pool, uploader: &User, id: &str) -> anyhow::Result<Option<Staged>> {
    let row = sqlx::query(
        "SELECT id, file_name, content, encoding, status, imported_count FROM member_imports \
         WHERE id = $1 AND uploaded_by = $2",
    )
    .bind(id)
    .bind(&uploader.id)
    .fetch_optional(pool)
    .await
    .context("could not load the import")?;
    let Some(r) = row else { return Ok(None) };
    let status: String = r.try_get("status")?;
    Ok(Some(Staged {
        id: r.try_get("id")?,
        file_name: r.try_get("file_name")?,
        encoding: r.try_get("encoding")?,
        imported: status == "imported",
        imported_count: r.try_get::<Option<i64>, _>("imported_count")?.unwrap_or(0),
        content: r.try_get("content")?,
    }))
}

/// What confirming would do now.
#[derive(Debug, Clone)]
pub struct Preview {
    pub file: ParsedFile,
    pub rows: Vec<PlannedRow>,
    pub digest: String,
}

impl Preview {
    pub fn to_create(&self) -> usize {
        self.rows.iter().filter(|r| r.will_create()).count()
    }

    pub fn skipped(&self) -> usize {
        self.rows.len() - self.to_create()
    }
}

async fn existing_emails(executor: &mut sqlx::AnyConnection) -> anyhow::Result<HashSet<String>> {
    let rows = sqlx::query("SELECT email FROM users")
        .fetch_all(executor)
        .await
        .context("could not read the accounts' emails")?;
    rows.iter()
        .map(|r| r.try_get::<String, _>("email").context("email"))
        .collect()
}

fn parse_staged(staged: &Staged) -> anyhow::Result<ParsedFile> {
    parse(&staged.content).map_err(|e| anyhow::anyhow!("a staged import no longer parses: {e}"))
}

pub async fn preview(pool: &Pool, staged: &Staged) -> anyhow::Result<Preview> {
    let file = parse_staged(staged)?;
    let mut conn = pool.acquire().await.context("no database connection")?;
    let existing = existing_emails(&mut conn).await?;
    let rows = plan(&file, &existing);
    Ok(Preview {
        digest: digest(&rows),
        file,
        rows,
    })
}

#[derive(Debug)]
pub enum Confirmed {
    Imported {
        created: usize,
        invited: bool,
    },
    /// This file was imported already (a second submission of the form).
    AlreadyImported {
        created: i64,
    },
    /// Nothing was imported: the situation differs from the preview the manager saw.
    Changed(Box<Preview>),
    NothingToImport,
}

/// Creates every valid row in one transaction, provided the plan is still the one previewed
/// (`expected_digest`); otherwise imports nothing and returns the new preview.
pub async fn confirm(
    pool: &Pool,
    actor: &User,
    staged: &Staged,
    expected_digest: &str,
    invite: bool,
) -> anyhow::Result<Confirmed> {
    let mut tx = pool
        .begin()
        .await
        .context("could not start a transaction")?;
    // Claims the file first: a second confirmation waits for this one, then finds it done.
    let claimed = sqlx::query(
        "UPDATE member_imports SET status = 'imported', imported_at = $2 \
         WHERE id = $1 AND status = 'pending'",
    )
    .bind(&staged.id)
    .bind(db::now_text())
    .execute(&mut *tx)
    .await
    .context("could not claim the import")?;
    if claimed.rows_affected() != 1 {
        tx.rollback().await.ok();
        let count: i64 = sqlx::query("SELECT imported_count FROM member_imports WHERE id = $1")
            .bind(&staged.id)
            .fetch_one(pool)
            .await
            .context("could not read the import")?
            .try_get::<Option<i64>, _>("imported_count")?
            .unwrap_or(0);
        return Ok(Confirmed::AlreadyImported { created: count });
    }
    // Read before the claim, and emptied only by the import that claimed it.
    let file = parse_staged(staged)?;
    let existing = existing_emails(&mut tx).await?;
    let rows = plan(&file, &existing);
    if digest(&rows) != expected_digest {
        tx.rollback().await.ok();
        return Ok(Confirmed::Changed(Box::new(preview(pool, staged).await?)));
    }
    let members: Vec<&MemberDetails> = rows.iter().filter_map(|r| r.member.as_ref()).collect();
    if members.is_empty() {
        tx.rollback().await.ok();
        return Ok(Confirmed::NothingToImport);
    }
    match insert_all(&mut tx, &members, invite).await {
        Ok(()) => {}
        Err(InsertError::Conflict) => {
            tx.rollback().await.ok();
            return Ok(Confirmed::Changed(Box::new(preview(pool, staged).await?)));
        }
        Err(InsertError::Other(e)) => return Err(e),
    }
    let created = members.len();
    sqlx::query("UPDATE member_imports SET imported_count = $2, content = '' WHERE id = $1")
        .bind(&staged.id)
        .bind(i64::try_from(created).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await
        .context("could not close the import")?;
    tx.commit().await.context("could not commit the import")?;
    let emails: Vec<&str> = members.iter().map(|m| m.email.as_str()).collect();
    audit::record(
        pool,
        &actor.id,
        "member.import",
        &format!("import:{}", staged.id),
        None,
        Some(serde_json::json!({
            "file": staged.file_name,
            "created": created,
            "invited": invite,
            "emails": emails,
        })),
    )
    .await?;
    Ok(Confirmed::Imported {
        created,
        invited: invite,
    })
}

enum InsertError {
    /// An email became taken between the check and the insert.
    Conflict,
    Other(anyhow::Error),
}

async fn insert_all(
    tx: &mut Tx<'_>,
    members: &[&MemberDetails],
    invite: bool,
) -> Result<(), InsertError> {
    for member in members {
        let id = match members::insert_member(tx, member).await {
            Ok(id) => id,
            Err(e) if db::is_unique_violation(&e) => return Err(InsertError::Conflict),
            Err(e) => {
                return Err(InsertError::Other(
                    anyhow::Error::new(e).context("could not create an imported member"),
                ));
            }
        };
        if invite {
            password_links::queue_invitation(tx, &id)
                .await
                .map_err(InsertError::Other)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_french_excel_export_with_bom_and_semicolons() {
        let bytes = "\u{feff}Nom;Prénom;Courriel;Téléphone;Licence\r\nMartin;Zoé;zoe@exemple.org;06 01 02 03 04;123\r\n;;;;\r\n"
            .as_bytes();
        let decoded = decode(bytes);
        assert_eq!(decoded.encoding, "UTF-8");
        let file = parse(&decoded.text).unwrap();
        assert_eq!(file.separator, ';');
        assert_eq!(file.ignored_columns, vec!["Licence".to_string()]);
        assert_eq!(file.rows.len(), 1);
        assert_eq!(file.rows[0].line, 2);
        assert_eq!(file.rows[0].first_name, "Zoé");
        assert_eq!(file.rows[0].phone, "06 01 02 03 04");
    }

    #[test]
    fn reads_english_headers_with_commas_and_quotes() {
        let text = "first_name,last_name,E-mail,address\nAnn,\"Lee, Jr\",ann@example.org,\"1 Main St\nSpringfield\"\nBob,Ray,bob@example.org,\n";
        let file = parse(text).unwrap();
        assert_eq!(file.separator, ',');
        assert_eq!(file.rows.len(), 2);
        assert_eq!(file.rows[0].last_name, "Lee, Jr");
        assert_eq!(file.rows[1].line, 4);
    }

    #[test]
    fn windows_1252_is_read_too() {
        let decoded = decode(b"nom;pr\xe9nom;email\n");
        assert_eq!(decoded.encoding, "windows-1252");
        assert!(parse(&decoded.text).is_ok());
    }

    #[test]
    fn a_file_without_the_required_columns_is_refused() {
        let missing = parse("nom;email\nA;a@b.org\n").unwrap_err();
        assert_eq!(missing, FileError::MissingColumns(vec![Column::FirstName]));
        assert!(
            missing
                .to_string()
                .starts_with("Colonnes manquantes : prénom.")
        );
        let english = crate::i18n::sync_scope(crate::i18n::Lang::En, || missing.to_string());
        assert!(
            english.starts_with("Missing columns: first_name."),
            "{english}"
        );
        assert_eq!(parse(" \n"), Err(FileError::Empty));
        assert_eq!(
            parse("nom;prénom;email;mail\n"),
            Err(FileError::DuplicateColumn(Column::Email))
        );
    }

    #[test]
    fn rows_are_checked_against_each_other_and_existing_accounts() {
        let file = parse(
            "nom;prénom;email\nA;B;a@exemple.org\nC;D;\nE;F;pas-une-adresse\nG;H;A@exemple.org\nI;J;pris@exemple.org\n",
        )
        .unwrap();
        let existing = HashSet::from(["pris@exemple.org".to_string()]);
        let rows = plan(&file, &existing);
        assert!(rows[0].will_create());
        assert_eq!(rows[1].errors, [RowError::MissingEmail]);
        assert_eq!(
            rows[2].errors,
            [RowError::InvalidEmail("pas-une-adresse".into())]
        );
        assert_eq!(rows[3].errors, [RowError::DuplicateEmail(2)]);
        assert_eq!(
            rows[3].errors[0].to_string(),
            "Adresse déjà présente ligne 2 du fichier."
        );
        assert_eq!(rows[4].errors, [RowError::AlreadyRegistered]);
        let before = digest(&rows);
        let rows = plan(&file, &HashSet::from(["a@exemple.org".to_string()]));
        assert_ne!(digest(&rows), before);
    }
}
