//! `storytime`: the one binary. `serve` runs the HTTP front end and every
//! worker in one process; the other commands run parts of it.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use storytime_bot::settings::Settings;
use storytime_bot::{cli, telemetry};

/// Storytime reads photographed book pages aloud.
#[derive(Parser)]
#[command(name = "storytime", version, about, long_about = None)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP API and all workers (configured by STORYTIME_* variables).
    Serve,
    /// Run workers only: `inbound`, `read`, `narrate`, `deliver` or `all`.
    Worker {
        #[arg(default_value = "all")]
        stage: String,
    },
    /// Read photos of pages (one book, in the given order), print the text
    /// and write one MP3.
    Narrate {
        /// The page photos, in reading order.
        #[arg(required = true)]
        images: Vec<PathBuf>,
        /// Where to write the MP3.
        #[arg(long, short)]
        out: PathBuf,
        /// A voice name (see `storytime doctor`); default: by language.
        #[arg(long)]
        voice: Option<String>,
        /// Reading speed from 0.5 to 1.5 (1.0 is the voice's own pace).
        #[arg(long, default_value = "1.0")]
        speed: storytime_pipeline::Speed,
    },
    /// Run as a Lambda function: `api`, `inbound`, `read`, `narrate`,
    /// `deliver` or `sweep`. As a function's `bootstrap` (no arguments) the
    /// function comes from its handler setting.
    #[cfg(feature = "aws")]
    Lambda { function: String },
    /// Create what the configured backends need (idempotent).
    Init,
    /// Check engines, directories and settings; say how to fix what is missing.
    Doctor,
}

/// Page images are large, short-lived buffers made on many threads. glibc
/// raises its mmap threshold each time such a buffer is freed, so later
/// ones land in per-thread arenas that keep the memory: measured here, the
/// process grew from 60 MB to over 400 MB over two dozen pages. A fixed
/// threshold sends every buffer above 256 KiB to mmap, which returns it.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn return_large_buffers_to_the_system() {
    // SAFETY: mallopt only changes allocator tuning; it is called before any
    // other thread exists, as glibc asks.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn return_large_buffers_to_the_system() {}

fn main() -> ExitCode {
    return_large_buffers_to_the_system();
    // Every TLS client here (Slack, the AWS SDK, downloads) uses rustls on
    // ring; naming it as the default keeps it so should a dependency ever
    // bring a second provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime").block_on(run())
}

/// What the service writes (database, journal, photos, audio, mail, keys)
/// is readable by its owner only: files 0600, folders 0700.
#[cfg(unix)]
#[allow(unsafe_code)]
fn keep_files_private() {
    // SAFETY: umask only sets the process's file creation mask.
    unsafe {
        libc::umask(0o077);
    }
}

#[cfg(not(unix))]
fn keep_files_private() {}

/// Started by the Lambda runtime as `bootstrap`, without arguments: the
/// function's handler setting names what to run.
#[cfg(feature = "aws")]
fn lambda_bootstrap() -> Option<Args> {
    if std::env::args_os().len() > 1 || std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_none() {
        return None;
    }
    let function = std::env::var("_HANDLER").unwrap_or_else(|_| "api".into());
    Some(Args { command: Command::Lambda { function } })
}

#[cfg(not(feature = "aws"))]
fn lambda_bootstrap() -> Option<Args> {
    None
}

async fn run() -> ExitCode {
    let args = lambda_bootstrap().unwrap_or_else(Args::parse);
    let (secrets, source) = match storytime_bot::secrets::secret_settings().await {
        Ok(found) => found,
        Err(e) => {
            eprintln!("storytime: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let mut settings = match Settings::from_env_and(&secrets) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("storytime: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    settings.secrets = source;
    let _logs = telemetry::init_logs(&settings.telemetry);
    for (name, closest) in &settings.unknown {
        tracing::warn!("{name} is not a Storytime setting and is ignored; did you mean {closest}?");
    }
    // `narrate` writes the user's own file, with the user's own mask.
    if !matches!(args.command, Command::Narrate { .. } | Command::Doctor) {
        keep_files_private();
    }
    let result = match args.command {
        Command::Serve => cli::serve::run(settings).await,
        Command::Worker { stage } => cli::worker::run(settings, &stage).await,
        Command::Narrate { images, out, voice, speed } => cli::narrate::run(settings, images, out, voice, speed).await,
        #[cfg(feature = "aws")]
        Command::Lambda { function } => cli::lambda::run(settings, &function).await,
        Command::Init => cli::init::run(settings).await,
        Command::Doctor => cli::doctor::run(settings).await,
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("storytime: {e:#}");
            ExitCode::FAILURE
        }
    }
}
