//! Support for Storytime's end-to-end tests: the real `storytime` binary on
//! a free loopback port with its own data directory, page images rendered
//! with known text, an MP3 decoder to check what comes back, and the
//! character error rate used to judge a reading.

pub mod aws_proxy;
pub mod browser;
pub mod fake_slack;
pub mod lambda_runtime;
pub mod moto;
pub mod pages;
pub mod server;
pub mod slack_sign;
pub mod stats;
pub mod text;
pub mod traffic;

pub use pages::{Page, blank_page, photo_folder, render_page, sample_book, with_comment, write_sample_book};
pub use server::{LIMIT, Server, piper_env, run_storytime, storytime_bin};
pub use text::{cer, mp3_seconds};
