//! `rtbus-server`: the command line around the `rtbus_server` library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use rtbus_server::{Config, DEMO_ORIGINS, DEMO_TOPICS};

/// The rtbus v1 reference hub. Settings come from the TOML file, then environment variables,
/// then flags (later wins).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// TOML configuration file (tokens, public topics, limits; durations in milliseconds).
    #[arg(long, env = "RTBUS_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, env = "RTBUS_LISTEN")]
    listen: Option<SocketAddr>,
    /// Allowed browser origin (repeatable; `*` allows all).
    #[arg(
        long = "allow-origin",
        env = "RTBUS_ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    allowed_origins: Vec<String>,
    /// Also allow a browser origin equal to the request's own Host (same origin). Off by
    /// default: Host is the client's to choose (DNS rebinding).
    #[arg(long, env = "RTBUS_ALLOW_SAME_ORIGIN")]
    allow_same_origin: bool,
    /// Topic pattern readable without authentication (repeatable).
    #[arg(
        long = "public-topic",
        env = "RTBUS_PUBLIC_TOPICS",
        value_delimiter = ','
    )]
    public_topics: Vec<String>,
    /// Publish live demo data (sessions, activity, terminals, drive pressure). Makes the demo
    /// topics public unless public topics are configured, and allows browser pages served from
    /// loopback (`http://localhost:*`, `http://127.0.0.1:*`, `http://[::1]:*`) unless allowed
    /// origins are configured.
    #[arg(long, env = "RTBUS_DEMO")]
    demo: bool,
    /// Keep topics in this Redis, shared with every node started with the same URL and key
    /// prefix (`redis://HOST:PORT`): one seq numbering and epoch per topic across nodes, and
    /// resume on any of them. Unset: topics live in this process's memory.
    #[arg(long, env = "RTBUS_REDIS_URL")]
    redis_url: Option<String>,
    /// Prefix of every Redis key and channel (default `rtbus:`), so deployments can share a
    /// Redis.
    #[arg(long, env = "RTBUS_REDIS_KEY_PREFIX")]
    redis_key_prefix: Option<String>,
    /// Largest client message in bytes (bigger closes with 1009).
    #[arg(long, env = "RTBUS_MAX_MESSAGE_BYTES")]
    max_message_bytes: Option<usize>,
    /// Most topics per connection.
    #[arg(long, env = "RTBUS_MAX_TOPICS_PER_CONNECTION")]
    max_topics_per_connection: Option<usize>,
    /// Most outbound bytes queued per connection before it is cut off with 4009.
    #[arg(long, env = "RTBUS_MAX_PENDING_BYTES")]
    max_pending_bytes: Option<usize>,
    /// Events kept per topic for resume.
    #[arg(long, env = "RTBUS_HISTORY_PER_TOPIC")]
    history_per_topic: Option<usize>,
    /// The listen backlog (connects the kernel holds for the accept loop; capped by the OS).
    #[arg(long, env = "RTBUS_LISTEN_BACKLOG")]
    listen_backlog: Option<u32>,
    /// What all topics' histories may weigh together, in bytes.
    #[arg(long, env = "RTBUS_MAX_HISTORY_BYTES")]
    max_history_bytes: Option<usize>,
    /// Milliseconds without a subscriber and a publish after which a topic is forgotten.
    #[arg(long, env = "RTBUS_TOPIC_IDLE_TIMEOUT_MS")]
    topic_idle_timeout_ms: Option<u64>,
    /// With Redis: milliseconds a node keeps listening to a topic after its last local
    /// subscriber left (then it unsubscribes from the topic's channel).
    #[arg(long, env = "RTBUS_FOLLOW_LINGER_MS")]
    follow_linger_ms: Option<u64>,
    /// Most simultaneous connections (beyond: HTTP 503).
    #[arg(long, env = "RTBUS_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// Most simultaneous connections without a principal (beyond: HTTP 503); default half of
    /// max-connections.
    #[arg(long, env = "RTBUS_MAX_ANONYMOUS_CONNECTIONS")]
    max_anonymous_connections: Option<usize>,
    /// Most simultaneous connections from one address, IPv6 by /64 (beyond: HTTP 429); default
    /// a quarter of max-connections.
    #[arg(long, env = "RTBUS_MAX_CONNECTIONS_PER_ADDRESS")]
    max_connections_per_address: Option<usize>,
    /// Most rejected tokens per connection (the last one closes with 4029).
    #[arg(long, env = "RTBUS_MAX_AUTH_FAILURES_PER_CONNECTION")]
    max_auth_failures_per_connection: Option<usize>,
    /// Most rejected tokens per address within the auth failure window (then none is checked).
    #[arg(long, env = "RTBUS_MAX_AUTH_FAILURES_PER_ADDRESS")]
    max_auth_failures_per_address: Option<usize>,
    /// The window of max-auth-failures-per-address, in milliseconds.
    #[arg(long, env = "RTBUS_AUTH_FAILURE_WINDOW_MS")]
    auth_failure_window_ms: Option<u64>,
    /// Auth deadline in milliseconds (4001 after it).
    #[arg(long, env = "RTBUS_AUTH_DEADLINE_MS")]
    auth_deadline_ms: Option<u64>,
    /// WebSocket ping interval in milliseconds.
    #[arg(long, env = "RTBUS_HEARTBEAT_INTERVAL_MS")]
    heartbeat_interval_ms: Option<u64>,
    /// Time to answer a ping in milliseconds (4008 after it).
    #[arg(long, env = "RTBUS_HEARTBEAT_TIMEOUT_MS")]
    heartbeat_timeout_ms: Option<u64>,
    /// How long a connection closed with 4009 waits for its reader, in milliseconds (then its
    /// socket is reset).
    #[arg(long, env = "RTBUS_SLOW_CONSUMER_LINGER_MS")]
    slow_consumer_linger_ms: Option<u64>,
    /// Runtime worker threads (default: the CPUs this process may use; 1 runs single-threaded).
    #[arg(long, env = "RTBUS_WORKERS")]
    workers: Option<usize>,
    /// Log filter, e.g. `info` or `rtbus_server=debug`. The WebSocket library's own logs are
    /// capped at `info`, since at lower levels they print frames (and so tokens).
    #[arg(long, env = "RTBUS_LOG", default_value = "info")]
    log: String,
    /// Log as JSON lines.
    #[arg(long, env = "RTBUS_LOG_JSON")]
    log_json: bool,
}

impl Cli {
    fn config(&self) -> anyhow::Result<Config> {
        let mut config = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read config file {}", path.display()))?;
                Config::from_toml(&text)
                    .with_context(|| format!("invalid config file {}", path.display()))?
            }
            None => Config::default(),
        };
        if let Some(listen) = self.listen {
            config.listen = listen;
        }
        if !self.allowed_origins.is_empty() {
            config.allowed_origins = self.allowed_origins.clone();
        }
        if !self.public_topics.is_empty() {
            config.public_topics = self.public_topics.clone();
        }
        config.allow_same_origin |= self.allow_same_origin;
        if let Some(url) = &self.redis_url {
            config.redis_url = Some(url.clone());
        }
        if let Some(prefix) = &self.redis_key_prefix {
            config.redis_key_prefix = prefix.clone();
        }
        config.demo |= self.demo;
        if config.demo && config.public_topics.is_empty() {
            config.public_topics = DEMO_TOPICS.iter().map(|t| (*t).to_owned()).collect();
        }
        if config.demo && config.allowed_origins.is_empty() {
            config.allowed_origins = DEMO_ORIGINS.iter().map(|o| (*o).to_owned()).collect();
        }
        let limits = &mut config.limits;
        let ms = std::time::Duration::from_millis;
        if let Some(v) = self.max_message_bytes {
            limits.max_message_bytes = v;
        }
        if let Some(v) = self.max_topics_per_connection {
            limits.max_topics_per_connection = v;
        }
        if let Some(v) = self.max_pending_bytes {
            limits.max_pending_bytes = v;
        }
        if let Some(v) = self.history_per_topic {
            limits.history_per_topic = v;
        }
        if let Some(v) = self.max_history_bytes {
            limits.max_history_bytes = v;
        }
        if let Some(v) = self.topic_idle_timeout_ms {
            limits.topic_idle_timeout = ms(v);
        }
        if let Some(v) = self.follow_linger_ms {
            limits.follow_linger = ms(v);
        }
        if let Some(v) = self.listen_backlog {
            limits.listen_backlog = v;
        }
        if let Some(v) = self.max_connections {
            limits.max_connections = v;
        }
        if let Some(v) = self.max_anonymous_connections {
            limits.max_anonymous_connections = Some(v);
        }
        if let Some(v) = self.max_connections_per_address {
            limits.max_connections_per_address = Some(v);
        }
        if let Some(v) = self.max_auth_failures_per_connection {
            limits.max_auth_failures_per_connection = v;
        }
        if let Some(v) = self.max_auth_failures_per_address {
            limits.max_auth_failures_per_address = v;
        }
        if let Some(v) = self.auth_failure_window_ms {
            limits.auth_failure_window = ms(v);
        }
        if let Some(v) = self.auth_deadline_ms {
            limits.auth_deadline = ms(v);
        }
        if let Some(v) = self.heartbeat_interval_ms {
            limits.heartbeat_interval = ms(v);
        }
        if let Some(v) = self.heartbeat_timeout_ms {
            limits.heartbeat_timeout = ms(v);
        }
        if let Some(v) = self.slow_consumer_linger_ms {
            limits.slow_consumer_linger = ms(v);
        }
        Ok(config)
    }
}

/// Log targets that could print frame contents (and so tokens), capped at `info`.
const QUIET_TARGETS: &str = "tungstenite=info,tokio_tungstenite=info";

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The WebSocket layer logs whole frames at trace level, and an `auth` frame carries a
    // token: those targets are capped whatever the filter says, so tokens never reach the logs.
    let filter = format!("{},{QUIET_TARGETS}", cli.log);
    let filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("info,{QUIET_TARGETS}")));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if cli.log_json {
        logs.json().init();
    } else {
        logs.init();
    }
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("rtbus-server: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    let config = cli.config()?;
    let workers = cli
        .workers
        .or_else(|| std::thread::available_parallelism().ok().map(usize::from))
        .unwrap_or(1);
    let runtime = if workers <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
    }
    .context("cannot start the async runtime")?;
    runtime.block_on(async {
        eprintln!(
            "rtbus-server effective configuration ({workers} worker thread(s)):\n{}",
            config.redacted_toml()
        );
        let server = rtbus_server::start(config)
            .await
            .context("cannot start the server")?;
        println!("listening on ws://{}/api/realtime", server.local_addr());
        wait_for_signal().await?;
        server.shutdown().await;
        Ok(())
    })
}

async fn wait_for_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result.context("cannot watch SIGINT")?,
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c()
        .await
        .context("cannot watch Ctrl-C")?;
    Ok(())
}
