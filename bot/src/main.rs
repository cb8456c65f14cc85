//! `storytime`: the one binary. `serve` runs the HTTP front end and every
//! worker in one process; the other commands run parts of it.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use storytime_bot::{cli, telemetry};
use storytime_pipeline::settings::Settings;

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
    /// Run workers only: `read`, `narrate`, `deliver` or `all`.
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
    },
    /// Create what the configured backend needs (idempotent).
    Init,
    /// Check engines, directories and settings; say how to fix what is missing.
    Doctor,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    telemetry::init();
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("storytime: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match args.command {
        Command::Serve => cli::serve::run(settings).await,
        Command::Worker { stage } => cli::worker::run(settings, &stage).await,
        Command::Narrate { images, out, voice } => cli::narrate::run(settings, images, out, voice).await,
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
