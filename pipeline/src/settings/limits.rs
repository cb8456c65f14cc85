//! Bounds on what one job may hold, and how long its links live.

use std::time::Duration;

use super::env::{Env, SettingsError};
use crate::image::ImageLimits;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// `STORYTIME_MAX_UPLOAD_BYTES` (default 20 MiB) and
    /// `STORYTIME_MAX_MEGAPIXELS` (default 50): the largest photo accepted,
    /// in bytes and decoded pixels.
    pub image: ImageLimits,
    /// `STORYTIME_MAX_PAGES` (default 20): pages per book.
    pub max_pages: usize,
    /// `STORYTIME_MAX_TEXT_CHARS` (default 20,000): text narrated per book;
    /// longer text is cut at a sentence end.
    pub max_text_chars: usize,
    /// `STORYTIME_LINK_TTL` (seconds, default 7 days): how long media links
    /// stay valid.
    pub link_ttl: Duration,
    /// `STORYTIME_MEMORY_BUDGET_MB` (default 512): bytes of decoded
    /// pictures held at once across uploads and readers; more waits.
    pub memory_budget: u64,
    /// `STORYTIME_UPLOADS_PER_MINUTE` (default 60; 0 is no limit): uploads
    /// per sender (API key, client address, Slack user).
    pub uploads_per_minute: u32,
    /// `STORYTIME_COMMANDS_PER_MINUTE` (default 20; 0 is no limit): slash
    /// commands per Slack user.
    pub commands_per_minute: u32,
    /// `STORYTIME_MAIL_PER_HOUR` (default 10; 0 is no limit): emails sent
    /// on request (`/bulk`, address confirmations), per sender and per
    /// address.
    pub mail_per_hour: u32,
}

impl Limits {
    pub fn from_env(env: &Env) -> Result<Self, SettingsError> {
        let defaults = ImageLimits::default();
        let limits = Self {
            image: ImageLimits {
                max_bytes: env.parse("STORYTIME_MAX_UPLOAD_BYTES", defaults.max_bytes)?,
                max_pixels: env.parse::<u64>("STORYTIME_MAX_MEGAPIXELS", 50)?.saturating_mul(1_000_000),
                min_side: defaults.min_side,
            },
            max_pages: env.parse("STORYTIME_MAX_PAGES", 20)?,
            max_text_chars: env.parse("STORYTIME_MAX_TEXT_CHARS", 20_000)?,
            link_ttl: env.seconds("STORYTIME_LINK_TTL", 7 * 24 * 3600)?,
            memory_budget: env.parse::<u64>("STORYTIME_MEMORY_BUDGET_MB", 512)?.saturating_mul(1024 * 1024),
            uploads_per_minute: env.parse("STORYTIME_UPLOADS_PER_MINUTE", 60)?,
            commands_per_minute: env.parse("STORYTIME_COMMANDS_PER_MINUTE", 20)?,
            mail_per_hour: env.parse("STORYTIME_MAIL_PER_HOUR", 10)?,
        };
        if limits.max_pages == 0
            || limits.image.max_bytes == 0
            || limits.max_text_chars == 0
            || limits.memory_budget == 0
        {
            return Err(SettingsError::new("STORYTIME_MAX_*", "limits must be above zero"));
        }
        Ok(limits)
    }
}
