//! Several nodes of one Redis-backed cluster in this process, for tests outside this crate (the
//! conformance harness, benchmarks): [`start_cluster`] starts them on ephemeral ports, waits
//! until each has reached Redis, and returns their addresses and one handle that shuts them
//! all down.

use std::net::SocketAddr;
use std::time::Duration;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::server::{RunningServer, start};

/// How long [`start_cluster`] waits for every node to reach Redis.
pub const CLUSTER_READY_TIMEOUT: Duration = Duration::from_secs(10);

/// How often [`start_cluster`] looks whether the nodes have reached Redis.
const READY_POLL: Duration = Duration::from_millis(20);

/// Nodes started by [`start_cluster`], sharing one Redis and key prefix. Dropping it stops
/// them too, without waiting.
#[derive(Debug)]
pub struct Cluster {
    nodes: Vec<RunningServer>,
}

/// Starts `nodes` nodes in this process from `base` (tokens, public topics, limits), each on
/// `base.listen`'s IP at an ephemeral port, all on the Redis at `redis_url` under the key prefix
/// `key_prefix`: clients may connect to any of them and see one stream per topic. Returns once
/// every node answers and has reached Redis (within [`CLUSTER_READY_TIMEOUT`]).
///
/// Give each test its own `key_prefix` (e.g. with a counter or the process id): nodes of
/// different prefixes share nothing, so tests on one Redis do not see each other's topics.
///
/// ```no_run
/// # async fn run() -> Result<(), rtbus_server::Error> {
/// let base = rtbus_server::Config {
///     listen: "127.0.0.1:0".parse().expect("an address"),
///     public_topics: vec!["drives.pressure".into()],
///     ..Default::default()
/// };
/// let cluster = rtbus_server::start_cluster(base, "redis://127.0.0.1:6379", "test-1:", 2).await?;
/// for url in cluster.urls() {
///     println!("{url}");
/// }
/// cluster.shutdown().await;
/// # Ok(()) }
/// ```
pub async fn start_cluster(
    base: Config,
    redis_url: &str,
    key_prefix: &str,
    nodes: usize,
) -> Result<Cluster> {
    if nodes == 0 {
        return Err(Error::Config(
            "start_cluster: a cluster needs at least 1 node (nodes = 0)".to_owned(),
        ));
    }
    let config = Config {
        listen: SocketAddr::new(base.listen.ip(), 0),
        redis_url: Some(redis_url.to_owned()),
        redis_key_prefix: key_prefix.to_owned(),
        ..base
    };
    let mut cluster = Cluster {
        nodes: Vec::with_capacity(nodes),
    };
    for _ in 0..nodes {
        cluster.nodes.push(start(config.clone()).await?);
    }
    cluster.ready(CLUSTER_READY_TIMEOUT).await?;
    Ok(cluster)
}

impl Cluster {
    /// Waits until every node has reached Redis, at most `wait`.
    async fn ready(&self, wait: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + wait;
        for node in &self.nodes {
            loop {
                let why = match node.engine_health() {
                    Ok(()) => break,
                    Err(why) => why,
                };
                if tokio::time::Instant::now() >= deadline {
                    return Err(Error::NotReady {
                        addr: node.local_addr(),
                        waited: wait,
                        reason: why,
                    });
                }
                tokio::time::sleep(READY_POLL).await;
            }
        }
        Ok(())
    }

    /// The nodes' listen addresses, in start order.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.nodes.iter().map(RunningServer::local_addr).collect()
    }

    /// The nodes' WebSocket URLs (`ws://ADDR/api/realtime`), in start order.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RunningServer::url).collect()
    }

    /// The nodes themselves (for their stats, or to shut one down alone with
    /// [`Cluster::remove`]).
    pub fn nodes(&self) -> &[RunningServer] {
        &self.nodes
    }

    /// Takes node `index` out of the cluster (to shut it down or drop it alone); `None` when
    /// there is no such node.
    pub fn remove(&mut self, index: usize) -> Option<RunningServer> {
        (index < self.nodes.len()).then(|| self.nodes.remove(index))
    }

    /// Shuts every node down as [`RunningServer::shutdown`] does, all at once.
    pub async fn shutdown(self) {
        futures_util::future::join_all(self.nodes.into_iter().map(RunningServer::shutdown)).await;
    }
}
