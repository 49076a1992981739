//! The public edge: how connections are accepted and held (timeouts, connection caps, TLS,
//! draining at shutdown) and who a request comes from (client addresses behind trusted
//! proxies, per-client request limits on the unauthenticated routes).

pub mod client;
pub mod limit;
pub mod server;
pub mod tls;
