//! Installing the app into any workspace (OAuth v2), as Bolt does:
//! `/slack/install` sends the browser to Slack's authorize page with a
//! `state` that is random, signed, single-use, good for 10 minutes and
//! bound to the browser by a cookie; `/slack/oauth_redirect` checks all of
//! that, exchanges the code (`oauth.v2.access`) and keeps the installation.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::Value;
use sha2::Sha256;
use storytime_pipeline::now_ms;
use storytime_pipeline::settings::Secret;
use subtle::ConstantTimeEq;
use url::Url;

use super::SlackApp;
use super::api::{SlackApi, SlackError};
use super::installs::Installation;
use super::manifest::{INSTALL_PATH, REDIRECT_PATH};

/// How long an install link's state is good for.
const STATE_TTL: Duration = Duration::from_secs(600);
/// The cookie that binds a state to the browser that asked for it.
const STATE_COOKIE: &str = "storytime_slack_state";

/// The app's OAuth credentials and where Slack sends the browser back.
#[derive(Clone)]
pub struct OAuthClient {
    client_id: String,
    client_secret: Secret,
    /// `https://slack.com/oauth/v2/authorize`, or on the host of
    /// `SLACK_API_URL` when that is set.
    authorize_url: String,
    /// `<public URL>/slack/oauth_redirect`.
    redirect_uri: String,
    /// Whether the cookie may only travel over HTTPS.
    secure_cookie: bool,
    /// The bot scopes asked for.
    scopes: String,
}

impl OAuthClient {
    pub fn new(client_id: &str, client_secret: &Secret, api_url: &str, public_url: &str, scopes: &[&str]) -> Self {
        let base = api_url.trim_end_matches('/');
        let base = base.strip_suffix("/api").unwrap_or(base);
        Self {
            client_id: client_id.to_owned(),
            client_secret: client_secret.clone(),
            authorize_url: format!("{base}/oauth/v2/authorize"),
            redirect_uri: format!("{}{REDIRECT_PATH}", public_url.trim_end_matches('/')),
            secure_cookie: public_url.starts_with("https://"),
            scopes: scopes.join(","),
        }
    }

    fn mac(&self) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.client_secret.expose().as_bytes())
            .expect("HMAC takes any key length");
        mac.update(b"storytime oauth state\0");
        mac
    }

    /// A new state and the nonce its cookie carries.
    fn new_state(&self) -> Result<(String, String), getrandom::Error> {
        let mut nonce = [0u8; 16];
        getrandom::fill(&mut nonce)?;
        let nonce = hex::encode(nonce);
        let expires = now_ms() / 1000 + STATE_TTL.as_secs() as i64;
        let body = format!("{nonce}.{expires}");
        let mut mac = self.mac();
        mac.update(body.as_bytes());
        Ok((format!("{body}.{}", hex::encode(mac.finalize().into_bytes())), nonce))
    }

    /// The nonce of a state this app made, unexpired, whose cookie the
    /// browser sent back.
    fn check_state(&self, state: &str, cookie: Option<&str>) -> Result<String, StateError> {
        let mut parts = state.splitn(3, '.');
        let (Some(nonce), Some(expires), Some(sig)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(StateError::Forged);
        };
        let mut mac = self.mac();
        mac.update(format!("{nonce}.{expires}").as_bytes());
        let sig = hex::decode(sig).map_err(|_| StateError::Forged)?;
        mac.verify_slice(&sig).map_err(|_| StateError::Forged)?;
        let expires: i64 = expires.parse().map_err(|_| StateError::Forged)?;
        if now_ms() / 1000 > expires {
            return Err(StateError::Expired);
        }
        match cookie {
            Some(c) if bool::from(c.as_bytes().ct_eq(nonce.as_bytes())) => Ok(nonce.to_owned()),
            _ => Err(StateError::OtherBrowser),
        }
    }

    fn authorize(&self, state: &str) -> String {
        let mut url = Url::parse(&self.authorize_url).expect("SLACK_API_URL is a URL");
        url.query_pairs_mut()
            .append_pair("client_id", &self.client_id)
            .append_pair("scope", &self.scopes)
            .append_pair("user_scope", "")
            .append_pair("redirect_uri", &self.redirect_uri)
            .append_pair("state", state);
        url.into()
    }

    fn cookie(&self, value: &str, max_age: u64) -> String {
        let secure = if self.secure_cookie { "; Secure" } else { "" };
        format!("{STATE_COOKIE}={value}; Path=/slack; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}")
    }

    /// Exchanges an authorization code for the workspace's installation.
    async fn exchange(&self, api: &SlackApi, code: &str) -> Result<Installation, SlackError> {
        let answer = api
            .oauth_access(&[
                ("client_id", &self.client_id),
                ("client_secret", self.client_secret.expose()),
                ("code", code),
                ("redirect_uri", &self.redirect_uri),
            ])
            .await?;
        installation(&answer, None)
    }

    /// A new bot token for a rotating one.
    pub async fn refresh(
        &self,
        api: &SlackApi,
        refresh_token: &str,
        old: &Installation,
    ) -> Result<Installation, SlackError> {
        let answer = api
            .oauth_access(&[
                ("client_id", &self.client_id),
                ("client_secret", self.client_secret.expose()),
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ])
            .await?;
        installation(&answer, Some(old))
    }
}

/// An installation from an `oauth.v2.access` answer; a refresh answer
/// carries only the token, so the rest comes from the installation it
/// renews.
fn installation(a: &Value, old: Option<&Installation>) -> Result<Installation, SlackError> {
    let text = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_owned);
    let unexpected = |detail: &str| SlackError::Unexpected { method: "oauth.v2.access", detail: detail.into() };
    let bot_token = text(&a["access_token"]).ok_or_else(|| unexpected("no access token"))?;
    if !bot_token.starts_with("xoxb-") && !bot_token.starts_with("xoxe.xoxb-") {
        return Err(unexpected("not a bot token"));
    }
    let enterprise = text(&a["enterprise"]["id"]).or_else(|| old.and_then(|o| o.enterprise.clone()));
    // An organisation-wide install has no team: it speaks for the
    // organisation's workspaces under its enterprise ID.
    let team = text(&a["team"]["id"])
        .filter(|_| a["is_enterprise_install"] != true)
        .or_else(|| enterprise.clone())
        .or_else(|| old.map(|o| o.team.clone()))
        .ok_or_else(|| unexpected("no team"))?;
    let now = now_ms();
    Ok(Installation {
        team,
        team_name: text(&a["team"]["name"]).or_else(|| old.map(|o| o.team_name.clone())).unwrap_or_default(),
        enterprise,
        bot_token,
        bot_user: text(&a["bot_user_id"]).or_else(|| old.map(|o| o.bot_user.clone())).unwrap_or_default(),
        scopes: text(&a["scope"]).or_else(|| old.map(|o| o.scopes.clone())).unwrap_or_default(),
        installer: text(&a["authed_user"]["id"]).or_else(|| old.map(|o| o.installer.clone())).unwrap_or_default(),
        app_id: text(&a["app_id"]).or_else(|| old.map(|o| o.app_id.clone())).unwrap_or_default(),
        refresh_token: text(&a["refresh_token"]).or_else(|| old.and_then(|o| o.refresh_token.clone())),
        expires_ms: a["expires_in"].as_i64().map(|s| now + s * 1000),
        installed_ms: old.map_or(now, |o| o.installed_ms),
    })
}

#[derive(Debug, PartialEq, Eq)]
enum StateError {
    Forged,
    Expired,
    OtherBrowser,
}

/// `GET /slack/install`: off to Slack's authorize page.
pub async fn install(State(app): State<Arc<SlackApp>>) -> Response {
    let Some(oauth) = app.workspaces.oauth() else {
        return page(
            StatusCode::NOT_FOUND,
            "Installing is not set up",
            "This Storytime is set up for one workspace. Its operator can make it installable by setting \
             SLACK_CLIENT_ID and SLACK_CLIENT_SECRET.",
        );
    };
    let Ok((state, nonce)) = oauth.new_state() else {
        return page(StatusCode::SERVICE_UNAVAILABLE, "Try again", "Storytime could not start the install.");
    };
    let mut response = StatusCode::FOUND.into_response();
    let headers = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(&oauth.authorize(&state)) {
        headers.insert(header::LOCATION, location);
    }
    if let Ok(cookie) = HeaderValue::from_str(&oauth.cookie(&nonce, STATE_TTL.as_secs())) {
        headers.insert(header::SET_COOKIE, cookie);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[derive(Deserialize)]
pub struct Redirect {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// `GET /slack/oauth_redirect`: Slack sends the browser back here.
pub async fn redirect(State(app): State<Arc<SlackApp>>, headers: HeaderMap, Query(q): Query<Redirect>) -> Response {
    let Some(oauth) = app.workspaces.oauth() else {
        return page(StatusCode::NOT_FOUND, "Installing is not set up", "This Storytime is set up for one workspace.");
    };
    let answer = finish(&app, oauth, &headers, q).await;
    let mut response = match answer {
        Ok(installation) => {
            tracing::info!(team = %installation.team, installer = %installation.installer, "Storytime installed");
            let name = if installation.team_name.is_empty() { "your workspace" } else { &installation.team_name };
            success(name, &installation.team, &installation.app_id)
        }
        Err((status, title, detail)) => page(status, title, &detail),
    };
    // The state is spent either way.
    if let Ok(cookie) = HeaderValue::from_str(&oauth.cookie("", 0)) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

type Refusal = (StatusCode, &'static str, String);

async fn finish(
    app: &SlackApp,
    oauth: &OAuthClient,
    headers: &HeaderMap,
    q: Redirect,
) -> Result<Installation, Refusal> {
    let again = format!("Start again from {INSTALL_PATH}.");
    if let Some(error) = q.error {
        let detail = match error.as_str() {
            "access_denied" => "The install was cancelled in Slack, so nothing was installed.".to_owned(),
            _ => format!("Slack did not install the app ({}). {again}", html_escape(&error)),
        };
        return Err((StatusCode::FORBIDDEN, "Not installed", detail));
    }
    let (Some(code), Some(state)) = (q.code, q.state) else {
        return Err((StatusCode::BAD_REQUEST, "Not installed", format!("This link is incomplete. {again}")));
    };
    let nonce = oauth.check_state(&state, cookie(headers, STATE_COOKIE)).map_err(|e| {
        let detail = match e {
            StateError::Forged => "This install link was not made by this Storytime.",
            StateError::Expired => "This install link has expired (links last 10 minutes).",
            StateError::OtherBrowser => "This install was started in another browser, or its cookie was blocked.",
        };
        (StatusCode::BAD_REQUEST, "Not installed", format!("{detail} {again}"))
    })?;
    let first = app.pipeline.jobs.claim(&format!("slack-oauth-state:{nonce}")).await.map_err(|e| {
        tracing::error!(error = %e, "could not record an install state");
        (StatusCode::SERVICE_UNAVAILABLE, "Try again", "Storytime could not finish the install.".to_owned())
    })?;
    if !first {
        return Err((StatusCode::BAD_REQUEST, "Not installed", format!("This install link was already used. {again}")));
    }
    let installation = oauth.exchange(app.workspaces.bare(), &code).await.map_err(|e| {
        tracing::warn!(error = %e, "the OAuth exchange failed");
        let why = match e.code() {
            Some(code) => format!("Slack refused the install ({}).", html_escape(code)),
            None => "Slack could not be reached.".to_owned(),
        };
        (StatusCode::BAD_REQUEST, "Not installed", format!("{why} {again}"))
    })?;
    app.workspaces.save(&installation).await.map_err(|e| {
        tracing::error!(error = %e, "could not store an installation");
        (StatusCode::SERVICE_UNAVAILABLE, "Try again", "Storytime could not store the install.".to_owned())
    })?;
    Ok(installation)
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

fn page(status: StatusCode, title: &str, detail: &str) -> Response {
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" \
         content=\"width=device-width\"><title>Storytime: {title}</title></head><body><main><h1>{title}</h1>\
         <p>{detail}</p></main></body></html>",
        title = html_escape(title),
    );
    (status, [(header::CACHE_CONTROL, "no-store")], Html(body)).into_response()
}

fn success(team_name: &str, team: &str, app_id: &str) -> Response {
    let open = if app_id.is_empty() {
        format!("https://app.slack.com/client/{}", urlencode(team))
    } else {
        format!("https://slack.com/app_redirect?app={}&team={}", urlencode(app_id), urlencode(team))
    };
    let detail = format!(
        "Storytime is installed in {}. Share a photo of a book page in a channel it is in, or send it one \
         in a direct message, and it answers with the page read aloud. <a href=\"{}\">Open Slack</a>",
        html_escape(team_name),
        html_escape(&open)
    );
    page(StatusCode::OK, "Installed", &detail)
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slack::manifest::bot_scopes;

    fn client() -> OAuthClient {
        OAuthClient::new("1.2", &Secret::new("shh"), "http://127.0.0.1:9/api", "https://st.example", &bot_scopes())
    }

    #[test]
    fn a_state_is_accepted_only_with_its_cookie_and_signature() {
        let c = client();
        let (state, nonce) = c.new_state().unwrap();
        assert_eq!(c.check_state(&state, Some(&nonce)), Ok(nonce.clone()));
        assert_eq!(c.check_state(&state, None), Err(StateError::OtherBrowser));
        assert_eq!(c.check_state(&state, Some("other")), Err(StateError::OtherBrowser));
        let forged = format!("{nonce}.{}.{}", now_ms() / 1000 + 600, "00".repeat(32));
        assert_eq!(c.check_state(&forged, Some(&nonce)), Err(StateError::Forged));
        assert_eq!(c.check_state("x", Some("x")), Err(StateError::Forged));
        let other = OAuthClient::new("1.2", &Secret::new("other"), "http://127.0.0.1:9/api", "https://st.example", &[]);
        assert_eq!(other.check_state(&state, Some(&nonce)), Err(StateError::Forged));
    }

    #[test]
    fn an_old_state_is_expired() {
        let c = client();
        let body = format!("abcd.{}", now_ms() / 1000 - 1);
        let mut mac = c.mac();
        mac.update(body.as_bytes());
        let state = format!("{body}.{}", hex::encode(mac.finalize().into_bytes()));
        assert_eq!(c.check_state(&state, Some("abcd")), Err(StateError::Expired));
    }

    #[test]
    fn the_authorize_page_is_on_the_api_host_with_every_scope() {
        let url = Url::parse(&client().authorize("s")).unwrap();
        assert_eq!(url.as_str().split('?').next(), Some("http://127.0.0.1:9/oauth/v2/authorize"));
        let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(q["client_id"], "1.2");
        assert_eq!(q["redirect_uri"], "https://st.example/slack/oauth_redirect");
        assert_eq!(q["scope"], bot_scopes().join(","));
        let real = OAuthClient::new("1", &Secret::new("s"), "https://slack.com/api", "https://st.example", &[]);
        assert!(real.authorize("s").starts_with("https://slack.com/oauth/v2/authorize?"));
        assert!(client().cookie("n", 600).contains("; Secure"));
    }

    #[test]
    fn an_exchange_answer_becomes_an_installation() {
        let a = serde_json::json!({
            "ok": true, "access_token": "xoxb-2", "token_type": "bot", "scope": "chat:write,files:read",
            "bot_user_id": "U2BOT", "app_id": "A1", "team": { "id": "T2", "name": "Two" }, "enterprise": null,
            "authed_user": { "id": "U2ADMIN" }, "is_enterprise_install": false,
            "refresh_token": "xoxe-1-r", "expires_in": 43200
        });
        let i = installation(&a, None).unwrap();
        assert_eq!((i.team.as_str(), i.bot_user.as_str(), i.installer.as_str()), ("T2", "U2BOT", "U2ADMIN"));
        assert!(i.expires_ms.unwrap() > now_ms());
        let renewed =
            installation(&serde_json::json!({ "ok": true, "access_token": "xoxb-3", "expires_in": 60 }), Some(&i))
                .unwrap();
        assert_eq!((renewed.team.as_str(), renewed.bot_token.as_str()), ("T2", "xoxb-3"));
        assert_eq!(renewed.refresh_token.as_deref(), Some("xoxe-1-r"));
        assert!(installation(&serde_json::json!({ "ok": true, "access_token": "xoxp-user" }), None).is_err());
    }
}
