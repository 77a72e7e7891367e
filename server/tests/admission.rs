//! Who gets a connection: anonymous connections have their own cap below `max_connections`, so
//! authenticated clients always have room; each address has a cap of its own.

mod common;

use std::time::Duration;

use common::*;
use rtbus_protocol::ErrorCode;
use rtbus_server::RunningServer;

/// The HTTP status of a handshake (101 when accepted) and the refusal's body; the accepted
/// client is returned to be held open.
async fn handshake(server: &RunningServer, dial: Dial<'_>) -> (u16, String, Option<Client>) {
    match Client::dial(server, dial).await {
        Ok(client) => (101, String::new(), Some(client)),
        Err(DialError::Refused { status, body, .. }) => {
            (status.as_u16(), body.unwrap_or_default(), None)
        }
        Err(other) => panic!("expected an HTTP answer, got {other}"),
    }
}

fn bearer(token: &str) -> Dial<'_> {
    Dial {
        token: Some(token),
        ..Dial::default()
    }
}

/// An anonymous reader of a public topic: exempt from the auth deadline, so it stays.
async fn public_reader(server: &RunningServer) -> Client {
    let mut client = Client::connect(server).await;
    let reply = client
        .request(&subscribe_with("s", [no_snapshot("custom.public.a")]))
        .await;
    assert_reply(&reply, "subscribed", "s");
    client
}

/// Retries a handshake until it is accepted: a closed connection's slot is released when its
/// task ends, just after the client sees the close.
async fn accepted_soon(server: &RunningServer, dial: impl Fn() -> Dial<'static>) -> Client {
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        match handshake(server, dial()).await {
            (101, _, Some(client)) => return client,
            (status, body, _) if tokio::time::Instant::now() > deadline => {
                panic!("still refused after {STEP:?}: {status} {body}")
            }
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

#[tokio::test]
async fn anonymous_readers_cannot_take_the_room_authenticated_clients_need() {
    let mut config = config();
    config.limits.max_connections = 4;
    // Every test client comes from 127.0.0.1 (the default would be a quarter of the total).
    config.limits.max_connections_per_address = Some(4);
    // max_anonymous_connections is left to its default, half of max_connections.
    let server = start(config).await;
    let mut readers = vec![public_reader(&server).await, public_reader(&server).await];
    let (status, body, _) = handshake(&server, Dial::default()).await;
    assert_eq!(status, 503, "a third anonymous connection: {body}");
    assert!(
        body.contains("max_anonymous_connections") && body.contains("2"),
        "the refusal names the limit: {body}"
    );
    // Authenticated clients still get in, up to max_connections.
    let mut authed = Vec::new();
    for token in [ALICE, BOB] {
        let (status, body, client) = handshake(&server, bearer(token)).await;
        assert_eq!(status, 101, "{token}: {body}");
        authed.extend(client);
    }
    let (status, body, _) = handshake(&server, bearer(PUBLISHER)).await;
    assert_eq!(status, 503, "past max_connections: {body}");
    assert!(body.contains("max_connections"), "{body}");
    // An anonymous connection that authenticates moves to the authenticated pool, which makes
    // room for another anonymous one; the total still counts it.
    drop(authed.pop());
    let mut upgraded = readers.pop().expect("two readers");
    assert_reply(
        &upgraded.request(&auth("a", ALICE)).await,
        "authenticated",
        "a",
    );
    readers.push(accepted_soon(&server, Dial::default).await);
    assert_eq!(server.stats().anonymous_connections, 2);
    assert_eq!(server.stats().connections, 4);
    server.shutdown().await;
}

#[tokio::test]
async fn an_explicit_anonymous_cap_and_a_per_address_cap_refuse_with_their_reasons() {
    let mut config = config();
    config.limits.max_connections = 10;
    config.limits.max_anonymous_connections = Some(1);
    config.limits.max_connections_per_address = Some(3);
    let server = start(config).await;
    let reader = public_reader(&server).await;
    let (status, body, _) = handshake(&server, Dial::default()).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("max_anonymous_connections = 1"), "{body}");
    assert!(body.contains("Authorization"), "says how to get in: {body}");
    let mut held = vec![reader];
    for token in [ALICE, BOB] {
        let (status, body, client) = handshake(&server, bearer(token)).await;
        assert_eq!(status, 101, "{body}");
        held.extend(client);
    }
    // A fourth connection from 127.0.0.1, authenticated or not.
    let (status, body, _) = handshake(&server, bearer(PUBLISHER)).await;
    assert_eq!(status, 429, "{body}");
    assert!(
        body.contains("127.0.0.1") && body.contains("max_connections_per_address = 3"),
        "names the address and the limit: {body}"
    );
    // Closing one makes room again.
    drop(held.pop());
    let again = accepted_soon(&server, || bearer(PUBLISHER)).await;
    held.push(again);
    assert_eq!(server.stats().connections, 3);
    server.shutdown().await;
}

#[tokio::test]
async fn the_caps_must_fit_within_max_connections() {
    let mut config = config();
    config.limits.max_connections = 10;
    config.limits.max_anonymous_connections = Some(11);
    let err = rtbus_server::start(config).await.unwrap_err().to_string();
    assert!(err.contains("max_anonymous_connections"), "{err}");
}

/// The code and message of an `error` frame answering `id`.
fn error_of(message: &rtbus_protocol::ServerMessage, id: &str) -> (ErrorCode, String) {
    let code = error_code(message, id);
    match message {
        rtbus_protocol::ServerMessage::Error { data, .. } => (code, data.message.clone()),
        _ => unreachable!("error_code checked the kind"),
    }
}

/// Sends `n` rejected tokens on a new connection; each gets `unauthorized`.
async fn wrong_tokens(server: &RunningServer, n: usize) -> Client {
    let mut client = Client::connect(server).await;
    for i in 0..n {
        let id = format!("w{i}");
        let reply = client.request(&auth(&id, &format!("guess-{i}"))).await;
        assert_eq!(error_code(&reply, &id), ErrorCode::Unauthorized);
    }
    client
}

#[tokio::test]
async fn the_fifth_rejected_token_on_a_connection_closes_it_with_a_declared_code() {
    let server = start(config()).await;
    let mut guesser = wrong_tokens(&server, 5).await;
    assert_eq!(guesser.expect_close().await, 4029);
    // Four are allowed: a token refresh that goes wrong is not punished.
    let mut unlucky = wrong_tokens(&server, 4).await;
    assert_reply(
        &unlucky.request(&auth("a", ALICE)).await,
        "authenticated",
        "a",
    );
    server.shutdown().await;
}

#[tokio::test]
async fn an_address_with_too_many_rejected_tokens_has_none_checked_until_its_window_ends() {
    let mut config = config();
    config.limits.max_auth_failures_per_address = 6;
    config.limits.auth_failure_window = Duration::from_millis(800);
    let server = start(config).await;
    // Failures count per address across connections, header tokens included.
    let _first = wrong_tokens(&server, 4).await;
    let _second = wrong_tokens(&server, 1).await;
    let (status, body, _) = handshake(&server, bearer("guess-header")).await;
    assert_eq!(status, 401, "{body}");
    // Locked out now: even the right token is not looked at, in a frame or a header.
    let mut late = Client::connect(&server).await;
    let (code, message) = error_of(&late.request(&auth("a", ALICE)).await, "a");
    assert_eq!(code, ErrorCode::LimitExceeded, "{message}");
    assert!(
        message.contains("127.0.0.1") && message.contains("max_auth_failures_per_address"),
        "{message}"
    );
    let (status, body, _) = handshake(&server, bearer(ALICE)).await;
    assert_eq!(status, 429, "{body}");
    assert!(body.contains("max_auth_failures_per_address = 6"), "{body}");
    // The window started with the first failure; after it the right token works again.
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_reply(&late.request(&auth("b", ALICE)).await, "authenticated", "b");
    let (status, body, _) = handshake(&server, bearer(ALICE)).await;
    assert_eq!(status, 101, "{body}");
    server.shutdown().await;
}

#[tokio::test]
async fn the_stats_endpoint_counts_rejected_tokens_too() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut config = config();
    config.limits.max_auth_failures_per_address = 2;
    let server = start(config).await;
    let mut statuses = Vec::new();
    for token in ["guess-1", "guess-2", ADMIN] {
        let mut stream = tokio::net::TcpStream::connect(server.local_addr())
            .await
            .expect("connect");
        let request = format!(
            "GET /api/realtime/stats HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut response = String::new();
        tokio::time::timeout(STEP, stream.read_to_string(&mut response))
            .await
            .expect("answered")
            .expect("read");
        statuses.push(response.split(' ').nth(1).unwrap_or("").to_owned());
        if token == ADMIN {
            assert!(response.contains("Retry-After: "), "{response}");
        }
    }
    assert_eq!(statuses, ["401", "401", "429"]);
    server.shutdown().await;
}
