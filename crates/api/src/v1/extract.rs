//! Extractors: the JSON body with field-naming errors, the authenticated key, path ids.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use coffer_core::{ApiCredential, MerchantId, OrderId, PayoutId, Scope};
use serde::de::DeserializeOwned;

use super::error::{ApiError, json_error};

/// A JSON request body. Errors name the field (`unknown_field`, `missing_field`,
/// `invalid_field`) or say the body is not JSON (`invalid_json`). An empty body reads as `{}`.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap_or_default().to_ascii_lowercase());
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    "request body is larger than the server accepts",
                )
            } else {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_body",
                    rejection.body_text(),
                )
            }
        })?;
        let body: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            let is_json = content_type.as_deref().is_some_and(|ct| {
                let essence = ct.split(';').next().unwrap_or_default().trim();
                essence == "application/json" || essence.ends_with("+json")
            });
            if !is_json {
                return Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    "send the body as JSON with Content-Type: application/json",
                ));
            }
            &bytes
        };
        if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                "the request body must be a JSON object",
            ));
        }
        let mut de = serde_json::Deserializer::from_slice(body);
        let value = serde_path_to_error::deserialize(&mut de).map_err(|e| json_error(&e))?;
        de.end().map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                format!("the request body is not valid JSON: {e}"),
            )
        })?;
        Ok(ApiJson(value))
    }
}

/// The API key of the request, put in place by the authentication middleware.
#[derive(Debug, Clone)]
pub struct Auth(pub ApiCredential);

impl Auth {
    /// The key's merchant, if the key has `scope` (or `admin`).
    pub fn require(&self, scope: Scope) -> Result<&MerchantId, ApiError> {
        let scopes = &self.0.scopes;
        if scopes.contains(&scope) || scopes.contains(&Scope::Admin) {
            Ok(&self.0.merchant_id)
        } else {
            Err(coffer_engine::EngineError::Forbidden(scope).into())
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<ApiCredential>()
            .cloned()
            .map(Auth)
            .ok_or_else(|| coffer_engine::EngineError::Unauthorized.into())
    }
}

/// `{id}` of an order route. An id that does not parse names no order: 404, like a missing one.
pub struct OrderPath(pub OrderId);

impl<S: Send + Sync> FromRequestParts<S> for OrderPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::not_found("order"))?;
        raw.parse()
            .map(OrderPath)
            .map_err(|_| ApiError::not_found("order"))
    }
}

/// `{id}` of a payout route. An id that does not parse names no payout: 404, like a missing one.
pub struct PayoutPath(pub PayoutId);

impl<S: Send + Sync> FromRequestParts<S> for PayoutPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::not_found("payout"))?;
        raw.parse()
            .map(PayoutPath)
            .map_err(|_| ApiError::not_found("payout"))
    }
}
