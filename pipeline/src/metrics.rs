//! The metrics Storytime records, through the `metrics` facade. Their names
//! and labels are part of the external contract (dashboards and alerts use
//! them), so they are spelled once, here. Which recorder receives them is
//! the binary's choice (Prometheus on one machine, CloudWatch's embedded
//! metric format on Lambda); without one, recording costs nothing.

use std::future::Future;
use std::time::{Duration, Instant};

use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};

use crate::domain::{ErrorKind, PortError, Stage};
use crate::ports::QueueDepth;

pub const STAGE_DURATION: &str = "storytime_stage_duration_seconds";
pub const STAGE_WAIT: &str = "storytime_stage_wait_seconds";
pub const JOB_DURATION: &str = "storytime_job_duration_seconds";
pub const JOBS: &str = "storytime_jobs_total";
pub const QUEUE_DEPTH: &str = "storytime_queue_depth";
pub const QUEUE_OLDEST_AGE: &str = "storytime_queue_oldest_age_seconds";
pub const ENGINE_CALLS: &str = "storytime_engine_calls_total";
pub const ENGINE_DURATION: &str = "storytime_engine_duration_seconds";
pub const HTTP_REQUESTS: &str = "storytime_http_requests_total";
pub const HTTP_DURATION: &str = "storytime_http_request_duration_seconds";
pub const SLACK_CALLS: &str = "storytime_slack_api_calls_total";
pub const SLACK_RATE_LIMITED: &str = "storytime_slack_rate_limited_seconds_total";
pub const SLACK_REPEATS_AVOIDED: &str = "storytime_slack_repeats_avoided_total";
pub const BUILD_INFO: &str = "storytime_build_info";

/// Every histogram's buckets, in seconds: from a millisecond (an HTTP
/// answer) to five minutes (a long book waiting its turn).
pub const BUCKETS: &[f64] =
    &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0];

/// How jobs end, as counted by [`JOBS`].
pub const OUTCOMES: &[&str] = &["done", "no_text", "failed", "duplicate"];

/// Describes every metric, and starts the counters at zero so dashboards
/// and alerts see a series before the first event. Called once by the
/// binary after installing its recorder.
pub fn describe(version: &'static str) {
    describe_histogram!(STAGE_DURATION, Unit::Seconds, "Work time of each stage's handling of one message.");
    describe_histogram!(STAGE_WAIT, Unit::Seconds, "Time a message waited in its queue before a worker took it.");
    describe_histogram!(JOB_DURATION, Unit::Seconds, "From the job's creation to its last delivery, by outcome.");
    describe_counter!(JOBS, "Jobs ended, by outcome; `duplicate` counts submissions that joined an earlier job.");
    describe_gauge!(QUEUE_DEPTH, "Messages per stage: waiting, in flight, and in the dead-letter queue.");
    describe_gauge!(QUEUE_OLDEST_AGE, Unit::Seconds, "Age of the oldest waiting (queue=main) or dead message.");
    describe_counter!(ENGINE_CALLS, "Calls to the reading and narrating engines, by outcome (ok, throttled, error).");
    describe_histogram!(ENGINE_DURATION, Unit::Seconds, "Time of one engine call.");
    describe_counter!(HTTP_REQUESTS, "HTTP requests answered, by route template and status.");
    describe_histogram!(HTTP_DURATION, Unit::Seconds, "Time to answer an HTTP request, by route template.");
    describe_counter!(SLACK_CALLS, "Slack Web API calls, by method and outcome (ok, rate_limited, or Slack's error).");
    describe_counter!(SLACK_RATE_LIMITED, Unit::Seconds, "Seconds spent waiting out Slack's rate limits.");
    describe_counter!(
        SLACK_REPEATS_AVOIDED,
        "Deliveries retried after an interruption that found their result already in the thread."
    );
    describe_gauge!(BUILD_INFO, "Always 1, labelled with the running version.");
    gauge!(BUILD_INFO, "version" => version).set(1.0);
    for outcome in OUTCOMES {
        counter!(JOBS, "outcome" => *outcome).absolute(0);
    }
    counter!(SLACK_RATE_LIMITED).absolute(0);
    counter!(SLACK_REPEATS_AVOIDED).absolute(0);
}

/// A stage handled one message in `elapsed`.
pub fn stage_handled(stage: Stage, elapsed: Duration) {
    histogram!(STAGE_DURATION, "stage" => stage.name()).record(elapsed.as_secs_f64());
}

/// A message of `stage` was received after waiting `waited` in its queue.
pub fn stage_waited(stage: Stage, waited: Duration) {
    histogram!(STAGE_WAIT, "stage" => stage.name()).record(waited.as_secs_f64());
}

/// A job ended (`done`, `no_text`, `failed`) or a submission joined an
/// earlier job (`duplicate`).
pub fn job_ended(outcome: &'static str) {
    counter!(JOBS, "outcome" => outcome).increment(1);
}

/// A job's last delivery was made (or it had none to make), `elapsed`
/// after its creation.
pub fn job_delivered(outcome: &'static str, elapsed: Duration) {
    histogram!(JOB_DURATION, "outcome" => outcome).record(elapsed.as_secs_f64());
}

/// A queue's depth, as gauges (refreshed when metrics are read).
pub fn queue_depth(stage: Stage, depth: &QueueDepth) {
    let name = stage.name();
    gauge!(QUEUE_DEPTH, "stage" => name, "state" => "waiting").set(depth.waiting as f64);
    gauge!(QUEUE_DEPTH, "stage" => name, "state" => "in_flight").set(depth.in_flight as f64);
    gauge!(QUEUE_DEPTH, "stage" => name, "state" => "dead").set(depth.dead as f64);
    let age = |d: Option<Duration>| d.map_or(0.0, |d| d.as_secs_f64());
    gauge!(QUEUE_OLDEST_AGE, "stage" => name, "queue" => "main").set(age(depth.oldest_waiting));
    gauge!(QUEUE_OLDEST_AGE, "stage" => name, "queue" => "dead").set(age(depth.oldest_dead));
}

/// Runs one call to an engine (`tesseract`, `espeak`, `rekognition`, …),
/// counting it by outcome and timing it.
pub async fn engine_call<T>(
    engine: &'static str,
    call: impl Future<Output = Result<T, PortError>>,
) -> Result<T, PortError> {
    let start = Instant::now();
    let result = call.await;
    let outcome = match &result {
        Ok(_) => "ok",
        Err(e) if e.kind() == ErrorKind::Throttled => "throttled",
        Err(_) => "error",
    };
    counter!(ENGINE_CALLS, "engine" => engine, "outcome" => outcome).increment(1);
    histogram!(ENGINE_DURATION, "engine" => engine).record(start.elapsed().as_secs_f64());
    result
}
