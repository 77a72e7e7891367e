//! Who gets a connection: anonymous connections have their own cap below `max_connections`, so
//! authenticated clients always have room; each address has a cap of its own.

mod common;

use std::time::Duration;

use common::*;
use rtbus_server::RunningServer;
use tokio_tungstenite::tungstenite::Error as WsError;

/// The HTTP status of a handshake (101 when accepted) and the refusal's body; the accepted
/// client is returned to be held open.
async fn handshake(server: &RunningServer, dial: Dial<'_>) -> (u16, String, Option<Client>) {
    match Client::dial(server, dial).await {
        Ok(client) => (101, String::new(), Some(client)),
        Err(WsError::Http(response)) => {
            let body = String::from_utf8_lossy(response.body().as_deref().unwrap_or_default())
                .into_owned();
            (response.status().as_u16(), body, None)
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
