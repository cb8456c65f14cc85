//! Reading accuracy on real photos: runs `storytime narrate` on each photo
//! listed in `truth.json` and prints the character error rate against the
//! true text (quotes and dashes normalised, whitespace collapsed), plus
//! the narration's length.
//!
//! `cargo bench -p storytime-tests --bench accuracy -- [FOLDER]`: the folder
//! holds the photos and a `truth.json` of `{"file", "text"}` entries;
//! without one, the pages the project renders itself are read.

use std::process::Command;

use serde_json::Value;
use storytime_tests::{cer, mp3_seconds, photo_folder, storytime_bin};

fn main() {
    let (dir, _generated) = photo_folder();
    let truth: Vec<Value> = serde_json::from_str(
        &std::fs::read_to_string(dir.join("truth.json"))
            .unwrap_or_else(|e| panic!("{}/truth.json: {e}", dir.display())),
    )
    .expect("truth.json is a JSON array");
    let out = tempfile::tempdir().expect("temp dir");
    let mut rates = Vec::new();
    println!("{:<16} {:>6} {:>8}  notes", "photo", "CER", "audio");
    for entry in &truth {
        let file = entry["file"].as_str().expect("file");
        let mp3 = out.path().join("page.mp3");
        let run = Command::new(storytime_bin())
            .arg("narrate")
            .arg(dir.join(file))
            .arg("--out")
            .arg(&mp3)
            .env("RUST_LOG", "warn")
            .output()
            .expect("run storytime narrate");
        if !run.status.success() {
            println!("{file:<16}  failed: {}", String::from_utf8_lossy(&run.stderr).trim());
            continue;
        }
        let rate = cer(&String::from_utf8_lossy(&run.stdout), entry["text"].as_str().expect("text"));
        let seconds = mp3_seconds(&std::fs::read(&mp3).expect("the MP3 was written"));
        let duplicate = entry.get("duplicate_of").and_then(Value::as_str);
        println!(
            "{file:<16} {:>5.1}% {seconds:>7.1}s  {}",
            rate * 100.0,
            duplicate.map(|d| format!("same page as {d}")).unwrap_or_default()
        );
        if duplicate.is_none() {
            rates.push(rate);
        }
    }
    if !rates.is_empty() {
        let mean = rates.iter().sum::<f64>() / rates.len() as f64;
        let worst = rates.iter().cloned().fold(0.0, f64::max);
        println!("mean CER over {} distinct pages: {:.1}%, worst {:.1}%", rates.len(), mean * 100.0, worst * 100.0);
    }
}
