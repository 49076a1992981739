//! Clients of the dialects as the vendors' plugins sign their requests (signatures computed by
//! Python's `hmac`, not by Coffer's code), shared by the end-to-end tests.

use std::process::Command;

use serde_json::Value;

pub fn python(script: &str, args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

pub const B64: &str = "import base64,hashlib,hmac,sys; print(base64.b64encode(hmac.new(sys.argv[1].encode(), sys.argv[2].encode(), hashlib.sha256).digest()).decode())";
pub const HEX: &str = "import hashlib,hmac,sys; print(hmac.new(sys.argv[1].encode(), (sys.argv[2]+chr(10)+sys.argv[3]+chr(10)+sys.argv[4]).encode(), hashlib.sha256).hexdigest())";

/// A Pay Protocol request signed like the vendor's plugin (signature by Python's `hmac`);
/// answers `data` after checking the envelope's `code` is 200.
pub async fn pp_request(
    http: &reqwest::Client,
    base: &str,
    credential: &coffer_engine::NewDialectCredential,
    method: &str,
    path: &str,
    body: &str,
) -> Value {
    let ts = unix_now().to_string();
    let sign = python(
        B64,
        &[&credential.secret, &format!("{ts}{method}{path}{body}")],
    );
    let mut req = http
        .request(method.parse().unwrap(), format!("{base}{path}"))
        .header("X-PAY-KEY", &credential.key)
        .header("X-PAY-TIMESTAMP", &ts)
        .header("X-PAY-SIGN", sign);
    if method == "POST" {
        req = req
            .header("content-type", "application/json")
            .body(body.to_owned());
    }
    let v: Value = req.send().await.unwrap().json().await.unwrap();
    assert_eq!(v["code"], 200, "{path}: {v}");
    v["data"].clone()
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// A Zaepe request signed like the vendor's SDK (signature by Python's `hmac`): the answer.
pub async fn zaepe_post(
    http: &reqwest::Client,
    base: &str,
    credential: &coffer_engine::NewDialectCredential,
    path: &str,
    body: &str,
) -> Value {
    let ts = unix_now().to_string();
    let nonce = coffer_testkit::random_suffix();
    let sig = python(HEX, &[&credential.secret, body, &ts, &nonce]);
    http.post(format!("{base}{path}"))
        .header("content-type", "application/json")
        .header("X-API-Key", &credential.key)
        .header("X-Timestamp", &ts)
        .header("X-Nonce", &nonce)
        .header("X-Signature", sig)
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}
