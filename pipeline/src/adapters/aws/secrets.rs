//! Settings kept in AWS Secrets Manager instead of plain environment
//! variables: `STORYTIME_SECRETS` names one or more secrets (IDs or ARNs,
//! comma-separated), each a JSON object of setting names and values (e.g.
//! `{"SLACK_BOT_TOKEN": "xoxb-…", "STORYTIME_API_KEYS": "k1,k2"}`), or
//! `NAME:=id` for a secret that is one setting's whole value. They
//! are read once when the process starts (a Lambda function's cold start),
//! so a rotated secret reaches every new process.

use std::collections::HashMap;

use aws_sdk_secretsmanager::Client;

use super::sdk_errors::classify;
use crate::domain::PortError;

const WHAT: &str = "Secrets Manager";

/// The settings a secret may hold: the secrets, and nothing that would
/// change where Storytime stores or sends things.
pub const SECRET_SETTINGS: &[&str] = &[
    "SLACK_SIGNING_SECRET",
    "SLACK_SIGNING_SECRET_PREVIOUS",
    "SLACK_BOT_TOKEN",
    "SLACK_APP_TOKEN",
    "SLACK_CLIENT_ID",
    "SLACK_CLIENT_SECRET",
    "STORYTIME_API_KEYS",
    "STORYTIME_MEDIA_SECRET",
    "STORYTIME_METRICS_TOKEN",
    "STORYTIME_CDN_PRIVATE_KEY",
];

/// The settings in the secrets `ids`, later secrets overriding earlier.
pub async fn secret_settings(
    config: &aws_config::SdkConfig,
    ids: &[&str],
) -> Result<HashMap<String, String>, PortError> {
    let client = Client::new(config);
    let mut settings = HashMap::new();
    for entry in ids {
        // `NAME:=id`: the whole secret is that one setting's value (a PEM
        // key, which a JSON template cannot hold).
        let (name, id) = match entry.split_once(":=") {
            Some((name, id)) => (Some(name.trim()), id.trim()),
            None => (None, *entry),
        };
        if let Some(name) = name.filter(|n| !SECRET_SETTINGS.contains(n)) {
            return Err(PortError::rejected(WHAT, format!("{name} is not a setting kept in a secret")));
        }
        let answer = client.get_secret_value().secret_id(id).send().await.map_err(|e| classify(WHAT, e))?;
        let text = answer
            .secret_string()
            .ok_or_else(|| PortError::rejected(WHAT, format!("{id} holds binary data, not text")))?;
        match name {
            Some(name) => {
                settings.insert(name.to_owned(), text.to_owned());
            }
            None => settings.extend(parse(id, text)?),
        }
    }
    Ok(settings)
}

/// A secret's JSON object of settings; any other name is refused, so a
/// typo is not silently ignored.
fn parse(id: &str, text: &str) -> Result<HashMap<String, String>, PortError> {
    let object: HashMap<String, serde_json::Value> = serde_json::from_str(text)
        .map_err(|_| PortError::rejected(WHAT, format!("{id} is not a JSON object of settings")))?;
    let mut out = HashMap::new();
    for (name, value) in object {
        if !SECRET_SETTINGS.contains(&name.as_str()) {
            return Err(PortError::rejected(
                WHAT,
                format!("{id} holds {name}, which is not a setting kept in a secret ({})", SECRET_SETTINGS.join(", ")),
            ));
        }
        let value = match value {
            serde_json::Value::String(s) => s,
            serde_json::Value::Null => continue,
            other => other.to_string(),
        };
        out.insert(name, value);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_holds_known_settings_only() {
        let ok = parse("s", r#"{"SLACK_BOT_TOKEN": "xoxb-1", "STORYTIME_API_KEYS": "a,b", "SLACK_APP_TOKEN": null}"#)
            .unwrap();
        assert_eq!(ok["SLACK_BOT_TOKEN"], "xoxb-1");
        assert_eq!(ok.len(), 2);
        let typo = parse("s", r#"{"SLACK_BOT_TOKN": "xoxb-1"}"#).unwrap_err();
        assert!(typo.to_string().contains("SLACK_BOT_TOKN"), "{typo}");
        assert!(parse("s", r#"{"STORYTIME_S3_BUCKET": "elsewhere"}"#).is_err());
        assert!(parse("s", "xoxb-plain").is_err());
    }
}
