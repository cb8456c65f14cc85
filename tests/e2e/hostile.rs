//! Clients that do not play fair: slow, idle, too many, too large. Each
//! test ends by checking that the server still answers normally.

use std::time::{Duration, Instant};

use storytime_tests::Server;
use storytime_tests::fake_slack::FakeSlack;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn connect(server: &Server) -> TcpStream {
    TcpStream::connect(server.base.trim_start_matches("http://")).await.expect("connect to the server")
}

/// Reads until the server closes the connection; returns what it sent
/// and how long that took. Fails the test after `limit`.
async fn until_closed(stream: &mut TcpStream, limit: Duration) -> (String, Duration) {
    let start = Instant::now();
    let mut got = Vec::new();
    let read = tokio::time::timeout(limit, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the server kept the connection open for {limit:?}");
    (String::from_utf8_lossy(&got).into_owned(), start.elapsed())
}

/// A connection that has sent the head of a Slack event declaring
/// `length` bytes of body, and none of the body: a fresh timestamp and a
/// signature that looks right, so only the body can tell it is forged.
async fn slack_post_head(server: &Server, length: u64) -> TcpStream {
    let mut stream = connect(server).await;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let head = format!(
        "POST /slack/events HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         X-Slack-Request-Timestamp: {now}\r\nX-Slack-Signature: v0={}\r\n\
         Content-Length: {length}\r\n\r\n",
        "0".repeat(64)
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
}

async fn answers_normally(server: &Server) {
    let r = server.http.get(server.url("/healthz")).send().await.expect("healthz after the attack");
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_cut_off_within_10_s() {
    let server = Server::start(&[]);
    let mut half = connect(&server).await;
    half.write_all(b"GET /healthz HT").await.unwrap();
    let mut silent = connect(&server).await;
    let (sent, took) = until_closed(&mut half, Duration::from_secs(20)).await;
    assert!(sent.is_empty(), "no answer to half a request: {sent:?}");
    assert!(took >= Duration::from_secs(9) && took <= Duration::from_secs(12), "closed after {took:?}");
    let (_, took) = until_closed(&mut silent, Duration::from_secs(5)).await;
    assert!(took <= Duration::from_secs(5), "a connection that sent nothing was closed too");
    answers_normally(&server).await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_and_a_busy_one_is_not() {
    let server = Server::start(&[("STORYTIME_IDLE_TIMEOUT", "2")]);
    let mut conn = connect(&server).await;
    // Requests on one connection, each within the idle limit, keep it.
    for _ in 0..3 {
        conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n").await.unwrap();
        let mut buf = [0u8; 4096];
        let n = conn.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"), "kept alive");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (sent, took) = until_closed(&mut conn, Duration::from_secs(10)).await;
    assert!(sent.is_empty(), "{sent:?}");
    assert!(took >= Duration::from_millis(1400) && took <= Duration::from_secs(4), "closed after {took:?}");
    answers_normally(&server).await;
}

#[tokio::test]
async fn connections_over_the_cap_get_503_and_the_server_recovers() {
    let server = Server::start(&[("STORYTIME_MAX_CONNECTIONS", "4"), ("STORYTIME_HEADER_TIMEOUT", "60")]);
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(connect(&server).await);
    }
    // The four are accepted before the fifth: each is answered once it asks.
    held[0].write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 4096];
    let n = held[0].read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));

    let mut over = connect(&server).await;
    let (answer, _) = until_closed(&mut over, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("retry-after: 1"), "{answer}");
    // Still at the cap. (A client that writes its request while the 503 is
    // already on its way may see the connection close instead; a raw
    // connection reads the answer either way.)
    let (again, _) = until_closed(&mut connect(&server).await, Duration::from_secs(5)).await;
    assert!(again.starts_with("HTTP/1.1 503"), "still at the cap: {again}");

    drop(held);
    // The server notices the closed connections and takes new ones.
    let start = Instant::now();
    loop {
        let r = reqwest::Client::new().get(server.url("/healthz")).send().await;
        if r.is_ok_and(|r| r.status() == 200) {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "the server did not recover");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_slack_body_declared_too_large_is_refused_unread_and_a_trickled_one_times_out() {
    let fake = FakeSlack::start().await;
    let server = Server::start_with(&fake.env(), &[]);

    let mut big = slack_post_head(&server, 5_000_000).await;
    // Not a byte of the body is sent: the answer comes anyway.
    let (answer, took) = until_closed(&mut big, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(took < Duration::from_secs(2), "{took:?}");

    // 100 bytes of a declared 100,000 and then nothing: 408 after the
    // 10 s grace, well before the 10 minutes a silent client would like.
    let mut slow = slack_post_head(&server, 100_000).await;
    slow.write_all(&[b' '; 100]).await.unwrap();
    let (answer, took) = until_closed(&mut slow, Duration::from_secs(30)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(took >= Duration::from_secs(9) && took <= Duration::from_secs(16), "{took:?}");
    answers_normally(&server).await;
}

/// Requests refused before their body is read (a forged upload link, a
/// photo over the limit) get their answer, every time, and the client's
/// next request on its pool of kept-alive connections goes through: the
/// server says it closes such a connection, and reads what is still
/// coming before it closes, so the close does not reset it.
#[tokio::test]
async fn refusals_of_unread_bodies_arrive_and_the_next_request_goes_through() {
    let server = Server::start(&[("STORYTIME_MAX_UPLOAD_BYTES", "100000")]);
    let forged = server.url("/media/incoming/0123456789abcdef0123456789abcdef?exp=9999999999&sig=forged");
    let body = vec![7u8; 300_000];
    for round in 0..60 {
        let r = server.http.put(&forged).body(body.clone()).send().await;
        let r = r.unwrap_or_else(|e| panic!("round {round}: the refusal was lost: {e:?}"));
        assert_eq!(r.status(), 403, "round {round}");
        assert_eq!(r.headers().get("connection").map(|v| v.to_str().unwrap()), Some("close"));
        let r = server.upload(body.clone(), "page.jpg", &[]).await;
        assert_eq!(r.status(), 413, "round {round}");
    }
    answers_normally(&server).await;
}

/// A TIFF of about 140 KB that declares a 7000×7000 colour picture (49
/// megapixels, 147 MB decoded): flat colour compresses a thousandfold.
fn tiff_bomb() -> Vec<u8> {
    let (w, h) = (7000u32, 7000u32);
    let pixels = vec![200u8; (w * h * 3) as usize];
    let mut out = std::io::Cursor::new(Vec::new());
    tiff::encoder::TiffEncoder::new(&mut out)
        .unwrap()
        .with_compression(tiff::encoder::Compression::Deflate(tiff::encoder::DeflateLevel::Best))
        .write_image::<tiff::encoder::colortype::RGB8>(w, h, &pixels)
        .unwrap();
    out.into_inner()
}

/// Peak resident memory of a process, from the kernel's own account.
fn peak_rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("VmHWM in /proc/<pid>/status");
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

#[tokio::test]
async fn small_files_declaring_huge_pictures_keep_the_process_within_its_budget() {
    use futures::StreamExt;

    let server = Server::start(&[]);
    let bomb = tiff_bomb();
    assert!(bomb.len() < 400_000, "{} bytes", bomb.len());
    // 48 distinct files (the bytes after the end make each one new to the
    // duplicate check), 32 in flight at a time.
    let answers: Vec<(u16, Option<String>)> = futures::stream::iter(0..48)
        .map(|n| {
            let mut file = bomb.clone();
            file.extend_from_slice(format!("variant {n}").as_bytes());
            let server = &server;
            async move {
                let r = server.upload(file, &format!("bomb-{n}.tiff"), &[("X-Notification-Required", "false")]).await;
                let retry = r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
                (r.status().as_u16(), retry)
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let accepted = answers.iter().filter(|(s, _)| *s == 200).count();
    assert!(accepted > 0, "{answers:?}");
    for (status, retry) in &answers {
        assert!(*status == 200 || (*status == 503 && retry.is_some()), "{answers:?}");
    }
    // The accepted ones are read too, within the same budget.
    let health = server.settled(Duration::from_secs(600)).await;
    let peak = peak_rss_bytes(server.pid());
    eprintln!("{accepted} of 48 accepted; peak resident memory {} MB; {health}", peak / 1_000_000);
    assert!(peak < 1_000_000_000, "the process grew to {} MB", peak / 1_000_000);
    answers_normally(&server).await;
}

/// Every file under `dir`, with its permission bits.
fn modes(dir: &std::path::Path, out: &mut Vec<(std::path::PathBuf, u32)>) {
    use std::os::unix::fs::PermissionsExt;
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        let mode = entry.metadata().unwrap().permissions().mode() & 0o777;
        out.push((path.clone(), mode));
        if entry.file_type().unwrap().is_dir() {
            modes(&path, out);
        }
    }
}

#[tokio::test]
async fn files_at_rest_are_the_owners_and_engines_see_no_secrets() {
    use std::os::unix::fs::PermissionsExt;

    // A tesseract that writes down the environment it was given.
    let tools = tempfile::tempdir().unwrap();
    let seen = tools.path().join("seen-env");
    let wrapper = tools.path().join("tesseract");
    std::fs::write(&wrapper, format!("#!/bin/sh\nenv > '{}'\nexec tesseract \"$@\"\n", seen.display())).unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let server = Server::start(&[
        ("STORYTIME_TESSERACT", wrapper.to_str().unwrap()),
        ("STORYTIME_API_KEYS", "a-very-secret-api-key"),
        ("STORYTIME_MEDIA_SECRET", "a-media-secret-of-at-least-32-bytes!"),
    ]);
    let page = storytime_tests::render_page(&storytime_tests::Page::new(&["Hush, the secret is safe."]));
    let r = server
        .http
        .post(server.url("/upload"))
        .header("Authorization", "Bearer a-very-secret-api-key")
        .header("X-Notification-Required", "true")
        .body(page)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    server.settled(storytime_tests::LIMIT).await;

    let env = std::fs::read_to_string(&seen).expect("the engine ran");
    assert!(env.contains("PATH="), "{env}");
    for secret in ["a-very-secret-api-key", "a-media-secret", "STORYTIME_", "AWS_"] {
        assert!(!env.contains(secret), "the engine saw {secret}: {env}");
    }

    let dir_mode = std::fs::metadata(&server.data_dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(dir_mode, 0o700, "the data directory");
    let mut found = Vec::new();
    modes(&server.data_dir, &mut found);
    assert!(found.iter().any(|(p, _)| p.extension().is_some_and(|e| e == "eml")), "{found:?}");
    for (path, mode) in &found {
        let want = if path.is_dir() { 0o700 } else { 0o600 };
        // The server's own log, written by the test harness, is not Storytime's.
        if path.file_name().is_some_and(|n| n == "server.log") {
            continue;
        }
        assert_eq!(*mode, want, "{} is {mode:o}", path.display());
    }
}

#[tokio::test]
async fn forged_slack_bodies_from_300_clients_cost_bounded_memory() {
    let fake = FakeSlack::start().await;
    let server = Server::start_with(&fake.env(), &[]);
    answers_normally(&server).await;
    let before = peak_rss_bytes(server.pid());
    let body = std::sync::Arc::new(vec![b'{'; 1024 * 1024]);
    let clients: Vec<_> = (0..300)
        .map(|_| {
            let (server, body) = (&server, body.clone());
            async move {
                let mut stream = slack_post_head(server, body.len() as u64).await;
                // The server may answer (401, or 503 when it has no room to
                // read) and close before the whole body is sent.
                let _ = stream.write_all(&body).await;
                let mut answer = [0u8; 12];
                match tokio::time::timeout(Duration::from_secs(60), stream.read_exact(&mut answer)).await {
                    Ok(Ok(_)) => String::from_utf8_lossy(&answer).into_owned(),
                    Ok(Err(_)) => "closed".to_owned(),
                    Err(_) => panic!("no answer within 60 s"),
                }
            }
        })
        .collect();
    let answers = futures::future::join_all(clients).await;
    for answer in &answers {
        assert!(["HTTP/1.1 401", "HTTP/1.1 503", "closed"].contains(&answer.as_str()), "{answer}");
    }
    assert!(answers.iter().any(|a| a == "HTTP/1.1 401"), "some were read and refused");
    let grown = peak_rss_bytes(server.pid()).saturating_sub(before);
    eprintln!("300 forged 1 MiB Slack bodies: the process grew by {} MB at most", grown / 1_000_000);
    assert!(grown < 150_000_000, "the process grew by {} MB", grown / 1_000_000);
    answers_normally(&server).await;
}
