//! Importing members from a CSV file: upload, preview with each row's fate, confirmation.

use actix_multipart::Multipart;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use futures_util::StreamExt;
use serde::Deserialize;

use super::members::{t, tf};
use crate::member_import::{self, Confirmed, FileError, MAX_FILE_BYTES, Preview, Staged};
use crate::web::{
    AppError, AppState, CurrentUser, Layout, ManagerUser, SessionExt, render, see_other,
};

/// Form fields other than the file are small.
const MAX_FIELD_BYTES: usize = 4 * 1024;
const MAX_FIELDS: usize = 8;
/// Beyond this, an oversized upload is cut short instead of read to its end.
const MAX_DRAINED_BYTES: usize = 32 * 1024 * 1024;

#[derive(Template)]
#[template(path = "admin/member_import.html")]
struct UploadView {
    layout: Layout,
    error: Option<String>,
}

fn upload_page(state: &AppState, current: &CurrentUser, error: Option<String>) -> UploadView {
    UploadView {
        layout: current.layout(state),
        error,
    }
}

pub async fn upload_form(
    state: web::Data<AppState>,
    ManagerUser(current): ManagerUser,
) -> Result<HttpResponse, AppError> {
    Ok(render(StatusCode::OK, &upload_page(&state, &current, None)))
}

/// What the upload form sent.
struct Upload {
    csrf_token: String,
    file_name: String,
    content: Vec<u8>,
}

enum UploadError {
    TooLarge,
    Unreadable,
}

/// Reads the multipart form in memory, refusing more than `MAX_FILE_BYTES` of file.
async fn read_upload(mut multipart: Multipart) -> Result<Upload, UploadError> {
    let mut upload = Upload {
        csrf_token: String::new(),
        file_name: String::new(),
        content: Vec::new(),
    };
    let mut fields = 0;
    while let Some(field) = multipart.next().await {
        let mut field = field.map_err(|_| UploadError::Unreadable)?;
        fields += 1;
        if fields > MAX_FIELDS {
            return Err(UploadError::Unreadable);
        }
        let name = field.name().unwrap_or_default().to_string();
        let limit = if name == "file" {
            MAX_FILE_BYTES
        } else {
            MAX_FIELD_BYTES
        };
        let (mut bytes, mut seen) = (Vec::new(), 0usize);
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(|_| UploadError::Unreadable)?;
            seen += chunk.len();
            if seen > limit {
                // Reads on (without keeping) so that the browser gets the answer, up to a point.
                bytes = Vec::new();
                if seen > MAX_DRAINED_BYTES {
                    break;
                }
                continue;
            }
            bytes.extend_from_slice(&chunk);
        }
        if seen > limit {
            return Err(if name == "file" {
                UploadError::TooLarge
            } else {
                UploadError::Unreadable
            });
        }
        match name.as_str() {
            "csrf_token" => upload.csrf_token = String::from_utf8_lossy(&bytes).into_owned(),
            "file" => {
                upload.file_name = field
                    .content_disposition()
                    .and_then(|cd| cd.get_filename())
                    .unwrap_or_default()
                    .to_string();
                upload.content = bytes;
            }
            _ => {}
        }
    }
    Ok(upload)
}

/// Keeps the file and shows its preview, or says what is wrong with the file as a whole.
pub async fn upload(
    state: web::Data<AppState>,
    ManagerUser(current): ManagerUser,
    multipart: Multipart,
) -> Result<HttpResponse, AppError> {
    let upload = match read_upload(multipart).await {
        Ok(upload) => upload,
        Err(UploadError::TooLarge) => {
            let page = upload_page(&state, &current, Some(FileError::TooLarge.to_string()));
            return Ok(render(StatusCode::PAYLOAD_TOO_LARGE, &page));
        }
        Err(UploadError::Unreadable) => {
            return Err(AppError::BadRequest(
                t("member_import.error_not_the_form").into(),
            ));
        }
    };
    current.session.check_csrf(&upload.csrf_token)?;
    if upload.content.is_empty() {
        let page = upload_page(
            &state,
            &current,
            Some(t("member_import.error_no_file").into()),
        );
        return Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page));
    }
    let decoded = member_import::decode(&upload.content);
    if let Err(error) = member_import::parse(&decoded.text) {
        let page = upload_page(&state, &current, Some(error.to_string()));
        return Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page));
    }
    let id = member_import::stage(&state.pool, &current.user, &upload.file_name, &decoded).await?;
    Ok(see_other(&format!("/admin/members/import/{id}")))
}

pub struct RowView {
    pub line: u64,
    pub last_name: String,
    pub first_name: String,
    pub email: String,
    pub phone: String,
    pub errors: Vec<String>,
    pub create: bool,
}

#[derive(Template)]
#[template(path = "admin/member_import_preview.html")]
struct PreviewView {
    layout: Layout,
    import: Staged,
    separator: String,
    ignored_columns: String,
    rows: Vec<RowView>,
    to_create: usize,
    skipped: usize,
    digest: String,
    /// Why the preview is shown again instead of importing.
    changed: bool,
}

fn preview_page(
    state: &AppState,
    current: &CurrentUser,
    import: Staged,
    preview: Preview,
    changed: bool,
) -> PreviewView {
    PreviewView {
        layout: current.layout(state),
        separator: match preview.file.separator {
            ';' => t("member_import.semicolon").into(),
            _ => t("member_import.comma").into(),
        },
        ignored_columns: preview.file.ignored_columns.join(", "),
        to_create: preview.to_create(),
        skipped: preview.skipped(),
        digest: preview.digest,
        rows: preview
            .rows
            .into_iter()
            .map(|r| RowView {
                line: r.source.line,
                create: r.will_create(),
                last_name: r.source.last_name,
                first_name: r.source.first_name,
                email: r.source.email,
                phone: r.source.phone,
                errors: r.errors.iter().map(ToString::to_string).collect(),
            })
            .collect(),
        import,
        changed,
    }
}

async fn staged(state: &AppState, current: &CurrentUser, id: &str) -> Result<Staged, AppError> {
    if uuid::Uuid::parse_str(id).is_err() {
        return Err(AppError::NotFound);
    }
    member_import::load(&state.pool, &current.user, id)
        .await?
        .ok_or(AppError::NotFound)
}

pub async fn preview(
    state: web::Data<AppState>,
    ManagerUser(current): ManagerUser,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let import = staged(&state, &current, &id).await?;
    if import.imported {
        current.session.set_flash(
            "info",
            &tf(
                "member_import.already_imported",
                &[("count", &import.imported_count.to_string())],
            ),
        );
        return Ok(see_other("/admin/members"));
    }
    let preview = member_import::preview(&state.pool, &import).await?;
    let page = preview_page(&state, &current, import, preview, false);
    Ok(render(StatusCode::OK, &page))
}

#[derive(Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    digest: String,
    #[serde(default)]
    invite: Option<String>,
    #[serde(default)]
    csrf_token: String,
}

pub async fn confirm(
    state: web::Data<AppState>,
    ManagerUser(current): ManagerUser,
    id: web::Path<String>,
    form: web::Form<ConfirmForm>,
) -> Result<HttpResponse, AppError> {
    current.session.check_csrf(&form.csrf_token)?;
    let import = staged(&state, &current, &id).await?;
    let invite = form.invite.is_some();
    let outcome =
        member_import::confirm(&state.pool, &current.user, &import, &form.digest, invite).await?;
    match outcome {
        Confirmed::Imported { created, invited } => {
            let created = created.to_string();
            let count = [("count", created.as_str())];
            let message = if invited {
                tf("member_import.imported_invited", &count)
            } else {
                tf("member_import.imported", &count)
            };
            current.session.set_flash("info", &message);
            Ok(see_other("/admin/members"))
        }
        Confirmed::AlreadyImported { created } => {
            current.session.set_flash(
                "info",
                &tf(
                    "member_import.imported_twice",
                    &[("count", &created.to_string())],
                ),
            );
            Ok(see_other("/admin/members"))
        }
        Confirmed::NothingToImport => {
            current
                .session
                .set_flash("info", t("member_import.nothing_imported"));
            Ok(see_other("/admin/members/import"))
        }
        Confirmed::Changed(preview) => {
            let page = preview_page(&state, &current, import, *preview, true);
            Ok(render(StatusCode::CONFLICT, &page))
        }
    }
}
