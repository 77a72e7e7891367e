//! Benchmarks for any rtbus v1 server: a load generator, the loopback floor, and the suite that
//! runs every scenario against the reference server and its peers.
//!
//! N subscriber connections spread over M topics, P publishers at an open-loop rate stepped up
//! until the server saturates. Every event carries its intended send time, so latency is
//! publish → receive; every subscriber checks that `seq` has no gap, so a lost event is a
//! failure, not a statistic. The generator watches its own CPU and says when it, rather than
//! the server, was the bottleneck. `--floor` measures the same fan-out over plain TCP sockets
//! instead of a server: what the machine allows.
//!
//! - [`cli`]: the `rtbus-bench` command line: one load, the floor, a served reference server,
//!   or the suite.
//! - `generator`: subscribers, publishers, the rate ladder and the seq accounting.
//! - `floor`: the loopback floor; [`report`]: what one run measured, as text and JSON.
//! - [`suite`]: every scenario against every server that passes the `gate` (the harness's
//!   fan-out cases); [`render`]: its results as Markdown tables and an SVG chart.
//! - [`soak`]: steady load for minutes, the server's memory over time, and a verdict on loss,
//!   errors and memory growth.
//! - [`cluster`]: one node beside two nodes on Redis, same loads, same run (`--cluster`).
//! - [`commandstats`]: Redis's `INFO commandstats`, for commands per publish on a cluster.
//! - `embedded`: the reference server in its bench configuration; `sys`: `/proc` accounting.
#![deny(missing_docs)]

pub mod cli;
pub mod cluster;
pub mod commandstats;
mod embedded;
mod floor;
mod gate;
mod generator;
pub mod render;
pub mod report;
pub mod soak;
pub mod suite;
mod sys;

pub use generator::TopicKind;
pub use report::Report;
