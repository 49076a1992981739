//! The page shell (header, sections, language switcher, inline stylesheet and script under
//! the response's nonce) and the small pieces every page is made of.

use axum::http::StatusCode;
use axum::response::Response;
use coffer_checkout::i18n::Lang;
use coffer_checkout::web;
use coffer_core::{Asset, AssetId, BaseUnits, MerchantId};
use coffer_engine::Engine;
use coffer_engine::console::{ConsoleRole, ConsoleUserRecord};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use time::OffsetDateTime;

use crate::i18n::{Texts, texts};

const CSS: &str = include_str!("console.css");
const JS: &str = include_str!("console.js");

/// Where in the console a page is: which navigation it shows and which entry is current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Dashboard,
    Orders,
    Payouts,
    Deposits,
    Keys,
    Webhooks,
    Wallets,
    Settings,
    Team,
    Audit,
    OpOverview,
    OpMerchants,
    OpChains,
    OpRates,
    OpWebhooks,
    OpUsers,
    OpAudit,
    Account,
    /// Sign-in, setup and other pages outside a session.
    Outside,
}

/// A merchant's pages: its id and name.
pub struct ShopNav<'a> {
    pub id: &'a MerchantId,
    pub name: &'a str,
}

/// What the shell needs to draw a page.
pub struct Shell<'a> {
    pub lang: Lang,
    pub title: &'a str,
    pub section: Section,
    pub user: Option<&'a ConsoleUserRecord>,
    /// The session's CSRF token (for the sign-out form).
    pub csrf: Option<&'a str>,
    pub shop: Option<ShopNav<'a>>,
}

/// Render a page with the console's security headers.
pub fn page(status: StatusCode, shell: Shell<'_>, body: Markup) -> Response {
    let nonce = web::nonce();
    let t = texts(shell.lang);
    let title = format!("{} · Coffer", shell.title);
    let narrow = shell.section == Section::Outside;
    let markup = html! {
        (DOCTYPE)
        html lang=(shell.lang.tag()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                meta name="color-scheme" content="light dark";
                meta name="robots" content="noindex";
                link rel="icon" href="data:,";
                title { (title) }
                style nonce=(nonce) { (PreEscaped(CSS)) }
            }
            body {
                a.skip href="#main" { (t.skip_to_content) }
                header.top {
                    div.bar {
                        a.brand href="/console" { "Coffer" }
                        @if let Some(shop) = &shell.shop { span { (shop.name) } }
                        @if let Some(user) = shell.user {
                            div.who {
                                @if user.role == ConsoleRole::Operator && shell.shop.is_some() {
                                    a href="/console/op" { (t.operator) }
                                }
                                a href="/console/account" aria-current=[(shell.section == Section::Account).then_some("page")] {
                                    (user.username)
                                }
                                @if let Some(csrf) = shell.csrf {
                                    form.inline method="post" action="/console/logout" {
                                        (csrf_field(csrf))
                                        button.link type="submit" { (t.sign_out) }
                                    }
                                }
                            }
                        }
                    }
                }
                (sections(&shell, t))
                main #main .narrow[narrow] {
                    (body)
                }
                nav.langs aria-label=(t.language) {
                    @for l in Lang::ALL {
                        a href={ "?lang=" (l.tag()) } hreflang=(l.tag()) lang=(l.tag())
                            aria-current=[(l == shell.lang).then_some("true")] { (l.native_name()) }
                    }
                }
                script nonce=(nonce) { (PreEscaped(JS)) }
            }
        }
    };
    web::html(status, markup.into_string(), &nonce, shell.lang)
}

fn sections(shell: &Shell<'_>, t: &Texts) -> Markup {
    let current = |s: Section| (shell.section == s).then_some("page");
    if let Some(shop) = &shell.shop {
        let base = format!("/console/m/{}", shop.id);
        let items = [
            ("", t.dashboard, Section::Dashboard),
            ("/orders", t.orders, Section::Orders),
            ("/payouts", t.payouts, Section::Payouts),
            ("/deposits", t.deposits, Section::Deposits),
            ("/keys", t.keys, Section::Keys),
            ("/webhooks", t.webhooks, Section::Webhooks),
            ("/wallets", t.wallets, Section::Wallets),
            ("/settings", t.settings, Section::Settings),
            ("/team", t.team, Section::Team),
            ("/audit", t.audit_log, Section::Audit),
        ];
        return html! {
            nav.sections aria-label=(t.sections) {
                ul { @for (path, label, s) in items {
                    li { a href={ (base) (path) } aria-current=[current(s)] { (label) } }
                } }
            }
        };
    }
    let operator = shell.user.is_some_and(|u| u.role == ConsoleRole::Operator);
    if !operator || shell.section == Section::Outside {
        return html! {};
    }
    let items = [
        ("/console/op", t.overview, Section::OpOverview),
        ("/console/op/merchants", t.merchants, Section::OpMerchants),
        ("/console/op/chains", t.chains, Section::OpChains),
        ("/console/op/rates", t.rates, Section::OpRates),
        ("/console/op/webhooks", t.webhooks, Section::OpWebhooks),
        ("/console/op/users", t.operators, Section::OpUsers),
        ("/console/op/audit", t.audit_log, Section::OpAudit),
    ];
    html! {
        nav.sections aria-label=(t.sections) {
            ul { @for (href, label, s) in items {
                li { a href=(href) aria-current=[current(s)] { (label) } }
            } }
        }
    }
}

/// The hidden field every form carries.
pub fn csrf_field(token: &str) -> Markup {
    html! { input type="hidden" name="_csrf" value=(token); }
}

/// A form of one button posting to `action` with `fields` (name, value).
pub fn post_button(
    action: &str,
    csrf: &str,
    fields: &[(&str, &str)],
    label: &str,
    class: Option<&str>,
) -> Markup {
    html! {
        form.inline method="post" action=(action) {
            (csrf_field(csrf))
            @for (name, value) in fields { input type="hidden" name=(name) value=(value); }
            button type="submit" class=[class] { (label) }
        }
    }
}

/// A destructive action behind a disclosure: the first click opens it, the second acts.
pub fn confirm_button(action: &str, csrf: &str, opener: &str, label: &str) -> Markup {
    html! {
        details {
            summary { (opener) }
            (post_button(action, csrf, &[], label, Some("danger")))
        }
    }
}

pub fn ok(message: &str) -> Markup {
    html! { p.ok role="status" { (message) } }
}

pub fn error(message: &str) -> Markup {
    html! { p.error role="alert" { (message) } }
}

pub fn warn(message: &str) -> Markup {
    html! { p.warn role="note" { (message) } }
}

/// A value shown once (a new key, secret or link), with a copy button when JavaScript runs.
pub fn secret(label: &str, value: &str, t: &Texts) -> Markup {
    html! {
        div.secret {
            strong { (label) ": " }
            code data-secret=(label) { (value) }
            button.copy.quiet type="button" hidden data-copy=(value) data-copied=(t.copied)
                aria-label={ (t.copy) ": " (label) } { (t.copy) }
        }
    }
}

/// `2026-11-22 17:40 UTC`, machine-readable in `datetime`.
pub fn when(t: OffsetDateTime) -> Markup {
    let utc = t.to_offset(time::UtcOffset::UTC);
    let text = format!(
        "{:04}-{:02}-{:02} {:02}:{:02}",
        utc.year(),
        u8::from(utc.month()),
        utc.day(),
        utc.hour(),
        utc.minute()
    );
    html! { time datetime=(coffer_engine::view::rfc3339(utc)) { (text) " UTC" } }
}

pub fn opt_when(t: Option<OffsetDateTime>) -> Markup {
    match t {
        Some(t) => when(t),
        None => html! { "—" },
    }
}

/// A status word as a coloured badge (`b-settled`, …), translated.
pub fn badge(word: &str, t: &Texts) -> Markup {
    html! { span class={ "badge b-" (word) } { (t.word(word)) } }
}

/// An amount of an asset in its units (`12.5 USDT`), or base units if the asset is unknown.
pub fn amount(engine: &Engine, asset: &AssetId, units: BaseUnits) -> String {
    match engine.assets().asset(asset) {
        Some(a) => format!("{} {}", units.format(a.decimals), a.symbol()),
        None => format!("{units} ({asset})"),
    }
}

/// The asset's symbol and chain (`USDT · bsc`).
pub fn asset_label(a: &Asset) -> String {
    format!("{} · {}", a.symbol(), a.id.chain())
}

/// A `Next page` link when a list has more.
pub fn pager(next: Option<String>, first: Option<String>, t: &Texts) -> Markup {
    html! {
        @if next.is_some() || first.is_some() {
            nav.pager aria-label=(t.pages) {
                @if let Some(f) = first { a href=(f) { "« " (t.first_page) } }
                @if let Some(n) = next { a href=(n) rel="next" { (t.next_page) " »" } }
            }
        }
    }
}

/// A table wrapped so that it scrolls sideways on a phone instead of the page.
pub fn table(caption: Option<&str>, head: &[&str], rows: Markup) -> Markup {
    html! {
        div.scroll {
            table {
                @if let Some(c) = caption { caption { (c) } }
                thead { tr { @for h in head { th scope="col" { (h) } } } }
                tbody { (rows) }
            }
        }
    }
}

/// A query string value, URL-encoded.
pub fn enc(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}
