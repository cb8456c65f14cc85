//! The Slack app: photos shared in channels, DMs or with an @mention are
//! read aloud and answered in their thread; `/storytime` and the "Read
//! aloud" message shortcut; over HTTP (signed requests) or Socket Mode.
//!
//! Every Slack request is verified, recorded durably as an inbound message
//! of the pipeline and acknowledged at once; the work (downloading the
//! photos, submitting the job) happens behind it in the inbound stage, and
//! the result comes back through [`SlackMessenger`], the pipeline's chat
//! port, which the composition root builds before the pipeline.

mod api;
mod app;
mod check;
mod commands;
mod events;
mod files;
mod home;
mod inbound;
mod installs;
mod interactions;
pub mod manifest;
mod messenger;
mod mrkdwn;
mod oauth;
mod socket;
pub mod verify;

pub use api::SlackApi;
pub use app::{SOURCE, SlackApp, Trigger};
pub use check::SlackCheck;
pub use files::SlackHosts;
pub use installs::{Sealer, Workspaces};
pub use messenger::SlackMessenger;
pub use oauth::OAuthClient;
pub use verify::{Verifier, sign};
