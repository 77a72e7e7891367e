//! The reference server configured for benchmarks: bench topics public, one publisher token.

use std::net::SocketAddr;

use anyhow::Context as _;
use rtbus_protocol::ENDPOINT_PATH;
use rtbus_server::{Config, RunningServer, TokenConfig};

/// The publisher token of the bench configuration. Loopback only; not a secret.
pub const PUBLISHER_TOKEN: &str = "bench-publisher";

/// The slow-consumer limit of the bench configuration: small enough that a stalled subscriber
/// is cut off within seconds at bench rates, large enough for healthy subscribers' bursts.
pub const MAX_PENDING_BYTES: usize = 256 * 1024;

/// The kernel send buffer of each accepted socket in the bench configuration. Left to the
/// kernel, loopback autotuning lets it grow to 4 MiB, which a stalled subscriber fills before the
/// server's own queue even starts to count.
pub const SOCKET_SEND_BUFFER_BYTES: usize = 128 * 1024;

/// The bench configuration: the generator's topics are public, the publisher token may publish
/// on them, the limits are the defaults except the slow-consumer queue and the socket send
/// buffer.
pub fn config(listen: SocketAddr) -> Config {
    let mut config = Config {
        listen,
        public_topics: vec![
            "custom.bench.*".to_owned(),
            "sessions.activity:bench-*".to_owned(),
        ],
        ..Config::default()
    };
    let mut publisher = TokenConfig::new(PUBLISHER_TOKEN, "bench");
    publisher.roles = vec!["publisher".to_owned()];
    publisher.publish = config.public_topics.clone();
    publisher.read = config.public_topics.clone();
    config.tokens.push(publisher);
    config.limits.max_pending_bytes = MAX_PENDING_BYTES;
    config.limits.socket_send_buffer_bytes = SOCKET_SEND_BUFFER_BYTES;
    config
}

/// A started reference server.
#[derive(Debug)]
pub struct Embedded {
    server: RunningServer,
}

impl Embedded {
    /// The server's WebSocket URL.
    pub fn url(&self) -> String {
        format!("ws://{}{ENDPOINT_PATH}", self.server.local_addr())
    }

    /// Stops the server gracefully.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

/// Starts the reference server with the bench configuration.
pub async fn start(listen: SocketAddr) -> anyhow::Result<Embedded> {
    start_with(config(listen)).await
}

/// Starts the reference server with `config`.
async fn start_with(config: Config) -> anyhow::Result<Embedded> {
    let listen = config.listen;
    let server = rtbus_server::start(config)
        .await
        .with_context(|| format!("starting the reference server on {listen}"))?;
    Ok(Embedded { server })
}

/// Serves until SIGINT or SIGTERM, printing the URL and pid first so a script can drive it; with
/// `redis_url`, on the Redis engine (a node of the cluster every node on that Redis forms), the
/// bench configuration otherwise unchanged.
pub async fn serve(listen: SocketAddr, redis_url: Option<String>) -> anyhow::Result<()> {
    let server = start_with(Config {
        redis_url,
        ..config(listen)
    })
    .await?;
    println!("listening {} pid {}", server.url(), std::process::id());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    server.shutdown().await;
    Ok(())
}
