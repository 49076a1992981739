//! Who is asking: the session cookie, the language, the CSRF token of every form; and the
//! pages outside a session (sign-in, the TOTP code, accepting an invitation or the setup
//! link) and signing out.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use coffer_checkout::i18n::Lang;
use coffer_checkout::web;
use coffer_core::MerchantId;
use coffer_engine::EngineError;
use coffer_engine::console::accounts::{OpenedSession, SignIn};
use coffer_engine::console::{ConsoleRole, ConsoleSessionRecord, ConsoleUserRecord};
use coffer_engine::logins::LoginRefusal;
use maud::{Markup, html};
use subtle::ConstantTimeEq;

use crate::Console;
use crate::form::Form;
use crate::i18n::{Texts, texts};
use crate::layout::{self, Section, Shell, ShopNav};

/// The session cookie over plain HTTP (a console on localhost or behind nothing).
pub const SESSION_COOKIE: &str = "coffer_console";
/// … and over HTTPS: `__Host-` makes the browser refuse it unless Secure, on `/`, hostonly.
pub const SESSION_COOKIE_SECURE: &str = "__Host-coffer_console";
/// The pre-session form token of the sign-in, code and invitation pages (double submit).
const FORM_COOKIE: &str = "coffer_console_form";
const FORM_COOKIE_SECURE: &str = "__Host-coffer_console_form";
/// The language chosen with the switcher.
const LANG_COOKIE: &str = "coffer_lang";

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn set_cookie(r: &mut Response, value: String) {
    if let Ok(v) = HeaderValue::from_str(&value) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
}

impl Console {
    fn session_cookie(&self) -> &'static str {
        if self.secure() {
            SESSION_COOKIE_SECURE
        } else {
            SESSION_COOKIE
        }
    }

    fn form_cookie(&self) -> &'static str {
        if self.secure() {
            FORM_COOKIE_SECURE
        } else {
            FORM_COOKIE
        }
    }

    fn cookie_attrs(&self) -> &'static str {
        if self.secure() {
            "; Path=/; HttpOnly; Secure"
        } else {
            "; Path=/; HttpOnly"
        }
    }

    /// Set the session cookie (a browser-session cookie; the server ends it when idle).
    fn start(&self, r: &mut Response, token: &str) {
        set_cookie(
            r,
            format!(
                "{}={token}{}; SameSite=Lax",
                self.session_cookie(),
                self.cookie_attrs()
            ),
        );
    }

    fn clear(&self, r: &mut Response) {
        set_cookie(
            r,
            format!(
                "{}={}; SameSite=Lax; Max-Age=0",
                self.session_cookie(),
                self.cookie_attrs()
            ),
        );
    }
}

/// The language: `?lang=`, else the switcher's cookie, else `Accept-Language`.
fn language(parts: &Parts) -> (Lang, bool) {
    let from_query = parts.uri.query().and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "lang")
            .and_then(|(_, v)| Lang::from_tag(&v))
    });
    if let Some(l) = from_query {
        return (l, true);
    }
    let lang = cookie(&parts.headers, LANG_COOKIE)
        .and_then(Lang::from_tag)
        .unwrap_or_else(|| web::language(None, &parts.headers));
    (lang, false)
}

/// Where a request comes from, for the session list and the audit log.
fn client(parts: &Parts) -> Option<String> {
    let ip = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string());
    let agent = parts
        .headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|a| a.chars().take(120).collect::<String>());
    match (ip, agent) {
        (None, None) => None,
        (ip, agent) => Some(
            [ip, agent]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" · "),
        ),
    }
}

/// A request outside a session (or before knowing it has one).
pub struct Visitor {
    pub c: Console,
    pub lang: Lang,
    pub t: &'static Texts,
    lang_chosen: bool,
    pub client: Option<String>,
    headers: HeaderMap,
    pub path_and_query: String,
}

impl FromRequestParts<Console> for Visitor {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, c: &Console) -> Result<Self, Response> {
        let (lang, lang_chosen) = language(parts);
        Ok(Visitor {
            c: c.clone(),
            lang,
            t: texts(lang),
            lang_chosen,
            client: client(parts),
            headers: parts.headers.clone(),
            path_and_query: parts
                .uri
                .path_and_query()
                .map_or_else(String::new, |p| p.as_str().to_owned()),
        })
    }
}

impl Visitor {
    fn session_token(&self) -> Option<&str> {
        cookie(&self.headers, self.c.session_cookie())
    }

    /// Remember the language the switcher chose.
    fn keep_lang(&self, r: &mut Response) {
        if self.lang_chosen {
            set_cookie(
                r,
                format!(
                    "{LANG_COOKIE}={}; Path=/console; SameSite=Lax; Max-Age=31536000",
                    self.lang.tag()
                ),
            );
        }
    }

    /// A page outside a session, with a fresh pre-session form token if it has forms.
    fn outside(
        &self,
        status: StatusCode,
        title: &str,
        body: impl FnOnce(&str) -> Markup,
    ) -> Response {
        let token = cookie(&self.headers, self.c.form_cookie())
            .filter(|v| v.len() == 52 && v.bytes().all(|b| b.is_ascii_alphanumeric()))
            .map(str::to_owned)
            .unwrap_or_else(|| coffer_core::ids::base32(&coffer_engine::random32()));
        let shell = Shell {
            lang: self.lang,
            title,
            section: Section::Outside,
            user: None,
            csrf: None,
            shop: None,
        };
        let mut r = layout::page(status, shell, body(&token));
        set_cookie(
            &mut r,
            format!(
                "{}={token}{}; SameSite=Strict",
                self.c.form_cookie(),
                self.c.cookie_attrs()
            ),
        );
        self.keep_lang(&mut r);
        r
    }

    /// The form carries the pre-session token its page set (double submit).
    fn check_form(&self, form: &Form) -> bool {
        match (
            cookie(&self.headers, self.c.form_cookie()),
            form.get("_csrf"),
        ) {
            (Some(a), Some(b)) => bool::from(a.as_bytes().ct_eq(b.as_bytes())),
            _ => false,
        }
    }
}

/// A signed-in request: the user, the session, the language.
pub struct Ctx {
    pub c: Console,
    pub lang: Lang,
    pub t: &'static Texts,
    lang_chosen: bool,
    pub user: ConsoleUserRecord,
    pub session: ConsoleSessionRecord,
    pub client: Option<String>,
    /// The query string, for notices (`?ok=…`).
    pub query: String,
}

impl FromRequestParts<Console> for Ctx {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, c: &Console) -> Result<Self, Response> {
        let v = Visitor::from_request_parts(parts, c).await?;
        let found = match v.session_token() {
            Some(token) => match c.engine().console_session(token).await {
                Ok(found) => found,
                Err(e) => return Err(unavailable(&v, &e)),
            },
            None => None,
        };
        let Some((session, user)) = found else {
            if parts.method == axum::http::Method::GET {
                let next = layout::enc(&v.path_and_query);
                return Err(see_other(&format!("/console/login?next={next}")));
            }
            return Err(v.outside(StatusCode::FORBIDDEN, v.t.session_ended, |_| {
                html! {
                    h1 { (v.t.session_ended) }
                    p { a href="/console/login" { (v.t.sign_in) } }
                }
            }));
        };
        Ok(Ctx {
            c: c.clone(),
            lang: v.lang,
            t: v.t,
            lang_chosen: v.lang_chosen,
            user,
            session,
            client: v.client,
            query: parts.uri.query().unwrap_or_default().to_owned(),
        })
    }
}

/// One of the merchant's pages: which merchant, and whether the user may change things.
pub struct Shop {
    pub id: MerchantId,
    pub name: String,
    pub write: bool,
}

impl Ctx {
    pub fn csrf(&self) -> &str {
        &self.session.csrf
    }

    /// Render a page of this session.
    pub fn page(
        &self,
        title: &str,
        section: Section,
        shop: Option<&Shop>,
        body: Markup,
    ) -> Response {
        self.page_with(StatusCode::OK, title, section, shop, body)
    }

    pub fn page_with(
        &self,
        status: StatusCode,
        title: &str,
        section: Section,
        shop: Option<&Shop>,
        body: Markup,
    ) -> Response {
        let shell = Shell {
            lang: self.lang,
            title,
            section,
            user: Some(&self.user),
            csrf: Some(self.csrf()),
            shop: shop.map(|s| ShopNav {
                id: &s.id,
                name: &s.name,
            }),
        };
        let mut r = layout::page(status, shell, body);
        if self.lang_chosen {
            set_cookie(
                &mut r,
                format!(
                    "{LANG_COOKIE}={}; Path=/console; SameSite=Lax; Max-Age=31536000",
                    self.lang.tag()
                ),
            );
        }
        r
    }

    /// A form must carry this session's CSRF token; otherwise nothing happens.
    pub fn check(&self, form: &Form) -> Result<(), Response> {
        let ok = form
            .get("_csrf")
            .is_some_and(|v| bool::from(v.as_bytes().ct_eq(self.session.csrf.as_bytes())));
        if ok {
            return Ok(());
        }
        tracing::warn!(user = %self.user.username, "console form without a valid CSRF token refused");
        Err(self.page_with(
            StatusCode::FORBIDDEN,
            self.t.form_expired,
            Section::Outside,
            None,
            html! {
                h1 { (self.t.form_expired) }
                p { (self.t.form_expired_text) }
                p { a href="/console" { (self.t.back) } }
            },
        ))
    }

    /// The merchant of a `/console/m/{m}/…` page, if the user may see it; otherwise the same
    /// 404 as for a merchant that does not exist.
    pub async fn shop(&self, raw: &str) -> Result<Shop, Response> {
        let Ok(id) = raw.parse::<MerchantId>() else {
            return Err(self.not_found());
        };
        let access = coffer_engine::console::access(&self.user, &id);
        if access == coffer_engine::console::Access::None {
            return Err(self.not_found());
        }
        match self.c.engine().merchant(&id).await {
            Ok(Some(m)) => Ok(Shop {
                id,
                name: m.name,
                write: access == coffer_engine::console::Access::Write,
            }),
            Ok(None) => Err(self.not_found()),
            Err(e) => Err(self.failed(&e)),
        }
    }

    /// [`Ctx::shop`] for a change: staff are refused (403).
    pub async fn shop_to_change(&self, raw: &str, form: &Form) -> Result<Shop, Response> {
        let shop = self.shop(raw).await?;
        self.check(form)?;
        if !shop.write {
            return Err(self.page_with(
                StatusCode::FORBIDDEN,
                self.t.read_only,
                Section::Outside,
                Some(&shop),
                html! { h1 { (self.t.read_only) } p { (self.t.read_only_text) } },
            ));
        }
        Ok(shop)
    }

    /// Operators only (others get a 404, as for a page that does not exist).
    pub fn operator(&self) -> Result<(), Response> {
        if self.user.role == ConsoleRole::Operator {
            Ok(())
        } else {
            Err(self.not_found())
        }
    }

    pub fn not_found(&self) -> Response {
        self.page_with(
            StatusCode::NOT_FOUND,
            self.t.not_found,
            Section::Outside,
            None,
            html! { h1 { (self.t.not_found) } p { a href="/console" { (self.t.back) } } },
        )
    }

    /// A server-side failure (the database is down): try again.
    pub fn failed(&self, e: &EngineError) -> Response {
        tracing::warn!(error = %e, "console page failed");
        self.page_with(
            StatusCode::SERVICE_UNAVAILABLE,
            self.t.unavailable,
            Section::Outside,
            None,
            html! { h1 { (self.t.unavailable) } p { (self.t.unavailable_text) } },
        )
    }

    /// Record a sensitive action in the audit log (after it happened).
    pub async fn audit(
        &self,
        merchant: Option<&MerchantId>,
        action: &str,
        subject: Option<&str>,
        detail: Option<String>,
    ) {
        if let Err(e) = self
            .c
            .engine()
            .console_audit(
                &self.user,
                merchant,
                action,
                subject,
                detail,
                self.client.clone(),
            )
            .await
        {
            tracing::error!(error = %e, action, "console audit entry not written");
        }
    }

    /// The notice a redirect asked for (`?ok=saved`).
    pub fn notice(&self) -> Markup {
        let code = url::form_urlencoded::parse(self.query.as_bytes())
            .find(|(k, _)| k == "ok")
            .map(|(_, v)| v.into_owned());
        match code {
            Some(code) => layout::ok(self.t.ok_message(&code)),
            None => html! {},
        }
    }

    /// A query parameter (`None` when missing or empty).
    pub fn param(&self, name: &str) -> Option<String> {
        url::form_urlencoded::parse(self.query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }
}

/// 303 to `to` (a path of this console).
pub fn see_other(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn unavailable(v: &Visitor, e: &EngineError) -> Response {
    tracing::warn!(error = %e, "console page failed");
    v.outside(StatusCode::SERVICE_UNAVAILABLE, v.t.unavailable, |_| {
        html! { h1 { (v.t.unavailable) } p { (v.t.unavailable_text) } }
    })
}

/// Where a user lands: operators on the server's overview, others on their merchant.
fn home_of(user: &ConsoleUserRecord) -> String {
    match &user.merchant_id {
        Some(m) if user.role != ConsoleRole::Operator => format!("/console/m/{m}"),
        _ => "/console/op".to_owned(),
    }
}

/// A `next` that stays in the console (no open redirect).
fn safe_next(next: Option<&str>) -> Option<String> {
    next.filter(|n| {
        n.starts_with("/console")
            && !n.starts_with("//")
            && !n.contains('\\')
            && !n.contains("://")
            && n.bytes().all(|b| b.is_ascii_graphic())
    })
    .map(str::to_owned)
}

pub async fn home(v: Visitor) -> Response {
    let found = match v.session_token() {
        Some(t) => match v.c.engine().console_session(t).await {
            Ok(found) => found,
            Err(e) => return unavailable(&v, &e),
        },
        None => None,
    };
    match found {
        Some((_, user)) => see_other(&home_of(&user)),
        None => see_other("/console/login"),
    }
}

#[derive(serde::Deserialize, Default)]
pub struct NextQuery {
    next: Option<String>,
    token: Option<String>,
}

fn login_form(v: &Visitor, token: &str, next: Option<&str>, message: Option<Markup>) -> Markup {
    let t = v.t;
    html! {
        h1 { (t.sign_in) }
        @if let Some(m) = message { (m) }
        form method="post" action="/console/login" {
            input type="hidden" name="_csrf" value=(token);
            @if let Some(n) = next { input type="hidden" name="next" value=(n); }
            label for="username" { (t.username) }
            input #username type="text" name="username" autocomplete="username" required autofocus;
            label for="password" { (t.password) }
            input #password type="password" name="password" autocomplete="current-password" required;
            p { button type="submit" { (t.sign_in) } }
        }
    }
}

pub async fn login_page(v: Visitor, Query(q): Query<NextQuery>) -> Response {
    if let Some(t) = v.session_token()
        && let Ok(Some((_, user))) = v.c.engine().console_session(t).await
    {
        return see_other(&home_of(&user));
    }
    let setup = match v.c.engine().console_needs_setup().await {
        Ok(s) => s,
        Err(e) => return unavailable(&v, &e),
    };
    let next = safe_next(q.next.as_deref());
    v.outside(StatusCode::OK, v.t.sign_in, |token| {
        let notice = setup.then(|| {
            html! {
                div.warn role="note" {
                    p { strong { (v.t.setup_needed) } }
                    p { (v.t.setup_needed_text) }
                    p { code { "coffer console setup-link" } }
                }
            }
        });
        login_form(&v, token, next.as_deref(), notice)
    })
}

pub async fn login(v: Visitor, body: axum::body::Bytes) -> Response {
    let form = Form::urlencoded(&body);
    let next = safe_next(form.get("next"));
    let again = |status: StatusCode, message: &str| {
        v.outside(status, v.t.sign_in, |token| {
            login_form(&v, token, next.as_deref(), Some(layout::error(message)))
        })
    };
    if !v.check_form(&form) {
        return again(StatusCode::FORBIDDEN, v.t.form_expired_text);
    }
    let username = form.get("username").unwrap_or_default();
    let result =
        v.c.engine()
            .console_sign_in(
                &v.c.inner.throttle,
                username,
                form.raw("password"),
                v.client.clone(),
            )
            .await;
    match result {
        Err(e) => unavailable(&v, &e),
        Ok(SignIn::Refused(r)) => refused(&v, r, &again),
        Ok(SignIn::Wrong) => {
            tracing::info!(username, "console sign-in: wrong username or password");
            again(StatusCode::UNAUTHORIZED, v.t.wrong_login)
        }
        Ok(SignIn::Disabled) => again(StatusCode::FORBIDDEN, v.t.account_disabled),
        Ok(SignIn::SecondFactor(half)) => {
            let to = match &next {
                Some(n) => format!("/console/login/code?next={}", layout::enc(n)),
                None => "/console/login/code".to_owned(),
            };
            let mut r = see_other(&to);
            v.c.start(&mut r, &half.token);
            r
        }
        Ok(SignIn::Signed(s)) => signed_in(&v, s, next).await,
    }
}

fn refused(v: &Visitor, r: LoginRefusal, again: &dyn Fn(StatusCode, &str) -> Response) -> Response {
    match r {
        LoginRefusal::Locked { retry_after_secs } => {
            let minutes = retry_after_secs.div_ceil(60).to_string();
            let mut resp = again(
                StatusCode::TOO_MANY_REQUESTS,
                &v.t.locked.replace("{minutes}", &minutes),
            );
            if let Ok(h) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, h);
            }
            resp
        }
        LoginRefusal::Busy => again(StatusCode::SERVICE_UNAVAILABLE, v.t.busy),
    }
}

async fn signed_in(v: &Visitor, s: OpenedSession, next: Option<String>) -> Response {
    if let Err(e) =
        v.c.engine()
            .console_audit(
                &s.user,
                s.user.merchant_id.as_ref(),
                "session.signed_in",
                None,
                None,
                v.client.clone(),
            )
            .await
    {
        tracing::error!(error = %e, "console audit entry not written");
    }
    let to = next.unwrap_or_else(|| home_of(&s.user));
    let mut r = see_other(&to);
    v.c.start(&mut r, &s.token);
    r
}

fn code_form(v: &Visitor, token: &str, next: Option<&str>, message: Option<Markup>) -> Markup {
    let t = v.t;
    html! {
        h1 { (t.two_step) }
        @if let Some(m) = message { (m) }
        p { (t.code_hint) }
        form method="post" action="/console/login/code" {
            input type="hidden" name="_csrf" value=(token);
            @if let Some(n) = next { input type="hidden" name="next" value=(n); }
            label for="code" { (t.code) }
            input #code type="text" name="code" inputmode="numeric" autocomplete="one-time-code"
                pattern="[0-9 ]{6,7}" maxlength="7" required autofocus;
            p { button type="submit" { (t.verify) } }
        }
        p.small { a href="/console/login" { (t.start_over) } }
    }
}

pub async fn code_page(v: Visitor, Query(q): Query<NextQuery>) -> Response {
    let half = match v.session_token() {
        Some(t) => v.c.engine().console_half_session(t).await,
        None => Ok(None),
    };
    match half {
        Err(e) => unavailable(&v, &e),
        Ok(None) => see_other("/console/login"),
        Ok(Some(_)) => {
            let next = safe_next(q.next.as_deref());
            v.outside(StatusCode::OK, v.t.two_step, |token| {
                code_form(&v, token, next.as_deref(), None)
            })
        }
    }
}

pub async fn code(v: Visitor, body: axum::body::Bytes) -> Response {
    let form = Form::urlencoded(&body);
    let next = safe_next(form.get("next"));
    let again = |status: StatusCode, message: &str| {
        v.outside(status, v.t.two_step, |token| {
            code_form(&v, token, next.as_deref(), Some(layout::error(message)))
        })
    };
    if !v.check_form(&form) {
        return again(StatusCode::FORBIDDEN, v.t.form_expired_text);
    }
    let Some(half) = v.session_token() else {
        return see_other("/console/login");
    };
    let result =
        v.c.engine()
            .console_second_factor(
                &v.c.inner.throttle,
                &v.c.inner.master,
                half,
                form.raw("code"),
                v.client.clone(),
            )
            .await;
    match result {
        Err(e) => unavailable(&v, &e),
        Ok(SignIn::Refused(r)) => refused(&v, r, &again),
        Ok(SignIn::Wrong | SignIn::SecondFactor(_)) => {
            again(StatusCode::UNAUTHORIZED, v.t.wrong_code)
        }
        Ok(SignIn::Disabled) => again(StatusCode::FORBIDDEN, v.t.account_disabled),
        Ok(SignIn::Signed(s)) => signed_in(&v, s, next).await,
    }
}

fn join_form(
    v: &Visitor,
    token: &str,
    invite: &str,
    what: &str,
    message: Option<Markup>,
) -> Markup {
    let t = v.t;
    html! {
        h1 { (t.join_title) }
        p { (what) }
        @if let Some(m) = message { (m) }
        form method="post" action="/console/join" {
            input type="hidden" name="_csrf" value=(token);
            input type="hidden" name="token" value=(invite);
            label for="username" { (t.choose_username) }
            input #username type="text" name="username" autocomplete="username" required
                minlength="3" maxlength="64" autofocus;
            p.small.muted { (t.username_rule) }
            label for="password" { (t.choose_password) }
            input #password type="password" name="password" autocomplete="new-password" required minlength="12";
            label for="password2" { (t.repeat_password) }
            input #password2 type="password" name="password2" autocomplete="new-password" required minlength="12";
            p.small.muted { (t.password_rule) }
            p { button type="submit" { (t.create_account) } }
        }
    }
}

/// What an invitation offers, in words.
async fn invitation_text(
    v: &Visitor,
    invite: &coffer_engine::console::ConsoleInviteRecord,
) -> Result<String, EngineError> {
    let merchant = match &invite.merchant_id {
        Some(m) => v.c.engine().merchant(m).await?.map(|m| m.name),
        None => None,
    };
    let role = v.t.word(invite.role.as_str());
    Ok(match merchant {
        Some(name) => {
            v.t.invited_to
                .replace("{role}", role)
                .replace("{merchant}", &name)
        }
        None if invite.created_by.is_none() => v.t.setup_text.to_owned(),
        None => v.t.invited_operator.to_owned(),
    })
}

fn invalid_link(v: &Visitor) -> Response {
    v.outside(StatusCode::NOT_FOUND, v.t.link_invalid, |_| {
        html! { h1 { (v.t.link_invalid) } p { (v.t.link_invalid_text) } }
    })
}

pub async fn join_page(v: Visitor, Query(q): Query<NextQuery>) -> Response {
    let token = q.token.unwrap_or_default();
    let invite = match v.c.engine().console_invitation(&token).await {
        Ok(Some(i)) => i,
        Ok(None) => return invalid_link(&v),
        Err(e) => return unavailable(&v, &e),
    };
    let what = match invitation_text(&v, &invite).await {
        Ok(w) => w,
        Err(e) => return unavailable(&v, &e),
    };
    v.outside(StatusCode::OK, v.t.join_title, |form_token| {
        join_form(&v, form_token, &token, &what, None)
    })
}

pub async fn join(v: Visitor, body: axum::body::Bytes) -> Response {
    let form = Form::urlencoded(&body);
    let token = form.get("token").unwrap_or_default().to_owned();
    let invite = match v.c.engine().console_invitation(&token).await {
        Ok(Some(i)) => i,
        Ok(None) => return invalid_link(&v),
        Err(e) => return unavailable(&v, &e),
    };
    let what = match invitation_text(&v, &invite).await {
        Ok(w) => w,
        Err(e) => return unavailable(&v, &e),
    };
    let again = |status: StatusCode, message: &str| {
        v.outside(status, v.t.join_title, |form_token| {
            join_form(&v, form_token, &token, &what, Some(layout::error(message)))
        })
    };
    if !v.check_form(&form) {
        return again(StatusCode::FORBIDDEN, v.t.form_expired_text);
    }
    if form.raw("password") != form.raw("password2") {
        return again(StatusCode::BAD_REQUEST, v.t.passwords_differ);
    }
    let accepted =
        v.c.engine()
            .accept_console_invitation(
                &token,
                form.get("username").unwrap_or_default(),
                form.raw("password"),
                v.client.clone(),
            )
            .await;
    match accepted {
        Ok(s) => {
            let action = if invite.created_by.is_none() {
                "console.setup"
            } else {
                "user.joined"
            };
            if let Err(e) =
                v.c.engine()
                    .console_audit(
                        &s.user,
                        s.user.merchant_id.as_ref(),
                        action,
                        Some(&s.user.id),
                        Some(format!("{} ({})", s.user.username, s.user.role)),
                        v.client.clone(),
                    )
                    .await
            {
                tracing::error!(error = %e, "console audit entry not written");
            }
            let mut r = see_other(&home_of(&s.user));
            v.c.start(&mut r, &s.token);
            r
        }
        Err(EngineError::NotFound(_)) => invalid_link(&v),
        Err(e @ (EngineError::Invalid { .. } | EngineError::Conflict { .. })) => {
            again(StatusCode::BAD_REQUEST, &e.to_string())
        }
        Err(e) => unavailable(&v, &e),
    }
}

pub async fn logout(ctx: Ctx, body: axum::body::Bytes) -> Response {
    let form = Form::urlencoded(&body);
    if let Err(r) = ctx.check(&form) {
        return r;
    }
    let token_hash = ctx.session.token_hash.clone();
    if let Err(e) = ctx.c.engine().console_sign_out_hash(&token_hash).await {
        return ctx.failed(&e);
    }
    let mut r = see_other("/console/login");
    ctx.c.clear(&mut r);
    r
}

pub async fn logout_everywhere(ctx: Ctx, body: axum::body::Bytes) -> Response {
    let form = Form::urlencoded(&body);
    if let Err(r) = ctx.check(&form) {
        return r;
    }
    match ctx
        .c
        .engine()
        .console_sign_out_everywhere(&ctx.user.id)
        .await
    {
        Ok(n) => {
            ctx.audit(
                ctx.user.merchant_id.as_ref(),
                "session.signed_out_everywhere",
                Some(&ctx.user.id),
                Some(format!("{n} sessions")),
            )
            .await;
            let mut r = see_other("/console/login");
            ctx.c.clear(&mut r);
            r
        }
        Err(e) => ctx.failed(&e),
    }
}

/// Anything else under `/console`.
pub async fn not_found(State(c): State<Console>, v: Visitor) -> Response {
    let _ = c;
    v.outside(StatusCode::NOT_FOUND, v.t.not_found, |_| {
        html! { h1 { (v.t.not_found) } p { a href="/console" { (v.t.back) } } }
    })
}
