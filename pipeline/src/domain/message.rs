//! The typed messages that flow between stages. They carry ids, never
//! bytes: the image, the reading and the audio stay in the blob store.

use serde::{Deserialize, Serialize};

use super::JobId;

/// One unit of work for one stage. Stages are idempotent per message, since
/// every queue delivers at least once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum StageMessage {
    /// Read the text of one page of a job.
    Read { job: JobId, page: usize },
    /// Narrate a job whose pages are all read.
    Narrate { job: JobId },
    /// Deliver a finished (or failed) job to one of its recipients.
    Deliver { job: JobId, recipient: usize },
    /// A request a front end accepted and acknowledged (a Slack event, a
    /// shortcut): recorded here before the acknowledgement so it is never
    /// lost, handled by the front end's inbound handler. `key` identifies
    /// the request; repeats of a key are handled once.
    Inbound { source: String, key: String, payload: String },
}

impl StageMessage {
    pub fn stage(&self) -> Stage {
        match self {
            Self::Read { .. } => Stage::Read,
            Self::Narrate { .. } => Stage::Narrate,
            Self::Deliver { .. } => Stage::Deliver,
            Self::Inbound { .. } => Stage::Inbound,
        }
    }

    /// The job the message is about; inbound requests have none yet.
    pub fn job(&self) -> Option<&JobId> {
        match self {
            Self::Read { job, .. } | Self::Narrate { job } | Self::Deliver { job, .. } => Some(job),
            Self::Inbound { .. } => None,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("stage messages always serialize")
    }

    pub fn from_json(body: &str) -> Result<Self, String> {
        serde_json::from_str(body).map_err(|e| format!("unreadable stage message: {e}"))
    }
}

/// The stages that run behind a queue (intake runs in the front end).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Inbound,
    Read,
    Narrate,
    Deliver,
}

impl Stage {
    pub const ALL: [Stage; 4] = [Stage::Inbound, Stage::Read, Stage::Narrate, Stage::Deliver];

    pub fn name(self) -> &'static str {
        match self {
            Self::Inbound => "inbound",
            Self::Read => "read",
            Self::Narrate => "narrate",
            Self::Deliver => "deliver",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.name() == s)
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_through_their_wire_form() {
        let m = StageMessage::Deliver { job: JobId::new(), recipient: 2 };
        let wire = m.to_json();
        assert!(wire.contains("\"type\":\"Deliver\""));
        assert_eq!(StageMessage::from_json(&wire).unwrap(), m);
        assert!(StageMessage::from_json("{\"type\":\"Burn\"}").is_err());
    }
}
