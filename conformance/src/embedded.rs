//! The embedded reference server: one fresh in-process `rtbus-server` per case, configured
//! from the testee contract, on a free loopback port.

use std::net::SocketAddr;
use std::time::Duration;

use crate::contract::{Contract, PUBLIC_TOPICS};
use crate::error::{ConnectFailure, InfraError, ServerCommand};
use crate::runner::{BoxFuture, Prepared, ServerHandle, Target};
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

/// A running embedded server, with what it takes to start it again.
struct Running {
    config: rtbus_server::Config,
    server: Option<rtbus_server::RunningServer>,
    /// Where the last server listened, reused by a restart when the port is still free.
    addr: SocketAddr,
}

fn url_of(addr: SocketAddr) -> String {
    format!("ws://{addr}{}", rtbus_protocol::ENDPOINT_PATH)
}

async fn start(config: rtbus_server::Config) -> Result<rtbus_server::RunningServer, InfraError> {
    rtbus_server::start(config).await.map_err(InfraError::Start)
}

/// Stops `server` (if it runs) and starts a fresh reference server with `config`, all state
/// lost as in a process restart: on `addr` when the OS gives the port back, so a client's URL
/// stays valid, on a free loopback port otherwise (the caller then connects there).
pub async fn restart(
    server: Option<rtbus_server::RunningServer>,
    config: &rtbus_server::Config,
    addr: SocketAddr,
) -> Result<rtbus_server::RunningServer, InfraError> {
    if let Some(server) = server {
        server.shutdown().await;
    }
    let mut config = config.clone();
    config.listen = addr;
    match start(config.clone()).await {
        Ok(server) => Ok(server),
        Err(_) => {
            config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
            start(config).await
        }
    }
}

impl ServerHandle for Running {
    fn shutdown(&mut self) -> BoxFuture<'static, Result<(), InfraError>> {
        let server = self.server.take();
        Box::pin(async move {
            if let Some(server) = server {
                server.shutdown().await;
            }
            Ok(())
        })
    }

    fn restart(&mut self) -> BoxFuture<'_, Result<Vec<String>, InfraError>> {
        Box::pin(async move {
            let server = restart(self.server.take(), &self.config, self.addr).await?;
            self.addr = server.local_addr();
            self.server = Some(server);
            Ok(vec![url_of(self.addr)])
        })
    }

    fn release(mut self: Box<Self>) -> BoxFuture<'static, Result<(), InfraError>> {
        self.shutdown()
    }
}

impl Target for Embedded {
    fn describe(&self) -> String {
        "embedded rtbus-server (reference), a fresh instance per case on 127.0.0.1".into()
    }

    fn absent(&self) -> Vec<Capability> {
        // One in-memory server per case: no second node shares its stream.
        vec![Capability::Cluster]
    }

    fn prepare(&self) -> BoxFuture<'_, Result<Prepared, InfraError>> {
        Box::pin(async move {
            let server = start(self.config.clone()).await?;
            let addr = server.local_addr();
            Ok(Prepared {
                urls: vec![url_of(addr)],
                server: Some(Box::new(Running {
                    config: self.config.clone(),
                    server: Some(server),
                    addr,
                })),
            })
        })
    }
}

/// A remote server at a fixed URL, shared by every case, that the harness cannot restart or
/// shut down.
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
        vec![
            Capability::Shutdown,
            Capability::Restart,
            Capability::Cluster,
        ]
    }

    fn prepare(&self) -> BoxFuture<'_, Result<Prepared, InfraError>> {
        Box::pin(async move {
            Ok(Prepared {
                urls: vec![self.url.clone()],
                server: None,
            })
        })
    }

    fn shared(&self) -> bool {
        true
    }

    fn nodes(&self) -> Vec<String> {
        vec![self.url.clone()]
    }
}

/// Shell commands that restart and shut down a server the harness does not run itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerCommands {
    /// Stops the server if it runs and starts it again with its state lost; returns once the
    /// old process no longer accepts connections.
    pub restart: Option<String>,
    /// Shuts the server down gracefully (its connections get 1001).
    pub shutdown: Option<String>,
    /// How long a command may run, and then how long the URL may take to accept TCP.
    pub timeout: Duration,
}

impl ServerCommands {
    /// The commands the contract names.
    pub fn from_contract(contract: &Contract) -> ServerCommands {
        ServerCommands {
            restart: contract.restart_command.clone(),
            shutdown: contract.shutdown_command.clone(),
            timeout: Duration::from_millis(contract.command_timeout_ms),
        }
    }
}

/// A remote server at a fixed URL, shared by every case, restarted and shut down by
/// [`ServerCommands`]. Without a command, its capability is absent.
#[derive(Debug, Clone)]
pub struct Scripted {
    /// The endpoint URL.
    pub url: String,
    /// How to restart and shut it down.
    pub commands: ServerCommands,
}

impl Scripted {
    fn as_cluster(&self) -> Cluster {
        Cluster {
            urls: vec![self.url.clone()],
            commands: self.commands.clone(),
        }
    }
}

impl Target for Scripted {
    fn describe(&self) -> String {
        self.as_cluster().describe()
    }

    fn absent(&self) -> Vec<Capability> {
        self.as_cluster().absent()
    }

    fn prepare(&self) -> BoxFuture<'_, Result<Prepared, InfraError>> {
        Box::pin(async move { self.as_cluster().prepare().await })
    }

    fn shared(&self) -> bool {
        true
    }

    fn nodes(&self) -> Vec<String> {
        vec![self.url.clone()]
    }
}

/// Several nodes serving one stream (a cluster), shared by every case: a case's connections
/// are spread across `urls` by [`crate::runner::node_of`] (the i-th connection, by name, goes
/// to URL i mod n). The commands apply to every node: a restart or shutdown runs the command
/// once per node, in order, with `RTBUS_CONFORMANCE_URL` set to that node's URL. With one URL
/// it is a [`Scripted`] server, without the `cluster` capability.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// The nodes' endpoint URLs, in order.
    pub urls: Vec<String>,
    /// How to restart and shut each node down.
    pub commands: ServerCommands,
}

impl Target for Cluster {
    fn describe(&self) -> String {
        let mut hooks = Vec::new();
        if self.commands.restart.is_some() {
            hooks.push("restart");
        }
        if self.commands.shutdown.is_some() {
            hooks.push("shutdown");
        }
        let nodes = match self.urls.as_slice() {
            [one] => one.clone(),
            many => format!(
                "a cluster of {} nodes: {} (connection i by name goes to node i mod {})",
                many.len(),
                many.iter()
                    .enumerate()
                    .map(|(i, url)| format!("[{i}] {url}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                many.len()
            ),
        };
        if hooks.is_empty() {
            nodes
        } else {
            let each = if self.urls.len() > 1 {
                ", run for each node"
            } else {
                ""
            };
            format!("{nodes} (with {} command{each})", hooks.join(" and "))
        }
    }

    fn absent(&self) -> Vec<Capability> {
        let mut absent = Vec::new();
        if self.commands.shutdown.is_none() {
            absent.push(Capability::Shutdown);
        }
        if self.commands.restart.is_none() {
            absent.push(Capability::Restart);
        }
        if self.urls.len() < 2 {
            absent.push(Capability::Cluster);
        }
        absent
    }

    fn prepare(&self) -> BoxFuture<'_, Result<Prepared, InfraError>> {
        Box::pin(async move {
            Ok(Prepared {
                urls: self.urls.clone(),
                server: Some(Box::new(ScriptedHandle {
                    urls: self.urls.clone(),
                    commands: self.commands.clone(),
                    down: false,
                })),
            })
        })
    }

    fn shared(&self) -> bool {
        true
    }

    fn nodes(&self) -> Vec<String> {
        self.urls.clone()
    }
}

struct ScriptedHandle {
    /// Every node's URL; the commands run once per node.
    urls: Vec<String>,
    commands: ServerCommands,
    /// The case shut the server down and nothing has started it since.
    down: bool,
}

impl ScriptedHandle {
    fn command(&self, which: ServerCommand) -> Result<String, InfraError> {
        let command = match which {
            ServerCommand::Restart => &self.commands.restart,
            ServerCommand::Shutdown => &self.commands.shutdown,
        };
        command.clone().ok_or(InfraError::NoCommand { which })
    }
}

impl ServerHandle for ScriptedHandle {
    fn shutdown(&mut self) -> BoxFuture<'static, Result<(), InfraError>> {
        let command = self.command(ServerCommand::Shutdown);
        let (urls, timeout) = (self.urls.clone(), self.commands.timeout);
        self.down = command.is_ok();
        Box::pin(async move {
            let command = command?;
            for url in &urls {
                run_command(ServerCommand::Shutdown, &command, url, timeout).await?;
            }
            Ok(())
        })
    }

    fn restart(&mut self) -> BoxFuture<'_, Result<Vec<String>, InfraError>> {
        Box::pin(async move {
            let command = self.command(ServerCommand::Restart)?;
            for url in &self.urls {
                run_command(ServerCommand::Restart, &command, url, self.commands.timeout).await?;
            }
            for url in &self.urls {
                wait_until_listening(url, self.commands.timeout).await?;
            }
            self.down = false;
            Ok(self.urls.clone())
        })
    }

    fn release(mut self: Box<Self>) -> BoxFuture<'static, Result<(), InfraError>> {
        Box::pin(async move {
            // The next case needs the server; without a restart command the shutdown cases
            // run last (see `run_suite`), so nothing else is left to need it.
            if self.down && self.commands.restart.is_some() {
                self.restart().await?;
            }
            Ok(())
        })
    }
}

/// How much of a failed command's stderr an error quotes.
const STDERR_QUOTE_BYTES: usize = 2000;

/// Runs `command` with `sh -c`, bounded by `timeout`; a non-zero exit is an error quoting the
/// status and stderr. `RTBUS_CONFORMANCE_URL` tells the command which server is meant.
pub async fn run_command(
    which: ServerCommand,
    command: &str,
    url: &str,
    timeout: Duration,
) -> Result<(), InfraError> {
    use tokio::io::AsyncReadExt as _;
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .env("RTBUS_CONFORMANCE_URL", url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| InfraError::Spawn {
            which,
            command: command.to_owned(),
            source,
        })?;
    // Read stderr beside the wait: a server the command starts in the background may keep the
    // pipe open for good, so the exit status, not the end of stderr, ends the command.
    let mut stderr = child.stderr.take();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
    let reader = tokio::spawn(async move {
        let mut buf = [0u8; 1024];
        while let Some(pipe) = stderr.as_mut() {
            match pipe.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    let status = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(status) => status,
        Err(_) => {
            let _ = child.kill().await;
            reader.abort();
            return Err(InfraError::CommandTimeout {
                which,
                command: command.to_owned(),
                timeout,
            });
        }
    }
    .map_err(|source| InfraError::Wait {
        which,
        command: command.to_owned(),
        source,
    })?;
    // Drain what the command wrote; the reader ends at EOF, or a background process keeps
    // the pipe open and the grace period ends it.
    let mut err = Vec::new();
    let grace = tokio::time::Instant::now() + Duration::from_millis(200);
    while let Ok(Some(chunk)) = tokio::time::timeout_at(grace, rx.recv()).await {
        err.extend(chunk);
    }
    reader.abort();
    if status.success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&err);
    Err(InfraError::CommandFailed {
        which,
        command: command.to_owned(),
        status,
        stderr: crate::prefix(text.trim(), STDERR_QUOTE_BYTES).to_owned(),
    })
}

/// Waits, at most `timeout`, until something accepts TCP connections at `url`.
pub async fn wait_until_listening(url: &str, timeout: Duration) -> Result<(), InfraError> {
    let authority = authority(url)?;
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let last = match connect(&authority, left).await {
            Ok(()) => return Ok(()),
            Err(last) => last,
        };
        if tokio::time::Instant::now() + RETRY_EVERY >= deadline {
            return Err(InfraError::NotListening {
                authority: authority.to_owned(),
                timeout,
                last,
            });
        }
        tokio::time::sleep(RETRY_EVERY).await;
    }
}

/// How often [`wait_until_listening`] tries to connect.
const RETRY_EVERY: Duration = Duration::from_millis(50);

/// `host:port` of a `ws://` URL, through the one URL parser (the port defaults to 80).
fn authority(url: &str) -> Result<String, InfraError> {
    rtbus_socket::Url::parse(url)
        .map(|parsed| parsed.authority())
        .map_err(|_| InfraError::UnsupportedUrl {
            url: url.to_owned(),
        })
}

/// One TCP connection attempt to `authority`, bounded by `wait`.
async fn connect(authority: &str, wait: Duration) -> Result<(), ConnectFailure> {
    match tokio::time::timeout(wait, tokio::net::TcpStream::connect(authority)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(ConnectFailure::Io(e)),
        Err(_) => Err(ConnectFailure::TimedOut),
    }
}

/// Checks that something accepts TCP connections at `url`, so an unreachable server is an
/// infrastructure error (exit 2) rather than every case failing.
pub async fn probe(url: &str) -> Result<(), InfraError> {
    let authority = authority(url)?;
    connect(&authority, Duration::from_secs(5))
        .await
        .map_err(|cause| InfraError::Unreachable {
            authority: authority.to_owned(),
            cause,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime")
    }

    #[test]
    fn commands_fail_with_their_status_stderr_or_timeout() {
        let rt = runtime();
        let url = "ws://127.0.0.1:1/api/realtime";
        let wait = Duration::from_secs(5);
        let failed = rt.block_on(run_command(
            ServerCommand::Restart,
            "echo 'no such server' >&2; exit 3",
            url,
            wait,
        ));
        let Err(e) = failed else {
            panic!("a failing command succeeded");
        };
        assert!(
            matches!(&e, InfraError::CommandFailed { which: ServerCommand::Restart, status, stderr, .. }
                if status.code() == Some(3) && stderr == "no such server"),
            "{e}"
        );
        assert_eq!(
            e.to_string(),
            "the restart command `echo 'no such server' >&2; exit 3` failed (exit status: 3); \
             stderr: no such server"
        );
        let silent = rt.block_on(run_command(ServerCommand::Shutdown, "exit 1", url, wait));
        assert!(
            silent
                .as_ref()
                .is_err_and(|e| e.to_string().ends_with("; it wrote nothing to stderr")),
            "{silent:?}"
        );
        let slow = rt.block_on(run_command(
            ServerCommand::Shutdown,
            "sleep 5",
            url,
            Duration::from_millis(100),
        ));
        assert!(
            matches!(&slow, Err(InfraError::CommandTimeout { which: ServerCommand::Shutdown, timeout, .. })
                if timeout.as_millis() == 100),
            "{slow:?}"
        );
        // The command learns which server is meant.
        let told = rt.block_on(run_command(
            ServerCommand::Restart,
            "test \"$RTBUS_CONFORMANCE_URL\" = ws://127.0.0.1:1/api/realtime",
            url,
            wait,
        ));
        assert!(told.is_ok(), "{told:?}");
    }

    #[test]
    fn a_target_without_a_command_says_how_to_name_one() {
        let mut handle = ScriptedHandle {
            urls: vec!["ws://127.0.0.1:1/api/realtime".into()],
            commands: ServerCommands::from_contract(&Contract::default()),
            down: false,
        };
        let rt = runtime();
        let e = rt.block_on(handle.restart()).unwrap_err();
        assert!(
            matches!(
                e,
                InfraError::NoCommand {
                    which: ServerCommand::Restart
                }
            ),
            "{e}"
        );
        let e = rt.block_on(handle.shutdown()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "no shutdown command: name one with --shutdown-command or shutdownCommand in the contract"
        );
    }

    #[test]
    fn probes_name_the_url_or_the_address_that_failed() {
        let rt = runtime();
        let e = rt
            .block_on(probe("wss://example.com/api/realtime"))
            .unwrap_err();
        assert!(
            matches!(&e, InfraError::UnsupportedUrl { url } if url == "wss://example.com/api/realtime"),
            "{e}"
        );
        // A port nothing listens on: bound, then released.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port");
        let e = rt
            .block_on(probe(&format!("ws://{addr}/api/realtime")))
            .unwrap_err();
        assert!(
            matches!(&e, InfraError::Unreachable { authority, cause: ConnectFailure::Io(_) }
                if *authority == addr.to_string()),
            "{e}"
        );
        let e = rt
            .block_on(wait_until_listening(
                &format!("ws://{addr}/api/realtime"),
                Duration::from_millis(120),
            ))
            .unwrap_err();
        assert!(matches!(e, InfraError::NotListening { .. }), "{e}");
    }
}
