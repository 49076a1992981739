//! The web console in real headless Chromium, against the real `coffer` binary watching a
//! real anvil, on SQLite and PostgreSQL.
//!
//! The test starts anvil (with the committed 6-decimal test token), a webhook receiver and
//! `coffer serve`, reads the first-run setup link from the server's log, and runs
//! `tests/checkout/console.mjs` (playwright-core driving Debian's Chromium) through the whole
//! story: first-run setup, merchants, TOTP on and off sign-in, a wallet whose preview must
//! match an independent derivation (`cast`), a webhook endpoint, an API key shown once; then
//! it creates and pays orders on chain with that key, and the script checks the dashboard,
//! filters, search, CSV export, a refund and its approval, a webhook delivered again, that
//! merchant A cannot open B's pages or order, that a form without its CSRF token changes
//! nothing, that staff cannot write, and that wrong passwords lock a username. Any script
//! error, CSP violation, outside request or unexpected HTTP error fails it. Screenshots go to
//! `$COFFER_ARTIFACTS_DIR/console-screenshots` or `target/console-screenshots`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coffer_chain_evm::testtools::devchain::DevChain;
use coffer_chain_evm::testtools::{Anvil, tool};
use coffer_core::{BaseUnits, Decimals};
use coffer_testkit::{TestDb, both_backends};
use common::{XPUB, coffer};
use rust_decimal::Decimal;
use serde_json::{Value, json};

const EXPLORER: &str = "https://explorer.invalid/tx/";
const CONFIRMATIONS: u64 = 2;
/// Another account-level xpub (XPUB with one bit of its chain code flipped): merchant B's.
const OTHER_XPUB: &str = "xpub6BemYiVNp19ZzV24L4XKWqLVSyZCZcZq8ZJ2B1hKF7Pkq4WWtYtK3MuoTugnMcyADkZf8vvWw4MwBeXZFCCHtQtHgLTV1qqF6bWJeeqnhtd";
const MNEMONIC: &str = "test test test test test test test test test test test junk";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The server of the story. One browser signs in and out many times a minute from one
/// address, so the edge's per-address sign-in limit is raised out of its way (edge.rs tests
/// that limit); the per-username lockout stays as configured by default.
fn config(dir: &Path, rpc: &str, usdt: &str) -> PathBuf {
    let path = dir.join("coffer.toml");
    std::fs::write(
        &path,
        format!(
            "listen = \"127.0.0.1:0\"\nlog_format = \"json\"\n\n[http]\nlogin_rate_limit_per_minute = 600\n\n[rates]\nsources = [\"fixed\"]\n[rates.fixed]\n\"ETH/USD\" = \"2000\"\n\n[webhooks]\nallow_private = true\n\n[[chains]]\nid = \"anvil\"\nkind = \"evm\"\nnetwork = \"regtest\"\nname = \"Anvil Testnet\"\nchain_id = 31337\nrpc = [\"{rpc}\"]\nconfirmations = {CONFIRMATIONS}\npoll_interval = \"100ms\"\nexplorer_tx = \"{EXPLORER}{{txid}}\"\nnative = {{ symbol = \"ETH\", decimals = 18 }}\n[[chains.tokens]]\nsymbol = \"USDT\"\ncontract = \"{usdt}\"\ndecimals = 6\n"
        ),
    )
    .unwrap();
    path
}

/// `coffer serve`, the address it listens on and the setup link it logged.
struct Server {
    child: Child,
    base: String,
    setup_link: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(config: &Path, db: &TestDb) -> Server {
    let mut child = coffer(config, db)
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let (mut base, mut link, mut summary) = (None, None, None);
    for line in lines.by_ref() {
        let line = line.unwrap();
        let Ok(v) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if v["message"] == "configuration" {
            summary = Some(v.clone());
        }
        if let Some(l) = v["link"].as_str() {
            link = Some(l.to_owned());
        }
        if v["message"] == "listening" {
            base = Some(format!("http://{}", v["address"].as_str().unwrap()));
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    // The start-up summary: short, readable, no secrets, no Debug dump of the config.
    let summary = summary.expect("no start-up summary in the log");
    assert_eq!(summary["rates"], "fixed");
    assert!(
        summary["chains"]
            .as_str()
            .unwrap()
            .starts_with("anvil (ETH, USDT)"),
        "{summary}"
    );
    assert!(summary["database"].as_str().is_some());
    if let Some(url) = &db.url {
        let password = url::Url::parse(url).unwrap().password().map(str::to_owned);
        if let Some(p) = password.filter(|p| !p.is_empty()) {
            assert!(
                !summary.to_string().contains(&p),
                "the password is in the log"
            );
        }
    }
    Server {
        child,
        base: base.expect("coffer serve did not report its address"),
        setup_link: link.expect("no setup link in the log of a fresh server"),
    }
}

/// What the webhook receiver got: (delivery id, event type, signature header, body).
type Received = Arc<Mutex<Vec<(String, String, String, Vec<u8>)>>>;

async fn receiver() -> (String, Received) {
    use axum::body::Bytes;
    use axum::http::HeaderMap;
    let got: Received = Arc::default();
    let store = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let store = store.clone();
            async move {
                let h = |k: &str| {
                    headers
                        .get(k)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned()
                };
                store.lock().unwrap().push((
                    h("coffer-delivery-id"),
                    h("coffer-event-type"),
                    h("coffer-signature"),
                    body.to_vec(),
                ));
                "ok"
            }
        }),
    );
    let base = coffer_testkit::fixtures::serve(app).await;
    (format!("{base}/hook"), got)
}

struct Browser {
    child: Child,
    input: ChildStdin,
    out: std::io::Lines<BufReader<ChildStdout>>,
}

fn chromium() -> PathBuf {
    let path = PathBuf::from(
        std::env::var("COFFER_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
    );
    assert!(
        path.exists(),
        "Chromium not found at {}: run scripts/test.sh (it installs the Debian chromium package) or set COFFER_TEST_CHROMIUM",
        path.display()
    );
    path
}

fn screenshots(kind: &str) -> PathBuf {
    let root = std::env::var_os("COFFER_ARTIFACTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target"));
    root.join("console-screenshots").join(kind)
}

impl Browser {
    fn run(base: &str, shots: &Path) -> Browser {
        let dir = repo().join("tests/checkout");
        assert!(
            dir.join("node_modules/playwright-core").exists(),
            "playwright-core is not installed in tests/checkout: run scripts/test.sh (npm ci)"
        );
        let mut child = Command::new("node")
            .arg(dir.join("console.mjs"))
            .arg(base)
            .arg(shots)
            .env("COFFER_TEST_CHROMIUM", chromium())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node is needed for the browser tests: run scripts/test.sh");
        let input = child.stdin.take().unwrap();
        let out = BufReader::new(child.stdout.take().unwrap()).lines();
        Browser { child, input, out }
    }

    fn tell(&mut self, v: Value) {
        writeln!(self.input, "{v}").unwrap();
        self.input.flush().unwrap();
    }

    fn expect(&mut self, event: &str) -> Value {
        for line in self.out.by_ref() {
            let line = line.unwrap();
            let v: Value = serde_json::from_str(&line)
                .unwrap_or_else(|_| panic!("not a JSON line from the browser script: {line}"));
            eprintln!("browser: {}", line.chars().take(600).collect::<String>());
            if v["event"] == event {
                return v;
            }
            if v["event"] == "done" {
                panic!("the browser run ended before {event:?}: {}", v["errors"]);
            }
        }
        panic!("the browser script exited before {event:?}");
    }

    fn finish(mut self) {
        let done = self.expect("done");
        assert_eq!(done["ok"], true, "browser errors: {}", done["errors"]);
        assert!(self.child.wait().unwrap().success());
    }
}

/// The first addresses of the test mnemonic's account 0, derived by `cast` from the private
/// side: nothing of Coffer's derivation code is involved.
fn cast_addresses(n: u32) -> Vec<String> {
    (0..n)
        .map(|i| {
            let out = Command::new(tool("cast"))
                .args(["wallet", "address", "--mnemonic", MNEMONIC])
                .arg("--mnemonic-derivation-path")
                .arg(format!("m/44'/60'/0'/0/{i}"))
                .output()
                .expect("cast (scripts/test.sh installs it)");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap().trim().to_owned()
        })
        .collect()
}

async fn api(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    key: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = http.request(method, url).bearer_auth(key);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn console_in_chromium(db: &TestDb) {
    let anvil = Anvil::start(&[]).unwrap();
    let chain = DevChain::new(&anvil.url()).unwrap();
    let usdt = chain.deploy_token("Tether USD", "USDT", 6).await.unwrap();
    let usdt_s = usdt.to_checksum(None);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &anvil.url(), &usdt_s);
    let shots = screenshots(db.kind());
    let (hook_url, received) = receiver().await;
    let server = serve(&cfg, db);
    let base = server.base.clone();
    let http = coffer_testkit::http_client();

    // The setup link works only while no operator exists; the CLI prints a fresh one.
    let out = coffer(&cfg, db)
        .args(["console", "setup-link"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8(out.stdout).unwrap();
    let cli_link = printed.lines().next().unwrap().to_owned();
    assert!(cli_link.contains("/console/join?token="), "{printed}");
    assert_ne!(cli_link, server.setup_link, "a new link each time");
    // The logged link was replaced by the CLI's: it no longer opens the setup page.
    let logged = format!(
        "{base}{}",
        &server.setup_link[server.setup_link.find("/console").unwrap()..]
    );
    assert_eq!(http.get(&logged).send().await.unwrap().status(), 404);

    // Headers of a console page (without a browser).
    let res = http
        .get(format!("{base}/console/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    for directive in [
        "default-src 'none'",
        "script-src 'nonce-",
        "style-src 'nonce-",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{directive} missing in {csp}");
    }
    assert_eq!(res.headers()["x-frame-options"], "DENY");
    assert!(
        res.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("HttpOnly")
    );
    let html = res.text().await.unwrap();
    assert!(
        html.len() < 30_000,
        "the sign-in page weighs {} bytes",
        html.len()
    );
    assert!(!html.contains(" src=\"http") && !html.contains("stylesheet"));
    // Pages need a session: a redirect to sign in, never a page.
    let res = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{base}/console/op"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(
        res.headers()["location"],
        "/console/login?next=%2Fconsole%2Fop"
    );

    let mut b = Browser::run(&base, &shots);
    b.tell(
        json!({"setup_link": cli_link, "chain": "anvil", "xpub": XPUB, "webhook_url": hook_url}),
    );

    let setup = b.expect("setup");
    assert!(
        setup["url"].as_str().unwrap().ends_with("/console/op"),
        "{setup}"
    );
    assert_eq!(setup["setup_notice"], true);
    let checklist = setup["checklist"].as_array().unwrap();
    let todo = |needle: &str| {
        checklist
            .iter()
            .find(|i| i["text"].as_str().unwrap().contains(needle))
            .unwrap_or_else(|| panic!("{needle} not in {checklist:?}"))["todo"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(todo("chain(s) configured"), "done");
    assert_eq!(todo("No merchant yet"), "todo");
    assert_eq!(todo("fixed table"), "todo");
    assert_eq!(todo("Two-step sign-in"), "todo");

    let merchants = b.expect("merchants");
    let a_id = merchants["merchants"]["a"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let b_id = merchants["merchants"]["b"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let b_key = merchants["merchants"]["b"]["api_key"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(a_id.starts_with("mch_"));
    // The first key of a merchant created in the console works on the API.
    let (status, _) = api(
        &http,
        reqwest::Method::GET,
        &format!("{base}/api/v1/orders"),
        &b_key,
        None,
    )
    .await;
    assert_eq!(status, 200);
    // B has no wallet yet: an order its buyers could not pay is refused, naming the field.
    let (status, refused) = api(
        &http,
        reqwest::Method::POST,
        &format!("{base}/api/v1/orders"),
        &b_key,
        Some(json!({"amount": "5", "currency": "USD"})),
    )
    .await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(
        refused["error"]["code"], "wallet_not_configured",
        "{refused}"
    );
    assert_eq!(refused["error"]["field"], "asset", "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("anvil"),
        "{refused}"
    );

    let totp = b.expect("totp");
    assert_eq!(totp["secret_shown"], true);
    assert_eq!(totp["qr"], true);
    assert_eq!(totp["on"], true);
    assert_eq!(totp["asked_for_code"], true);
    assert!(
        totp["wrong_code"].as_str().unwrap().contains("not right"),
        "{totp}"
    );
    assert_eq!(totp["after"], "/console/op");

    let wallet = b.expect("wallet");
    assert_eq!(wallet["landed"], format!("/console/m/{a_id}"));
    assert!(
        wallet["next_steps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == "todo")
    );
    assert_eq!(
        wallet["preview"],
        json!(cast_addresses(3)),
        "the preview must match cast"
    );
    assert_eq!(wallet["saved"], true);

    let keys = b.expect("keys");
    let key = keys["api_key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("ck_"));
    assert_eq!(keys["shown_after_reload"], false, "a key is shown once");
    assert_eq!(keys["rows"], 2, "the first admin key and the new one");
    let webhook_secret = keys["webhook_secret"].as_str().unwrap().to_owned();

    // Orders through the API with the key made in the console; one paid on chain.
    b.expect("wait");
    let create = |body: Value| {
        let http = http.clone();
        let url = format!("{base}/api/v1/orders");
        let key = key.clone();
        async move {
            let (status, order) = api(&http, reqwest::Method::POST, &url, &key, Some(body)).await;
            assert_eq!(status, 201, "{order}");
            order
        }
    };
    let paid = create(json!({"amount": "10", "currency": "USD", "asset": "anvil:USDT", "order_no": "A-1001", "fixed_stablecoin_rate": true})).await;
    create(json!({"amount": "12.5", "currency": "USD", "asset": "anvil:USDT", "order_no": "A-1002", "fixed_stablecoin_rate": true})).await;
    create(json!({"amount": "7", "currency": "USD", "order_no": "A-1003"})).await;
    let address = paid["payment"]["address"].as_str().unwrap().to_owned();
    let txid = chain
        .pay_token(
            usdt,
            &address,
            BaseUnits::from_decimal(Decimal::from(10), Decimals::new(6).unwrap())
                .unwrap()
                .get(),
        )
        .await
        .unwrap();
    chain.mine(CONFIRMATIONS).await.unwrap();
    let order_url = format!("{base}/api/v1/orders/{}", paid["id"].as_str().unwrap());
    common::wait_until(
        "the paid order to settle",
        Duration::from_secs(60),
        async || {
            api(&http, reqwest::Method::GET, &order_url, &key, None)
                .await
                .1["status"]
                == "settled"
        },
    )
    .await;
    common::wait_until("its webhooks", Duration::from_secs(60), async || {
        received
            .lock()
            .unwrap()
            .iter()
            .any(|(_, kind, _, _)| kind == "order.settled")
    })
    .await;
    // Deliveries are signed with the secret the console showed once.
    {
        let got = received.lock().unwrap();
        let (_, _, signature, body) = got.first().unwrap();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        assert!(coffer_webhooks::crypto::verify(
            &webhook_secret,
            signature,
            body,
            now,
            600
        ));
    }
    // B gets its own wallet (through the CLI) for its one order.
    let out = coffer(&cfg, db)
        .args(["wallet", "set", "--merchant", &b_id, "--chain", "anvil"])
        .args(["--xpub", OTHER_XPUB])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (status, b_order) = api(
        &http,
        reqwest::Method::POST,
        &format!("{base}/api/v1/orders"),
        &b_key,
        Some(json!({"amount": "3", "currency": "USD", "order_no": "B-1"})),
    )
    .await;
    assert_eq!(status, 201, "{b_order}");
    b.tell(json!({"paid": paid["id"], "address": address, "txid": txid.to_string(), "b_order": b_order["id"]}));

    let lists = b.expect("lists");
    assert_eq!(lists["listed"], 3);
    assert_eq!(lists["settled"], json!(["A-1001"]));
    assert_eq!(lists["searches"]["no"], json!(["A-1001"]));
    assert_eq!(
        lists["searches"]["address"],
        json!(["A-1001"]),
        "address search in any case"
    );
    assert_eq!(
        lists["searches"]["txid"],
        json!(["A-1001"]),
        "transaction search in any case"
    );
    assert_eq!(lists["searches"]["none"], json!([]), "no substring scans");
    let counts = lists["counts"].to_string();
    assert!(
        counts.contains("settled") && counts.contains("pending"),
        "{counts}"
    );
    let csv = lists["csv"].as_str().unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 4, "header and three orders: {csv}");
    assert!(rows[0].starts_with("id,order_no,created_at,status"));
    assert!(
        csv.contains("\"A-1001\"") && csv.contains("\"settled\"") && csv.contains("\"10 USDT\""),
        "{csv}"
    );
    assert!(!csv.contains("B-1"), "only the merchant's orders");
    assert!(lists["csv_name"].as_str().unwrap().ends_with(".csv"));

    let order = b.expect("order");
    assert_eq!(order["explorer"], format!("{EXPLORER}{txid}"));
    assert!(
        order["refund_notice"]
            .as_str()
            .unwrap()
            .contains("Refund requested")
    );
    assert_eq!(order["payout_status"], "approved");
    let delivery = order["delivery"].as_str().unwrap().to_owned();
    b.expect("wait");
    common::wait_until(
        "the delivery to be made again",
        Duration::from_secs(30),
        async || {
            received
                .lock()
                .unwrap()
                .iter()
                .filter(|(d, _, _, _)| *d == delivery)
                .count()
                >= 2
        },
    )
    .await;
    // The refund's approval is the API's too.
    let (_, payouts) = api(
        &http,
        reqwest::Method::GET,
        &format!("{base}/api/v1/payouts"),
        &b_key,
        None,
    )
    .await;
    assert!(
        payouts["data"].as_array().is_none_or(|d| d.is_empty()),
        "B sees none of A's payouts"
    );
    b.tell(json!({}));

    let isolation = b.expect("isolation");
    for (k, v) in isolation["isolation"].as_object().unwrap() {
        assert_eq!(v, 404, "{k}");
    }
    assert_eq!(isolation["no_csrf"], 403);
    assert_eq!(isolation["wrong_csrf"], 403);
    assert_eq!(isolation["keys_before"], isolation["keys_after"]);

    let staff = b.expect("staff");
    assert_eq!(staff["forms_on_keys"], 0);
    assert_eq!(staff["forms_on_order"], 0);
    assert_eq!(staff["post_key"], 403);
    assert_eq!(staff["post_action"], 403);

    let throttle = b.expect("throttle");
    assert_eq!(throttle["attempts"], json!([401, 401, 401, 401, 401]));
    assert_eq!(throttle["locked"], 429);
    assert_eq!(throttle["lang"], "es");
    assert!(
        throttle["text"].as_str().unwrap().contains("Demasiados"),
        "{throttle}"
    );
    b.finish();

    // The audit log kept the sensitive actions.
    let engine = common::anvil_engine(db, "anvil", &usdt_s);
    let log = engine.console_audit_log(None, None, 200).await.unwrap();
    let actions: Vec<&str> = log.iter().map(|a| a.action.as_str()).collect();
    for wanted in [
        "console.setup",
        "merchant.created",
        "user.totp_enabled",
        "session.signed_in",
        "wallet.set",
        "webhook.created",
        "key.created",
        "orders.exported",
        "refund.requested",
        "payout.approved",
        "webhook.redelivered",
        "user.invited",
        "user.joined",
    ] {
        assert!(
            actions.contains(&wanted),
            "{wanted} not audited: {actions:?}"
        );
    }
    let out = coffer(&cfg, db)
        .args(["console", "setup-link"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "setup is closed once an operator exists"
    );
    for name in [
        "operator-overview",
        "wallet-preview",
        "key-shown-once",
        "dashboard",
        "orders",
        "order",
        "payouts",
        "dashboard-phone-dark",
        "login-locked",
    ] {
        let file = shots.join(format!("{name}.png"));
        assert!(
            std::fs::metadata(&file).is_ok_and(|m| m.len() > 1000),
            "{} missing",
            file.display()
        );
    }
    drop(server);
}

both_backends! {
    console_in_headless_chromium => console_in_chromium;
}
