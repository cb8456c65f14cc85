//! Configuration of a `storytime` process, read once from the environment:
//! the HTTP front end, the Slack app, and the pipeline's own settings. The
//! only place that reads `STORYTIME_*` and `SLACK_*` variables; everything
//! else receives its part.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use storytime_pipeline::settings::{Env, JobsBackend, PipelineSettings, QueueBackend, Secret, SettingsError, closest};

#[derive(Debug, Clone)]
pub struct Settings {
    pub http: HttpSettings,
    /// The Slack app, when `SLACK_SIGNING_SECRET` and `SLACK_BOT_TOKEN` are set.
    pub slack: Option<SlackSettings>,
    /// `STORYTIME_SLACK=off`: this deployment has no Slack app, so worker
    /// processes may run the inbound and deliver stages without Slack
    /// settings (a result bound for a Slack thread then goes by email).
    pub slack_off: bool,
    pub pipeline: PipelineSettings,
    pub telemetry: TelemetrySettings,
    /// `STORYTIME_*` variables that are set but mean nothing to Storytime
    /// (misspellings), each with the closest real name.
    pub unknown: Vec<(String, String)>,
    /// Where settings came from besides the environment (`STORYTIME_SECRETS`:
    /// secrets in AWS Secrets Manager), for `doctor`.
    pub secrets: Option<String>,
    /// `STORYTIME_SECRETS_REREAD_SECONDS`: after a request fails to
    /// authenticate, the secrets are read again (a key or signing secret
    /// may have been rotated), at most this often.
    pub secrets_reread: Duration,
}

/// The HTTP front end.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// `STORYTIME_LISTEN` (default `127.0.0.1:8080`): the HTTP address of
    /// `storytime serve`.
    pub listen: SocketAddr,
    /// `STORYTIME_PUBLIC_URL`: the base of links Storytime hands out.
    /// Unset: `http://` and the listening address.
    pub public_url: Option<String>,
    /// `STORYTIME_HEADER_TIMEOUT` (seconds, default 10),
    /// `STORYTIME_IDLE_TIMEOUT` (seconds, default 60) and
    /// `STORYTIME_MAX_CONNECTIONS` (default 1024): see [`crate::listener`].
    pub limits: crate::listener::Limits,
    /// `STORYTIME_API_KEYS`: bearer tokens the REST API accepts (comma
    /// separated). Empty: the API is open, fine on loopback only.
    pub api_keys: Vec<Secret>,
    /// `STORYTIME_JWT_ISSUER` and `STORYTIME_JWT_AUDIENCE` (and optionally
    /// `STORYTIME_JWKS_URL`): bearer JWTs from this OpenID Connect issuer
    /// (Cognito or another) are accepted beside the API keys.
    pub jwt: Option<crate::jwt::JwtSettings>,
    /// `STORYTIME_HEALTH_CACHE` (seconds; default 5 when the queues or jobs
    /// are on AWS, else 0): how long `/healthz` and `/metrics` reuse one
    /// reading of the queue depths and job counts, so that frequent probes
    /// cost at most one set of storage calls per period.
    pub health_cache: Duration,
}

impl HttpSettings {
    /// The base of links: the configured public URL, or this listener.
    pub fn public_url(&self) -> String {
        self.public_url.clone().unwrap_or_else(|| format!("http://{}", self.listen))
    }
}

/// Logs and metrics.
#[derive(Debug, Clone)]
pub struct TelemetrySettings {
    /// `STORYTIME_LOG_FORMAT=text|json`: one JSON object per line, or plain
    /// text. Default: JSON on Lambda (for CloudWatch Logs Insights), text
    /// elsewhere. The level filter is `RUST_LOG`.
    pub log_format: LogFormat,
    /// `STORYTIME_METRICS=on|off` (default `on`): record metrics (served at
    /// `/metrics`, or written as CloudWatch embedded metrics on Lambda).
    pub metrics: bool,
    /// `STORYTIME_METRICS_TOKEN`: a bearer token `/metrics` requires.
    pub metrics_token: Option<Secret>,
    /// Running as a Lambda function (`AWS_LAMBDA_RUNTIME_API` is set).
    pub lambda: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl TelemetrySettings {
    fn from_env(env: &Env) -> Result<Self, SettingsError> {
        let lambda = env.get("AWS_LAMBDA_RUNTIME_API").is_some();
        let default = if lambda { LogFormat::Json } else { LogFormat::Text };
        Ok(Self {
            log_format: env.choose(
                "STORYTIME_LOG_FORMAT",
                default,
                &[("text", LogFormat::Text), ("json", LogFormat::Json)],
            )?,
            metrics: env.choose("STORYTIME_METRICS", true, &[("on", true), ("off", false)])?,
            metrics_token: env.get("STORYTIME_METRICS_TOKEN").map(Secret::new),
            lambda,
        })
    }
}

/// The Slack app's credentials and endpoints.
#[derive(Debug, Clone)]
pub struct SlackSettings {
    /// `SLACK_SIGNING_SECRET`, and `SLACK_SIGNING_SECRET_PREVIOUS` while a
    /// rotation is under way: requests signed with either are accepted.
    pub signing_secrets: Vec<Secret>,
    /// `SLACK_BOT_TOKEN` (`xoxb-…`): the token for a single workspace, and
    /// for workspaces without an installation of their own.
    pub bot_token: Option<Secret>,
    /// `SLACK_CLIENT_ID` and `SLACK_CLIENT_SECRET`: the app can be
    /// installed into any workspace (OAuth), each with its own token.
    pub oauth: Option<SlackOAuth>,
    /// `STORYTIME_SLACK_TRIGGER`: `all` photos shared where the app is
    /// (default), or only `mentions` (an @mention, a DM, the shortcut).
    pub trigger: crate::slack::Trigger,
    /// `SLACK_APP_TOKEN` (`xapp-…`): when set, Socket Mode is used.
    pub app_token: Option<Secret>,
    /// `SLACK_API_URL`: the Web API base, `https://slack.com/api` unless a
    /// test or proxy points it elsewhere.
    pub api_url: String,
}

/// The app's OAuth credentials, for installs into any workspace.
#[derive(Debug, Clone)]
pub struct SlackOAuth {
    pub client_id: String,
    pub client_secret: Secret,
}

impl SlackSettings {
    pub const DEFAULT_API_URL: &'static str = "https://slack.com/api";

    fn from_env(env: &Env) -> Result<Option<Self>, SettingsError> {
        let oauth = match (env.get("SLACK_CLIENT_ID"), env.get("SLACK_CLIENT_SECRET")) {
            (None, None) => None,
            (Some(client_id), Some(secret)) => Some(SlackOAuth { client_id, client_secret: Secret::new(secret) }),
            (Some(_), None) => return Err(SettingsError::new("SLACK_CLIENT_SECRET", "is needed with SLACK_CLIENT_ID")),
            (None, Some(_)) => return Err(SettingsError::new("SLACK_CLIENT_ID", "is needed with SLACK_CLIENT_SECRET")),
        };
        let token = env.get("SLACK_BOT_TOKEN");
        let trigger = env.get("STORYTIME_SLACK_TRIGGER");
        let secret = match env.get("SLACK_SIGNING_SECRET") {
            None if token.is_none() && oauth.is_none() => return Ok(None),
            None => {
                let with = if token.is_some() { "SLACK_BOT_TOKEN" } else { "SLACK_CLIENT_ID" };
                return Err(SettingsError::new("SLACK_SIGNING_SECRET", format!("is needed with {with}")));
            }
            Some(_) if token.is_none() && oauth.is_none() => {
                return Err(SettingsError::new(
                    "SLACK_BOT_TOKEN",
                    "is needed with SLACK_SIGNING_SECRET (or SLACK_CLIENT_ID and SLACK_CLIENT_SECRET, to install \
                     the app into any workspace)",
                ));
            }
            Some(s) => s,
        };
        let trigger = match trigger.as_deref() {
            None | Some("all") => crate::slack::Trigger::All,
            Some("mentions") => crate::slack::Trigger::Mentions,
            Some(_) => return Err(SettingsError::new("STORYTIME_SLACK_TRIGGER", "must be all or mentions")),
        };
        let api_url = env.url("SLACK_API_URL")?.unwrap_or_else(|| Self::DEFAULT_API_URL.into());
        let app_token = env.get("SLACK_APP_TOKEN");
        if app_token.as_ref().is_some_and(|t| !t.starts_with("xapp-")) {
            return Err(SettingsError::new("SLACK_APP_TOKEN", "must be an app-level token (xapp-…)"));
        }
        let mut signing_secrets = vec![Secret::new(secret)];
        signing_secrets.extend(env.get("SLACK_SIGNING_SECRET_PREVIOUS").map(Secret::new));
        Ok(Some(Self {
            signing_secrets,
            bot_token: token.map(Secret::new),
            oauth,
            trigger,
            app_token: app_token.map(Secret::new),
            api_url,
        }))
    }
}

/// The JWT issuer and audience go together; the key set is the issuer's
/// `/.well-known/jwks.json` unless `STORYTIME_JWKS_URL` says otherwise.
fn jwt_settings(env: &Env) -> Result<Option<crate::jwt::JwtSettings>, SettingsError> {
    let jwks_url = env.url("STORYTIME_JWKS_URL")?;
    let audiences: Vec<String> = env
        .get("STORYTIME_JWT_AUDIENCE")
        .map(|v| v.split(',').map(str::trim).filter(|a| !a.is_empty()).map(str::to_owned).collect())
        .unwrap_or_default();
    let issuer = match env.get("STORYTIME_JWT_ISSUER") {
        None if audiences.is_empty() && jwks_url.is_none() => return Ok(None),
        None => return Err(SettingsError::new("STORYTIME_JWT_ISSUER", "is needed with STORYTIME_JWT_AUDIENCE")),
        // Kept exactly: it must equal the tokens' `iss`.
        Some(issuer) => issuer,
    };
    if !issuer.starts_with("https://") && !issuer.starts_with("http://") {
        return Err(SettingsError::new("STORYTIME_JWT_ISSUER", "must be the issuer's URL (the token's iss)"));
    }
    if audiences.is_empty() {
        return Err(SettingsError::new(
            "STORYTIME_JWT_AUDIENCE",
            "is needed with STORYTIME_JWT_ISSUER (for Cognito, the app client ID)",
        ));
    }
    let jwks_url = jwks_url.unwrap_or_else(|| format!("{}/.well-known/jwks.json", issuer.trim_end_matches('/')));
    Ok(Some(crate::jwt::JwtSettings { issuer, audiences, jwks_url }))
}

/// Variables of the project's scripts and tests, not of the service.
const TOOL_VARIABLES: &[&str] = &["STORYTIME_BIN", "STORYTIME_CI_MIN_FREE_GIB", "STORYTIME_ACCURACY_DIR"];
const TOOL_PREFIXES: &[&str] = &["STORYTIME_BENCH_"];

impl Settings {
    /// From the process environment.
    pub fn from_env() -> Result<Self, SettingsError> {
        let present: Vec<String> = std::env::vars_os().filter_map(|(k, _)| k.into_string().ok()).collect();
        Self::load(&Env::process(), present)
    }

    /// From the process environment, with `secrets` (settings read from a
    /// secret store) taking the place of variables of the same name.
    pub fn from_env_and(secrets: &std::collections::HashMap<String, String>) -> Result<Self, SettingsError> {
        let env = Env::new(|name| secrets.get(name).cloned().or_else(|| std::env::var(name).ok()));
        let mut present: Vec<String> = std::env::vars_os().filter_map(|(k, _)| k.into_string().ok()).collect();
        present.extend(secrets.keys().cloned());
        Self::load(&env, present)
    }

    /// From a list of variables (tests).
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Result<Self, SettingsError> {
        let env = Env::new(|name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string()));
        Self::load(&env, pairs.iter().map(|(k, _)| k.to_string()).collect())
    }

    /// Reads every setting from `env`; `present` names the variables that
    /// are set, to spot the misspelt ones.
    fn load(env: &Env, present: Vec<String>) -> Result<Self, SettingsError> {
        // Read by `main` before the settings: known here.
        let _ = env.get("STORYTIME_SECRETS");
        let secrets_reread = env.seconds("STORYTIME_SECRETS_REREAD_SECONDS", 60)?;
        let listen = env.parse("STORYTIME_LISTEN", SocketAddr::from(([127, 0, 0, 1], 8080)))?;
        let http = HttpSettings {
            listen,
            public_url: env.url("STORYTIME_PUBLIC_URL")?,
            limits: crate::listener::Limits {
                header_timeout: positive(env.seconds("STORYTIME_HEADER_TIMEOUT", 10)?, "STORYTIME_HEADER_TIMEOUT")?,
                idle_timeout: positive(env.seconds("STORYTIME_IDLE_TIMEOUT", 60)?, "STORYTIME_IDLE_TIMEOUT")?,
                max_connections: positive(env.parse("STORYTIME_MAX_CONNECTIONS", 1024)?, "STORYTIME_MAX_CONNECTIONS")?,
            },
            api_keys: env
                .get("STORYTIME_API_KEYS")
                .map(|v| v.split(',').map(str::trim).filter(|k| !k.is_empty()).map(Secret::new).collect())
                .unwrap_or_default(),
            jwt: jwt_settings(env)?,
            health_cache: Duration::ZERO,
        };
        let slack_off = match env.get("STORYTIME_SLACK").as_deref() {
            None | Some("on") => false,
            Some("off") => true,
            Some(other) => return Err(SettingsError::new("STORYTIME_SLACK", format!("`{other}` is not on or off"))),
        };
        let slack = SlackSettings::from_env(env)?;
        let pipeline = PipelineSettings::from_env(env)?;
        let remote = pipeline.backends.queue == QueueBackend::Sqs || pipeline.backends.jobs == JobsBackend::DynamoDb;
        let http =
            HttpSettings { health_cache: env.seconds("STORYTIME_HEALTH_CACHE", if remote { 5 } else { 0 })?, ..http };
        let telemetry = TelemetrySettings::from_env(env)?;
        let unknown = unknown_variables(&env.names_read(), present);
        Ok(Self { http, slack, slack_off, pipeline, telemetry, unknown, secrets: None, secrets_reread })
    }
}

/// `STORYTIME_*` variables nobody read, each with the closest name read.
/// Refuses zero, which would close every connection at once (or allow none).
fn positive<T: Default + PartialEq>(value: T, name: &str) -> Result<T, SettingsError> {
    if value == T::default() {
        return Err(SettingsError::new(name, "must be more than 0"));
    }
    Ok(value)
}

fn unknown_variables(read: &BTreeSet<String>, present: Vec<String>) -> Vec<(String, String)> {
    let known: Vec<&str> = read.iter().map(String::as_str).filter(|n| n.starts_with("STORYTIME_")).collect();
    let mut unknown: Vec<(String, String)> = present
        .into_iter()
        .filter(|name| name.starts_with("STORYTIME_") && !read.contains(name))
        .filter(|name| !TOOL_VARIABLES.contains(&name.as_str()) && !TOOL_PREFIXES.iter().any(|p| name.starts_with(p)))
        .filter_map(|name| closest(&name, known.iter().copied()).map(|c| (name.clone(), c.to_owned())))
        .collect();
    unknown.sort();
    unknown
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn from(pairs: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        Settings::from_pairs(pairs)
    }

    #[test]
    fn defaults_describe_the_embedded_service_on_loopback() {
        let s = from(&[]).unwrap();
        assert_eq!(s.http.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.http.public_url(), "http://127.0.0.1:8080");
        assert_eq!(s.pipeline.data_dir, std::path::PathBuf::from(".storytime"));
        assert!(s.http.api_keys.is_empty());
        assert_eq!(s.pipeline.workers.stall_after, Duration::from_secs(60));
        assert!(s.slack.is_none() && !s.slack_off);
        assert_eq!((s.telemetry.log_format, s.telemetry.metrics), (LogFormat::Text, true));
        let lambda = from(&[("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001")]).unwrap();
        assert_eq!(lambda.telemetry.log_format, LogFormat::Json, "JSON by default on Lambda");
        assert_eq!(s.http.health_cache, Duration::ZERO, "a local database answers health probes itself");
        let aws = from(&[("STORYTIME_QUEUE", "sqs"), ("STORYTIME_JOBS", "dynamodb")]).unwrap();
        assert_eq!(aws.http.health_cache, Duration::from_secs(5), "AWS sees one set of calls per 5 s");
    }

    #[test]
    fn bad_values_name_their_variable() {
        let e = from(&[("STORYTIME_LISTEN", "nowhere")]).unwrap_err();
        assert_eq!(e.name, "STORYTIME_LISTEN");
        let e = from(&[("STORYTIME_MAX_ATTEMPTS", "0")]).unwrap_err();
        assert_eq!(e.name, "STORYTIME_MAX_ATTEMPTS");
        let e = from(&[("STORYTIME_PUBLIC_URL", "ftp://x")]).unwrap_err();
        assert_eq!(e.name, "STORYTIME_PUBLIC_URL");
        let e = from(&[("STORYTIME_SLACK", "maybe")]).unwrap_err();
        assert_eq!(e.name, "STORYTIME_SLACK");
        let e = from(&[("STORYTIME_LOG_FORMAT", "xml")]).unwrap_err();
        assert_eq!(e.name, "STORYTIME_LOG_FORMAT");
    }

    #[test]
    fn api_keys_are_split_and_trimmed() {
        let s = from(&[("STORYTIME_API_KEYS", " a , b,,")]).unwrap();
        assert_eq!(s.http.api_keys, [Secret::new("a"), Secret::new("b")]);
        assert_eq!(format!("{:?}", s.http.api_keys), "[[redacted], [redacted]]");
    }

    #[test]
    fn slack_needs_both_secret_and_token_and_hides_them() {
        assert!(from(&[]).unwrap().slack.is_none());
        assert_eq!(from(&[("SLACK_BOT_TOKEN", "xoxb-1")]).unwrap_err().name, "SLACK_SIGNING_SECRET");
        let s = from(&[
            ("SLACK_BOT_TOKEN", "xoxb-1"),
            ("SLACK_SIGNING_SECRET", "new"),
            ("SLACK_SIGNING_SECRET_PREVIOUS", "old"),
            ("SLACK_API_URL", "http://127.0.0.1:9/api/"),
        ])
        .unwrap();
        let slack = s.slack.as_ref().unwrap();
        assert_eq!(slack.signing_secrets.len(), 2);
        assert_eq!(slack.api_url, "http://127.0.0.1:9/api");
        assert!(!format!("{s:?}").contains("xoxb-1"));
        assert_eq!(
            from(&[("SLACK_BOT_TOKEN", "x"), ("SLACK_SIGNING_SECRET", "y"), ("SLACK_APP_TOKEN", "xoxb")])
                .unwrap_err()
                .name,
            "SLACK_APP_TOKEN"
        );
    }

    #[test]
    fn a_jwt_issuer_needs_an_audience_and_finds_its_keys() {
        assert!(from(&[]).unwrap().http.jwt.is_none());
        let issuer = ("STORYTIME_JWT_ISSUER", "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc/");
        assert_eq!(from(&[issuer]).unwrap_err().name, "STORYTIME_JWT_AUDIENCE");
        assert_eq!(from(&[("STORYTIME_JWT_AUDIENCE", "c1")]).unwrap_err().name, "STORYTIME_JWT_ISSUER");
        let jwt = from(&[issuer, ("STORYTIME_JWT_AUDIENCE", "c1, c2")]).unwrap().http.jwt.unwrap();
        assert_eq!(jwt.issuer, "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc/", "as the tokens say it");
        assert_eq!(jwt.audiences, ["c1", "c2"]);
        assert_eq!(jwt.jwks_url, "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc/.well-known/jwks.json");
        let own = from(&[issuer, ("STORYTIME_JWT_AUDIENCE", "c1"), ("STORYTIME_JWKS_URL", "http://127.0.0.1:9/keys")]);
        assert_eq!(own.unwrap().http.jwt.unwrap().jwks_url, "http://127.0.0.1:9/keys");
    }

    #[test]
    fn slack_installs_need_the_client_id_and_secret_together() {
        let base = [("SLACK_SIGNING_SECRET", "s")];
        assert_eq!(from(&base).unwrap_err().name, "SLACK_BOT_TOKEN");
        let oauth = from(&[base[0], ("SLACK_CLIENT_ID", "1.2"), ("SLACK_CLIENT_SECRET", "c")]).unwrap();
        let slack = oauth.slack.unwrap();
        assert!(slack.bot_token.is_none() && slack.oauth.is_some());
        assert_eq!(from(&[base[0], ("SLACK_CLIENT_ID", "1.2")]).unwrap_err().name, "SLACK_CLIENT_SECRET");
        assert_eq!(
            from(&[("SLACK_CLIENT_ID", "1.2"), ("SLACK_CLIENT_SECRET", "c")]).unwrap_err().name,
            "SLACK_SIGNING_SECRET"
        );
        let t = [("SLACK_BOT_TOKEN", "xoxb-1"), ("SLACK_SIGNING_SECRET", "s")];
        assert_eq!(from(&t).unwrap().slack.unwrap().trigger, crate::slack::Trigger::All);
        let mentions = from(&[t[0], t[1], ("STORYTIME_SLACK_TRIGGER", "mentions")]).unwrap();
        assert_eq!(mentions.slack.unwrap().trigger, crate::slack::Trigger::Mentions);
        assert_eq!(
            from(&[t[0], t[1], ("STORYTIME_SLACK_TRIGGER", "some")]).unwrap_err().name,
            "STORYTIME_SLACK_TRIGGER"
        );
    }

    #[test]
    fn a_misspelt_variable_is_named_with_the_closest_real_one() {
        let s = from(&[
            ("STORYTIME_REDA_WORKERS", "2"),
            ("STORYTIME_RETRY_BASE", "100"),
            ("STORYTIME_BENCH_PAGES", "3"),
            ("STORYTIME_DATA_DIR", "/tmp/x"),
            ("HOME", "/root"),
        ])
        .unwrap();
        assert_eq!(
            s.unknown,
            [
                ("STORYTIME_REDA_WORKERS".to_owned(), "STORYTIME_READ_WORKERS".to_owned()),
                ("STORYTIME_RETRY_BASE".to_owned(), "STORYTIME_RETRY_BASE_MS".to_owned()),
            ]
        );
    }
}
