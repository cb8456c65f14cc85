//! `storytime doctor`: what is present, what is missing, and how to fix it.

use std::process::ExitCode;

use storytime_pipeline::settings::Settings;
use tokio::process::Command;

enum Verdict {
    Ok,
    /// Works, but worth knowing.
    Note,
    Missing,
}

struct Check {
    verdict: Verdict,
    what: String,
    detail: String,
    fix: Option<String>,
}

impl Check {
    fn ok(what: &str, detail: impl Into<String>) -> Self {
        Self { verdict: Verdict::Ok, what: what.into(), detail: detail.into(), fix: None }
    }
    fn note(what: &str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self { verdict: Verdict::Note, what: what.into(), detail: detail.into(), fix: Some(fix.into()) }
    }
    fn missing(what: &str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self { verdict: Verdict::Missing, what: what.into(), detail: detail.into(), fix: Some(fix.into()) }
    }
}

pub async fn run(settings: Settings) -> anyhow::Result<ExitCode> {
    let mut checks = Vec::new();
    if settings.backends.uses_data_dir() {
        checks.push(data_dir(&settings));
    }
    checks.extend([
        tesseract(&settings).await,
        espeak(&settings).await,
        mp3_encoder(),
        listen(&settings),
        api_keys(&settings),
        slack(&settings).await,
    ]);
    if settings.backends.uses_aws() {
        checks.extend(aws(&settings).await);
    }
    let mut missing = 0;
    for c in &checks {
        let mark = match c.verdict {
            Verdict::Ok => "ok     ",
            Verdict::Note => "note   ",
            Verdict::Missing => {
                missing += 1;
                "MISSING"
            }
        };
        println!("{mark} {:<12} {}", c.what, c.detail);
        if let Some(fix) = &c.fix {
            println!("        {:<12} fix: {fix}", "");
        }
    }
    if missing > 0 {
        println!("\n{missing} problem(s) found.");
        Ok(ExitCode::FAILURE)
    } else {
        println!("\nEverything Storytime needs is here.");
        Ok(ExitCode::SUCCESS)
    }
}

/// The AWS resources the configured backends use: each must exist and be
/// usable with the current credentials.
async fn aws(settings: &Settings) -> Vec<Check> {
    use storytime_pipeline::adapters::aws::{PollyNarrator, S3BlobStore, SnsNotifier, SqsQueue};
    use storytime_pipeline::settings::{BlobsBackend, JobsBackend, NarratorBackend, NotifierBackend, QueueBackend};

    let sdk = storytime_pipeline::wiring::aws_config().await;
    let mut checks = Vec::new();
    let Some(region) = sdk.region().map(|r| r.to_string()) else {
        checks.push(Check::missing("aws", "no region configured", "set AWS_REGION (e.g. us-east-1)"));
        return checks;
    };
    let endpoint = sdk.endpoint_url().map(|e| format!(" at {e}")).unwrap_or_default();
    checks.push(Check::ok("aws", format!("region {region}{endpoint}")));
    let b = settings.backends;
    let aws = &settings.aws;
    if b.blobs == BlobsBackend::S3 {
        let result = S3BlobStore::new(&sdk, &aws.bucket, aws.cdn_url.clone()).check().await;
        checks.push(aws_check("s3", format!("bucket {}", aws.bucket), result, "s3:ListBucket on the bucket"));
    }
    if b.queue == QueueBackend::Sqs {
        let queues = SqsQueue::new(&sdk, &aws.queue_prefix);
        let problems = queues.check().await;
        let what = format!("queues {}<stage> and their -dlq", aws.queue_prefix);
        let result = match problems.into_iter().next() {
            None => Ok(()),
            Some((name, e)) => Err(storytime_pipeline::PortError::rejected(name, e)),
        };
        checks.push(aws_check("sqs", what, result, "sqs:GetQueueUrl on the queues"));
    }
    if b.jobs == JobsBackend::DynamoDb {
        let result = storytime_pipeline::wiring::dynamo(&sdk, settings).check().await;
        checks.push(aws_check(
            "dynamodb",
            format!("table {}", aws.table),
            result,
            "dynamodb:DescribeTable on the table",
        ));
    }
    if b.notifier == NotifierBackend::Sns {
        let result = SnsNotifier::new(&sdk, &aws.topic).arn().await.map(drop);
        checks.push(aws_check(
            "sns",
            format!("topic {}", aws.topic),
            result,
            "sns:ListTopics, or set STORYTIME_SNS_TOPIC to the topic's ARN",
        ));
    }
    if b.narrator == NarratorBackend::Polly {
        let result = PollyNarrator::new(&sdk, &aws.polly_engine).check().await;
        checks.push(aws_check("polly", format!("{} voices", aws.polly_engine), result, "polly:DescribeVoices"));
    }
    if b.reader != storytime_pipeline::settings::ReaderBackend::Tesseract {
        checks.push(Check::note(
            "ocr",
            format!("{:?} is used for Latin pages; Korean pages are read by Tesseract", b.reader),
            "install Tesseract where the read stage runs (see deploy/README.md)",
        ));
    }
    checks
}

/// One AWS resource's verdict: a missing resource points at `storytime
/// init`, a refusal names the permission to grant.
fn aws_check(
    what: &str,
    resource: String,
    result: Result<(), storytime_pipeline::PortError>,
    permission: &str,
) -> Check {
    match result {
        Ok(()) => Check::ok(what, resource),
        Err(e) => {
            let text = e.to_string();
            let fix = if text.contains("AccessDenied") || text.contains("not authorized") || text.contains("Forbidden")
            {
                format!("grant {permission} to this role")
            } else if text.contains("does not exist") || text.contains("NotFound") || text.contains("NonExistent") {
                "run `storytime init`".to_owned()
            } else {
                "check the credentials, the region and AWS_ENDPOINT_URL".to_owned()
            };
            Check::missing(what, format!("{resource}: {text}"), fix)
        }
    }
}

fn data_dir(settings: &Settings) -> Check {
    let dir = &settings.data_dir;
    let probe = dir.join(".doctor-probe");
    let result = std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&probe, b"ok"))
        .and_then(|()| std::fs::remove_file(&probe));
    match result {
        Ok(()) => Check::ok("data dir", format!("{} is writable", dir.display())),
        Err(e) => Check::missing(
            "data dir",
            format!("{}: {e}", dir.display()),
            "set STORYTIME_DATA_DIR to a writable directory",
        ),
    }
}

async fn output(program: &str, args: &[&str]) -> Result<String, std::io::Error> {
    let out = Command::new(program).args(args).output().await?;
    Ok(format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

async fn tesseract(settings: &Settings) -> Check {
    let install = "sudo apt-get install tesseract-ocr tesseract-ocr-eng tesseract-ocr-kor tesseract-ocr-osd";
    let program = &settings.tesseract;
    let version = match output(program, &["--version"]).await {
        Ok(v) => v,
        Err(_) => return Check::missing("tesseract", format!("`{program}` not found"), install),
    };
    let version = version.lines().next().unwrap_or("").trim().to_owned();
    let major: u32 =
        version.split_whitespace().nth(1).and_then(|v| v.split('.').next()).and_then(|v| v.parse().ok()).unwrap_or(0);
    if major < 5 {
        return Check::missing("tesseract", format!("{version}: version 5 or newer is needed"), install);
    }
    let langs = output(program, &["--list-langs"]).await.unwrap_or_default();
    let have: Vec<&str> = langs.lines().skip(1).map(str::trim).collect();
    let lacking: Vec<&str> = ["eng", "kor", "osd"].into_iter().filter(|l| !have.contains(l)).collect();
    if lacking.is_empty() {
        Check::ok("tesseract", format!("{version} with eng, kor, osd"))
    } else {
        let packages: Vec<String> = lacking.iter().map(|l| format!("tesseract-ocr-{l}")).collect();
        Check::missing(
            "tesseract",
            format!("{version}, but language data is missing: {}", lacking.join(", ")),
            format!("sudo apt-get install {}", packages.join(" ")),
        )
    }
}

async fn espeak(settings: &Settings) -> Check {
    let program = &settings.espeak;
    match output(program, &["--version"]).await {
        Ok(v) => {
            let voices = output(program, &["--voices"]).await.unwrap_or_default();
            let has_korean = voices.lines().any(|l| l.split_whitespace().nth(1) == Some("ko"));
            let version = v.lines().next().unwrap_or("").trim().to_owned();
            if has_korean {
                Check::ok("espeak-ng", format!("{version}; voices: en-us, en-us-f, en-gb, en-gb-f, ko, ko-f"))
            } else {
                Check::note(
                    "espeak-ng",
                    format!("{version}, without a Korean voice"),
                    "sudo apt-get install espeak-ng-data",
                )
            }
        }
        Err(_) => Check::missing("espeak-ng", format!("`{program}` not found"), "sudo apt-get install espeak-ng"),
    }
}

fn mp3_encoder() -> Check {
    match storytime_pipeline::audio::encode(&[0; 2205], 22050) {
        Ok(bytes) if !bytes.is_empty() => Check::ok("mp3", "LAME encoder built in"),
        Ok(_) | Err(_) => Check::missing("mp3", "the built-in MP3 encoder does not work", "rebuild storytime"),
    }
}

fn listen(settings: &Settings) -> Check {
    Check::ok("http", format!("serves on {}, links start with {}", settings.listen, settings.public_url()))
}

fn api_keys(settings: &Settings) -> Check {
    if !settings.api_keys.is_empty() {
        Check::ok("api keys", format!("{} key(s) required on /upload, /retrieve, /bulk", settings.api_keys.len()))
    } else if settings.listen.ip().is_loopback() {
        Check::ok("api keys", "none set; the API is open, which is fine on loopback")
    } else {
        Check::note("api keys", "none set, and the API listens beyond this machine", "set STORYTIME_API_KEYS=key1,key2")
    }
}

async fn slack(settings: &Settings) -> Check {
    let setup = "create the app from manifest.yml and set SLACK_SIGNING_SECRET and SLACK_BOT_TOKEN (README, Slack)";
    let Some(slack) = &settings.slack else {
        return Check::note("slack", "not configured: only the REST API is served", setup);
    };
    if !slack.bot_token.expose().starts_with("xoxb-") {
        return Check::missing(
            "slack",
            "SLACK_BOT_TOKEN is not a bot token (xoxb-…)",
            "copy the Bot User OAuth Token from OAuth & Permissions",
        );
    }
    let mode = match &slack.app_token {
        Some(_) => "Socket Mode".to_owned(),
        None => format!("HTTP at {}/slack/events", settings.public_url()),
    };
    let hosts = crate::slack::SlackHosts::new(&slack.api_url);
    let api = match crate::slack::SlackApi::new(&slack.api_url, &slack.bot_token, hosts) {
        Ok(api) => api,
        Err(e) => return Check::missing("slack", format!("cannot set up TLS: {e}"), "install ca-certificates"),
    };
    match tokio::time::timeout(std::time::Duration::from_secs(10), api.whoami()).await {
        Ok(Ok((team, user))) => Check::ok("slack", format!("bot {user} in workspace {team}; {mode}")),
        Ok(Err(e)) => {
            let fix = match e.code() {
                Some(_) => "reinstall the app and copy its current Bot User OAuth Token",
                None => "check the network, or SLACK_API_URL",
            };
            Check::missing("slack", format!("{e} (at {})", slack.api_url), fix)
        }
        Err(_) => Check::missing(
            "slack",
            format!("{} did not answer within 10 s", slack.api_url),
            "check the network, or SLACK_API_URL",
        ),
    }
}
