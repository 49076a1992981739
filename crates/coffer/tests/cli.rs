//! The real `coffer` binary: CLI exit codes, configuration errors, and `serve` on SQLite and
//! PostgreSQL, driven over real HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use serde_json::json;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use coffer_testkit::TestDb;

const BIN: &str = env!("CARGO_BIN_EXE_coffer");

/// A `coffer` command with a clean environment: no inherited COFFER_* variables.
fn coffer(data_dir: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    for (key, _) in std::env::vars() {
        if key.starts_with("COFFER_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("COFFER_DATA_DIR", data_dir);
    cmd
}

/// reqwest is built with `rustls-no-provider` (no aws-lc in the tree): install ring first.
fn http_client() -> reqwest::Client {
    coffer_testkit::http_client()
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run coffer")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn usage_errors_exit_2_and_help_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(run(coffer(dir.path()).arg("--help")).status.code(), Some(0));
    assert_eq!(
        run(coffer(dir.path()).arg("frobnicate")).status.code(),
        Some(2)
    );
    assert_eq!(
        run(coffer(dir.path()).args(["key", "create"]))
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        run(coffer(dir.path()).args(["merchant", "create"]))
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn config_example_passes_config_check() {
    let dir = tempfile::tempdir().unwrap();
    let example = run(coffer(dir.path()).args(["config", "example"]));
    assert_eq!(example.status.code(), Some(0));
    let file = dir.path().join("coffer.toml");
    std::fs::write(&file, example.stdout).unwrap();
    let check = run(coffer(dir.path())
        .args(["config", "check", "--config"])
        .arg(&file));
    assert_eq!(check.status.code(), Some(0), "{}", stderr(&check));
    assert!(stdout(&check).contains("configuration ok"));
    // COFFER_CONFIG works like --config.
    let check = run(coffer(dir.path())
        .args(["config", "check"])
        .env("COFFER_CONFIG", &file));
    assert_eq!(check.status.code(), Some(0), "{}", stderr(&check));
}

#[test]
fn bad_configuration_stops_with_one_line_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("coffer.toml");
    type Case<'a> = (Option<&'a str>, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (Some("listn = \"127.0.0.1:1\"\n"), vec![], "listn"),
        (
            Some("[orders]\ndefault_expires_in = \"soon\"\n"),
            vec![],
            "default_expires_in",
        ),
        (
            Some("[rates.fixed]\n\"BTC/USD\" = \"abc\"\n"),
            vec![],
            "BTC/USD",
        ),
        // A key of another chain kind (Bitcoin's cookie file on an EVM chain).
        (
            Some("[[chains]]\nid = \"eth\"\nrpc_cookie_file = \"/x/.cookie\"\n"),
            vec![],
            "chains[0].rpc_cookie_file",
        ),
        (
            Some(
                "[[chains]]\nid = \"btc\"\nkind = \"bitcoin\"\nchain_id = 1\nnative = { symbol = \"BTC\", decimals = 8 }\n",
            ),
            vec![],
            "chains[0].chain_id",
        ),
        (None, vec![("COFFER_LISTEN", "not-an-address")], "listen"),
        (None, vec![("COFFER_LISTN", "127.0.0.1:1")], "listn"),
        (
            None,
            vec![("COFFER_DATABASE_URL", "mysql://x/y")],
            "database_url",
        ),
    ];
    for (toml, env, key) in cases {
        let mut cmd = coffer(dir.path());
        cmd.args(["config", "check"]);
        if let Some(toml) = toml {
            std::fs::write(&file, toml).unwrap();
            cmd.arg("--config").arg(&file);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = run(&mut cmd);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{key}: {err}");
        assert!(err.starts_with("error: "), "{key}: {err}");
        assert!(
            err.to_lowercase().contains(&key.to_lowercase()),
            "{key}: {err}"
        );
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    }
    // A missing file is a runtime error too.
    let out =
        run(coffer(dir.path()).args(["config", "check", "--config", "/nonexistent/coffer.toml"]));
    assert_eq!(out.status.code(), Some(1));
}

fn merchant_and_key_lifecycle(db_url: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let cmd = || {
        let mut c = coffer(dir.path());
        if let Some(url) = db_url {
            c.env("COFFER_DATABASE_URL", url);
        }
        c
    };
    let out = run(cmd().args(["merchant", "create", "--name", "Corner Café", "--json"]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let created: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let merchant = created["merchant_id"].as_str().unwrap().to_owned();
    assert!(merchant.starts_with("mch_"));
    assert!(created["api_key"].as_str().unwrap().starts_with("ck_"));

    let out = run(cmd().args(["merchant", "list", "--json"]));
    let list: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(list[0]["name"], "Corner Café");

    let out = run(cmd().args([
        "key",
        "create",
        "--merchant",
        &merchant,
        "--scopes",
        "orders:read,orders:write",
        "--label",
        "shop",
        "--expires-in",
        "90d",
        "--json",
    ]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let key: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let key_id = key["key_id"].as_str().unwrap().to_owned();
    assert_eq!(
        key["scopes"],
        serde_json::json!(["orders:read", "orders:write"])
    );

    let out = run(cmd().args(["key", "list", "--merchant", &merchant, "--json"]));
    let keys: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(keys.as_array().unwrap().len(), 2);
    assert!(
        !stdout(&out).contains(key["api_key"].as_str().unwrap()),
        "secrets are never listed"
    );

    let out = run(cmd().args(["key", "revoke", "--merchant", &merchant, "--key", &key_id]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = run(cmd().args(["key", "revoke", "--merchant", &merchant, "--key", &key_id]));
    assert_eq!(out.status.code(), Some(1), "revoking twice is an error");

    // Vendor-dialect credentials: shown once under the vendor's names, listed without secrets.
    let out = run(cmd().args([
        "key",
        "create",
        "--merchant",
        &merchant,
        "--dialect",
        "aurpay",
    ]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    for label in [
        "API-Key:",
        "API-Token:",
        "API-Secret:",
        "Callback-Token:",
        "callback secret:",
    ] {
        assert!(text.contains(label), "{label} in {text}");
    }
    let out = run(cmd().args([
        "key",
        "create",
        "--merchant",
        &merchant,
        "--dialect",
        "zaepe",
        "--json",
    ]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let zaepe: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let dcr = zaepe["credential_id"].as_str().unwrap().to_owned();
    assert!(dcr.starts_with("dcr_"));
    let out = run(cmd().args(["key", "list", "--merchant", &merchant, "--json"]));
    let listed = stdout(&out);
    assert!(!listed.contains(zaepe["secret"].as_str().unwrap()));
    assert!(!listed.contains(zaepe["key"].as_str().unwrap()));
    let keys: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(keys.as_array().unwrap().len(), 4);
    let out = run(cmd().args(["key", "revoke", "--merchant", &merchant, "--key", &dcr]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = run(cmd().args([
        "key",
        "create",
        "--merchant",
        &merchant,
        "--dialect",
        "stripe",
    ]));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("stripe"));

    // The console login for Aurpay's "Get API-Key", password from stdin.
    let login = |password: &str| {
        let mut child = cmd()
            .args([
                "merchant",
                "login",
                "--merchant",
                &merchant,
                "--username",
                "shop@example.com",
                "--password-stdin",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
        child.wait_with_output().unwrap()
    };
    let out = login("correct horse battery staple");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stdout(&out).contains("correct horse"));
    let out = login("short");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("password"), "{}", stderr(&out));

    let out = run(cmd().args([
        "key",
        "create",
        "--merchant",
        &merchant,
        "--scopes",
        "orders:delete",
    ]));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("orders:delete"));

    let out = run(cmd().args(["order", "list", "--merchant", &merchant, "--json"]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "[]");
    let out = run(cmd().args(["order", "show", "ord_aaaaaaaaaaaaaaaaaaaaaaaaaa"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not found"));
}

#[test]
fn merchants_and_keys_on_sqlite() {
    merchant_and_key_lifecycle(None);
}

#[tokio::test]
async fn merchants_and_keys_on_postgres() {
    if !coffer_testkit::postgres_wanted() {
        return;
    }
    let db = coffer_testkit::fresh_postgres().await.unwrap();
    let url = db.url.clone().unwrap();
    tokio::task::spawn_blocking(move || merchant_and_key_lifecycle(Some(&url)))
        .await
        .unwrap();
}

struct Server {
    child: Child,
    base: String,
    logs: mpsc::Receiver<String>,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start(db_url: Option<&str>, extra_env: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = coffer(dir.path());
        cmd.arg("serve")
            .env("COFFER_LISTEN", "127.0.0.1:0")
            .env("COFFER_LOG_FORMAT", "json")
            .env("COFFER_HTTP__BODY_LIMIT", "4096")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(url) = db_url {
            cmd.env("COFFER_DATABASE_URL", url);
        }
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        // Waited for in `terminate` or `Drop`.
        #[allow(clippy::zombie_processes)]
        let mut child = cmd.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let line = rx
                .recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
                .expect("coffer serve did not report its address");
            let log: serde_json::Value = serde_json::from_str(&line)
                .unwrap_or_else(|_| panic!("log line is not JSON: {line}"));
            if log["message"] == "listening" {
                let addr = log["address"].as_str().unwrap().to_owned();
                return Server {
                    child,
                    base: format!("http://{addr}"),
                    logs: rx,
                    _dir: dir,
                };
            }
        }
    }

    fn terminate(mut self) -> (Option<i32>, Vec<String>) {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no graceful exit within 15 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        // The process has exited: read its stderr to the end (the reader thread may not have
        // forwarded the last lines yet; it hangs up at end of file).
        let mut logs = Vec::new();
        while let Ok(line) = self.logs.recv_timeout(Duration::from_secs(5)) {
            logs.push(line);
        }
        (status.code(), logs)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn serves_health_metrics_and_request_ids(db: Option<&TestDb>) {
    let url = db.and_then(|d| d.url.clone());
    let server = tokio::task::spawn_blocking(move || Server::start(url.as_deref(), &[]))
        .await
        .unwrap();
    let http = http_client();

    let health = http
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let rid = health.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(rid.starts_with("req_") && rid.len() > 20, "{rid}");

    let echoed = http
        .get(format!("{}/healthz", server.base))
        .header("x-request-id", "shop-trace-42")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "shop-trace-42");

    let ready = http
        .get(format!("{}/readyz", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    let expected_backend = if db.is_some() { "postgres" } else { "sqlite" };
    assert_eq!(body["checks"]["database"]["backend"], expected_backend);
    assert!(
        body["checks"]["rates"].is_null(),
        "fixed rates cannot go stale: {body}"
    );

    let missing = http
        .get(format!("{}/nope", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let body: serde_json::Value = missing.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    assert!(body["error"]["message"].is_string());

    let big = http
        .post(format!("{}/healthz", server.base))
        .header("content-type", "application/json")
        .body(vec![b'x'; 8192])
        .send()
        .await
        .unwrap();
    assert_eq!(big.status(), 413);
    let body: serde_json::Value = big.json().await.unwrap();
    assert_eq!(body["error"]["code"], "body_too_large");

    let metrics = http
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("coffer_http_requests_total"), "{metrics}");
    assert!(metrics.contains("route=\"/healthz\""), "{metrics}");

    // The native API is wired in: its document and docs page are served, its routes need a key.
    let doc: serde_json::Value = http
        .get(format!("{}/api/v1/openapi.json", server.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["paths"]["/api/v1/orders"].is_object(), "{doc}");
    let docs = http
        .get(format!("{}/docs", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(docs.status(), 200);
    let orders = http
        .get(format!("{}/api/v1/orders", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(orders.status(), 401);
    // So is the Aurpay dialect, at Aurpay's paths, with Aurpay's error envelope.
    let aurpay = http
        .post(format!("{}/api/order/pay-url", server.base))
        .header("content-type", "application/json")
        .body(r#"{"price":10,"currency":"USD"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(aurpay.status(), 401);
    let body: serde_json::Value = aurpay.json().await.unwrap();
    assert_eq!(body["code"], 401);
    assert_eq!(body["result"], false);

    // Errors the framework answers before any handler (no route, wrong method, body too
    // large) take the envelope of the API whose paths the request is under.
    let call = |method: reqwest::Method, path: &str, body: Vec<u8>| {
        http.request(method, format!("{}{path}", server.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let r = call(reqwest::Method::GET, "/api/mer/nope", vec![])
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        (body["code"].clone(), body["msg"].clone()),
        (json!(404), json!("not found"))
    );
    let r = call(
        reqwest::Method::GET,
        "/api/mer/payment/createPaymentOrder",
        vec![],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["allow"], "POST");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["code"], 405, "{body}");
    let r = call(
        reqwest::Method::POST,
        "/api/order/pay-url",
        vec![b' '; 8192],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 413);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        (body["code"].clone(), body["result"].clone()),
        (json!(413), json!(false))
    );
    let r = call(reqwest::Method::POST, "/v1/payment/nope", vec![])
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["code"], 10004, "Zaepe's not-found code: {body}");
    let r = call(reqwest::Method::DELETE, "/healthz", vec![])
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        body["error"]["code"], "method_not_allowed",
        "native shape: {body}"
    );

    let (code, logs) = tokio::task::spawn_blocking(move || server.terminate())
        .await
        .unwrap();
    assert_eq!(code, Some(0), "graceful shutdown exits 0; logs: {logs:?}");
    assert!(logs.iter().any(|l| l.contains("shutting down")), "{logs:?}");
}

#[tokio::test]
async fn serve_on_sqlite() {
    serves_health_metrics_and_request_ids(None).await;
}

#[tokio::test]
async fn serve_on_postgres() {
    if !coffer_testkit::postgres_wanted() {
        return;
    }
    let db = coffer_testkit::fresh_postgres().await.unwrap();
    serves_health_metrics_and_request_ids(Some(&db)).await;
}

#[tokio::test]
async fn readyz_reports_a_lost_database() {
    if !coffer_testkit::postgres_wanted() {
        return;
    }
    let db = coffer_testkit::fresh_postgres().await.unwrap();
    let url = db.url.clone().unwrap();
    let server = tokio::task::spawn_blocking(move || Server::start(Some(&url), &[]))
        .await
        .unwrap();
    let http = http_client();
    assert_eq!(
        http.get(format!("{}/readyz", server.base))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // Drop the database under the running server.
    let admin = std::env::var(coffer_testkit::PG_URL_VAR).unwrap();
    let name = db
        .url
        .as_deref()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
        .await
        .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE {name} WITH (FORCE)"
    )))
    .execute(&mut conn)
    .await
    .unwrap();
    let ready = http
        .get(format!("{}/readyz", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["checks"]["database"]["status"], "error");
    // Liveness is unaffected: the process itself is fine.
    assert_eq!(
        http.get(format!("{}/healthz", server.base))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn metrics_on_a_separate_admin_listener() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let admin = format!("127.0.0.1:{port}");
    let admin_env = admin.clone();
    let server = tokio::task::spawn_blocking(move || {
        Server::start(None, &[("COFFER_ADMIN_LISTEN", &admin_env)])
    })
    .await
    .unwrap();
    let http = http_client();
    assert_eq!(
        http.get(format!("{}/metrics", server.base))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let metrics = http
        .get(format!("http://{admin}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), 200);
}

/// Kraken, Coinbase and ECB responses (the rates crate's fixtures, in each provider's
/// documented format) from a local server; `down` makes every answer a 503.
async fn rate_replay(down: std::sync::Arc<std::sync::atomic::AtomicBool>) -> String {
    use axum::http::{StatusCode, Uri};
    use axum::response::IntoResponse;
    let app = axum::Router::new().fallback(move |uri: Uri| {
        let down = down.clone();
        async move {
            if down.load(std::sync::atomic::Ordering::SeqCst) {
                return StatusCode::SERVICE_UNAVAILABLE.into_response();
            }
            let file = match uri.path() {
                "/0/public/Ticker" => "kraken_ticker.json".to_owned(),
                "/stats/eurofxref/eurofxref-daily.xml" => "eurofxref-daily.xml".to_owned(),
                p if p.starts_with("/v2/prices/") => format!(
                    "coinbase_spot_{}.json",
                    p.trim_start_matches("/v2/prices/")
                        .trim_end_matches("/spot")
                ),
                _ => return StatusCode::NOT_FOUND.into_response(),
            };
            let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../rates/tests/fixtures")
                .join(file);
            match std::fs::read_to_string(path) {
                Ok(body) => body
                    .replace(
                        "2024-03-22",
                        &time::OffsetDateTime::now_utc().date().to_string(),
                    )
                    .into_response(),
                Err(_) => StatusCode::NOT_FOUND.into_response(),
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_refreshes_market_rates_and_reports_their_freshness() {
    let down = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let base = rate_replay(down.clone()).await;
    let env = [
        (
            "COFFER_RATES__SOURCES",
            "[\"kraken\", \"coinbase\", \"ecb\"]".to_owned(),
        ),
        ("COFFER_RATES__BASE_URLS__KRAKEN", base.clone()),
        ("COFFER_RATES__BASE_URLS__COINBASE", base.clone()),
        ("COFFER_RATES__BASE_URLS__ECB", base.clone()),
        ("COFFER_RATES__REFRESH_INTERVAL", "200ms".to_owned()),
        ("COFFER_RATES__MAX_BACKOFF", "200ms".to_owned()),
        ("COFFER_RATES__MAX_AGE", "2s".to_owned()),
    ];
    let server = tokio::task::spawn_blocking(move || {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Server::start(None, &env)
    })
    .await
    .unwrap();
    let http = http_client();
    let readyz = || async {
        let r = http
            .get(format!("{}/readyz", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "rate freshness is reported, not required");
        r.json::<serde_json::Value>().await.unwrap()
    };
    let wait_for = |want: &'static str| async move {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let body = readyz().await;
            if body["checks"]["rates"]["status"] == want {
                return body;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "rates never became {want}: {body}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let body = wait_for("ok").await;
    let sources = body["checks"]["rates"]["sources"].as_array().unwrap();
    assert_eq!(sources.len(), 3, "{body}");
    assert!(sources.iter().all(|s| s["fresh"] == true), "{body}");
    let metrics = http
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("coffer_rate_source_fetches_total{source=\"kraken\"}"),
        "{metrics}"
    );

    // The providers go down: within the 2 s limit the rates turn stale and readiness says so.
    down.store(true, std::sync::atomic::Ordering::SeqCst);
    let body = wait_for("degraded").await;
    let kraken = body["checks"]["rates"]["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "kraken")
        .unwrap()
        .clone();
    assert_eq!(kraken["fresh"], false, "{body}");
    assert!(
        kraken["last_error"].as_str().unwrap().contains("503"),
        "{body}"
    );
    let (code, _) = server.terminate();
    assert_eq!(code, Some(0), "the refresher stops with the server");
}

/// `coffer payout list|set` on SQLite: a withdrawal request (as a dialect records it, written
/// straight to the database) listed, approved, marked sent with its transaction; refusals exit 1,
/// usage errors 2.
#[tokio::test]
async fn payout_list_and_set_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let create = |name: &str| {
        let out = run(coffer(dir.path()).args(["merchant", "create", "--name", name, "--json"]));
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let created: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        created["merchant_id"].as_str().unwrap().to_owned()
    };
    let merchant = create("Shop");
    let stranger = create("Other shop");
    let now = time::OffsetDateTime::now_utc();
    let payout = coffer_core::PayoutRequest {
        id: coffer_core::PayoutId::from_random([9; 16]),
        seq: 0,
        merchant_id: merchant.parse().unwrap(),
        kind: coffer_core::PayoutKind::Withdrawal,
        order_id: None,
        asset: Some("bsc:USDT".parse().unwrap()),
        amount: Some(coffer_core::BaseUnits::new(5_250_000)),
        fiat_amount: None,
        fiat_currency: None,
        destination: Some("0xcold".into()),
        memo: None,
        status: coffer_core::PayoutStatus::Requested,
        dialect: "payprotocol".into(),
        reference: Some("W1".into()),
        dialect_data: Default::default(),
        txid: None,
        created_at: now,
        updated_at: now,
        version: 1,
    };
    let id = payout.id.to_string();
    {
        let store = coffer_store::open(None, dir.path(), 1).await.unwrap();
        store
            .commit(coffer_store::Changeset {
                new_payouts: vec![payout],
                ..Default::default()
            })
            .await
            .unwrap();
    }
    let payout_cmd = |args: &[&str]| {
        let mut cmd = coffer(dir.path());
        cmd.arg("payout").args(args);
        run(&mut cmd)
    };
    let json_of = |out: &Output| -> serde_json::Value {
        assert_eq!(out.status.code(), Some(0), "{}", stderr(out));
        serde_json::from_str(&stdout(out)).unwrap()
    };

    let list = json_of(&payout_cmd(&["list", "--merchant", &merchant, "--json"]));
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(list[0]["kind"], "withdrawal");
    assert_eq!(list[0]["status"], "requested");
    assert_eq!(list[0]["txid"], serde_json::Value::Null);
    let list = json_of(&payout_cmd(&[
        "list",
        "--merchant",
        &merchant,
        "--kind",
        "refund",
        "--json",
    ]));
    assert_eq!(list, json!([]));
    let list = json_of(&payout_cmd(&["list", "--merchant", &stranger, "--json"]));
    assert_eq!(list, json!([]), "another merchant's payouts are not listed");
    let out = payout_cmd(&["list", "--merchant", &merchant]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stdout(&out).contains(&id) && stdout(&out).contains("0xcold"),
        "{}",
        stdout(&out)
    );
    for (args, says) in [
        (
            vec!["list", "--merchant", &merchant, "--kind", "loan"],
            "kind",
        ),
        (
            vec!["list", "--merchant", &merchant, "--status", "done"],
            "status",
        ),
        (
            vec!["set", &id, "--merchant", &merchant, "--status", "done"],
            "status",
        ),
        (
            vec![
                "set",
                "nope",
                "--merchant",
                &merchant,
                "--status",
                "approved",
            ],
            "payout id",
        ),
        // not from requested
        (
            vec!["set", &id, "--merchant", &merchant, "--status", "completed"],
            "cannot move",
        ),
        // a txid only with sent or completed
        (
            vec![
                "set",
                &id,
                "--merchant",
                &merchant,
                "--status",
                "approved",
                "--txid",
                "0xabc",
            ],
            "transaction hash",
        ),
        // another merchant's payout is not found
        (
            vec!["set", &id, "--merchant", &stranger, "--status", "approved"],
            "not found",
        ),
    ] {
        let out = payout_cmd(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stdout(&out));
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
    }
    let out = payout_cmd(&["set", &id, "--merchant", &merchant]);
    assert_eq!(out.status.code(), Some(2), "--status is required");
    let still = json_of(&payout_cmd(&["list", "--merchant", &merchant, "--json"]));
    assert_eq!(still[0]["status"], "requested", "refusals change nothing");

    let approved = json_of(&payout_cmd(&[
        "set",
        &id,
        "--merchant",
        &merchant,
        "--status",
        "approved",
        "--json",
    ]));
    assert_eq!(approved["status"], "approved");
    let out = payout_cmd(&[
        "set",
        &id,
        "--merchant",
        &merchant,
        "--status",
        "sent",
        "--txid",
        "0xfeed01",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("sent (0xfeed01)"), "{}", stdout(&out));
    let list = json_of(&payout_cmd(&[
        "list",
        "--merchant",
        &merchant,
        "--status",
        "sent",
        "--json",
    ]));
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(list[0]["txid"], "0xfeed01");
}
