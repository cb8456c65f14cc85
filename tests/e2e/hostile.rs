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
/// `length` bytes of body, and none of the body.
async fn slack_post_head(server: &Server, length: u64) -> TcpStream {
    let mut stream = connect(server).await;
    let head = format!(
        "POST /slack/events HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {length}\r\n\r\n"
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
