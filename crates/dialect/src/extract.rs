//! The authenticating extractor every dialect handler takes.
//!
//! A dialect implements [`Authenticate`] for its state: how a request proves who sent it
//! (headers, HMAC over the raw body, timestamp window, nonce) and how a refusal looks in the
//! vendor's envelope. A handler then takes `Signed<State, Json<Body>>` (or [`Query`], or no
//! payload): the request is read once, authenticated over the raw bytes, and only then is the
//! payload decoded into the handler's typed `Body`, errors naming the field. Nothing is
//! decoded, read or written for a request that does not authenticate.

use std::future::Future;

use axum::body::Bytes;
use axum::extract::{FromRef, FromRequest, OriginalUri, Request};
use axum::http::{HeaderMap, Method, Uri, header};
use axum::response::{IntoResponse, Response};
use coffer_core::MerchantId;
use coffer_engine::DialectCredential;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::lenient::REQUIRED;

/// A request as received, read once: what a signature covers.
#[derive(Debug, Clone)]
pub struct RawRequest {
    pub method: Method,
    /// The URI as the client sent it (before any nesting), path and query.
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl RawRequest {
    /// A header's value, trimmed; absent, blank or not text is `None`. Names are
    /// case-insensitive.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    }

    pub fn path(&self) -> &str {
        self.uri.path()
    }

    pub fn query(&self) -> Option<&str> {
        self.uri.query()
    }

    /// The path with `?query` exactly as sent (the path alone without one).
    pub fn path_and_query(&self) -> &str {
        self.uri
            .path_and_query()
            .map_or_else(|| self.uri.path(), |p| p.as_str())
    }

    /// Whether the body is sent as a form (`application/x-www-form-urlencoded`).
    pub fn is_form(&self) -> bool {
        self.header(header::CONTENT_TYPE.as_str())
            .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"))
    }
}

impl<S: Send + Sync> FromRequest<S> for RawRequest {
    /// A body that cannot be read (too large): the framework's answer, which the server puts
    /// in the dialect's envelope by path.
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let method = req.method().clone();
        let uri = req
            .extensions()
            .get::<OriginalUri>()
            .map_or_else(|| req.uri().clone(), |original| original.0.clone());
        let headers = req.headers().clone();
        let body = Bytes::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(Self {
            method,
            uri,
            headers,
            body,
        })
    }
}

/// Who sent an authenticated request: the credential (its merchant, its opened secrets) and,
/// for a dialect with several schemes, which one was used.
#[derive(Clone)]
pub struct Authenticated<M = ()> {
    pub credential: DialectCredential,
    pub mode: M,
}

/// A dialect's authentication scheme and its error envelope. Implemented by the dialect's
/// handler state (what [`Signed`] gets with `FromRef`).
pub trait Authenticate: Send + Sync {
    /// How the request authenticated, for dialects with more than one way (else `()`).
    type Mode: Send;
    /// A refusal in the dialect's envelope.
    type Rejection: IntoResponse;

    /// Authenticate `req` over its raw bytes: the credential, or the dialect's refusal.
    fn authenticate(
        &self,
        req: &RawRequest,
    ) -> impl Future<Output = Result<Authenticated<Self::Mode>, Self::Rejection>> + Send;

    /// A payload that does not decode, in the dialect's envelope (a 400 naming the field).
    fn reject(&self, error: BodyError) -> Self::Rejection;
}

/// An authenticated request: its merchant, credential, scheme and decoded payload `P`
/// ([`Json`], [`JsonOrEmpty`], [`JsonOrForm`], [`Query`] or `()`).
pub struct Signed<A: Authenticate, P = ()> {
    pub merchant: MerchantId,
    pub credential: DialectCredential,
    pub mode: A::Mode,
    pub payload: P,
}

impl<S, A, P> FromRequest<S> for Signed<A, P>
where
    S: Send + Sync,
    A: Authenticate + FromRef<S>,
    P: Payload,
{
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let raw = RawRequest::from_request(req, state).await?;
        let scheme = A::from_ref(state);
        let who = scheme
            .authenticate(&raw)
            .await
            .map_err(IntoResponse::into_response)?;
        let payload = P::decode(&raw).map_err(|e| scheme.reject(e).into_response())?;
        Ok(Self {
            merchant: who.credential.merchant_id.clone(),
            credential: who.credential,
            mode: who.mode,
            payload,
        })
    }
}

/// Why a payload was refused; `Display` is a sentence naming the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// Empty, not JSON, or not an object.
    Malformed(String),
    /// A required field is absent, `null` or blank; its path (`origin.price`).
    Missing(String),
    /// A field's value is not what it must be.
    Invalid { field: String, message: String },
}

impl BodyError {
    /// The field the error is about (its path), if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            BodyError::Malformed(_) => None,
            BodyError::Missing(field) | BodyError::Invalid { field, .. } => Some(field),
        }
    }

    /// What is wrong, without the field's name (`is required`, `must be an integer`).
    pub fn problem(&self) -> &str {
        match self {
            BodyError::Malformed(detail) => detail,
            BodyError::Missing(_) => REQUIRED,
            BodyError::Invalid { message, .. } => message,
        }
    }

    fn from_serde<E: serde::de::Error + std::fmt::Display>(
        err: serde_path_to_error::Error<E>,
        syntax: bool,
    ) -> Self {
        let path = err.path().to_string();
        let text = err.inner().to_string();
        if syntax {
            return BodyError::Malformed(format!("the request body is not valid JSON: {text}"));
        }
        // serde_json appends the position; the field's path says more.
        let detail = text.split(" at line ").next().unwrap_or(&text).to_owned();
        let parent = (path != ".").then_some(path);
        let join = |name: &str| match &parent {
            Some(p) => format!("{p}.{name}"),
            None => name.to_owned(),
        };
        // serde's own wording of an absent field (`Error::missing_field`).
        if let Some(name) = detail
            .strip_prefix("missing field `")
            .and_then(|rest| rest.strip_suffix('`'))
        {
            return BodyError::Missing(join(name));
        }
        match parent {
            Some(field) if detail == REQUIRED => BodyError::Missing(field),
            Some(field) => BodyError::Invalid {
                field,
                message: detail,
            },
            None => {
                BodyError::Malformed(format!("the request body must be a JSON object: {detail}"))
            }
        }
    }
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyError::Malformed(detail) => f.write_str(detail),
            BodyError::Missing(field) => write!(f, "{field} {REQUIRED}"),
            // The lenient types' messages continue the field's name; serde's stand alone.
            BodyError::Invalid { field, message }
                if message.starts_with("must ") || message.starts_with("is ") =>
            {
                write!(f, "{field} {message}")
            }
            BodyError::Invalid { field, message } => write!(f, "{field}: {message}"),
        }
    }
}

impl std::error::Error for BodyError {}

/// What an authenticated request carries, decoded after authentication.
pub trait Payload: Sized + Send {
    fn decode(req: &RawRequest) -> Result<Self, BodyError>;
}

impl Payload for () {
    fn decode(_req: &RawRequest) -> Result<Self, BodyError> {
        Ok(())
    }
}

/// The body as a JSON object, decoded into `T` exactly (numbers from their text).
pub struct Json<T>(pub T);

/// Decode a JSON object body into `T` (an array is no object, though serde would read a
/// struct from one).
pub fn decode_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, BodyError> {
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => {}
        None | Some(b'[') => {
            return Err(BodyError::Malformed(
                "the request body must be a JSON object".into(),
            ));
        }
        // Not JSON at all, or a scalar: serde says which.
        Some(_) => {}
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let syntax = !e.inner().is_data();
        BodyError::from_serde(e, syntax)
    })?;
    de.end()
        .map_err(|e| BodyError::Malformed(format!("the request body is not valid JSON: {e}")))?;
    Ok(value)
}

impl<T: DeserializeOwned + Send> Payload for Json<T> {
    fn decode(req: &RawRequest) -> Result<Self, BodyError> {
        decode_json(&req.body).map(Json)
    }
}

/// The body decoded twice, as `A` and as `B`: the fields two endpoints share in one struct,
/// each endpoint's own in another (in place of `#[serde(flatten)]`, which would lose the
/// lenient fields' raw text). `A`'s errors come first.
pub struct JsonPair<A, B>(pub A, pub B);

impl<A: DeserializeOwned + Send, B: DeserializeOwned + Send> Payload for JsonPair<A, B> {
    fn decode(req: &RawRequest) -> Result<Self, BodyError> {
        Ok(JsonPair(decode_json(&req.body)?, decode_json(&req.body)?))
    }
}

/// Like [`Json`], but a blank body is `T::default()` (endpoints whose body is optional).
pub struct JsonOrEmpty<T>(pub T);

impl<T: DeserializeOwned + Default + Send> Payload for JsonOrEmpty<T> {
    fn decode(req: &RawRequest) -> Result<Self, BodyError> {
        if req.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(JsonOrEmpty(T::default()));
        }
        decode_json(&req.body).map(JsonOrEmpty)
    }
}

/// The body as JSON, or as a form when sent as `application/x-www-form-urlencoded` (its
/// values are strings: use the lenient types for numbers and flags).
pub struct JsonOrForm<T>(pub T);

impl<T: DeserializeOwned + Send> Payload for JsonOrForm<T> {
    fn decode(req: &RawRequest) -> Result<Self, BodyError> {
        if req.is_form() {
            decode_pairs(&req.body).map(JsonOrForm)
        } else {
            decode_json(&req.body).map(JsonOrForm)
        }
    }
}

/// The query string, decoded into `T` (values are strings: use the lenient types for
/// numbers; a repeated name keeps its last value).
pub struct Query<T>(pub T);

impl<T: DeserializeOwned + Send> Payload for Query<T> {
    fn decode(req: &RawRequest) -> Result<Self, BodyError> {
        decode_pairs(req.query().unwrap_or_default().as_bytes()).map(Query)
    }
}

/// Decode `name=value&…` pairs into `T`.
pub fn decode_pairs<T: DeserializeOwned>(encoded: &[u8]) -> Result<T, BodyError> {
    let map: Map<String, Value> = url::form_urlencoded::parse(encoded)
        .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
        .collect();
    serde_path_to_error::deserialize(Value::Object(map))
        .map_err(|e| BodyError::from_serde(e, false))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lenient::{LenientDecimal, LenientInt, LenientText, Maybe};
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    struct Origin {
        price: LenientDecimal,
    }

    #[derive(Debug, Deserialize)]
    struct Body {
        origin: Origin,
        id: Maybe<LenientText>,
    }

    #[derive(Debug, Deserialize, Default)]
    struct Page {
        page: Maybe<LenientInt>,
        #[serde(rename = "outTradeNo")]
        no: Option<String>,
    }

    #[test]
    fn json_errors_name_the_field() {
        for (body, error) in [
            ("", "the request body must be a JSON object"),
            (
                "not json",
                "the request body is not valid JSON: expected ident at line 1 column 2",
            ),
            ("[1]", "the request body must be a JSON object"),
            (
                "\"x\"",
                "the request body must be a JSON object: invalid type: string \"x\", expected struct Body",
            ),
            ("{}", "origin is required"),
            (r#"{"origin":{}}"#, "origin.price is required"),
            (r#"{"origin":{"price":null}}"#, "origin.price is required"),
            (
                r#"{"origin":{"price":"x"}}"#,
                "origin.price must be a decimal number",
            ),
            (
                r#"{"origin":"x"}"#,
                r#"origin: invalid type: string "x", expected struct Origin"#,
            ),
            (
                r#"{"origin":{"price":1}} x"#,
                "the request body is not valid JSON: trailing characters at line 1 column 24",
            ),
        ] {
            let got = decode_json::<Body>(body.as_bytes())
                .err()
                .map(|e| e.to_string());
            assert_eq!(got.as_deref(), Some(error), "{body}");
        }
        let err = decode_json::<Body>(br#"{"origin":{"price":"x"}}"#).err();
        assert_eq!(
            err.as_ref().and_then(BodyError::field),
            Some("origin.price")
        );
        assert_eq!(
            err.as_ref().map(BodyError::problem),
            Some("must be a decimal number")
        );
        let ok = decode_json::<Body>(br#"{"origin":{"price":"19.90"},"id":7}"#).unwrap();
        assert_eq!(ok.origin.price.as_sent(), "19.90");
        assert_eq!(ok.id.text().as_deref(), Some("7"));
    }

    #[test]
    fn queries_and_forms() {
        let p: Page = decode_pairs(b"page=2&outTradeNo=T%201").unwrap();
        assert_eq!(p.page.0, Some(LenientInt(2)));
        assert_eq!(p.no.as_deref(), Some("T 1"));
        let p: Page = decode_pairs(b"page=&x=1").unwrap();
        assert!(p.page.is_none() && p.no.is_none());
        let err = decode_pairs::<Page>(b"page=x").err().map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some("page must be an integer"));
    }

    #[derive(Clone)]
    struct Scheme;

    impl Authenticate for Scheme {
        type Mode = ();
        type Rejection = (axum::http::StatusCode, String);

        async fn authenticate(
            &self,
            req: &RawRequest,
        ) -> Result<Authenticated<Self::Mode>, Self::Rejection> {
            // Refuses everything, naming what it saw: the raw request reaches the scheme.
            Err((
                axum::http::StatusCode::UNAUTHORIZED,
                format!(
                    "{} {} {:?} {}",
                    req.method,
                    req.path_and_query(),
                    req.header("x-key"),
                    String::from_utf8_lossy(&req.body)
                ),
            ))
        }

        fn reject(&self, error: BodyError) -> Self::Rejection {
            (axum::http::StatusCode::BAD_REQUEST, error.to_string())
        }
    }

    /// A refused request is answered by the scheme before its body is decoded: a malformed
    /// body with bad credentials is a 401, never a 400.
    #[tokio::test]
    async fn authentication_comes_before_decoding() {
        use tower::ServiceExt;
        async fn handler(_: Signed<Scheme, Json<Body>>) -> &'static str {
            "unreachable"
        }
        let app = axum::Router::new()
            .route("/x", axum::routing::post(handler))
            .with_state(Scheme);
        let req = Request::post("/x?a=1")
            .header("X-Key", " k ")
            .body(axum::body::Body::from("not json"))
            .unwrap();
        let resp = app.oneshot(req).await.unwrap();
        assert_eq!(resp.status(), axum::http::StatusCode::UNAUTHORIZED);
        let body = axum::body::to_bytes(resp.into_body(), 1024).await.unwrap();
        assert_eq!(&body[..], br#"POST /x?a=1 Some("k") not json"#);
    }
}
