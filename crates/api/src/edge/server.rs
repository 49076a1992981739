//! The one place listeners are served: an accept loop that caps open connections (in all and
//! per client address), a per-connection watchdog that closes connections which take too
//! long to send a request head or sit idle between requests, optional TLS, and a shutdown
//! that stops accepting, lets requests in flight finish and then closes what is left.
//!
//! hyper's own `header_read_timeout` is not used: in hyper 1.x it also runs while a kept-alive
//! connection waits for its next request, so a header timeout and a longer idle timeout
//! could not differ. The watchdog tells the two apart: the first request of a connection must
//! arrive whole within the header timeout of the accept; later ones within the header
//! timeout of their first byte, after at most the idle timeout of silence.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::ConnectInfo;
use axum::http::Request;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

use super::client::{ClientAddressing, client_key};

/// How the listener treats connections.
#[derive(Clone)]
pub struct ServerSettings {
    /// A request head must arrive whole within this long: of the accept for a connection's
    /// first request (the TLS handshake included), of its first byte for later ones.
    pub header_read_timeout: Duration,
    /// A kept-alive connection with no request for this long is closed.
    pub idle_timeout: Duration,
    /// At shutdown, how long requests in flight may take before their connections are closed.
    pub shutdown_timeout: Duration,
    /// Open-connection caps (share one between listeners to cap them together).
    pub connections: Arc<ConnectionLimiter>,
    /// Serve HTTPS with this acceptor.
    pub tls: Option<TlsAcceptor>,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            shutdown_timeout: Duration::from_secs(30),
            connections: ConnectionLimiter::new(10_000, 256, ClientAddressing::default()),
            tls: None,
        }
    }
}

/// Caps on open connections: in all, and per client address (the socket peer; a trusted
/// proxy carries many clients and is held only to the total). Over a cap a new connection
/// is closed at once; those already open are not affected.
pub struct ConnectionLimiter {
    max_total: usize,
    max_per_client: usize,
    addressing: ClientAddressing,
    counts: Mutex<Counts>,
    refusals: LogThrottle,
}

#[derive(Default)]
struct Counts {
    total: usize,
    per_client: HashMap<IpAddr, usize>,
}

/// Why a connection was closed at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Total,
    PerClient,
}

impl Refusal {
    fn as_str(self) -> &'static str {
        match self {
            Refusal::Total => "total",
            Refusal::PerClient => "per_client",
        }
    }
}

impl ConnectionLimiter {
    pub fn new(max_total: usize, max_per_client: usize, addressing: ClientAddressing) -> Arc<Self> {
        Arc::new(Self {
            max_total,
            max_per_client,
            addressing,
            counts: Mutex::default(),
            refusals: LogThrottle::default(),
        })
    }

    pub fn max_total(&self) -> usize {
        self.max_total
    }

    /// Room for a connection from `peer`, held until the permit is dropped.
    pub fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<ConnPermit, Refusal> {
        let key = (!self.addressing.is_trusted(peer)).then(|| client_key(peer));
        let mut counts = self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if counts.total >= self.max_total {
            return Err(Refusal::Total);
        }
        if let Some(key) = key {
            let n = counts.per_client.entry(key).or_default();
            if *n >= self.max_per_client {
                if *n == 0 {
                    counts.per_client.remove(&key);
                }
                return Err(Refusal::PerClient);
            }
            *n += 1;
        }
        counts.total += 1;
        metrics::gauge!("coffer_http_connections_open").set(counts.total as f64);
        Ok(ConnPermit {
            limiter: self.clone(),
            key,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.counts.lock().map(|c| c.total).unwrap_or_default()
    }
}

/// An open connection's place under the caps.
pub struct ConnPermit {
    limiter: Arc<ConnectionLimiter>,
    key: Option<IpAddr>,
}

impl Drop for ConnPermit {
    fn drop(&mut self) {
        let mut counts = self
            .limiter
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        counts.total = counts.total.saturating_sub(1);
        if let Some(key) = self.key
            && let Some(n) = counts.per_client.get_mut(&key)
        {
            *n -= 1;
            if *n == 0 {
                counts.per_client.remove(&key);
            }
        }
        metrics::gauge!("coffer_http_connections_open").set(counts.total as f64);
    }
}

/// Serve `app` on `listener` until `shutdown` resolves; then stop accepting, let requests in
/// flight finish (idle connections close at once) for up to `shutdown_timeout`, and close
/// whatever is still open.
pub async fn serve_with(
    listener: TcpListener,
    app: Router,
    settings: ServerSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let shared = Arc::new(Shared {
        app,
        header_read: settings.header_read_timeout,
        idle: settings.idle_timeout,
        tls: settings.tls.clone(),
    });
    let limiter = settings.connections.clone();
    let accept_errors = LogThrottle::default();
    let mut tasks = JoinSet::new();
    let mut shutdown = pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => match limiter.admit(peer.ip()) {
                    Ok(permit) => {
                        let _ = stream.set_nodelay(true);
                        tasks.spawn(connection(stream, peer, permit, shared.clone(), stop_rx.clone()));
                    }
                    Err(refusal) => {
                        metrics::counter!("coffer_http_connections_refused_total", "reason" => refusal.as_str()).increment(1);
                        if limiter.refusals.allow() {
                            tracing::warn!(
                                peer = %peer.ip(),
                                cap = refusal.as_str(),
                                open = limiter.open(),
                                "connection refused: over http.max_connections{} (logged at most every 10 s)",
                                if refusal == Refusal::PerClient { "_per_client" } else { "" }
                            );
                        }
                        drop(stream);
                    }
                },
                Err(e) if is_connection_error(&e) => {}
                Err(e) => {
                    // Out of file descriptors or memory: back off briefly, the backlog waits.
                    if accept_errors.allow() {
                        tracing::error!(error = %e, open = limiter.open(), "accept failed (logged at most every 10 s)");
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    if !tasks.is_empty() {
        tracing::info!(connections = tasks.len(), "draining open connections");
    }
    let drained = tokio::time::timeout(settings.shutdown_timeout, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            connections = tasks.len(),
            "closing connections still busy after http.shutdown_timeout"
        );
        tasks.shutdown().await;
    }
    Ok(())
}

struct Shared {
    app: Router,
    header_read: Duration,
    idle: Duration,
    tls: Option<TlsAcceptor>,
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    _permit: ConnPermit,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let activity = Arc::new(Activity::new());
    let io = Watched {
        inner: stream,
        activity: activity.clone(),
    };
    match &shared.tls {
        None => drive(TokioIo::new(io), peer, &shared, activity, stop).await,
        Some(acceptor) => {
            let handshake = tokio::time::timeout(shared.header_read, acceptor.accept(io));
            let tls = tokio::select! {
                done = handshake => match done {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => {
                        tracing::debug!(peer = %peer, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        metrics::counter!("coffer_http_connections_timed_out_total", "phase" => "header").increment(1);
                        return;
                    }
                },
                () = stopped(&mut stop) => return,
            };
            drive(TokioIo::new(tls), peer, &shared, activity, stop).await;
        }
    }
}

/// Serve HTTP/1.1 on one connection under the watchdog.
async fn drive<I>(
    io: I,
    peer: SocketAddr,
    shared: &Shared,
    activity: Arc<Activity>,
    mut stop: watch::Receiver<bool>,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let app = shared.app.clone();
    let on_request = activity.clone();
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let busy = on_request.begin();
        let app = app.clone();
        async move {
            let mut req = req.map(Body::new);
            req.extensions_mut().insert(ConnectInfo(peer));
            let response = match app.oneshot(req).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            Ok::<_, Infallible>(response.map(|inner| Body::new(Tracked { inner, _busy: busy })))
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.header_read_timeout(None).keep_alive(true);
    let mut conn = pin!(builder.serve_connection(io, service));
    let mut draining = false;
    if *stop.borrow() {
        draining = true;
        conn.as_mut().graceful_shutdown();
    }
    loop {
        let deadline = activity.deadline(shared.header_read, shared.idle);
        let wake = activity.notify.notified();
        tokio::select! {
            done = conn.as_mut() => {
                if let Err(e) = done {
                    tracing::trace!(peer = %peer, error = %e, "connection ended with an error");
                }
                return;
            }
            () = wake => {}
            () = sleep_until(deadline) => {
                if let Some(phase) = activity.expired(shared.header_read, shared.idle) {
                    metrics::counter!("coffer_http_connections_timed_out_total", "phase" => phase).increment(1);
                    return;
                }
            }
            () = stopped(&mut stop), if !draining => {
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// Resolves once the stop flag is set (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// What the watchdog of one connection knows: requests in flight, when it went idle, when
/// the next request's first byte came.
struct Activity {
    in_flight: AtomicUsize,
    served: AtomicU64,
    /// Milliseconds on [`clock`] since the connection went idle (or was accepted).
    idle_since: AtomicU64,
    /// Milliseconds on [`clock`] + 1 of the first byte read while idle; 0 = none yet.
    head_started: AtomicU64,
    notify: Notify,
}

fn clock() -> Instant {
    static START: OnceLock<Instant> = OnceLock::new();
    *START.get_or_init(Instant::now)
}

fn now_ms() -> u64 {
    u64::try_from(clock().elapsed().as_millis()).unwrap_or(u64::MAX)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Activity {
    fn new() -> Self {
        Self {
            in_flight: AtomicUsize::new(0),
            served: AtomicU64::new(0),
            idle_since: AtomicU64::new(now_ms()),
            head_started: AtomicU64::new(0),
            notify: Notify::new(),
        }
    }

    /// The time by which the connection must show progress, with the phase it is in; none
    /// while a request is in flight (the request timeout is the router's).
    fn limit(&self, header_read: Duration, idle: Duration) -> Option<(u64, &'static str)> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let idle_since = self.idle_since.load(Ordering::Acquire);
        if self.served.load(Ordering::Acquire) == 0 {
            return Some((idle_since.saturating_add(millis(header_read)), "header"));
        }
        match self.head_started.load(Ordering::Acquire) {
            0 => Some((idle_since.saturating_add(millis(idle)), "idle")),
            started => Some((started - 1 + millis(header_read), "header")),
        }
    }

    fn deadline(&self, header_read: Duration, idle: Duration) -> Option<Instant> {
        self.limit(header_read, idle)
            .map(|(at, _)| clock() + Duration::from_millis(at))
    }

    fn expired(&self, header_read: Duration, idle: Duration) -> Option<&'static str> {
        self.limit(header_read, idle)
            .filter(|(at, _)| *at <= now_ms())
            .map(|(_, phase)| phase)
    }

    fn begin(self: &Arc<Self>) -> Busy {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.served.fetch_add(1, Ordering::AcqRel);
        self.head_started.store(0, Ordering::Release);
        Busy(self.clone())
    }

    fn on_read(&self) {
        if self.in_flight.load(Ordering::Acquire) == 0
            && self.head_started.load(Ordering::Acquire) == 0
        {
            self.head_started.store(now_ms() + 1, Ordering::Release);
            self.notify.notify_one();
        }
    }
}

/// A request in flight, until its response body is finished or dropped.
struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        let a = &self.0;
        a.head_started.store(0, Ordering::Release);
        a.idle_since.store(now_ms(), Ordering::Release);
        if a.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            a.notify.notify_one();
        }
    }
}

/// A response body that keeps its request counted as in flight.
struct Tracked {
    inner: Body,
    _busy: Busy,
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The socket under HTTP (and TLS), telling the watchdog when a request's first byte comes.
struct Watched<T> {
    inner: T,
    activity: Arc<Activity>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.activity.on_read();
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// At most one log line per 10 s for a repeating condition.
#[derive(Default)]
struct LogThrottle {
    next_ms: AtomicU64,
}

impl LogThrottle {
    fn allow(&self) -> bool {
        let now = now_ms();
        let next = self.next_ms.load(Ordering::Relaxed);
        now >= next
            && self
                .next_ms
                .compare_exchange(next, now + 10_000, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn caps_in_all_and_per_client() {
        let trusted = ClientAddressing {
            trusted_proxies: vec!["10.0.0.1".parse().unwrap()],
            ..ClientAddressing::default()
        };
        let limiter = ConnectionLimiter::new(5, 2, trusted);
        let a1 = limiter.admit(ip("192.0.2.1")).unwrap();
        let _a2 = limiter.admit(ip("192.0.2.1")).unwrap();
        assert_eq!(
            limiter.admit(ip("192.0.2.1")).err(),
            Some(Refusal::PerClient)
        );
        // IPv6 counts per /64.
        let _b1 = limiter.admit(ip("2001:db8::1")).unwrap();
        let _b2 = limiter.admit(ip("2001:db8::2")).unwrap();
        assert_eq!(
            limiter.admit(ip("2001:db8::3")).err(),
            Some(Refusal::PerClient)
        );
        // A trusted proxy is held to the total only.
        let _p1 = limiter.admit(ip("10.0.0.1")).unwrap();
        assert_eq!(limiter.admit(ip("10.0.0.1")).err(), Some(Refusal::Total));
        assert_eq!(limiter.open(), 5);
        drop(a1);
        assert_eq!(limiter.open(), 4);
        let _a3 = limiter.admit(ip("192.0.2.1")).unwrap();
        assert!(limiter.counts.lock().unwrap().per_client.len() <= 2);
    }

    #[test]
    fn the_watchdog_tells_first_requests_idleness_and_slow_heads_apart() {
        let header = Duration::from_secs(10);
        let idle = Duration::from_secs(60);
        let a = Arc::new(Activity::new());
        let accepted = a.idle_since.load(Ordering::Acquire);
        // A new connection: the first head is due 10 s after the accept, bytes or not.
        assert_eq!(a.limit(header, idle), Some((accepted + 10_000, "header")));
        a.on_read();
        assert_eq!(a.limit(header, idle), Some((accepted + 10_000, "header")));
        // In flight: no deadline.
        let busy = a.begin();
        assert_eq!(a.limit(header, idle), None);
        drop(busy);
        // Idle after a request: the idle timeout.
        let (at, phase) = a.limit(header, idle).unwrap();
        assert_eq!(phase, "idle");
        assert!(at >= accepted + 60_000);
        // The next head's first byte: the header timeout from then.
        a.on_read();
        let (_, phase) = a.limit(header, idle).unwrap();
        assert_eq!(phase, "header");
        assert_eq!(a.expired(header, idle), None);
    }
}
