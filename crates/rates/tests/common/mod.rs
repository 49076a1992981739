//! A local HTTP server on 127.0.0.1:0 replaying each provider's documented responses from
//! `tests/fixtures` (no provider can be reached from the test machines), with faults on
//! demand: HTTP errors, 429, delays, replaced bodies, stale timestamps.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use coffer_rates::{AggregatedRates, Provider, RatesSettings};
use time::OffsetDateTime;

#[derive(Debug, Clone)]
pub enum Fault {
    Status(u16),
    RateLimited { retry_after_secs: u64 },
    Delay(Duration),
    Body(String),
}

#[derive(Debug, Default)]
pub struct ReplayState {
    /// Per provider name.
    pub faults: HashMap<String, Fault>,
    /// Replaced fixture bodies, by fixture file name.
    pub bodies: HashMap<String, String>,
    /// Serve the fixtures' original (2024) timestamps instead of "now".
    pub stale: bool,
    /// Requests per provider name.
    pub hits: HashMap<String, usize>,
}

#[derive(Clone)]
pub struct Replay {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<ReplayState>>,
}

impl Replay {
    pub async fn start() -> Replay {
        let state = Arc::new(Mutex::new(ReplayState::default()));
        let app = Router::new().fallback(handle).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Replay { addr, state }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn fault(&self, provider: &str, fault: Fault) {
        self.state
            .lock()
            .unwrap()
            .faults
            .insert(provider.into(), fault);
    }

    pub fn clear_faults(&self) {
        self.state.lock().unwrap().faults.clear();
    }

    pub fn body(&self, fixture: &str, body: String) {
        self.state
            .lock()
            .unwrap()
            .bodies
            .insert(fixture.into(), body);
    }

    pub fn set_stale(&self, stale: bool) {
        self.state.lock().unwrap().stale = stale;
    }

    pub fn hits(&self, provider: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .hits
            .get(provider)
            .copied()
            .unwrap_or(0)
    }

    /// Settings pointing every provider at this server.
    pub fn settings(&self, sources: &[Provider]) -> RatesSettings {
        RatesSettings {
            sources: sources.to_vec(),
            base_urls: Provider::ALL
                .into_iter()
                .map(|p| (p, self.base_url()))
                .collect(),
            timeout: Duration::from_secs(3),
            symbols: vec!["BTC".into(), "ETH".into()],
            ..RatesSettings::default()
        }
    }

    /// Aggregated rates over `sources`, refreshed once.
    pub async fn rates(&self, sources: &[Provider], quorum: usize) -> Arc<AggregatedRates> {
        let mut settings = self.settings(sources);
        settings.quorum = quorum;
        let rates = Arc::new(AggregatedRates::new(settings).unwrap());
        rates.refresh_all().await;
        rates
    }
}

pub fn fixture(name: &str) -> Option<String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read_to_string(path).ok()
}

fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

async fn handle(State(state): State<Arc<Mutex<ReplayState>>>, uri: Uri) -> Response {
    let path = uri.path().to_owned();
    let query = uri.query().unwrap_or("").to_owned();
    let (provider, file, fallback): (&str, String, Option<(u16, &str)>) = match path.as_str() {
        "/api/v3/simple/price" => ("coingecko", "coingecko_simple_price.json".into(), None),
        "/api/v3/ticker/price" => ("binance", "binance_ticker_price.json".into(), None),
        "/0/public/Ticker" => ("kraken", "kraken_ticker.json".into(), None),
        "/stats/eurofxref/eurofxref-daily.xml" => ("ecb", "eurofxref-daily.xml".into(), None),
        "/api/v5/market/ticker" => (
            "okx",
            format!(
                "okx_ticker_{}.json",
                query_param(&query, "instId").unwrap_or("")
            ),
            Some((200, "okx_instrument_not_found.json")),
        ),
        p if p.starts_with("/v2/prices/") && p.ends_with("/spot") => {
            let pair = p
                .trim_start_matches("/v2/prices/")
                .trim_end_matches("/spot");
            (
                "coinbase",
                format!("coinbase_spot_{pair}.json"),
                Some((404, "coinbase_not_found.json")),
            )
        }
        _ => return (StatusCode::NOT_FOUND, "no such fixture route").into_response(),
    };
    let (fault, body_override, stale) = {
        let mut st = state.lock().unwrap();
        *st.hits.entry(provider.into()).or_default() += 1;
        (
            st.faults.get(provider).cloned(),
            st.bodies.get(&file).cloned(),
            st.stale,
        )
    };
    let content_type = if file.ends_with(".xml") {
        "text/xml"
    } else {
        "application/json"
    };
    match fault {
        Some(Fault::Status(code)) => {
            return (
                StatusCode::from_u16(code).unwrap(),
                "{\"error\":\"upstream trouble\"}",
            )
                .into_response();
        }
        Some(Fault::RateLimited { retry_after_secs }) => {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, retry_after_secs.to_string())],
                "{\"code\":-1003,\"msg\":\"Too many requests\"}",
            )
                .into_response();
        }
        Some(Fault::Delay(d)) => tokio::time::sleep(d).await,
        Some(Fault::Body(body)) => {
            return ([(header::CONTENT_TYPE, content_type)], body).into_response();
        }
        None => {}
    }
    let (status, body) = match body_override.or_else(|| fixture(&file)) {
        Some(body) => (200, body),
        None => match fallback {
            Some((status, name)) => (status, fixture(name).unwrap()),
            None => return (StatusCode::NOT_FOUND, "missing fixture").into_response(),
        },
    };
    let body = if stale { body } else { freshen(&body) };
    (
        StatusCode::from_u16(status).unwrap(),
        [(header::CONTENT_TYPE, content_type)],
        body,
    )
        .into_response()
}

/// Rewrite the fixtures' timestamps to now.
fn freshen(body: &str) -> String {
    let now = OffsetDateTime::now_utc();
    let ms = now.unix_timestamp_nanos() / 1_000_000;
    body.replace("1711356300123", &ms.to_string())
        .replace("1711356300", &now.unix_timestamp().to_string())
        .replace("2024-03-22", &now.date().to_string())
}
