//! Secret settings kept in AWS Secrets Manager (`STORYTIME_SECRETS`: secret
//! IDs or ARNs, comma-separated), read at start before anything else, and
//! the credentials that requests are checked against: the API keys and the
//! Slack signing secrets. A request that fails to authenticate may carry a
//! key or signature made with a secret rotated since the process started,
//! so the secrets are then read again (at most once per
//! `STORYTIME_SECRETS_REREAD_SECONDS`) and the request checked once more.
//! The Slack bot token is read again the same way when Slack refuses it:
//! work that failed with a token replaced since is tried again with the
//! new one.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use storytime_pipeline::settings::Secret;

use crate::settings::Settings;

/// The `STORYTIME_SECRETS` IDs, if any.
fn secret_ids() -> Option<Vec<String>> {
    let ids = std::env::var("STORYTIME_SECRETS").ok().filter(|v| !v.trim().is_empty())?;
    Some(ids.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect())
}

/// The settings kept in Secrets Manager, and where they came from.
pub async fn secret_settings() -> Result<(HashMap<String, String>, Option<String>), String> {
    let Some(ids) = secret_ids() else { return Ok((HashMap::new(), None)) };
    read_secrets(&ids).await.map(|values| {
        let names: Vec<&str> = values.keys().map(String::as_str).collect();
        let source = format!("{} read from Secrets Manager ({})", names.join(", "), ids.join(", "));
        (values, Some(source))
    })
}

#[cfg(feature = "aws")]
async fn read_secrets(ids: &[String]) -> Result<HashMap<String, String>, String> {
    use storytime_pipeline::adapters::aws::{sdk_config, secret_settings};
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    secret_settings(&sdk_config().await, &refs).await.map_err(|e| {
        format!(
            "cannot read STORYTIME_SECRETS ({}): {e}; the process's role needs secretsmanager:GetSecretValue on them",
            ids.join(", ")
        )
    })
}

#[cfg(not(feature = "aws"))]
async fn read_secrets(_: &[String]) -> Result<HashMap<String, String>, String> {
    Err("STORYTIME_SECRETS needs a storytime built with the aws feature".into())
}

/// The API keys and Slack signing secrets requests are checked against,
/// and the Slack bot token.
pub struct Credentials {
    api_keys: RwLock<Arc<Vec<Secret>>>,
    signing: RwLock<Arc<Vec<Secret>>>,
    bot_token: RwLock<BotToken>,
    reread: Option<Reread>,
}

/// `SLACK_BOT_TOKEN`, and the one it replaced when it was read again.
struct BotToken {
    current: Option<Secret>,
    replaced: Option<Secret>,
}

struct Reread {
    ids: Vec<String>,
    every: Duration,
    /// When the secrets were last read; held while they are read again, so
    /// concurrent failures make one read.
    last: tokio::sync::Mutex<Instant>,
}

impl Credentials {
    /// The credentials the settings name; read again from Secrets Manager
    /// after an authentication failure when `STORYTIME_SECRETS` is set.
    pub fn new(settings: &Settings) -> Self {
        let reread = secret_ids().map(|ids| Reread {
            ids,
            every: settings.secrets_reread,
            last: tokio::sync::Mutex::new(Instant::now()),
        });
        Self::with(settings, reread)
    }

    /// These credentials, never read again.
    pub fn fixed(api_keys: Vec<Secret>, signing: Vec<Secret>, bot_token: Option<Secret>) -> Self {
        Self {
            api_keys: RwLock::new(Arc::new(api_keys)),
            signing: RwLock::new(Arc::new(signing)),
            bot_token: RwLock::new(BotToken { current: bot_token, replaced: None }),
            reread: None,
        }
    }

    fn with(settings: &Settings, reread: Option<Reread>) -> Self {
        let (keys, signing, bot_token) = of(settings);
        Self { reread, ..Self::fixed(keys, signing, bot_token) }
    }

    pub fn api_keys(&self) -> Arc<Vec<Secret>> {
        self.api_keys.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn signing_secrets(&self) -> Arc<Vec<Secret>> {
        self.signing.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// `SLACK_BOT_TOKEN`, as last read.
    pub fn bot_token(&self) -> Option<Secret> {
        self.bot_token.read().unwrap_or_else(|e| e.into_inner()).current.clone()
    }

    /// After Slack refused `used`: true when the bot token is now another
    /// one, read again from Secrets Manager by this call or by an earlier
    /// one that `used` predates, so the work is worth trying again. False
    /// for a token that was never the bot token (a workspace's own).
    pub async fn bot_token_replaced(&self, used: &Secret) -> bool {
        let replaced = || {
            let token = self.bot_token.read().unwrap_or_else(|e| e.into_inner());
            token.replaced.as_ref() == Some(used) && token.current.as_ref().is_some_and(|now| now != used)
        };
        if replaced() {
            return true;
        }
        self.bot_token().as_ref() == Some(used) && self.reread().await && replaced()
    }

    /// After a request failed to authenticate: reads the secrets again,
    /// unless that was done less than the re-read interval ago. True when
    /// the keys, signing secrets or bot token changed (the request or
    /// call is worth trying again).
    pub async fn reread(&self) -> bool {
        let Some(reread) = &self.reread else { return false };
        let mut last = reread.last.lock().await;
        if last.elapsed() < reread.every {
            return false;
        }
        *last = Instant::now();
        let settings =
            match read_secrets(&reread.ids).await.and_then(|v| Settings::from_env_and(&v).map_err(|e| e.to_string())) {
                Ok(settings) => settings,
                Err(e) => {
                    tracing::warn!(error = %e, "could not read the secrets again; keeping the ones read before");
                    return false;
                }
            };
        let (keys, signing, bot_token) = of(&settings);
        let new_token = bot_token != self.bot_token();
        let changed = *self.api_keys() != keys || *self.signing_secrets() != signing || new_token;
        if changed {
            tracing::info!("the secrets changed since they were read; using the new ones");
            *self.api_keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(keys);
            *self.signing.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(signing);
        }
        if new_token {
            let mut token = self.bot_token.write().unwrap_or_else(|e| e.into_inner());
            let replaced = std::mem::replace(&mut token.current, bot_token);
            token.replaced = replaced;
        }
        changed
    }
}

fn of(settings: &Settings) -> (Vec<Secret>, Vec<Secret>, Option<Secret>) {
    let signing = settings.slack.as_ref().map(|s| s.signing_secrets.clone()).unwrap_or_default();
    let bot_token = settings.slack.as_ref().and_then(|s| s.bot_token.clone());
    (settings.http.api_keys.clone(), signing, bot_token)
}
