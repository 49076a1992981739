//! Coffer's hosted checkout page, what the buyer sees at the order's `checkout_url`:
//!
//! - `GET /pay/{token}`: the page (chooser, amount and address, QR code, countdown, live
//!   status, success and expired screens), server-rendered, usable without JavaScript;
//! - `POST /pay/{token}`: the chooser's form (`asset=bsc:USDT`), then back to the page;
//! - `GET /pay/{token}/status`: the same state as JSON, for shops with their own UI;
//! - `GET /pay/{token}/events`: Server-Sent Events, one `status` event per change.
//!
//! Everything is computed by [`model::Checkout`] from the order, its payments and the
//! configuration, so the three views never disagree. Handlers stay thin: the engine prices,
//! chooses and stores; this crate only renders.

pub mod i18n;
pub mod model;
pub mod page;
pub mod qr;
pub mod streams;
pub mod web;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{Extensions, HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use coffer_core::{AssetId, ChainId, CheckoutToken, Order};
use coffer_engine::{Engine, EngineError};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::watch;

use crate::i18n::Lang;
use crate::model::{Checkout as View, ChoiceGroups, Screen};
use crate::page::Brand;
use crate::web::{html, nonce};

/// Checkout options from the configuration.
#[derive(Debug, Clone)]
pub struct CheckoutSettings {
    /// Per chain: the explorer's transaction URL with `{txid}` (`https://bscscan.com/tx/{txid}`).
    pub explorers: BTreeMap<ChainId, String>,
    /// A live-update stream ends after this long; the browser reconnects by itself.
    pub max_stream: Duration,
    /// Live-update streams open at once per order.
    pub max_streams_per_order: usize,
    /// Live-update streams open at once per client address.
    pub max_streams_per_client: usize,
    /// The client address a request counts against (the server's notion, trusted proxies
    /// included); by default the socket peer.
    pub client_of: fn(&Extensions) -> Option<IpAddr>,
}

impl Default for CheckoutSettings {
    fn default() -> Self {
        Self {
            explorers: BTreeMap::new(),
            max_stream: Duration::from_secs(15 * 60),
            max_streams_per_order: 16,
            max_streams_per_client: 64,
            client_of: socket_peer,
        }
    }
}

fn socket_peer(extensions: &Extensions) -> Option<IpAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

/// The checkout's shared state.
#[derive(Clone)]
pub struct Checkout {
    engine: Engine,
    settings: Arc<CheckoutSettings>,
    /// Flips to `true` at shutdown: live-update streams end so the server can stop.
    stop: watch::Receiver<bool>,
    streams: Arc<streams::StreamCaps>,
}

impl Checkout {
    pub fn new(engine: Engine, settings: CheckoutSettings, stop: watch::Receiver<bool>) -> Self {
        Self {
            engine,
            streams: streams::StreamCaps::new(
                settings.max_streams_per_order,
                settings.max_streams_per_client,
            ),
            settings: Arc::new(settings),
            stop,
        }
    }

    /// Live-update streams open now.
    pub fn open_streams(&self) -> usize {
        self.streams.count()
    }
}

/// The checkout routes, to merge next to the APIs.
pub fn router<S: Clone + Send + Sync + 'static>(checkout: Checkout) -> Router<S> {
    Router::new()
        .route("/pay/{token}", get(show).post(choose))
        .route("/pay/{token}/status", get(status))
        .route("/pay/{token}/events", get(events))
        .with_state(checkout)
}

#[derive(Debug, Default, Deserialize)]
struct PageQuery {
    lang: Option<String>,
    choose: Option<String>,
    error: Option<String>,
    /// `main`: only the `<main>` element (the page's live updates swap it in).
    part: Option<String>,
}

/// A well-formed token nobody holds: misses look up this one, so a malformed token costs the
/// same database round trip as an unknown one.
const ABSENT: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

impl Checkout {
    async fn order(&self, token: &str) -> Result<Option<Order>, EngineError> {
        let token = CheckoutToken::parse(token);
        let key = token.as_ref().map_or(ABSENT, CheckoutToken::as_str);
        let found = self.engine.order_by_checkout_token(key).await?;
        Ok(found.filter(|_| token.is_some()))
    }

    async fn view(&self, order: Order, want_chooser: bool) -> Result<(View, Brand), EngineError> {
        let payments = self.engine.payments_of(&order).await?;
        let merchant = self.engine.merchant(&order.merchant_id).await?;
        let branding = self.engine.branding(&order.merchant_id).await?;
        let (display_name, logo, color) = branding
            .map(|b| (b.display_name, b.logo, b.color))
            .unwrap_or_default();
        let brand = Brand {
            name: display_name
                .or_else(|| merchant.map(|m| m.name))
                .unwrap_or_default(),
            logo,
            color,
        };
        let view = View::build(
            order,
            brand.name.clone(),
            &payments,
            model::Chains {
                assets: self.engine.assets(),
                methods: self.engine.methods(),
                explorers: &self.settings.explorers,
            },
            self.engine.now(),
            want_chooser,
        );
        Ok((view, brand))
    }

    async fn choices(&self, order: &Order) -> Result<ChoiceGroups, EngineError> {
        let chains: Vec<ChainId> = self
            .engine
            .payable_chains(&order.merchant_id)
            .await?
            .into_iter()
            .map(|c| c.id)
            .collect();
        Ok(model::choices(&self.engine, order, &chains))
    }
}

fn language(query: &PageQuery, headers: &HeaderMap) -> Lang {
    web::language(query.lang.as_deref(), headers)
}

fn not_found(lang: Lang) -> Response {
    let nonce = nonce();
    html(
        StatusCode::NOT_FOUND,
        page::not_found_page(lang, &nonce),
        &nonce,
        lang,
    )
}

fn unavailable(lang: Lang, error: &EngineError) -> Response {
    tracing::warn!(error = %error, "checkout page failed");
    let nonce = nonce();
    html(
        StatusCode::SERVICE_UNAVAILABLE,
        page::unavailable_page(lang, &nonce),
        &nonce,
        lang,
    )
}

async fn show(
    State(c): State<Checkout>,
    Path(token): Path<String>,
    Query(query): Query<PageQuery>,
    headers: HeaderMap,
) -> Response {
    let lang = language(&query, &headers);
    let order = match c.order(&token).await {
        Ok(Some(order)) => order,
        Ok(None) => return not_found(lang),
        Err(e) => return unavailable(lang, &e),
    };
    let want_chooser = query.choose.as_deref() == Some("1");
    let (view, brand) = match c.view(order, want_chooser).await {
        Ok(v) => v,
        Err(e) => return unavailable(lang, &e),
    };
    let choices = if view.screen == Screen::Choose {
        match c.choices(&view.order).await {
            Ok(groups) => Some(groups),
            Err(e) => return unavailable(lang, &e),
        }
    } else {
        None
    };
    let nonce = nonce();
    let body = if query.part.as_deref() == Some("main") {
        page::checkout_main(&view, choices.as_ref(), &brand, lang, query.error.is_some())
    } else {
        page::checkout_page(
            &view,
            choices.as_ref(),
            &brand,
            lang,
            &nonce,
            query.error.is_some(),
        )
    };
    html(StatusCode::OK, body, &nonce, lang)
}

/// The chooser's form: choose the asset, then show the page again (303, so a reload does not
/// post twice). A choice that cannot be made now shows the chooser with a notice.
async fn choose(
    State(c): State<Checkout>,
    Path(token): Path<String>,
    Query(query): Query<PageQuery>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let mut asset = None;
    let mut form_lang = None;
    for (k, v) in url::form_urlencoded::parse(body.as_bytes()) {
        match k.as_ref() {
            "asset" => asset = Some(v.into_owned()),
            "lang" => form_lang = Lang::from_tag(&v),
            _ => {}
        }
    }
    let lang = form_lang.unwrap_or_else(|| language(&query, &headers));
    let order = match c.order(&token).await {
        Ok(Some(order)) => order,
        Ok(None) => return not_found(lang),
        Err(e) => return unavailable(lang, &e),
    };
    let back = |error: bool| {
        let location = format!(
            "{}?lang={}{}",
            order.checkout_token,
            lang.tag(),
            if error { "&choose=1&error=1" } else { "" }
        );
        let mut r = StatusCode::SEE_OTHER.into_response();
        if let Ok(v) = HeaderValue::from_str(&location) {
            r.headers_mut().insert(header::LOCATION, v);
        }
        r.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        r
    };
    let Some(asset) = asset.and_then(|a| a.parse::<AssetId>().ok()) else {
        return back(true);
    };
    // Only the merchant's own choosable assets (a chain it has a wallet for).
    let allowed = match c.choices(&order).await {
        Ok(groups) => groups
            .iter()
            .flat_map(|(_, list)| list)
            .any(|choice| choice.asset.id == asset && choice.amount.is_some()),
        Err(e) => return unavailable(lang, &e),
    };
    if !allowed {
        return back(true);
    }
    match c
        .engine
        .choose_asset(&order.merchant_id, &order.id, &asset)
        .await
    {
        Ok(_) => back(false),
        Err(EngineError::Store(e)) => unavailable(lang, &EngineError::Store(e)),
        Err(e) => {
            tracing::info!(code = e.code(), order = %order.id, "checkout choice refused");
            back(true)
        }
    }
}

fn json_response(status: StatusCode, body: serde_json::Value) -> Response {
    let mut r = (status, axum::Json(body)).into_response();
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}

fn json_error(status: StatusCode, code: &str, message: &str) -> Response {
    json_response(status, json!({"error": {"code": code, "message": message}}))
}

async fn status(State(c): State<Checkout>, Path(token): Path<String>) -> Response {
    let order = match c.order(&token).await {
        Ok(Some(order)) => order,
        Ok(None) => return json_error(StatusCode::NOT_FOUND, "not_found", "no such checkout"),
        Err(e) => {
            return json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                e.code(),
                "the checkout is temporarily unavailable",
            );
        }
    };
    match c.view(order, false).await {
        Ok((view, _)) => json_response(StatusCode::OK, view.status_json()),
        Err(e) => json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            e.code(),
            "the checkout is temporarily unavailable",
        ),
    }
}

/// Live updates: the current status at once, then one `status` event whenever what the page
/// shows changes (the order's version, a confirmation, the clock passing the expiry). The
/// stream sleeps until the engine signals a committed change to its order or the expiry
/// passes — an idle stream reads and renders nothing — and ends on a final screen, at
/// shutdown and after `max_stream` (browsers reconnect by themselves). Over a stream cap: 429
/// (the page then polls `/status`).
async fn events(
    State(c): State<Checkout>,
    Path(token): Path<String>,
    extensions: Extensions,
) -> Response {
    let order = match c.order(&token).await {
        Ok(Some(order)) => order,
        Ok(None) => return json_error(StatusCode::NOT_FOUND, "not_found", "no such checkout"),
        Err(e) => {
            return json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                e.code(),
                "the checkout is temporarily unavailable",
            );
        }
    };
    let client = (c.settings.client_of)(&extensions);
    let slot = match c.streams.open(&order.id, client) {
        Ok(slot) => slot,
        Err(refused) => return too_many_streams(refused),
    };
    let started = tokio::time::Instant::now();
    let signal = c.engine.follow(&order.id);
    let state = Stream {
        _slot: slot,
        signal,
        checkout: c.clone(),
        token: order.checkout_token.clone(),
        last: None,
        wake_in: None,
        first: true,
        done: false,
        started,
    };
    let stream = futures_util::stream::unfold(state, next_event);
    let mut r = Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response();
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    r
}

/// A comment on an idle stream this often keeps proxies and browsers from closing it (nginx
/// and most proxies allow 60 s without a byte); each is a write, so not more often.
const KEEP_ALIVE: Duration = Duration::from_secs(30);

/// After a failed read, a stream tries again this much later.
const RETRY_READ: Duration = Duration::from_secs(1);

/// Sleep for `d`, or forever without one.
async fn sleep_for(d: Option<Duration>) {
    match d {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

fn too_many_streams(refused: streams::Refused) -> Response {
    let message = match refused {
        streams::Refused::PerOrder => "too many live-update streams are open for this checkout",
        streams::Refused::PerClient => "too many live-update streams are open from this address",
    };
    let mut r = json_error(StatusCode::TOO_MANY_REQUESTS, "too_many_streams", message);
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("30"));
    r
}

struct Stream {
    /// Held while the stream is open.
    _slot: streams::StreamSlot,
    /// Wakes the stream when a change to its order commits.
    signal: coffer_engine::live::OrderSignal,
    checkout: Checkout,
    token: CheckoutToken,
    last: Option<String>,
    /// When to look again without a signal: the order's expiry (the screen changes on the
    /// clock alone), or a retry after a failed read.
    wake_in: Option<Duration>,
    first: bool,
    done: bool,
    started: tokio::time::Instant,
}

async fn next_event(mut s: Stream) -> Option<(Result<Event, Infallible>, Stream)> {
    if s.done {
        return None;
    }
    loop {
        if !s.first {
            if s.started.elapsed() >= s.checkout.settings.max_stream || *s.checkout.stop.borrow() {
                return None;
            }
            let mut stop = s.checkout.stop.clone();
            let lifetime = s
                .checkout
                .settings
                .max_stream
                .saturating_sub(s.started.elapsed());
            let expiry = s.wake_in.take();
            tokio::select! {
                () = s.signal.changed() => {}
                () = sleep_for(expiry) => {}
                () = tokio::time::sleep(lifetime) => return None,
                Ok(()) = stop.changed() => return None,
            }
        }
        s.first = false;
        let order = match s.checkout.order(s.token.as_str()).await {
            Ok(Some(order)) => order,
            Ok(None) => return None,
            // A database hiccup: try again in a second.
            Err(_) => {
                s.wake_in = Some(RETRY_READ);
                continue;
            }
        };
        let Ok((view, _)) = s.checkout.view(order, false).await else {
            s.wake_in = Some(RETRY_READ);
            continue;
        };
        // Past the expiry the screen changes on the clock alone: wake up then (a second
        // later, so the clock has certainly passed it).
        s.wake_in = u64::try_from(view.seconds_left())
            .ok()
            .filter(|&left| left > 0)
            .map(|left| Duration::from_secs(left + 1));
        let fingerprint = view.fingerprint();
        if s.last.as_deref() == Some(fingerprint.as_str()) {
            continue;
        }
        s.done = view.screen.is_final();
        s.last = Some(fingerprint);
        let event = Event::default()
            .event("status")
            .data(view.status_json().to_string());
        return Some((Ok(event), s));
    }
}
