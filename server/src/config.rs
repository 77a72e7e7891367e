//! Server configuration: listen address, origins, tokens, public topics and limits.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Everything the server needs to run. `Default` gives safe defaults: loopback only, no tokens,
/// no public topics, the limits of [`Limits::default`].
///
/// In TOML every field is optional; durations are whole milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where to listen. Use `127.0.0.1:0` for an ephemeral port.
    pub listen: SocketAddr,
    /// Origins (e.g. `https://app.example.com`) whose browsers may connect. A handshake without
    /// an `Origin` header (a non-browser client) is always allowed. `"*"` allows every `http`
    /// or `https` origin; an entry ending in `:*` (`http://localhost:*`) allows that scheme and
    /// host on any port. Every other origin is refused with 403, as is any origin whose scheme is
    /// not `http` or `https` (`null`, `file://`, `foo://`); two `Origin` headers are refused with
    /// 400. `rtbus-server --demo` with none configured allows the loopback origins
    /// [`DEMO_ORIGINS`](crate::DEMO_ORIGINS).
    pub allowed_origins: Vec<String>,
    /// Also allow an origin whose host and port are the request's own `Host` header (same
    /// origin). Off by default: the client chooses `Host`, so a page on a DNS name rebound to
    /// this server sends its own name in both headers. Enable it only behind a proxy that
    /// accepts nothing but this server's names in `Host`.
    pub allow_same_origin: bool,
    /// The bearer tokens the server accepts.
    pub tokens: Vec<TokenConfig>,
    /// Topic patterns any connection may subscribe to without authenticating.
    pub public_topics: Vec<String>,
    /// The Redis that holds the topics when several nodes serve them together
    /// (`redis://HOST:PORT`, optionally `redis://[USER:PASSWORD@]HOST:PORT/DB`): one `seq`
    /// numbering and one epoch per topic across every node started with the same URL and
    /// prefix, and a client resumes on whichever node it reconnects to. Unset (the default):
    /// the node keeps its topics in its own memory. Printed with its credentials redacted.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "redact_url")]
    pub redis_url: Option<String>,
    /// The prefix of every Redis key and channel the node uses, so several deployments can
    /// share one Redis. Default `rtbus:`.
    pub redis_key_prefix: String,
    /// Resource limits.
    pub limits: Limits,
    /// Publish plausible live data on the catalog's topics (see `rtbus-server --demo`).
    pub demo: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            allowed_origins: Vec::new(),
            allow_same_origin: false,
            tokens: Vec::new(),
            public_topics: Vec::new(),
            redis_url: None,
            redis_key_prefix: "rtbus:".to_owned(),
            limits: Limits::default(),
            demo: false,
        }
    }
}

/// One accepted bearer token and what it grants.
///
/// Topic patterns are an exact topic or a prefix ending in `*` (`sessions.*`, `*`); the
/// placeholder `{principal}` is replaced by the principal's name, so
/// `sessions.activity:{principal}-*` gives each user their own sessions.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// The secret. Never logged or printed.
    #[serde(serialize_with = "redact")]
    pub token: String,
    /// Who the token authenticates as.
    pub principal: String,
    /// Roles: `publisher` may publish (on `publish` patterns), `admin` may read the stats
    /// endpoint.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Topic patterns the principal may subscribe to (public topics are readable anyway).
    #[serde(default)]
    pub read: Vec<String>,
    /// Topic patterns the principal may publish on (needs the `publisher` role).
    #[serde(default)]
    pub publish: Vec<String>,
}

impl TokenConfig {
    /// A token for `principal` with no roles and no topic permissions.
    pub fn new(token: impl Into<String>, principal: impl Into<String>) -> TokenConfig {
        TokenConfig {
            token: token.into(),
            principal: principal.into(),
            roles: Vec::new(),
            read: Vec::new(),
            publish: Vec::new(),
        }
    }
}

impl fmt::Debug for TokenConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenConfig")
            .field("token", &"<redacted>")
            .field("principal", &self.principal)
            .field("roles", &self.roles)
            .field("read", &self.read)
            .field("publish", &self.publish)
            .finish()
    }
}

/// A URL with the credentials (`user:password@`) replaced by `<redacted>@`.
pub(crate) fn redacted_url(url: &str) -> String {
    match (url.split_once("://"), url.rfind('@')) {
        (Some((scheme, _)), Some(at)) => format!("{scheme}://<redacted>{}", &url[at..]),
        _ => url.to_owned(),
    }
}

fn redact_url<S: serde::Serializer>(
    url: &Option<String>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match url {
        Some(url) => serializer.serialize_str(&redacted_url(url)),
        None => serializer.serialize_none(),
    }
}

fn redact<S: serde::Serializer>(_: &str, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str("<redacted>")
}

/// Per-connection and per-topic limits. Every one is enforced; see each field for what happens
/// when it is reached.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest client message (and frame) in bytes; a bigger one closes the connection with
    /// 1009 (`messageTooBig`). Default 64 KiB.
    pub max_message_bytes: usize,
    /// Most topics one connection may hold; a `subscribe` beyond it gets `limit_exceeded`.
    /// Default 256.
    pub max_topics_per_connection: usize,
    /// Most bytes queued for one connection (frames not yet written to its socket). Beyond it the
    /// connection is a slow consumer: its queue is dropped and it is closed with 4009. Default
    /// 4 MiB.
    pub max_pending_bytes: usize,
    /// How many recent events each topic keeps for resuming (`resumeAfter` with `epoch`). A
    /// resume older than that replays nothing: it is `reset`, with a fresh snapshot unless the
    /// subscription opted out. Default 1024.
    pub history_per_topic: usize,
    /// The listen backlog: how many connections the kernel completes and holds for the
    /// server's accept loop. A burst beyond it has its connects retried or, worse, believed
    /// established and never accepted. The OS caps it (Linux: `net.core.somaxconn`). Default
    /// 1024.
    pub listen_backlog: u32,
    /// What the histories of all topics may weigh together, in bytes (an estimate of their
    /// memory: each held event's JSON value, node by node, and its slot). A publish that takes
    /// them past it shortens the histories of the least recently used topics, oldest events
    /// first, to nine tenths of the bound; a resume the shortened history cannot cover is a
    /// `reset`. Snapshots are not counted. At least 64 KiB. Default 64 MiB.
    pub max_history_bytes: usize,
    /// A topic with no subscriber and no publish for this long is forgotten (its snapshot and
    /// history with it); used again, it starts afresh with a new epoch, so a resume from before
    /// is a `reset`. Default 10 minutes. With `redis_url` the topics live in Redis and are not
    /// forgotten by the nodes; a node's copy of one goes after `follow_linger`.
    #[serde(with = "millis")]
    pub topic_idle_timeout: Duration,
    /// With `redis_url`: how long a node keeps listening to a topic in Redis (its channel
    /// subscription and its copy of the topic) after the topic's last local subscriber left.
    /// Then it `UNSUBSCRIBE`s, so a node listens only to topics it serves; the linger spares a
    /// client that reconnects at once the unsubscribe and the reload. The topic itself stays in
    /// Redis. Without Redis it has no effect. Default 5 s.
    #[serde(with = "millis")]
    pub follow_linger: Duration,
    /// Most simultaneous connections; further handshakes get HTTP 503. Default 100 000.
    pub max_connections: usize,
    /// Most simultaneous anonymous connections: upgrades without an `Authorization: Bearer`
    /// header, until they authenticate with an `auth` frame (then they count as
    /// authenticated; a connection whose token is later rejected counts as anonymous again).
    /// Further anonymous handshakes get HTTP 503, so anonymous readers of public topics (who
    /// need not authenticate) cannot take the room authenticated clients need. Unset (the
    /// default): half of `max_connections`. At most `max_connections`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_anonymous_connections: Option<usize>,
    /// Most simultaneous connections from one address (an IPv4 address, or an IPv6 /64);
    /// further handshakes from it get HTTP 429. Unset (the default): a quarter of
    /// `max_connections`. Behind a proxy every client has the proxy's address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connections_per_address: Option<usize>,
    /// Most rejected tokens (`auth` frames) one connection may send: the one that reaches it
    /// is answered, then the connection is closed with 4029 (`tooManyAuthFailures`). Default 5.
    pub max_auth_failures_per_connection: usize,
    /// Most rejected tokens from one address (IPv6 by /64) within `auth_failure_window`,
    /// counting `auth` frames, `Authorization` headers at the upgrade and at the stats
    /// endpoint. Once an address reaches it, no token from it is checked until the window that
    /// began with its first failure ends: `auth` frames get `limit_exceeded` (the connection
    /// keeps its principal, if it had one), bearer upgrades and the stats endpoint HTTP 429
    /// with `Retry-After`. Default 20.
    pub max_auth_failures_per_address: usize,
    /// The window of `max_auth_failures_per_address`. Default 60 s.
    #[serde(with = "millis")]
    pub auth_failure_window: Duration,
    /// An unauthenticated connection with no subscription is closed with 4001 after this long.
    /// Default 10 s.
    #[serde(with = "millis")]
    pub auth_deadline: Duration,
    /// How often the server sends a WebSocket ping. Default 20 s.
    #[serde(with = "millis")]
    pub heartbeat_interval: Duration,
    /// How long a ping may go unanswered before the connection is closed with 4008. Default 20 s.
    #[serde(with = "millis")]
    pub heartbeat_timeout: Duration,
    /// How long the HTTP request head of a new connection may take. Default 10 s.
    #[serde(with = "millis")]
    pub handshake_timeout: Duration,
    /// How long the server waits for its close frame to be written and answered before it drops
    /// the socket. Default 5 s.
    #[serde(with = "millis")]
    pub close_timeout: Duration,
    /// How long a connection cut off as a slow consumer keeps its socket so that its close
    /// frame (4009) reaches a reader that resumes reading: the frames already on their way
    /// (in the kernel's buffers, at most one frame partly written) come first, then the close
    /// frame. Its queue is dropped at the cutoff and it leaves every topic, so all it holds
    /// meanwhile is its socket buffers and its place in the connection caps. A reader that
    /// resumes later finds the connection reset (no close frame); it should reconnect and
    /// resume as after a 4009. At least `close_timeout`. Default 30 s.
    #[serde(with = "millis")]
    pub slow_consumer_linger: Duration,
    /// Read buffer per connection in bytes: small keeps idle connections cheap; larger frames
    /// are still read whole. Default 2 KiB.
    pub read_buffer_bytes: usize,
    /// The kernel send buffer (`SO_SNDBUF`) of each accepted socket, in bytes; 0 keeps the
    /// OS default. A small value makes a stalled reader show up in `max_pending_bytes` sooner
    /// instead of hiding in kernel buffers. Default 0.
    pub socket_send_buffer_bytes: usize,
    /// Outbound bytes gathered into one socket write: frames queued together go out in one
    /// write of up to this size (and at most 64 frames; at least one). Default 16 KiB.
    pub write_buffer_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 64 * 1024,
            max_topics_per_connection: 256,
            max_pending_bytes: 4 * 1024 * 1024,
            history_per_topic: 1024,
            max_history_bytes: 64 * 1024 * 1024,
            topic_idle_timeout: Duration::from_secs(600),
            follow_linger: Duration::from_secs(5),
            listen_backlog: 1024,
            max_connections: 100_000,
            max_anonymous_connections: None,
            max_connections_per_address: None,
            max_auth_failures_per_connection: 5,
            max_auth_failures_per_address: 20,
            auth_failure_window: Duration::from_secs(60),
            auth_deadline: Duration::from_secs(10),
            heartbeat_interval: Duration::from_secs(20),
            heartbeat_timeout: Duration::from_secs(20),
            handshake_timeout: Duration::from_secs(10),
            close_timeout: Duration::from_secs(5),
            slow_consumer_linger: Duration::from_secs(30),
            read_buffer_bytes: 2 * 1024,
            socket_send_buffer_bytes: 0,
            write_buffer_bytes: 16 * 1024,
        }
    }
}

impl Limits {
    /// The effective `max_anonymous_connections`: as configured, or half of `max_connections`
    /// (at least 1).
    pub fn anonymous_connection_cap(&self) -> usize {
        self.max_anonymous_connections
            .unwrap_or((self.max_connections / 2).max(1))
    }

    /// The effective `max_connections_per_address`: as configured, or a quarter of
    /// `max_connections` (at least 1).
    pub fn per_address_connection_cap(&self) -> usize {
        self.max_connections_per_address
            .unwrap_or((self.max_connections / 4).max(1))
    }
}

/// Durations as whole milliseconds, the unit of the TOML file.
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(u64::try_from(value.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        u64::deserialize(deserializer).map(Duration::from_millis)
    }
}

impl Config {
    /// Parses a TOML configuration file's text.
    pub fn from_toml(text: &str) -> Result<Config, toml::de::Error> {
        toml::from_str(text)
    }

    /// The configuration as TOML with every token replaced by `<redacted>`, for printing.
    pub fn redacted_toml(&self) -> String {
        toml::to_string(self).unwrap_or_else(|err| format!("# cannot render config: {err}\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_round_trips_with_millisecond_durations_and_redacts_tokens() {
        let text = r#"
            listen = "127.0.0.1:9000"
            public_topics = ["drives.pressure"]
            [limits]
            auth_deadline = 250
            max_pending_bytes = 1000
            [[tokens]]
            token = "s3cret"
            principal = "alice"
            roles = ["publisher"]
            read = ["sessions.activity:{principal}-*"]
        "#;
        let config = Config::from_toml(text).unwrap();
        assert_eq!(config.limits.auth_deadline, Duration::from_millis(250));
        assert_eq!(config.limits.max_pending_bytes, 1000);
        assert_eq!(
            config.limits.heartbeat_interval,
            Limits::default().heartbeat_interval
        );
        assert_eq!(config.tokens[0].principal, "alice");
        let printed = config.redacted_toml();
        assert!(!printed.contains("s3cret"), "{printed}");
        let with_redis = Config {
            redis_url: Some("redis://user:s3cret@127.0.0.1:6379/2".into()),
            ..config.clone()
        };
        let printed = with_redis.redacted_toml();
        assert!(
            printed.contains("redis_url = \"redis://<redacted>@127.0.0.1:6379/2\""),
            "{printed}"
        );
        assert_eq!(
            redacted_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        assert!(printed.contains("auth_deadline = 250"), "{printed}");
        assert!(!format!("{config:?}").contains("s3cret"));
    }

    #[test]
    fn the_example_file_parses_and_shows_the_default_limits() {
        let text = include_str!("../rtbus-server.example.toml");
        let config = Config::from_toml(text).unwrap();
        assert_eq!(config.limits, Limits::default());
        assert_eq!(config.listen, Config::default().listen);
        assert_eq!(config.tokens.len(), 1);
    }

    #[test]
    fn the_example_file_names_every_limit_and_its_commented_defaults_are_the_effective_ones() {
        let text = include_str!("../rtbus-server.example.toml");
        let limits = Limits::default();
        let every = Limits {
            max_anonymous_connections: Some(limits.anonymous_connection_cap()),
            max_connections_per_address: Some(limits.per_address_connection_cap()),
            ..limits
        };
        let table = toml::Table::try_from(&every).unwrap();
        // The optional limits are commented out; uncommented they give the same effective
        // values as leaving them out.
        let uncommented: String = text
            .lines()
            .map(|line| match line.strip_prefix("# ") {
                Some(rest)
                    if rest
                        .split_once(" = ")
                        .is_some_and(|(k, _)| table.contains_key(k)) =>
                {
                    rest
                }
                _ => line,
            })
            .collect::<Vec<_>>()
            .join("\n");
        let config = Config::from_toml(&uncommented).unwrap();
        assert_eq!(config.limits, every);
        for key in table.keys() {
            assert!(
                text.lines()
                    .any(|l| l.trim_start_matches("# ").starts_with(&format!("{key} ="))),
                "the example file should show limits.{key}"
            );
        }
    }

    #[test]
    fn unknown_keys_are_rejected_with_their_name() {
        let err = Config::from_toml("[limits]\nmax_mesage_bytes = 1\n").unwrap_err();
        assert!(err.to_string().contains("max_mesage_bytes"), "{err}");
    }
}
