//! The Lambda layer `scripts/tesseract-layer` builds runs where nothing
//! else is: unpacked as Lambda unpacks it (under /opt) in an otherwise empty
//! root holding only a static shell, Storytime reads an English page, a page
//! upside down and a Korean page through it. So the layer brings every
//! library it loads, the C library included, and does not depend on the
//! one of the machine it runs on (Amazon Linux 2023's is older than the one
//! Debian's Tesseract was built with).

use std::path::Path;
use std::process::Command;

use storytime_tests::{Page, cer, render_page, run_storytime};

/// The layer unpacked under `root/opt`, with a static busybox as the root's
/// only other file, and a program that runs the layer's Tesseract there.
fn layer_in_empty_root(dir: &Path) -> std::path::PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let zip = dir.join("tesseract-layer.zip");
    let build = Command::new(workspace.join("scripts/tesseract-layer")).arg(&zip).output().expect("run the script");
    let printed = String::from_utf8_lossy(&build.stdout);
    assert!(build.status.success(), "{printed}{}", String::from_utf8_lossy(&build.stderr));
    assert!(printed.contains("aws lambda publish-layer-version"), "{printed}");

    let root = dir.join("root");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    let unzip = Command::new("unzip").arg("-q").arg(&zip).arg("-d").arg(root.join("opt")).status().unwrap();
    assert!(unzip.success());
    std::fs::copy("/bin/busybox", root.join("bin/sh")).expect("busybox-static (scripts/test installs it)");
    let listing = std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().file_name()).collect::<Vec<_>>();
    assert_eq!(listing.len(), 2, "the root holds only bin/sh and the layer: {listing:?}");

    let shim = dir.join("tesseract-in-layer");
    let script =
        format!("#!/bin/sh\nexec unshare --map-root-user --root='{}' /opt/bin/tesseract \"$@\"\n", root.display());
    std::fs::write(&shim, script).unwrap();
    Command::new("chmod").arg("755").arg(&shim).status().unwrap();
    shim
}

#[test]
fn the_tesseract_layer_reads_pages_in_a_root_without_a_c_library() {
    let dir = tempfile::tempdir().unwrap();
    let tesseract = layer_in_empty_root(dir.path());
    let tesseract = tesseract.to_str().unwrap();

    let version = Command::new(tesseract).arg("--version").output().unwrap();
    let version = String::from_utf8_lossy(&version.stdout);
    assert!(version.starts_with("tesseract 5."), "{version}");

    let first = Page::new(&["Once upon a time a small boat sailed out to sea."]);
    let second = Page::new(&["At night the boat came home, and everyone cheered."]).rotated(180);
    let korean =
        Page::new(&["옛날 옛적에 깊은 산속에 호랑이 한 마리가", "살았어요. 호랑이는 배가 고파서 마을로 내려갔어요."])
            .korean();
    let paths: Vec<String> = [&first, &second, &korean]
        .iter()
        .enumerate()
        .map(|(i, page)| {
            let path = dir.path().join(format!("p{i}.png"));
            std::fs::write(&path, render_page(page)).unwrap();
            path.to_str().unwrap().to_owned()
        })
        .collect();
    let env = [("STORYTIME_TESSERACT", tesseract)];

    let out = dir.path().join("book.mp3");
    let run = run_storytime(&["narrate", &paths[0], &paths[1], "--out", out.to_str().unwrap()], &env);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let text = String::from_utf8(run.stdout).unwrap();
    let want = format!("{} {}", first.text(), second.text());
    assert!(cer(&text, &want) < 0.05, "read {text:?}");

    let out = dir.path().join("korean.mp3");
    let run = run_storytime(&["narrate", &paths[2], "--out", out.to_str().unwrap()], &env);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let text = String::from_utf8(run.stdout).unwrap();
    assert!(cer(&text, &korean.text()) < 0.1, "read {text:?}");
}
