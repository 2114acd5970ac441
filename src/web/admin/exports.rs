//! Downloads of the journal for a fiscal year: CSV or FEC, streamed.

use actix_web::{HttpResponse, web};
use serde::Deserialize;

use crate::exports::{self, Format};
use crate::web::{AppError, AppState, ManagerUser};

#[derive(Deserialize)]
pub struct ExportQuery {
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    year: Option<String>,
}

pub async fn journal(
    state: web::Data<AppState>,
    ManagerUser(current): ManagerUser,
    query: web::Query<ExportQuery>,
) -> Result<HttpResponse, AppError> {
    let format = match query.format.as_deref().unwrap_or("csv") {
        "csv" => Format::Csv,
        "fec" => Format::Fec,
        _ => {
            return Err(AppError::BadRequest(
                "Format d'export inconnu : csv ou fec.".into(),
            ));
        }
    };
    let this_year = time::OffsetDateTime::now_utc().year();
    let year = match query.year.as_deref() {
        None | Some("") => this_year,
        Some(y) => y
            .parse::<i32>()
            .ok()
            .filter(|y| (2000..=this_year + 1).contains(y))
            .ok_or_else(|| AppError::BadRequest("Année invalide.".into()))?,
    };
    let period = exports::fiscal_year(&state.settings, year).map_err(|e| {
        AppError::BadRequest(format!("Exercice mal configuré (fiscal_year_end) : {e}"))
    })?;
    tracing::info!(by = %current.user.id, ?format, year, "journal export");
    let (file_name, content_type) = match format {
        Format::Fec => (
            exports::fec_file_name(&state.settings.siren, &period),
            "text/plain; charset=utf-8",
        ),
        Format::Csv => (
            format!("journal-{}-{}.csv", period.from, period.to),
            "text/csv; charset=utf-8",
        ),
    };
    let body = exports::stream(
        state.pool.clone(),
        state.settings.accounts.clone(),
        format,
        period,
    );
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{file_name}\""),
        ))
        .insert_header(("Cache-Control", "no-store"))
        .streaming(body))
}
