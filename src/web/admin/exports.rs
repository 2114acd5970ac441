//! Downloads of the journal: a fiscal year as CSV or FEC, or the journal page's selection as
//! CSV; streamed.

use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::books::{JournalQuery, gateway_names, journal_filter};
use crate::account_plan;
use crate::books::JournalFilter;
use crate::exports::{self, Format};
use crate::web::{AppError, AppState, ManagerUser};

#[derive(Deserialize)]
pub struct ExportQuery {
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    year: Option<String>,
    /// The journal page's filters (CSV only).
    #[serde(flatten)]
    selection: JournalQuery,
}

pub async fn journal(
    state: web::Data<AppState>,
    ManagerUser(current): ManagerUser,
    query: web::Query<ExportQuery>,
) -> Result<HttpResponse, AppError> {
    let lang = crate::i18n::current();
    let format = match query.format.as_deref().unwrap_or("csv") {
        "csv" => Format::Csv,
        "fec" => Format::Fec,
        _ => {
            return Err(AppError::BadRequest(lang.t("ledger.bad_format").into()));
        }
    };
    let this_year = time::OffsetDateTime::now_utc().year();
    let year = match query.year.as_deref() {
        None | Some("") => this_year,
        Some(y) => y
            .parse::<i32>()
            .ok()
            .filter(|y| (2000..=this_year + 1).contains(y))
            .ok_or_else(|| AppError::BadRequest(lang.t("ledger.bad_year").into()))?,
    };
    let period = exports::fiscal_year(&state.settings, year).map_err(|e| {
        AppError::BadRequest(lang.tf("ledger.bad_fiscal_year", &[("error", &e.to_string())]))
    })?;
    let selection = journal_filter(&state, &query.selection)
        .await?
        .map_err(AppError::BadRequest)?;
    if format == Format::Fec && !selection.is_empty() {
        return Err(AppError::BadRequest(lang.t("ledger.fec_no_filters").into()));
    }
    tracing::info!(by = %current.user.id, ?format, year, "journal export");
    let (file_name, content_type, filter) = match format {
        Format::Fec => (
            exports::fec_file_name(&state.settings.siren, &period),
            "text/plain; charset=utf-8",
            JournalFilter::period(&period),
        ),
        Format::Csv if selection.is_empty() => (
            format!("journal-{}-{}.csv", period.from, period.to),
            "text/csv; charset=utf-8",
            JournalFilter::period(&period),
        ),
        Format::Csv => (
            format!(
                "journal-selection-{}-{}.csv",
                selection.from.as_deref().unwrap_or("debut"),
                selection.to.as_deref().unwrap_or("fin")
            ),
            "text/csv; charset=utf-8",
            selection,
        ),
    };
    let names = gateway_names(&state).await?;
    // The files are French accounting documents (the FEC is normative): French account names.
    let labels = account_plan::account_labels(
        &state.pool,
        &state.settings.accounts,
        &names,
        crate::i18n::Lang::Fr,
    )
    .await?;
    let body = exports::stream(state.pool.clone(), labels, format, filter);
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{file_name}\""),
        ))
        .insert_header(("Cache-Control", "no-store"))
        .streaming(body))
}
