//! Aurpay's response envelope: `{"code": 0, "message": "ok", "data": {...}, "result": true}`.
//! Errors: `{"code": <HTTP status>, "message": "...", "data": null, "result": false}` with that
//! HTTP status (Aurpay publishes no error-code table; see docs/compat/aurpay.md).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use coffer_engine::EngineError;
use coffer_store::StoreError;
use serde::Serialize;
use serde_json::json;

/// A successful answer carrying `data`.
pub fn ok<T: Serialize>(data: T) -> Response {
    #[derive(Serialize)]
    struct Envelope<T> {
        code: i64,
        message: &'static str,
        data: T,
        result: bool,
    }
    let body = Envelope {
        code: 0,
        message: "ok",
        data,
        result: true,
    };
    match serde_json::to_vec(&body) {
        Ok(bytes) => (
            StatusCode::OK,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            bytes,
        )
            .into_response(),
        Err(e) => AurpayError::internal(&e.to_string()).into_response(),
    }
}

/// An error in Aurpay's envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AurpayError {
    pub status: StatusCode,
    pub message: String,
}

impl AurpayError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, format!("{what} not found"))
    }

    pub fn internal(detail: &str) -> Self {
        tracing::error!(detail, "aurpay dialect: internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
    }

    /// The `code` of the envelope: the HTTP status.
    pub fn code(&self) -> u16 {
        self.status.as_u16()
    }
}

impl IntoResponse for AurpayError {
    fn into_response(self) -> Response {
        let body = json!({
            "code": self.code(),
            "message": self.message,
            "data": null,
            "result": false,
        });
        (self.status, axum::Json(body)).into_response()
    }
}

impl From<EngineError> for AurpayError {
    fn from(err: EngineError) -> Self {
        match &err {
            EngineError::Invalid { field, message, .. } => match field {
                Some(f) => Self::bad_request(format!("{}: {message}", vendor_field(f))),
                None => Self::bad_request(message.clone()),
            },
            EngineError::NotFound(what) => Self::not_found(what),
            EngineError::Conflict { message, .. } => Self::new(StatusCode::CONFLICT, message),
            EngineError::RateUnavailable { .. } => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, err.to_string())
            }
            EngineError::Unauthorized => Self::unauthorized("invalid API-Key"),
            EngineError::Forbidden(_) => Self::new(StatusCode::FORBIDDEN, err.to_string()),
            EngineError::Store(StoreError::Unavailable(_)) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "database unavailable, retry later",
            ),
            EngineError::Store(e) => Self::internal(&e.to_string()),
        }
    }
}

/// Coffer's field names in engine errors, renamed to the Aurpay request field they came from.
fn vendor_field(field: &str) -> &str {
    match field {
        "amount" => "price",
        "success_url" => "succeed_url",
        "expired_url" => "timeout_url",
        "order_no" => "id",
        "destination" => "address",
        other => other,
    }
}
