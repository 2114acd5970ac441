//! What a request must be before a handler reads it: text that is UTF-8 (a query string, a
//! form), and a body that keeps arriving. Forms are read here in full (they are small), checked,
//! and handed on; other bodies (uploads, gateways' notifications) are passed through a guard
//! that gives up when the client stops sending. Gateways' notifications are stored byte-exact
//! and checked by their own verifiers, so only the idle guard applies to them.

use std::time::Duration;

use actix_web::HttpMessage as _;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::{StatusCode, header};
use actix_web::middleware::Next;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;

use super::AppError;

/// How long a client may leave a body unfinished without sending a byte.
pub const BODY_IDLE: Duration = Duration::from_secs(10);

/// The largest form obole reads (the form extractor's own limit is lower).
const FORM_MAX: usize = 64 * 1024;

pub async fn middleware(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let notification = req.path().starts_with("/webhooks/");
    if !notification && !is_utf8_urlencoded(req.query_string().as_bytes()) {
        return Ok(refuse(
            req,
            AppError::Input(StatusCode::BAD_REQUEST, "input.query_not_utf8"),
        ));
    }
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let payload = req.take_payload();
    if is_form && !notification {
        let body = match read_form(payload).await {
            Ok(body) => body,
            Err(problem) => return Ok(refuse(req, problem)),
        };
        if !is_utf8_urlencoded(&body) {
            return Ok(refuse(
                req,
                AppError::Input(StatusCode::BAD_REQUEST, "input.form_not_utf8"),
            ));
        }
        req.set_payload(Payload::from(body));
    } else {
        req.set_payload(Payload::Stream {
            payload: Box::pin(idle_guarded(payload)),
        });
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}

fn refuse<B>(req: ServiceRequest, error: AppError) -> ServiceResponse<EitherBody<B>> {
    req.into_response(error.into_response())
        .map_into_right_body()
}

/// The whole form, unless the client stalls or sends too much.
async fn read_form(mut payload: Payload) -> Result<Bytes, AppError> {
    let mut body = BytesMut::new();
    loop {
        match tokio::time::timeout(BODY_IDLE, payload.next()).await {
            Err(_) => {
                return Err(AppError::Input(
                    StatusCode::REQUEST_TIMEOUT,
                    "input.too_slow",
                ));
            }
            Ok(None) => return Ok(body.freeze()),
            Ok(Some(Err(_))) => {
                return Err(AppError::Input(StatusCode::BAD_REQUEST, "input.unreadable"));
            }
            Ok(Some(Ok(chunk))) => {
                if body.len() + chunk.len() > FORM_MAX {
                    return Err(AppError::Input(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "input.too_large",
                    ));
                }
                body.extend_from_slice(&chunk);
            }
        }
    }
}

/// The body as it comes, ending in an error when no byte arrives for `BODY_IDLE` (fused:
/// readers such as multipart may ask again once it has ended).
fn idle_guarded(
    payload: Payload,
) -> impl futures_util::Stream<Item = Result<Bytes, PayloadError>> + 'static {
    futures_util::stream::unfold(Some(payload), |state| async move {
        let mut payload = state?;
        match tokio::time::timeout(BODY_IDLE, payload.next()).await {
            Ok(Some(item)) => Some((item, Some(payload))),
            Ok(None) => None,
            Err(_) => Some((
                Err(PayloadError::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the client stopped sending the body",
                ))),
                None,
            )),
        }
    })
    .fuse()
}

/// Whether every name and value of `application/x-www-form-urlencoded` text decodes to UTF-8.
fn is_utf8_urlencoded(text: &[u8]) -> bool {
    text.split(|b| *b == b'&').all(|pair| {
        pair.split(|b| *b == b'=')
            .all(|part| percent_encoding::percent_decode(part).decode_utf8().is_ok())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_utf8_forms_pass() {
        assert!(is_utf8_urlencoded(b"name=H%C3%A9l%C3%A8ne&x=1+2&empty="));
        assert!(is_utf8_urlencoded("name=Hélène".as_bytes()));
        assert!(is_utf8_urlencoded(b""));
        assert!(!is_utf8_urlencoded(b"name=Pa%C3%28"));
        assert!(!is_utf8_urlencoded(b"name=Dur\xe9"));
        assert!(!is_utf8_urlencoded(b"%FF=1"));
    }
}
