//! The `rtbus-server` binary: flags, `--demo` data flowing, and a clean exit on SIGTERM.

mod common;

use std::process::Command;

use futures_util::StreamExt;
use rtbus_protocol::{ServerMessage, decode_server_frame};
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn demo_publishes_live_data_and_sigterm_exits_cleanly() {
    let server =
        common::ServerProcess::spawn(&["--listen", "127.0.0.1:0", "--demo", "--log", "warn"]).await;
    let url = server.url.clone();

    let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .expect("connects");
    // Demo topics are public: an unauthenticated client sees the ticker move.
    let subscribe = r#"{"type":"subscribe","id":"s","data":{"topics":[{"topic":"drives.pressure","snapshot":false},{"topic":"sessions.state","snapshot":false}]}}"#;
    futures_util::SinkExt::send(&mut ws, Message::text(subscribe))
        .await
        .expect("sent");
    let mut kinds = Vec::new();
    while kinds.iter().filter(|k| *k == "event").count() < 3 {
        let frame = tokio::time::timeout(common::STEP, ws.next())
            .await
            .expect("demo data within the step timeout")
            .expect("open")
            .expect("no error");
        if let Message::Text(text) = frame {
            let message = decode_server_frame(&text).expect("valid frame");
            if let ServerMessage::Event { data, .. } = &message {
                assert!(!data.is_replay);
            }
            kinds.push(message.kind().to_owned());
        }
    }
    assert_eq!(kinds[0], "subscribed");

    let status = Command::new("kill")
        .args(["-TERM", &server.pid().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let mut child = server.into_child();
    // The connection is closed with 1001 and the process exits 0.
    let close = loop {
        match tokio::time::timeout(common::STEP, ws.next())
            .await
            .expect("closed in time")
        {
            Some(Ok(Message::Close(frame))) => break frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    common::assert_declared_close_code(close.unwrap_or(0));
    assert_eq!(close, Some(1001));
    drop(ws);
    let exit = tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("joined")
        .expect("waited");
    assert!(exit.success(), "{exit:?}");
}

#[test]
fn a_bad_config_file_is_reported_with_its_path_and_the_field() {
    let dir = std::env::temp_dir().join(format!("rtbus-server-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("bad.toml");
    std::fs::write(&path, "[limits]\nmax_pending = 3\n").expect("written");
    let output = Command::new(env!("CARGO_BIN_EXE_rtbus-server"))
        .arg("--config")
        .arg(&path)
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("bad.toml"), "{stderr}");
    assert!(stderr.contains("max_pending"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn tokens_never_reach_the_logs_or_the_printed_config() {
    const SECRET: &str = "sekrit-token-4242";
    let dir = std::env::temp_dir().join(format!("rtbus-server-secret-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("config.toml");
    let config = format!(
        "listen = \"127.0.0.1:0\"\n[[tokens]]\ntoken = \"{SECRET}\"\nprincipal = \"ops\"\nroles = [\"admin\"]\n"
    );
    std::fs::write(&path, config).expect("written");
    let config_path = path.to_str().expect("a UTF-8 temp path");
    let server = common::ServerProcess::spawn(&["--config", config_path, "--log", "trace"]).await;
    let url = server.url.clone();
    // Authenticate with the token both ways, and fail once with a near miss.
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
            url.as_str(),
        )
        .expect("request");
    request.headers_mut().insert(
        "Authorization",
        format!("Bearer {SECRET}").parse().expect("header"),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("connects");
    for token in [SECRET, "sekrit-token-4243"] {
        let auth = format!(r#"{{"type":"auth","id":"a","data":{{"token":"{token}"}}}}"#);
        futures_util::SinkExt::send(&mut ws, Message::text(auth))
            .await
            .expect("sent");
        let reply = tokio::time::timeout(common::STEP, ws.next())
            .await
            .expect("a reply")
            .expect("open")
            .expect("no error");
        assert!(reply.is_text(), "{reply:?}");
    }
    drop(ws);
    let status = Command::new("kill")
        .args(["-TERM", &server.pid().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let child = server.into_child();
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("joined")
        .expect("waited");
    assert!(output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("<redacted>"), "{stderr}");
    assert!(
        stderr.contains("authenticated"),
        "trace logs were written: {stderr}"
    );
    assert!(!stderr.contains("sekrit"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
