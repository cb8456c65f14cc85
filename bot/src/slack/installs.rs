//! Which bot token speaks for which workspace. A single-workspace setup
//! has `SLACK_BOT_TOKEN`; a distributed app (OAuth, `SLACK_CLIENT_ID`) has
//! one installation per workspace, kept in the job store's records,
//! sealed with a key of this deployment (ChaCha20-Poly1305, the record's
//! key as associated data, so a sealed token cannot be moved to another
//! workspace's record). Tokens that expire (token rotation) are refreshed
//! shortly before they do.

use std::sync::Arc;

use hmac::{Hmac, Mac};
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use storytime_pipeline::ports::Preferences;
use storytime_pipeline::settings::Secret;
use storytime_pipeline::{ErrorKind, PortError, now_ms};

use super::api::{SlackApi, SlackError};
use super::oauth::OAuthClient;
use crate::secrets::Credentials;

/// Refresh a rotating token when it has less than this left.
const REFRESH_MARGIN_MS: i64 = 5 * 60 * 1000;

/// One workspace's installation of the app, as `oauth.v2.access` gave it.
#[derive(Clone, Serialize, Deserialize)]
pub struct Installation {
    pub team: String,
    #[serde(default)]
    pub team_name: String,
    /// Set for an organisation-wide install (Enterprise Grid).
    #[serde(default)]
    pub enterprise: Option<String>,
    pub bot_token: String,
    pub bot_user: String,
    /// The bot scopes granted, comma-separated as Slack lists them.
    pub scopes: String,
    /// The user who installed the app.
    pub installer: String,
    #[serde(default)]
    pub app_id: String,
    /// With token rotation: the refresh token and when the bot token
    /// expires (milliseconds since the epoch).
    #[serde(default)]
    pub refresh_token: Option<String>,
    #[serde(default)]
    pub expires_ms: Option<i64>,
    pub installed_ms: i64,
}

impl std::fmt::Debug for Installation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Installation")
            .field("team", &self.team)
            .field("enterprise", &self.enterprise)
            .field("bot_user", &self.bot_user)
            .field("scopes", &self.scopes)
            .field("installer", &self.installer)
            .finish_non_exhaustive()
    }
}

/// Seals records with a key derived from the deployment's secret.
#[derive(Clone)]
pub struct Sealer {
    key: Arc<LessSafeKey>,
}

impl Sealer {
    /// A sealer whose key is derived from `secret` (at least 32 bytes of
    /// key material: the media key).
    pub fn new(secret: &[u8]) -> Self {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes any key length");
        mac.update(b"storytime slack installations v1");
        let derived = mac.finalize().into_bytes();
        let key = UnboundKey::new(&CHACHA20_POLY1305, &derived).expect("a 32-byte key");
        Self { key: Arc::new(LessSafeKey::new(key)) }
    }

    /// `v1:` and the hex of a fresh nonce and the sealed bytes.
    pub fn seal(&self, record_key: &str, plain: &[u8]) -> Result<String, PortError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(failed)?;
        let mut sealed = plain.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(record_key.as_bytes()),
                &mut sealed,
            )
            .map_err(|_| failed("sealing failed"))?;
        Ok(format!("v1:{}{}", hex::encode(nonce), hex::encode(sealed)))
    }

    /// The plain bytes of a record sealed under `record_key`; `None` if it
    /// was sealed with another key or changed since.
    pub fn open(&self, record_key: &str, sealed: &str) -> Option<Vec<u8>> {
        let bytes = hex::decode(sealed.strip_prefix("v1:")?).ok()?;
        if bytes.len() < NONCE_LEN {
            return None;
        }
        let (nonce, body) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut body = body.to_vec();
        let plain = self.key.open_in_place(nonce, Aad::from(record_key.as_bytes()), &mut body).ok()?;
        Some(plain.to_vec())
    }
}

/// The tokens of every workspace the app is in.
pub struct Workspaces {
    /// A client with no token, from which each workspace's is made.
    api: SlackApi,
    /// `SLACK_BOT_TOKEN`, for workspaces with no installation.
    credentials: Arc<Credentials>,
    store: Arc<dyn Preferences>,
    /// Set when installations are kept (a distributed app).
    sealer: Option<Sealer>,
    oauth: Option<OAuthClient>,
}

fn record_key(team: &str) -> String {
    format!("slack-install:{team}")
}

/// The organisation (Enterprise Grid) a workspace belongs to.
fn organisation_key(team: &str) -> String {
    format!("slack-install-org:{team}")
}

impl Workspaces {
    pub fn new(
        api: SlackApi,
        credentials: Arc<Credentials>,
        store: Arc<dyn Preferences>,
        sealer: Option<Sealer>,
        oauth: Option<OAuthClient>,
    ) -> Self {
        Self { api, credentials, store, sealer, oauth }
    }

    /// Installing into any workspace, when `SLACK_CLIENT_ID` is set.
    pub fn oauth(&self) -> Option<&OAuthClient> {
        self.oauth.as_ref()
    }

    /// A client without a token: for response URLs and OAuth.
    pub fn bare(&self) -> &SlackApi {
        &self.api
    }

    /// The client that speaks for `team`: its installation's token, else
    /// the default one. A workspace with neither gets `not_installed`,
    /// which is final (a result then goes by email).
    pub async fn api(&self, team: &str) -> Result<SlackApi, SlackError> {
        if let Some(installation) = self.installation(team).await? {
            return Ok(self.api.with_token(&Secret::new(installation.bot_token)));
        }
        match self.credentials.bot_token() {
            Some(token) => Ok(self.api.with_token(&token)),
            None => Err(SlackError::Api { method: "installation", code: "not_installed".into() }),
        }
    }

    /// After Slack refused work done with `api`: when `api` has
    /// `SLACK_BOT_TOKEN` and another has replaced it in Secrets Manager
    /// (read again now, at most once per `STORYTIME_SECRETS_REREAD_SECONDS`),
    /// the error to return instead, which has the work tried again with the
    /// new token rather than given up on.
    pub async fn replaced_token(&self, api: &SlackApi) -> Option<PortError> {
        self.credentials.bot_token_replaced(api.bearer()).await.then(|| {
            tracing::info!("the bot token was replaced since this work began; trying it again with the new one");
            PortError::unavailable("Slack", "the bot token was replaced; trying again with the new one")
        })
    }

    /// `team`'s installation, refreshed first if its token is about to
    /// expire.
    pub async fn installation(&self, team: &str) -> Result<Option<Installation>, SlackError> {
        let Some(sealer) = &self.sealer else { return Ok(None) };
        let mut key = record_key(team);
        let mut sealed = self.store.record(&key).await.map_err(store_error)?;
        if sealed.is_none()
            && let Some(organisation) = self.store.record(&organisation_key(team)).await.map_err(store_error)?
        {
            // A workspace of an organisation-wide install.
            key = record_key(&organisation);
            sealed = self.store.record(&key).await.map_err(store_error)?;
        }
        let Some(sealed) = sealed else { return Ok(None) };
        let Some(installation) =
            sealer.open(&key, &sealed).and_then(|plain| serde_json::from_slice::<Installation>(&plain).ok())
        else {
            tracing::error!(team, "a stored installation cannot be opened with this deployment's key; reinstall");
            return Ok(None);
        };
        match (&installation.refresh_token, installation.expires_ms, &self.oauth) {
            (Some(refresh), Some(expires), Some(oauth)) if expires - REFRESH_MARGIN_MS <= now_ms() => {
                let renewed = oauth.refresh(&self.api, refresh, &installation).await?;
                self.save(&renewed).await.map_err(store_error)?;
                tracing::info!(team, "refreshed the workspace's bot token");
                Ok(Some(renewed))
            }
            _ => Ok(Some(installation)),
        }
    }

    /// Notes that `team` belongs to `enterprise`, when the app is installed
    /// organisation-wide there and not in `team` itself: the organisation's
    /// installation then speaks for the workspace.
    pub async fn join_organisation(&self, team: &str, enterprise: &str) -> Result<(), PortError> {
        if self.sealer.is_none() || team == enterprise || self.store.record(&record_key(team)).await?.is_some() {
            return Ok(());
        }
        let link = organisation_key(team);
        if self.store.record(&link).await?.as_deref() != Some(enterprise)
            && self.store.record(&record_key(enterprise)).await?.is_some()
        {
            self.store.put_record(&link, enterprise).await?;
        }
        Ok(())
    }

    /// Keeps an installation (a new one replaces the old).
    pub async fn save(&self, installation: &Installation) -> Result<(), PortError> {
        let Some(sealer) = &self.sealer else {
            return Err(PortError::rejected("the installation store", "installations are not kept here"));
        };
        let key = record_key(&installation.team);
        let plain = serde_json::to_vec(installation).map_err(failed)?;
        self.store.put_record(&key, &sealer.seal(&key, &plain)?).await
    }

    /// Forgets a workspace's installation: its token is not used again.
    pub async fn remove(&self, team: &str) -> Result<(), PortError> {
        if self.sealer.is_none() {
            return Ok(());
        }
        self.store.delete_record(&record_key(team)).await
    }
}

fn failed(detail: impl ToString) -> PortError {
    PortError::new(ErrorKind::Failed, "the installation store", detail)
}

fn store_error(e: PortError) -> SlackError {
    SlackError::Unavailable { method: "installation", detail: e.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_organisation_wide_install_speaks_for_its_workspaces() {
        let store = Arc::new(storytime_pipeline::adapters::memory::InMemoryJobStore::new());
        let api =
            SlackApi::new("http://127.0.0.1:9/api", super::super::files::SlackHosts::new("http://127.0.0.1:9/api"))
                .unwrap();
        let w = Workspaces::new(
            api,
            Arc::new(Credentials::fixed(vec![], vec![], None)),
            store,
            Some(Sealer::new(&[1u8; 32])),
            None,
        );
        let org = Installation {
            team: "E1".into(),
            team_name: String::new(),
            enterprise: Some("E1".into()),
            bot_token: "xoxb-org".into(),
            bot_user: "UB".into(),
            scopes: String::new(),
            installer: "UA".into(),
            app_id: String::new(),
            refresh_token: None,
            expires_ms: None,
            installed_ms: 0,
        };
        w.save(&org).await.unwrap();
        assert!(w.installation("T1").await.unwrap().is_none());
        w.join_organisation("T1", "E1").await.unwrap();
        assert_eq!(w.installation("T1").await.unwrap().unwrap().bot_token, "xoxb-org");
        w.join_organisation("T2", "E9").await.unwrap();
        assert!(w.installation("T2").await.unwrap().is_none(), "no such organisation installed");
        w.remove("E1").await.unwrap();
        assert!(w.installation("T1").await.unwrap().is_none(), "gone with the organisation's install");
    }

    #[test]
    fn a_sealed_record_opens_only_under_its_own_key_and_secret() {
        let sealer = Sealer::new(&[7u8; 32]);
        let sealed = sealer.seal("slack-install:T1", b"xoxb-secret").unwrap();
        assert!(!sealed.contains("xoxb"), "the token is not readable at rest");
        assert_eq!(sealer.open("slack-install:T1", &sealed).as_deref(), Some(&b"xoxb-secret"[..]));
        assert_eq!(sealer.open("slack-install:T2", &sealed), None, "moved to another workspace");
        assert_eq!(Sealer::new(&[8u8; 32]).open("slack-install:T1", &sealed), None, "another deployment's key");
        let mut tampered = sealed.clone();
        tampered.replace_range(sealed.len() - 2.., if sealed.ends_with("00") { "01" } else { "00" });
        assert_eq!(sealer.open("slack-install:T1", &tampered), None);
        assert_eq!(sealer.open("slack-install:T1", "v1:zz"), None);
        assert_ne!(sealer.seal("k", b"same").unwrap(), sealer.seal("k", b"same").unwrap(), "a fresh nonce each time");
    }
}
