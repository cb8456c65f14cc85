//! Rate limits per sender: uploads, commands and mail. Each key (an API
//! key's digest, a client address, a chat user, an email address) has a
//! bucket of `limit` tokens that refills evenly over the window; a request
//! without a token is told how long until the next one.
//!
//! Counted in this process: on several machines each applies the limit to
//! the requests it sees.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::settings::Limits;

/// Buckets kept before full ones (senders quiet for a whole window) are
/// forgotten.
const MAX_KEYS: usize = 10_000;

#[derive(Debug)]
pub struct RateLimiter {
    /// Tokens per window; 0 means no limit.
    limit: u32,
    window: Duration,
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimiter {
    pub fn new(limit: u32, window: Duration) -> Self {
        Self { limit, window, buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes a token for `key`, or says how long until one is free.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        self.check_at(key, Instant::now())
    }

    /// Whether `key` has a token now, without taking it.
    pub fn would_allow(&self, key: &str) -> bool {
        self.limit == 0 || self.refilled(key, Instant::now()).tokens >= 1.0
    }

    pub fn check_at(&self, key: &str, now: Instant) -> Result<(), Duration> {
        if self.limit == 0 {
            return Ok(());
        }
        let mut bucket = self.refilled(key, now);
        let result = if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / self.per_second()).max(Duration::from_secs(1)))
        };
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_KEYS {
            let (limit, rate) = (self.limit as f64, self.per_second());
            buckets.retain(|_, b| b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate < limit);
        }
        buckets.insert(key.to_owned(), bucket);
        result
    }

    fn refilled(&self, key: &str, now: Instant) -> Bucket {
        let buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let limit = self.limit as f64;
        match buckets.get(key) {
            None => Bucket { tokens: limit, at: now },
            Some(b) => {
                let gained = now.saturating_duration_since(b.at).as_secs_f64() * self.per_second();
                Bucket { tokens: (b.tokens + gained).min(limit), at: now }
            }
        }
    }

    fn per_second(&self) -> f64 {
        self.limit as f64 / self.window.as_secs_f64()
    }
}

/// The limits Storytime applies, from settings.
#[derive(Debug)]
pub struct RateLimits {
    /// Uploads (REST requests or chat photos) per sender per minute.
    pub uploads: RateLimiter,
    /// Slash commands per chat user per minute.
    pub commands: RateLimiter,
    /// Emails sent on request (`/bulk`, address confirmations) per hour,
    /// counted both per sender and per address.
    pub mail: RateLimiter,
}

impl RateLimits {
    pub fn new(limits: &Limits) -> Self {
        let minute = Duration::from_secs(60);
        Self {
            uploads: RateLimiter::new(limits.uploads_per_minute, minute),
            commands: RateLimiter::new(limits.commands_per_minute, minute),
            mail: RateLimiter::new(limits.mail_per_hour, Duration::from_secs(3600)),
        }
    }

    /// Takes a mail token for the sender and one for the address, or none.
    pub fn mail(&self, sender: &str, address: &str) -> Result<(), Duration> {
        let (sender, address) = (format!("from:{sender}"), format!("to:{}", address.to_ascii_lowercase()));
        if !self.mail.would_allow(&address) {
            return self.mail.check(&address);
        }
        self.mail.check(&sender)?;
        self.mail.check(&address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sender_gets_its_limit_then_waits_for_the_refill() {
        let limiter = RateLimiter::new(3, Duration::from_secs(60));
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check_at("a", t0).is_ok());
        }
        let wait = limiter.check_at("a", t0).unwrap_err();
        assert!((19..=21).contains(&wait.as_secs()), "{wait:?}");
        // Others are not affected.
        assert!(limiter.check_at("b", t0).is_ok());
        // A token comes back after a third of the window.
        assert!(limiter.check_at("a", t0 + Duration::from_secs(21)).is_ok());
        assert!(limiter.check_at("a", t0 + Duration::from_secs(21)).is_err());
    }

    #[test]
    fn zero_means_no_limit() {
        let limiter = RateLimiter::new(0, Duration::from_secs(60));
        assert!((0..10_000).all(|_| limiter.check("a").is_ok()));
    }

    #[test]
    fn mail_counts_per_sender_and_per_address() {
        let limits = RateLimits {
            uploads: RateLimiter::new(0, Duration::from_secs(60)),
            commands: RateLimiter::new(0, Duration::from_secs(60)),
            mail: RateLimiter::new(2, Duration::from_secs(3600)),
        };
        assert!(limits.mail("u1", "a@example.com").is_ok());
        assert!(limits.mail("u2", "A@example.com").is_ok());
        // The address has had its two; a third sender cannot add a third.
        assert!(limits.mail("u3", "a@example.com").is_err());
        // u1 still has one for another address, then none.
        assert!(limits.mail("u1", "b@example.com").is_ok());
        assert!(limits.mail("u1", "c@example.com").is_err());
    }
}
