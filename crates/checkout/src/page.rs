//! The HTML: one server-rendered page per screen (maud), with its own small stylesheet and
//! script inline under a per-response CSP nonce. Nothing is loaded from anywhere else.

use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::i18n::{Lang, Texts};
use crate::model::{Checkout, ChoiceGroups, Screen};

const CSS: &str = include_str!("checkout.css");
const JS: &str = include_str!("checkout.js");

/// Milliseconds the success and expired screens wait before redirecting (with JS).
pub const PAID_REDIRECT_MS: u32 = 4000;
pub const EXPIRED_REDIRECT_MS: u32 = 6000;

/// Merchant look: name, optional logo (a `data:` image URL) and brand colour (`#rrggbb`).
#[derive(Debug, Clone, Default)]
pub struct Brand {
    pub name: String,
    pub logo: Option<String>,
    pub color: Option<String>,
}

fn fill(template: &str, pairs: &[(&str, &str)]) -> String {
    let mut out = template.to_owned();
    for (k, v) in pairs {
        out = out.replace(k, v);
    }
    out
}

/// `{brand}` as a CSS colour if it is exactly `#rgb` or `#rrggbb`, else the default.
fn brand_color(brand: &Brand) -> &str {
    match brand.color.as_deref() {
        Some(c)
            if (c.len() == 7 || c.len() == 4)
                && c.starts_with('#')
                && c[1..].bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            c
        }
        _ => "#1d4ed8",
    }
}

/// The order's price with its currency's minor units (`25.00`); crypto prices as given.
fn price(c: &Checkout) -> String {
    let mut amount = c.order.amount;
    if let Some(fiat) = coffer_core::fiat::fiat_currency(&c.order.currency)
        && amount.scale() < fiat.minor_units
    {
        amount.rescale(fiat.minor_units);
    }
    amount.to_string()
}

fn layout(
    lang: Lang,
    nonce: &str,
    title: &str,
    brand: &Brand,
    head_extra: Markup,
    body: Markup,
    base: Option<&str>,
) -> Markup {
    let t = lang.texts();
    html! {
        (DOCTYPE)
        html lang=(lang.tag()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                meta name="color-scheme" content="light dark";
                meta name="robots" content="noindex";
                // no icon request (the browser would ask for /favicon.ico)
                link rel="icon" href="data:,";
                title { (title) }
                style nonce=(nonce) {
                    (PreEscaped(format!(":root{{--brand:{}}}\n", brand_color(brand))))
                    (PreEscaped(CSS))
                }
                (head_extra)
            }
            body data-base=[base] {
                (body)
                nav.langs aria-label=(t.language) {
                    @for l in Lang::ALL {
                        @if l == lang {
                            a href={ "?lang=" (l.tag()) } hreflang=(l.tag()) lang=(l.tag()) aria-current="true" { (l.native_name()) }
                        } @else {
                            a href={ "?lang=" (l.tag()) } hreflang=(l.tag()) lang=(l.tag()) { (l.native_name()) }
                        }
                    }
                }
                @if base.is_some() {
                    script nonce=(nonce) { (PreEscaped(JS)) }
                }
            }
        }
    }
}

fn merchant_header(brand: &Brand) -> Markup {
    let initial: String = brand.name.chars().take(1).collect();
    html! {
        header.merchant {
            @if let Some(logo) = brand.logo.as_deref().filter(|l| l.starts_with("data:image/")) {
                img.logo src=(logo) alt="" width="40" height="40";
            } @else {
                span.logo aria-hidden="true" { (initial) }
            }
            p.name { (brand.name) }
        }
    }
}

/// The page for one order.
pub fn checkout_page(
    c: &Checkout,
    choices: Option<&ChoiceGroups>,
    brand: &Brand,
    lang: Lang,
    nonce: &str,
    choice_error: bool,
) -> String {
    let t = lang.texts();
    let redirect_delay = match c.screen {
        Screen::Paid => PAID_REDIRECT_MS,
        _ => EXPIRED_REDIRECT_MS,
    };
    // Without JavaScript: reload while something can still change, redirect at the end.
    let head_extra = html! {
        @if let Some(url) = &c.redirect {
            noscript { meta http-equiv="refresh" content={ (redirect_delay / 1000) ";url=" (url) }; }
        } @else if !c.screen.is_final() && c.screen != Screen::Choose {
            noscript { meta http-equiv="refresh" content="20"; }
        }
    };
    let token = c.order.checkout_token.as_str();
    let body = main_element(c, choices, brand, lang, choice_error);
    let title = format!("{} · {}", t.page_title, brand.name);
    layout(lang, nonce, &title, brand, head_extra, body, Some(token)).into_string()
}

/// Only the `<main>` element of the page: what live updates swap in.
pub fn checkout_main(
    c: &Checkout,
    choices: Option<&ChoiceGroups>,
    brand: &Brand,
    lang: Lang,
    choice_error: bool,
) -> String {
    main_element(c, choices, brand, lang, choice_error).into_string()
}

fn main_element(
    c: &Checkout,
    choices: Option<&ChoiceGroups>,
    brand: &Brand,
    lang: Lang,
    choice_error: bool,
) -> Markup {
    let t = lang.texts();
    let redirect_delay = match c.screen {
        Screen::Paid => PAID_REDIRECT_MS,
        _ => EXPIRED_REDIRECT_MS,
    };
    html! {
        main #checkout data-screen=(c.screen.as_str()) data-fp=(c.fingerprint())
            data-server-now=(c.now.unix_timestamp())
            data-redirect=[c.redirect.as_deref()]
            data-redirect-delay=(redirect_delay) {
            (merchant_header(brand))
            section.summary aria-label=(t.order) {
                @if let Some(d) = &c.order.description { p.desc { (d) } }
                p.total {
                    span.muted { (t.total) " " }
                    strong #fiat-amount { (price(c)) " " (c.order.currency) }
                }
                @if let Some(no) = &c.order.order_no { p.muted.small { (t.order) " " (no) } }
            }
            @match c.screen {
                Screen::Choose => (chooser(c, choices, t, lang, choice_error)),
                Screen::Pay => (pay(c, t, lang)),
                Screen::Processing => (processing(c, t)),
                Screen::Paid => (paid(c, t)),
                Screen::Expired => (expired(c, t)),
                Screen::Closed => {
                    section.card.final role="status" {
                        h1 { (t.closed) }
                        p { (t.closed_text) }
                    }
                }
            }
        }
    }
}

fn chooser(
    c: &Checkout,
    choices: Option<&ChoiceGroups>,
    t: &Texts,
    lang: Lang,
    choice_error: bool,
) -> Markup {
    let groups = choices.map(|c| c.as_slice()).unwrap_or_default();
    if groups.iter().all(|(_, list)| list.is_empty()) {
        // Orders that cannot be paid are refused at creation; one whose shop lost its last
        // way to be paid since then says so instead of offering nothing.
        return html! {
            section.card #nothing-to-choose {
                h1 { (t.page_title) }
                p.error role="alert" { (t.nothing_to_choose) }
            }
        };
    }
    html! {
        section.card {
            h1 #choose-h { (t.choose_heading) }
            p.muted { (t.choose_hint) }
            @if choice_error { p.error role="alert" { (t.choice_unavailable) } }
            form method="post" aria-labelledby="choose-h" {
                input type="hidden" name="lang" value=(lang.tag());
                @for (chain, list) in groups {
                    fieldset.chain {
                        legend { (chain.name) }
                        @for choice in list {
                            @if let Some(amount) = &choice.amount {
                                button.choice type="submit" name="asset" value=(choice.asset.id.to_string())
                                    data-asset=(choice.asset.id.to_string()) {
                                    span.sym { (choice.asset.symbol()) }
                                    span.amt { (amount) " " (choice.asset.symbol()) }
                                }
                            } @else {
                                button.choice type="button" disabled {
                                    span.sym { (choice.asset.symbol()) }
                                    span.amt { (t.price_unavailable) }
                                }
                            }
                        }
                    }
                }
            }
            (countdown(c, t))
        }
    }
}

fn countdown(c: &Checkout, t: &Texts) -> Markup {
    let left = c.seconds_left();
    html! {
        p.timer {
            span.muted { (t.expires_in) " " }
            time #countdown data-expires=(c.order.expires_at.unix_timestamp()) {
                (format!("{}:{:02}", left / 60, left % 60))
            }
        }
    }
}

fn copy_button(value: &str, label: &str, t: &Texts) -> Markup {
    html! {
        button.copy type="button" hidden data-copy=(value) data-copied=(t.copied)
            aria-label={ (t.copy) ": " (label) } { (t.copy) }
    }
}

fn pay(c: &Checkout, t: &Texts, _lang: Lang) -> Markup {
    let Some(p) = &c.target else {
        return html! {};
    };
    let symbol = p.asset.symbol().as_str();
    let partial = !p.received_units.is_zero();
    let amount = if partial { &p.remaining } else { &p.amount_due };
    let status = if partial {
        fill(
            t.partial,
            &[
                ("{received}", &format!("{} {symbol}", p.received)),
                ("{remaining}", &format!("{} {symbol}", p.remaining)),
            ],
        )
    } else {
        t.waiting.to_owned()
    };
    let warning = fill(
        t.network_warning,
        &[("{asset}", symbol), ("{chain}", &p.chain.name)],
    );
    html! {
        section.card {
            p.status #live role="status" aria-live="polite" data-partial=[partial.then_some("1")] {
                span.spinner aria-hidden="true" {} (status)
            }
            div.field {
                h2.label #amount-l { (t.send_exactly) }
                div.value {
                    span.mono.big { span #pay-amount { (amount) } " " span #pay-symbol { (symbol) } }
                    (copy_button(amount, t.amount, t))
                }
                p.muted.small #rate {
                    (fill(t.rate, &[
                        ("{asset}", symbol),
                        ("{price}", &p.rate.price.get().normalize().to_string()),
                        ("{currency}", &c.order.currency),
                    ]))
                    " · " span.mono #rate-source { (p.rate.source) }
                }
            }
            div.field {
                h2.label #address-l { (t.to_address) }
                div.value {
                    span.mono.addr #pay-address { (p.address) }
                    (copy_button(&p.address, t.to_address, t))
                }
            }
            @if let Some(uri) = &p.uri {
                div.qrbox {
                    @if let Some(svg) = crate::qr::svg(uri, t.qr_label) { (PreEscaped(svg)) }
                }
                a.btn #open-wallet href=(uri) { (t.open_wallet) }
            }
            p.warn role="note" { span aria-hidden="true" { "⚠ " } (warning) }
            (countdown(c, t))
            @if !partial {
                form method="get" {
                    input type="hidden" name="choose" value="1";
                    button.link type="submit" { (t.change_asset) }
                }
            }
        }
    }
}

fn confirmations(c: &Checkout, t: &Texts) -> Markup {
    let Some(p) = &c.target else {
        return html! {};
    };
    let text = fill(
        t.confirmations,
        &[
            ("{n}", &p.confirmations.to_string()),
            ("{total}", &p.confirmations_required.to_string()),
        ],
    );
    html! {
        p #confirmations data-n=(p.confirmations) data-total=(p.confirmations_required) { (text) }
        progress max=(p.confirmations_required) value=(p.confirmations) aria-labelledby="confirmations" {}
    }
}

fn transactions(c: &Checkout, t: &Texts) -> Markup {
    html! {
        @if !c.transactions.is_empty() {
            ul.txs {
                @for tx in &c.transactions {
                    li {
                        span.mono.small { (tx.amount) }
                        " "
                        @if let Some(url) = &tx.url {
                            a.txlink href=(url) rel="noopener noreferrer" target="_blank" { (t.view_tx) }
                        } @else {
                            span.mono.small.addr { (tx.txid) }
                        }
                    }
                }
            }
        }
    }
}

fn processing(c: &Checkout, t: &Texts) -> Markup {
    html! {
        section.card {
            h1 #live role="status" aria-live="polite" { span.spinner aria-hidden="true" {} (t.processing) }
            (confirmations(c, t))
            (transactions(c, t))
            p.muted.small { (t.live_hint) }
        }
    }
}

fn paid(c: &Checkout, t: &Texts) -> Markup {
    html! {
        section.card.final.ok {
            div.check aria-hidden="true" { "✓" }
            h1 #live role="status" { (t.paid) }
            p { (t.paid_text) }
            (transactions(c, t))
            @if let Some(url) = &c.redirect {
                p.muted.small { (t.redirecting) }
                a.btn #return href=(url) { (t.return_to_shop) }
            }
        }
    }
}

fn expired(c: &Checkout, t: &Texts) -> Markup {
    html! {
        section.card.final {
            h1 #live role="status" { (t.expired) }
            p { (t.expired_text) }
            @if let Some(p) = c.target.as_ref().filter(|p| !p.received_units.is_zero()) {
                p.mono.small { (p.received) " " (p.asset.symbol()) }
            }
            (transactions(c, t))
            @if let Some(url) = &c.redirect {
                a.btn #return href=(url) { (t.return_to_shop) }
            }
        }
    }
}

/// The page for an unknown token (and any malformed one): the same for every miss.
pub fn not_found_page(lang: Lang, nonce: &str) -> String {
    let t = lang.texts();
    let body = html! {
        main #checkout data-screen="not_found" {
            section.card.final {
                h1 { (t.not_found) }
                p { (t.not_found_text) }
            }
        }
    };
    layout(
        lang,
        nonce,
        t.not_found,
        &Brand::default(),
        html! {},
        body,
        None,
    )
    .into_string()
}

/// A short page for a server-side failure (database unavailable): try again.
pub fn unavailable_page(lang: Lang, nonce: &str) -> String {
    let body = html! {
        main #checkout data-screen="unavailable" {
            section.card.final {
                h1 { "503" }
                p { "The payment service is temporarily unavailable. Please reload in a minute." }
            }
        }
    };
    let head = html! { noscript { meta http-equiv="refresh" content="30"; } };
    layout(lang, nonce, "503", &Brand::default(), head, body, None).into_string()
}
