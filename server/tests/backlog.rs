//! The listen backlog (`listen_backlog`, `--listen-backlog`): with the server's accept loop
//! paused (the process stopped), the kernel completes exactly as many connects as the backlog
//! holds, and once the server runs again it accepts and answers every one of them.

mod common;

use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends `signal` (e.g. `STOP`, `CONT`) to process `pid`.
fn signal(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{signal} {pid}");
}

/// Waits until process `pid` is stopped: `kill` returns before the signal takes effect, and a
/// server still running would accept part of the burst itself.
async fn wait_stopped(pid: u32) {
    for _ in 0..200 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("the server's stat");
        // The state follows the command name, which is in parentheses.
        let state = stat
            .rsplit_once(") ")
            .and_then(|(_, rest)| rest.chars().next());
        if state == Some('T') {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("process {pid} did not stop within 2 s of SIGSTOP");
}

/// The kernel's cap on any listen backlog (`net.core.somaxconn`).
fn somaxconn() -> usize {
    std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(4096)
}

/// Connects up to `n` times to a stopped server; returns the connections the kernel completed
/// before the first that did not complete within 500 ms (its accept queue was full).
async fn burst(server: &ServerProcess, n: usize) -> Vec<TcpStream> {
    let mut open = Vec::with_capacity(n);
    for _ in 0..n {
        match tokio::time::timeout(
            Duration::from_millis(500),
            TcpStream::connect(server.addr()),
        )
        .await
        {
            Ok(Ok(stream)) => open.push(stream),
            Ok(Err(err)) => panic!("connect failed: {err}"),
            Err(_) => break,
        }
    }
    open
}

/// Asks every connection for `/healthz` and expects the answer.
async fn all_answered(streams: Vec<TcpStream>) {
    let count = streams.len();
    for (at, mut stream) in streams.into_iter().enumerate() {
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .expect("write");
        let mut response = String::new();
        tokio::time::timeout(STEP, stream.read_to_string(&mut response))
            .await
            .unwrap_or_else(|_| panic!("connection {at} of {count} was never served"))
            .expect("read");
        assert!(response.starts_with("HTTP/1.1 200"), "{at}: {response}");
    }
}

/// Runs a burst of `connects` against a stopped server started with `args`; returns how many
/// the kernel completed, after checking the resumed server served each of them.
async fn completed(args: &[&str], connects: usize) -> usize {
    let mut all = vec!["--listen", "127.0.0.1:0", "--log", "warn"];
    all.extend_from_slice(args);
    let server = ServerProcess::spawn(&all).await;
    signal(server.pid(), "STOP");
    wait_stopped(server.pid()).await;
    let open = burst(&server, connects).await;
    signal(server.pid(), "CONT");
    let count = open.len();
    all_answered(open).await;
    count
}

#[tokio::test]
async fn the_default_backlog_holds_a_burst_of_many_hundred_connects() {
    let burst = 600.min(somaxconn().saturating_sub(1));
    assert!(
        burst > 200,
        "net.core.somaxconn ({}) is too small to tell a backlog of 1024 from the kernel's old 128",
        somaxconn()
    );
    assert_eq!(
        completed(&[], burst).await,
        burst,
        "every connect of the burst completes while the server is paused"
    );
}

#[tokio::test]
async fn a_configured_backlog_is_the_one_the_kernel_applies() {
    // Linux takes one connection more than the backlog into the accept queue.
    assert_eq!(completed(&["--listen-backlog", "50"], 200).await, 51);
}
