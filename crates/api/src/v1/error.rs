//! The one error shape of the API, and how engine errors and request rejections map onto it.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use coffer_engine::EngineError;
use coffer_store::StoreError;

/// An API error: HTTP status, stable machine code, message, and the field at fault.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
    /// Seconds after which a retry may succeed (`Retry-After`).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }

    pub fn bad_request(code: &'static str, field: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message).with_field(field)
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// The same error naming `to` where the engine named `from` (an API whose field is called
    /// differently from the engine's parameter).
    pub fn rename_field(mut self, from: &str, to: &str) -> Self {
        if self.field.as_deref() == Some(from) {
            self.field = Some(to.to_owned());
            self.message = self.message.replace(from, to);
        }
        self
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }
}

impl From<EngineError> for ApiError {
    fn from(err: EngineError) -> Self {
        let code = err.code();
        match err {
            EngineError::Invalid { field, message, .. } => {
                let status = if code == "idempotency_key_reused" {
                    StatusCode::UNPROCESSABLE_ENTITY
                } else {
                    StatusCode::BAD_REQUEST
                };
                ApiError {
                    field: field.map(str::to_owned),
                    ..ApiError::new(status, code, message)
                }
            }
            EngineError::NotFound(what) => ApiError::not_found(what),
            EngineError::Conflict { message, .. } => {
                let mut e = ApiError::new(StatusCode::CONFLICT, code, message);
                if code == "idempotency_in_progress" {
                    e.retry_after = Some(1);
                }
                e
            }
            EngineError::RateUnavailable { .. } => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code, err.to_string())
            }
            EngineError::Unauthorized => {
                ApiError::new(StatusCode::UNAUTHORIZED, code, err.to_string())
            }
            EngineError::Forbidden(_) => {
                ApiError::new(StatusCode::FORBIDDEN, code, err.to_string())
            }
            EngineError::Store(StoreError::Unavailable(detail)) => {
                tracing::warn!(%detail, "database unavailable");
                let mut e = ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    code,
                    "the database is unavailable; retry shortly",
                );
                e.retry_after = Some(1);
                e
            }
            EngineError::Store(other) => {
                tracing::error!(error = %other, "internal error");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, code, "internal error")
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response =
            crate::error_response(self.status, self.code, &self.message, self.field.as_deref());
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// Map a JSON body error to the error shape, naming the field where serde knows it.
pub fn json_error(err: &serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let inner = err.inner();
    let path = err.path().to_string();
    let parent = if path == "." { None } else { Some(path) };
    let join = |name: &str| match &parent {
        Some(p) => format!("{p}.{name}"),
        None => name.to_owned(),
    };
    if !inner.is_data() {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("the request body is not valid JSON: {inner}"),
        );
    }
    let text = inner.to_string();
    let quoted = |prefix: &str| {
        text.strip_prefix(prefix)
            .and_then(|rest| rest.split('`').next())
            .map(str::to_owned)
    };
    if let Some(name) = quoted("unknown field `") {
        // The path already ends at the unknown field.
        let field = match &parent {
            Some(p) if p == &name || p.ends_with(&format!(".{name}")) => p.clone(),
            _ => join(&name),
        };
        return ApiError::bad_request("unknown_field", &field, format!("unknown field {field:?}"));
    }
    if let Some(name) = quoted("missing field `") {
        let field = join(&name);
        return ApiError::bad_request(
            "missing_field",
            &field,
            format!("missing required field {field:?}"),
        );
    }
    // Strip serde_json's " at line 1 column 17" position suffix.
    let detail = text.split(" at line ").next().unwrap_or(&text).to_owned();
    match parent {
        Some(field) => ApiError::bad_request("invalid_field", &field, format!("{field}: {detail}")),
        None => ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("the request body must be a JSON object: {detail}"),
        ),
    }
}
