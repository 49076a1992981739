//! Aurpay's cashier entry at the root: plugins that use `POST /api/order/pay/token` send the
//! buyer to `BASE/#/cashier/choose?token=…`. The token is the order's checkout token, so this
//! page reads it from the URL's fragment (which never reaches the server) and forwards to the
//! order's checkout, `pay/{token}`. An unknown or missing token gets a message, not a 404.
//!
//! The same rules as the checkout page: nothing loaded from elsewhere, the script and style
//! inline under a fresh CSP nonce.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// `GET /`: the cashier entry.
pub async fn entry() -> Response {
    let nonce = STANDARD.encode(coffer_engine::random16());
    let csp = format!(
        "default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; \
         connect-src 'self'; img-src data:; form-action 'none'; frame-ancestors 'none'; \
         base-uri 'none'"
    );
    let mut response = (StatusCode::OK, page(&nonce)).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // The fragment carries a capability: never send it on.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

const STYLE: &str = "body{font:16px/1.5 system-ui,sans-serif;margin:0;display:flex;\
min-height:100vh;align-items:center;justify-content:center;background:#f6f7f9;color:#111}\
main{max-width:26rem;margin:1rem;padding:1.5rem;border-radius:12px;background:#fff;\
box-shadow:0 1px 4px rgba(0,0,0,.12)}h1{font-size:1.25rem;margin:0 0 .5rem}p{margin:0}\
@media (prefers-color-scheme:dark){body{background:#111;color:#eee}main{background:#1d1d1f}}";

/// Reads `token` from `#/cashier/choose?token=…` (or any `#…?token=…`), checks it against
/// `pay/{token}/status` and goes there with `location.replace` (the entry stays out of the
/// history), or says why not. Relative URLs, so a path prefix in front of Coffer still works.
const SCRIPT: &str = r#"(function () {
  var main = document.getElementById('cashier');
  function show(state, title, text) {
    main.setAttribute('data-state', state);
    main.querySelector('h1').textContent = title;
    main.querySelector('p').textContent = text;
  }
  var hash = location.hash || '';
  var q = hash.indexOf('?');
  var token = q < 0 ? null : new URLSearchParams(hash.slice(q + 1)).get('token');
  if (!token || !/^[A-Za-z0-9_-]{1,128}$/.test(token)) {
    show('missing', 'No payment in this link',
      'This link does not name a payment. Go back to the shop and start the payment again.');
    return;
  }
  var page = 'pay/' + encodeURIComponent(token);
  fetch(page + '/status', { cache: 'no-store', credentials: 'omit' }).then(function (r) {
    if (r.ok) {
      main.setAttribute('data-state', 'forwarding');
      location.replace(page);
    } else if (r.status === 404) {
      show('unknown', 'Payment not found',
        'This payment link is unknown or no longer valid. Go back to the shop and start the payment again, or ask the merchant for a new link.');
    } else {
      show('unavailable', 'Payment service unavailable',
        'The payment service did not answer. Please reload this page in a minute.');
    }
  }, function () {
    show('unavailable', 'Payment service unavailable',
      'The payment service did not answer. Please reload this page in a minute.');
  });
})();"#;

fn page(nonce: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<meta name=\"referrer\" content=\"no-referrer\"><meta name=\"robots\" content=\"noindex\">\
<meta name=\"color-scheme\" content=\"light dark\"><link rel=\"icon\" href=\"data:,\">\
<title>Payment</title><style nonce=\"{nonce}\">{STYLE}</style></head>\
<body><main id=\"cashier\" data-state=\"loading\" aria-live=\"polite\">\
<h1>Opening your payment…</h1><p>One moment.</p>\
<noscript><p>This payment link needs JavaScript. Please enable it, or ask the merchant for \
the direct payment link.</p></noscript></main>\
<script nonce=\"{nonce}\">{SCRIPT}</script></body></html>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_nothing_and_runs_only_under_its_nonce() {
        let html = page("abc123==");
        assert!(html.contains("<script nonce=\"abc123==\">"));
        assert!(html.contains("<style nonce=\"abc123==\">"));
        for outside in ["http://", "https://", "src=", "//cdn"] {
            assert!(!html.contains(outside), "{outside} in the page");
        }
        assert!(html.contains("location.replace(page)"));
    }
}
