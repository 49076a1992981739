//! Request-rate limits: a token bucket per key (GCRA, in integer arithmetic) with a bounded
//! table, and the per-client-address limits of the unauthenticated routes.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::client::client_key_of;

/// A token bucket per key: `per_minute` requests a minute, bursts of up to a minute's
/// allowance. `0` turns it off. At most `capacity` keys are remembered (see
/// [`RateLimiter::make_room`]), so a flood of distinct keys cannot grow memory.
pub struct RateLimiter<K> {
    /// Nanoseconds between requests at the sustained rate.
    interval: u128,
    /// How far ahead of now the theoretical arrival time may run (the burst).
    tolerance: u128,
    capacity: usize,
    origin: Instant,
    tat: Mutex<HashMap<K, u128>>,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    pub fn new(per_minute: u32, capacity: usize) -> Self {
        let interval = if per_minute == 0 {
            0
        } else {
            60_000_000_000u128 / u128::from(per_minute)
        };
        Self {
            interval,
            tolerance: interval.saturating_mul(u128::from(per_minute.saturating_sub(1))),
            capacity: capacity.max(1),
            origin: Instant::now(),
            tat: Mutex::new(HashMap::new()),
        }
    }

    /// `Ok` to let the request through, or the whole seconds to wait.
    pub fn check(&self, key: &K) -> Result<(), u64> {
        if self.interval == 0 {
            return Ok(());
        }
        let now = self.origin.elapsed().as_nanos();
        let mut tats = self
            .tat
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let tat = tats.get(key).copied().unwrap_or(now).max(now);
        if tat - now > self.tolerance {
            let wait = tat - now - self.tolerance;
            return Err(u64::try_from(wait.div_ceil(1_000_000_000))
                .unwrap_or(u64::MAX)
                .max(1));
        }
        if tats.len() >= self.capacity && !tats.contains_key(key) {
            self.make_room(&mut tats, now);
        }
        tats.insert(key.clone(), tat + self.interval);
        Ok(())
    }

    /// Keys tracked now.
    pub fn len(&self) -> usize {
        self.tat.lock().map(|t| t.len()).unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The table is full: forget keys whose bucket is full again (forgetting them changes
    /// nothing); if that is not a tenth of the table, also those less than half drained;
    /// if everyone is that busy, start over (a flood of distinct keys then gets one burst
    /// each, rather than locking out every new client). O(n), once per tenth of the table.
    fn make_room(&self, tats: &mut HashMap<K, u128>, now: u128) {
        let enough = self.capacity - self.capacity / 10;
        tats.retain(|_, t| *t > now);
        if tats.len() >= enough {
            let half = now + self.tolerance / 2;
            tats.retain(|_, t| *t > half);
        }
        if tats.len() >= enough {
            tracing::warn!(
                keys = tats.len(),
                "rate limit table full of busy clients: starting over"
            );
            tats.clear();
        }
    }
}

/// Which limit a path is under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteClass {
    /// Checkout pages, their status and event streams, unauthenticated lookups.
    Public,
    /// Password logins (each try costs an Argon2 hash).
    Login,
}

/// The per-client limits of the unauthenticated routes.
#[derive(Debug, Clone)]
pub struct ClientLimitSettings {
    /// Requests per minute per client address on [`RouteClass::Public`] paths; 0 = off.
    pub public_per_minute: u32,
    /// The same for [`RouteClass::Login`] paths.
    pub login_per_minute: u32,
    /// Path prefixes and their class; the first match wins; other paths are not limited here.
    pub paths: Vec<(String, RouteClass)>,
    /// Client addresses remembered per class at most.
    pub capacity: usize,
}

impl Default for ClientLimitSettings {
    fn default() -> Self {
        Self {
            public_per_minute: 600,
            login_per_minute: 10,
            paths: Vec::new(),
            capacity: 65_536,
        }
    }
}

pub struct ClientLimits {
    paths: Vec<(String, RouteClass)>,
    public: RateLimiter<IpAddr>,
    login: RateLimiter<IpAddr>,
}

impl ClientLimits {
    pub fn new(settings: &ClientLimitSettings) -> Self {
        Self {
            paths: settings.paths.clone(),
            public: RateLimiter::new(settings.public_per_minute, settings.capacity),
            login: RateLimiter::new(settings.login_per_minute, settings.capacity),
        }
    }

    fn class_of(&self, path: &str) -> Option<RouteClass> {
        self.paths
            .iter()
            .find(|(prefix, _)| path.starts_with(prefix.as_str()))
            .map(|(_, class)| *class)
    }

    /// `Ok`, or the seconds the client at `key` should wait.
    pub fn check(&self, path: &str, key: IpAddr) -> Result<(), u64> {
        match self.class_of(path) {
            Some(RouteClass::Public) => self.public.check(&key),
            Some(RouteClass::Login) => self.login.check(&key),
            None => Ok(()),
        }
    }
}

/// Layer: refuse a client over its limit with 429 and `Retry-After`. The bare 429 takes the
/// path's error envelope from the framework-error layer around it.
pub async fn limit_clients(
    State(limits): State<Arc<ClientLimits>>,
    req: Request<Body>,
    next: Next,
) -> Response {
    if let Some(key) = client_key_of(req.extensions())
        && let Err(wait) = limits.check(req.uri().path(), key)
    {
        metrics::counter!("coffer_http_client_rate_limited_total").increment(1);
        return too_many_requests(
            wait,
            "too many requests from this address; retry after the time in Retry-After",
        );
    }
    next.run(req).await
}

/// A plain-text 429 with `Retry-After` (the framework-error layer shapes it).
pub fn too_many_requests(wait_secs: u64, message: &'static str) -> Response {
    let mut r = (StatusCode::TOO_MANY_REQUESTS, message).into_response();
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(wait_secs));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_allows_the_burst_then_refuses_with_a_wait() {
        let limiter = RateLimiter::new(3, 100);
        for _ in 0..3 {
            assert!(limiter.check(&1u32).is_ok());
        }
        let wait = limiter.check(&1).unwrap_err();
        assert!((1..=20).contains(&wait), "{wait}");
        assert!(limiter.check(&2).is_ok(), "keys have their own budgets");
    }

    #[test]
    fn zero_turns_the_limit_off() {
        let limiter = RateLimiter::new(0, 1);
        for _ in 0..10_000 {
            assert!(limiter.check(&1u32).is_ok());
        }
        assert!(limiter.is_empty());
    }

    #[test]
    fn the_table_stays_bounded_under_a_flood_of_keys() {
        let limiter = RateLimiter::new(60, 1_000);
        // A busy key, drained past half its bucket, survives a flood of one-shot keys.
        for _ in 0..50 {
            assert!(limiter.check(&u32::MAX).is_ok());
        }
        for key in 0..100_000u32 {
            let _ = limiter.check(&key);
            assert!(limiter.len() <= 1_000);
        }
        let refused = (0..20)
            .filter(|_| limiter.check(&u32::MAX).is_err())
            .count();
        assert!(refused > 0, "the busy key kept its drained bucket");
    }

    #[test]
    fn paths_pick_their_class() {
        let limits = ClientLimits::new(&ClientLimitSettings {
            public_per_minute: 2,
            login_per_minute: 1,
            paths: vec![
                ("/pay/".into(), RouteClass::Public),
                ("/api/plugin/key/aurpay".into(), RouteClass::Login),
            ],
            capacity: 10,
        });
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(limits.check("/api/plugin/key/aurpay", a).is_ok());
        assert!(limits.check("/api/plugin/key/aurpay", a).is_err());
        assert!(limits.check("/api/plugin/key/aurpay", b).is_ok());
        assert!(
            limits.check("/pay/x", a).is_ok(),
            "classes have their own buckets"
        );
        assert!(limits.check("/pay/x/status", a).is_ok());
        assert!(limits.check("/pay/x/events", a).is_err());
        for _ in 0..100 {
            assert!(
                limits.check("/api/v1/orders", a).is_ok(),
                "not limited here"
            );
        }
    }
}
