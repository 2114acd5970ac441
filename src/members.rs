//! The members directory, for managers: a paginated list with search and balance filters;
//! creating, editing, deactivating and reactivating people, each written to the audit log
//! with the state before and after.

use anyhow::Context;
use sqlx::Row;

use crate::accounts::User;
use crate::audit;
use crate::db::{self, Pool};
use crate::domain::{self, Email, Money, PersonError, Role};
use crate::i18n::Lang;
use crate::password_links;

pub const PAGE_SIZE: i64 = 50;
/// Words of a search beyond this are ignored.
const MAX_SEARCH_WORDS: usize = 5;

/// Which members the list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    All,
    Active,
    Owing,
    Credit,
    Settled,
    Inactive,
}

impl Filter {
    pub const ALL: [Filter; 6] = [
        Filter::All,
        Filter::Active,
        Filter::Owing,
        Filter::Credit,
        Filter::Settled,
        Filter::Inactive,
    ];

    /// Anything unknown shows everyone.
    pub fn parse(value: &str) -> Filter {
        Filter::ALL
            .into_iter()
            .find(|f| f.as_str() == value)
            .unwrap_or(Filter::All)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Filter::All => "all",
            Filter::Active => "active",
            Filter::Owing => "owing",
            Filter::Credit => "credit",
            Filter::Settled => "settled",
            Filter::Inactive => "inactive",
        }
    }

    /// The filter as the reader's language names it.
    pub fn label(self) -> &'static str {
        crate::i18n::current().t(match self {
            Filter::All => "directory.filter_all",
            Filter::Active => "directory.filter_active",
            Filter::Owing => "directory.filter_owing",
            Filter::Credit => "directory.filter_credit",
            Filter::Settled => "directory.filter_settled",
            Filter::Inactive => "directory.filter_inactive",
        })
    }
}

/// The role as the reader's language names it.
pub fn role_label(role: Role) -> &'static str {
    crate::i18n::current().t(match role {
        Role::Member => "member_role.member",
        Role::Manager => "member_role.manager",
        Role::Admin => "member_role.admin",
    })
}

#[derive(Debug, Clone)]
pub struct MemberRow {
    pub id: String,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub role: Role,
    pub active: bool,
    /// Positive: owed; negative: in credit.
    pub balance: Money,
}

#[derive(Debug, Clone)]
pub struct MemberPage {
    pub rows: Vec<MemberRow>,
    pub total: i64,
    /// 1-based, within 1..=pages.
    pub page: i64,
    pub pages: i64,
}

/// Each person's balance is summed in the database; the search is one `LIKE` per word
/// (unused words are `%`, which matches everything) on the folded name and on the email.
macro_rules! directory_from_where {
    () => {
        " FROM users u LEFT JOIN (\
             SELECT member_id, CAST(SUM(CASE WHEN kind = 'charge' THEN amount_cents \
                                            WHEN kind = 'payment' THEN -amount_cents \
                                            ELSE amount_cents END) AS BIGINT) AS balance \
             FROM basket_lines GROUP BY member_id) b ON b.member_id = u.id \
         WHERE (u.name_key LIKE $1 ESCAPE '\\' OR u.email LIKE $1 ESCAPE '\\') \
           AND (u.name_key LIKE $2 ESCAPE '\\' OR u.email LIKE $2 ESCAPE '\\') \
           AND (u.name_key LIKE $3 ESCAPE '\\' OR u.email LIKE $3 ESCAPE '\\') \
           AND (u.name_key LIKE $4 ESCAPE '\\' OR u.email LIKE $4 ESCAPE '\\') \
           AND (u.name_key LIKE $5 ESCAPE '\\' OR u.email LIKE $5 ESCAPE '\\') \
           AND ($6 = 'all' \
                OR ($6 = 'inactive' AND u.active = 0) \
                OR (u.active = 1 AND ($6 = 'active' \
                    OR ($6 = 'owing' AND COALESCE(b.balance, 0) > 0) \
                    OR ($6 = 'credit' AND COALESCE(b.balance, 0) < 0) \
                    OR ($6 = 'settled' AND COALESCE(b.balance, 0) = 0))))"
    };
}

/// The `LIKE` patterns of a search: each word folded, its wildcards escaped.
fn search_patterns(search: &str) -> [String; MAX_SEARCH_WORDS] {
    let folded = domain::fold(search);
    let mut words = folded.split(' ').filter(|w| !w.is_empty());
    std::array::from_fn(|_| match words.next() {
        Some(word) => {
            let escaped = word
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            format!("%{escaped}%")
        }
        None => "%".to_string(),
    })
}

/// One page of the directory, sorted by last name then first name.
pub async fn list(
    pool: &Pool,
    search: &str,
    filter: Filter,
    page: i64,
) -> anyhow::Result<MemberPage> {
    let patterns = search_patterns(search);
    let mut count = sqlx::query(concat!("SELECT COUNT(*) AS n", directory_from_where!()));
    for pattern in &patterns {
        count = count.bind(pattern.as_str());
    }
    let total: i64 = count
        .bind(filter.as_str())
        .fetch_one(pool)
        .await
        .context("could not count members")?
        .try_get("n")?;
    let pages = ((total + PAGE_SIZE - 1) / PAGE_SIZE).max(1);
    let page = page.clamp(1, pages);
    let mut query = sqlx::query(concat!(
        "SELECT u.id, u.first_name, u.last_name, u.email, u.role, u.active, \
         CAST(COALESCE(b.balance, 0) AS BIGINT) AS balance",
        directory_from_where!(),
        " ORDER BY u.name_key, u.id LIMIT $7 OFFSET $8"
    ));
    for pattern in &patterns {
        query = query.bind(pattern.as_str());
    }
    let rows = query
        .bind(filter.as_str())
        .bind(PAGE_SIZE)
        .bind((page - 1) * PAGE_SIZE)
        .fetch_all(pool)
        .await
        .context("could not list members")?;
    let rows = rows
        .iter()
        .map(|r| {
            let role: String = r.try_get("role")?;
            Ok(MemberRow {
                id: r.try_get("id")?,
                first_name: r.try_get("first_name")?,
                last_name: r.try_get("last_name")?,
                email: r.try_get("email")?,
                role: Role::parse(&role).unwrap_or(Role::Member),
                active: r.try_get::<i64, _>("active")? == 1,
                balance: Money::from_cents(r.try_get("balance")?),
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .context("could not read members")?;
    Ok(MemberPage {
        rows,
        total,
        page,
        pages,
    })
}

/// Everything the member's record holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub id: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub phone: Option<String>,
    pub address: Option<String>,
    pub role: Role,
    pub active: bool,
    /// The language of the pages and mails, when chosen (by them or a manager).
    pub locale: Option<Lang>,
}

impl Profile {
    fn audit_state(&self) -> serde_json::Value {
        serde_json::json!({
            "email": self.email,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "phone": self.phone,
            "address": self.address,
            "role": self.role.as_str(),
            "active": self.active,
            "locale": self.locale.map(Lang::code),
        })
    }
}

pub async fn profile(pool: &Pool, id: &str) -> anyhow::Result<Option<Profile>> {
    let row = sqlx::query(
        "SELECT id, email, first_name, last_name, phone, address, role, active, locale \
         FROM users WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await
    .context("could not load the member")?;
    let Some(r) = row else { return Ok(None) };
    let role: String = r.try_get("role")?;
    Ok(Some(Profile {
        id: r.try_get("id")?,
        email: r.try_get("email")?,
        first_name: r.try_get("first_name")?,
        last_name: r.try_get("last_name")?,
        phone: r.try_get("phone")?,
        address: r.try_get("address")?,
        role: Role::parse(&role).unwrap_or(Role::Member),
        active: r.try_get::<i64, _>("active")? == 1,
        locale: r
            .try_get::<Option<String>, _>("locale")?
            .as_deref()
            .and_then(Lang::parse),
    }))
}

/// What a manager typed about a person, as text.
pub struct MemberInput<'a> {
    pub first_name: &'a str,
    pub last_name: &'a str,
    pub email: &'a str,
    pub phone: &'a str,
    pub address: &'a str,
    pub role: &'a str,
    /// A language code, or empty when not chosen.
    pub locale: &'a str,
}

/// What is wrong with one of a person's details; said in the reader's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetailError {
    LastName(PersonError),
    FirstName(PersonError),
    Email,
    Phone(PersonError),
    Address(PersonError),
    Role,
    Locale,
}

impl DetailError {
    /// The form field it is about.
    pub fn field(self) -> &'static str {
        match self {
            DetailError::LastName(_) => "last_name",
            DetailError::FirstName(_) => "first_name",
            DetailError::Email => "email",
            DetailError::Phone(_) => "phone",
            DetailError::Address(_) => "address",
            DetailError::Role => "role",
            DetailError::Locale => "locale",
        }
    }
}

impl std::fmt::Display for DetailError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DetailError::LastName(e)
            | DetailError::FirstName(e)
            | DetailError::Phone(e)
            | DetailError::Address(e) => e.fmt(f),
            DetailError::Email => {
                f.write_str(crate::i18n::current().t("member_errors.invalid_email"))
            }
            DetailError::Role => f.write_str(crate::i18n::current().t("member_errors.role")),
            DetailError::Locale => f.write_str(crate::i18n::current().t("member_errors.locale")),
        }
    }
}

/// A person's details, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDetails {
    pub first_name: String,
    pub last_name: String,
    pub email: Email,
    pub phone: Option<String>,
    pub address: Option<String>,
    pub role: Role,
    /// The language of their pages and mails; none leaves it to them (French until chosen).
    pub locale: Option<Lang>,
}

impl MemberDetails {
    /// The details, or everything wrong with them.
    pub fn parse(input: &MemberInput<'_>) -> Result<MemberDetails, Vec<DetailError>> {
        let mut errors = Vec::new();
        let last_name = domain::parse_last_name(input.last_name)
            .map_err(|e| errors.push(DetailError::LastName(e)))
            .ok();
        let first_name = domain::parse_first_name(input.first_name)
            .map_err(|e| errors.push(DetailError::FirstName(e)))
            .ok();
        let email = Email::parse(input.email)
            .map_err(|_| errors.push(DetailError::Email))
            .ok();
        let phone = domain::parse_phone(input.phone)
            .map_err(|e| errors.push(DetailError::Phone(e)))
            .ok();
        let address = domain::parse_address(input.address)
            .map_err(|e| errors.push(DetailError::Address(e)))
            .ok();
        let role = Role::parse(input.role);
        if role.is_none() {
            errors.push(DetailError::Role);
        }
        let locale = match input.locale.trim() {
            "" => None,
            code => {
                let lang = Lang::parse(code);
                if lang.is_none() {
                    errors.push(DetailError::Locale);
                }
                lang
            }
        };
        match (last_name, first_name, email, phone, address, role) {
            (
                Some(last_name),
                Some(first_name),
                Some(email),
                Some(phone),
                Some(address),
                Some(role),
            ) if errors.is_empty() => Ok(MemberDetails {
                first_name,
                last_name,
                email,
                phone,
                address,
                role,
                locale,
            }),
            _ => Err(errors),
        }
    }
}

/// Why a change to a person was refused; the messages follow the reader's language.
#[derive(Debug, thiserror::Error)]
pub enum MemberError {
    #[error("{}", crate::i18n::current().t("member_errors.email_taken"))]
    EmailTaken,
    #[error("{}", crate::i18n::current().t("member_errors.admin_only"))]
    AdminOnly,
    #[error("{}", crate::i18n::current().t("member_errors.own_admin_role"))]
    OwnAdminRole,
    #[error("{}", crate::i18n::current().t("member_errors.own_account"))]
    OwnAccount,
    #[error("{}", crate::i18n::current().t("member_errors.inactive"))]
    Inactive,
    #[error("member not found")]
    NotFound,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl MemberError {
    /// The form field a refusal is about ("" when it is about the whole record).
    pub fn field(&self) -> &'static str {
        match self {
            MemberError::EmailTaken => "email",
            MemberError::OwnAdminRole => "role",
            _ => "",
        }
    }
}

/// Managers manage members; only admins create, change or deactivate managers and admins,
/// or give those roles.
fn authorize(actor: &User, target: Option<&Profile>, new_role: Role) -> Result<(), MemberError> {
    if actor.role == Role::Admin {
        return Ok(());
    }
    let target_is_member = target.is_none_or(|t| t.role == Role::Member);
    if actor.role == Role::Manager && target_is_member && new_role == Role::Member {
        Ok(())
    } else {
        Err(MemberError::AdminOnly)
    }
}

async fn email_taken(pool: &Pool, email: &Email, except_id: &str) -> anyhow::Result<bool> {
    let row = sqlx::query("SELECT id FROM users WHERE email = $1 AND id <> $2")
        .bind(email.as_str())
        .bind(except_id)
        .fetch_optional(pool)
        .await
        .context("could not check the email")?;
    Ok(row.is_some())
}

/// Inserts a person without a usable password (they choose it through their invitation).
pub async fn insert_member(
    tx: &mut db::Tx<'_>,
    details: &MemberDetails,
) -> Result<String, sqlx::Error> {
    let id = db::new_id();
    sqlx::query(
        "INSERT INTO users (id, email, password_hash, role, first_name, last_name, active, \
         created_at, phone, address, name_key, locale) \
         VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $8, $9, $10, $11)",
    )
    .bind(&id)
    .bind(details.email.as_str())
    .bind(password_links::unusable_hash())
    .bind(details.role.as_str())
    .bind(&details.first_name)
    .bind(&details.last_name)
    .bind(db::now_text())
    .bind(details.phone.as_deref())
    .bind(details.address.as_deref())
    .bind(domain::name_key(&details.first_name, &details.last_name))
    .bind(details.locale.map(Lang::code))
    .execute(&mut **tx)
    .await?;
    Ok(id)
}

/// Creates a person, and queues their invitation in the same transaction when asked.
pub async fn create(
    pool: &Pool,
    actor: &User,
    details: &MemberDetails,
    invite: bool,
) -> Result<String, MemberError> {
    authorize(actor, None, details.role)?;
    if email_taken(pool, &details.email, "").await? {
        return Err(MemberError::EmailTaken);
    }
    let mut tx = pool
        .begin()
        .await
        .context("could not start a transaction")?;
    let id = match insert_member(&mut tx, details).await {
        Ok(id) => id,
        Err(e) if db::is_unique_violation(&e) => return Err(MemberError::EmailTaken),
        Err(e) => {
            return Err(anyhow::Error::new(e)
                .context("could not create the member")
                .into());
        }
    };
    if invite {
        password_links::queue_invitation(&mut tx, &id).await?;
    }
    tx.commit().await.context("could not create the member")?;
    let after = profile(pool, &id)
        .await?
        .context("the member vanished right after being created")?;
    let mut state = after.audit_state();
    state["invited"] = serde_json::Value::Bool(invite);
    audit::record(
        pool,
        &actor.id,
        "member.create",
        &format!("member:{id}"),
        None,
        Some(state),
    )
    .await?;
    Ok(id)
}

/// Changes a person's details. A new email address voids the password links sent to the
/// old one.
pub async fn update(
    pool: &Pool,
    actor: &User,
    id: &str,
    details: &MemberDetails,
) -> Result<(), MemberError> {
    let before = profile(pool, id).await?.ok_or(MemberError::NotFound)?;
    authorize(actor, Some(&before), details.role)?;
    if actor.id == before.id && before.role == Role::Admin && details.role != Role::Admin {
        return Err(MemberError::OwnAdminRole);
    }
    if email_taken(pool, &details.email, id).await? {
        return Err(MemberError::EmailTaken);
    }
    let mut tx = pool
        .begin()
        .await
        .context("could not start a transaction")?;
    let updated = sqlx::query(
        "UPDATE users SET email = $2, first_name = $3, last_name = $4, phone = $5, address = $6, \
         role = $7, name_key = $8, locale = $9 WHERE id = $1",
    )
    .bind(id)
    .bind(details.email.as_str())
    .bind(&details.first_name)
    .bind(&details.last_name)
    .bind(details.phone.as_deref())
    .bind(details.address.as_deref())
    .bind(details.role.as_str())
    .bind(domain::name_key(&details.first_name, &details.last_name))
    .bind(details.locale.map(Lang::code))
    .execute(&mut *tx)
    .await;
    match updated {
        Ok(_) => {}
        Err(e) if db::is_unique_violation(&e) => return Err(MemberError::EmailTaken),
        Err(e) => {
            return Err(anyhow::Error::new(e)
                .context("could not update the member")
                .into());
        }
    }
    if before.email != details.email.as_str() {
        password_links::void_outstanding(&mut tx, id).await?;
    }
    tx.commit().await.context("could not update the member")?;
    let after = profile(pool, id).await?.ok_or(MemberError::NotFound)?;
    if after != before {
        audit::record(
            pool,
            &actor.id,
            "member.update",
            &format!("member:{id}"),
            Some(before.audit_state()),
            Some(after.audit_state()),
        )
        .await?;
    }
    Ok(())
}

/// Deactivates (they can no longer log in, their history stays) or reactivates a person.
/// Returns false when they already were in that state.
pub async fn set_active(
    pool: &Pool,
    actor: &User,
    id: &str,
    active: bool,
) -> Result<bool, MemberError> {
    let before = profile(pool, id).await?.ok_or(MemberError::NotFound)?;
    authorize(actor, Some(&before), before.role)?;
    if actor.id == before.id && !active {
        return Err(MemberError::OwnAccount);
    }
    let mut tx = pool
        .begin()
        .await
        .context("could not start a transaction")?;
    let changed = sqlx::query("UPDATE users SET active = $2 WHERE id = $1 AND active <> $2")
        .bind(id)
        .bind(i64::from(active))
        .execute(&mut *tx)
        .await
        .context("could not change the member's status")?
        .rows_affected()
        == 1;
    if changed && !active {
        password_links::void_outstanding(&mut tx, id).await?;
    }
    tx.commit()
        .await
        .context("could not change the member's status")?;
    if changed {
        audit::record(
            pool,
            &actor.id,
            if active {
                "member.reactivate"
            } else {
                "member.deactivate"
            },
            &format!("member:{id}"),
            Some(serde_json::json!({ "active": before.active })),
            Some(serde_json::json!({ "active": active })),
        )
        .await?;
    }
    Ok(changed)
}

/// Sends the person a new invitation (a link to choose their password).
pub async fn resend_invitation(
    pool: &Pool,
    actor: &User,
    id: &str,
) -> Result<Profile, MemberError> {
    let member = profile(pool, id).await?.ok_or(MemberError::NotFound)?;
    authorize(actor, Some(&member), member.role)?;
    if !member.active {
        return Err(MemberError::Inactive);
    }
    let mut tx = pool
        .begin()
        .await
        .context("could not start a transaction")?;
    password_links::queue_invitation(&mut tx, id).await?;
    tx.commit()
        .await
        .context("could not queue the invitation")?;
    audit::record(
        pool,
        &actor.id,
        "member.invite",
        &format!("member:{id}"),
        None,
        Some(serde_json::json!({ "email": member.email })),
    )
    .await?;
    Ok(member)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_words_are_folded_and_wildcards_escaped() {
        let patterns = search_patterns("  Hélène 50%_x ");
        assert_eq!(patterns[0], "%helene%");
        assert_eq!(patterns[1], "%50\\%\\_x%");
        assert_eq!(patterns[2], "%");
        assert_eq!(search_patterns("a b c d e f g")[4], "%e%");
    }

    fn user(role: Role) -> User {
        User {
            id: "actor".into(),
            email: "a@exemple.org".into(),
            role,
            first_name: "A".into(),
            last_name: "B".into(),
        }
    }

    #[test]
    fn only_admins_touch_managers_and_admins() {
        let manager = user(Role::Manager);
        let admin = user(Role::Admin);
        assert!(authorize(&manager, None, Role::Member).is_ok());
        assert!(authorize(&manager, None, Role::Manager).is_err());
        assert!(authorize(&manager, None, Role::Admin).is_err());
        assert!(authorize(&admin, None, Role::Admin).is_ok());
        assert!(authorize(&user(Role::Member), None, Role::Member).is_err());
    }

    #[test]
    fn details_report_every_problem() {
        let errors = MemberDetails::parse(&MemberInput {
            first_name: "",
            last_name: " ",
            email: "nope",
            phone: "abc",
            address: "",
            role: "king",
            locale: "de",
        })
        .unwrap_err();
        assert_eq!(errors.len(), 6, "{errors:?}");
        let fields: Vec<_> = errors.iter().map(|e| e.field()).collect();
        assert_eq!(
            fields,
            [
                "last_name",
                "first_name",
                "email",
                "phone",
                "role",
                "locale"
            ]
        );
        assert_eq!(errors[0].to_string(), "Indiquez le nom.");
        let english = crate::i18n::sync_scope(crate::i18n::Lang::En, || errors[2].to_string());
        assert_eq!(english, "Give a valid email address.");
    }
}
