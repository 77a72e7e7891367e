//! The embedded reference server: one fresh in-process `rtbus-server` per case, configured
//! from the testee contract, on a free loopback port.

use std::time::Duration;

use crate::contract::{Contract, PUBLIC_TOPICS};
use crate::runner::{BoxFuture, InfraError, Prepared, ServerHandle, Target};
use crate::transcript::Capability;

/// The reference server as a target: each case gets its own server, so cases never share
/// topic state and `shutdownServer` steps work.
#[derive(Debug, Clone)]
pub struct Embedded {
    config: rtbus_server::Config,
}

/// The reference server configuration that fulfils `contract`.
pub fn server_config(contract: &Contract) -> rtbus_server::Config {
    let mut config = rtbus_server::Config {
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        public_topics: PUBLIC_TOPICS.iter().map(|s| (*s).to_owned()).collect(),
        ..Default::default()
    };
    for (name, credential) in &contract.credentials {
        let mut token = rtbus_server::TokenConfig::new(&credential.token, &credential.principal);
        token.roles = credential.roles.clone();
        let (read, publish) = crate::contract::permissions(name);
        token.read = read.iter().map(|s| (*s).to_owned()).collect();
        token.publish = publish.iter().map(|s| (*s).to_owned()).collect();
        config.tokens.push(token);
    }
    let l = &contract.limits;
    let limits = &mut config.limits;
    limits.max_message_bytes = usize::try_from(l.max_message_bytes).unwrap_or(usize::MAX);
    limits.max_topics_per_connection =
        usize::try_from(l.max_topics_per_connection).unwrap_or(usize::MAX);
    limits.max_pending_bytes = usize::try_from(l.max_pending_bytes).unwrap_or(usize::MAX);
    limits.history_per_topic = usize::try_from(l.history_per_topic).unwrap_or(usize::MAX);
    limits.auth_deadline = Duration::from_millis(l.auth_deadline_ms);
    limits.heartbeat_interval = Duration::from_millis(l.heartbeat_interval_ms);
    limits.heartbeat_timeout = Duration::from_millis(l.heartbeat_timeout_ms);
    // A small kernel send buffer makes a stalled reader overflow `max_pending_bytes` after a
    // few frames instead of after megabytes hidden in socket buffers.
    limits.socket_send_buffer_bytes = 16 * 1024;
    config
}

impl Embedded {
    /// The reference server configured from `contract`.
    pub fn new(contract: &Contract) -> Embedded {
        Embedded {
            config: server_config(contract),
        }
    }

    /// The reference server with a configuration of your own (e.g. a deliberately broken one).
    pub fn with_config(config: rtbus_server::Config) -> Embedded {
        Embedded { config }
    }
}

struct Running(rtbus_server::RunningServer);

impl ServerHandle for Running {
    fn shutdown(self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin(self.0.shutdown())
    }
}

impl Target for Embedded {
    fn describe(&self) -> String {
        "embedded rtbus-server (reference), a fresh instance per case on 127.0.0.1".into()
    }

    fn absent(&self) -> Vec<Capability> {
        Vec::new()
    }

    fn prepare(&self) -> BoxFuture<'_, Result<Prepared, InfraError>> {
        Box::pin(async move {
            let server = rtbus_server::start(self.config.clone())
                .await
                .map_err(|e| InfraError(format!("cannot start the embedded server: {e}")))?;
            Ok(Prepared {
                url: format!(
                    "ws://{}{}",
                    server.local_addr(),
                    rtbus_protocol::ENDPOINT_PATH
                ),
                server: Some(Box::new(Running(server))),
            })
        })
    }
}

/// A remote server at a fixed URL, shared by every case.
#[derive(Debug, Clone)]
pub struct Remote {
    /// The endpoint URL.
    pub url: String,
}

impl Target for Remote {
    fn describe(&self) -> String {
        self.url.clone()
    }

    fn absent(&self) -> Vec<Capability> {
        vec![Capability::Shutdown]
    }

    fn prepare(&self) -> BoxFuture<'_, Result<Prepared, InfraError>> {
        Box::pin(async move {
            Ok(Prepared {
                url: self.url.clone(),
                server: None,
            })
        })
    }
}

/// Checks that something accepts TCP connections at `url`, so an unreachable server is an
/// infrastructure error (exit 2) rather than every case failing.
pub async fn probe(url: &str) -> Result<(), InfraError> {
    let rest = url.strip_prefix("ws://").ok_or_else(|| {
        InfraError(format!(
            "unsupported URL {url}: expected ws://host:port/path (terminate TLS in front of the server)"
        ))
    })?;
    let authority = rest.split('/').next().unwrap_or(rest);
    match tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::TcpStream::connect(authority),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(InfraError(format!(
            "server unreachable at {authority}: {e}"
        ))),
        Err(_) => Err(InfraError(format!(
            "server unreachable at {authority}: timed out"
        ))),
    }
}
