//! What a load run measured, as JSON for tools and as text for people.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// A step counts as saturated when fewer than this share of the offered deliveries per second
/// arrive (servers and the loopback floor alike).
pub(crate) const SATURATION_SHARE: f64 = 0.9;

/// Why a step counts as saturated: `behind` (what did not arrive by the drain deadline) when
/// there is such a reason, or a delivered rate under [`SATURATION_SHARE`] of the offered one.
pub(crate) fn saturation(
    behind: Option<String>,
    delivered_per_s: f64,
    offered: f64,
) -> Option<String> {
    behind.or_else(|| {
        (delivered_per_s < SATURATION_SHARE * offered).then(|| {
            format!(
                "delivered {:.0}% of the offered rate",
                100.0 * delivered_per_s / offered
            )
        })
    })
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// How many samples.
    pub count: u64,
    /// Median.
    pub p50_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Largest sample.
    pub max_us: f64,
}

impl Percentiles {
    /// Percentiles of a histogram recorded in nanoseconds.
    pub fn of(h: &hdrhistogram::Histogram<u64>) -> Percentiles {
        let us = |ns: u64| ns as f64 / 1000.0;
        Percentiles {
            count: h.len(),
            p50_us: us(h.value_at_quantile(0.50)),
            p99_us: us(h.value_at_quantile(0.99)),
            p999_us: us(h.value_at_quantile(0.999)),
            max_us: us(h.max()),
        }
    }
}

/// One step of the rate ladder: publishing at a fixed open-loop rate for a fixed time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// Publishes per second offered (all publishers together).
    pub offered_publishes_per_s: f64,
    /// Deliveries per second offered: publishes times subscribers per topic.
    pub offered_deliveries_per_s: f64,
    /// Publishes acknowledged by the server.
    pub published: u64,
    /// Events received by subscribers for this step's publishes.
    pub delivered: u64,
    /// Deliveries expected for the acknowledged publishes.
    pub expected: u64,
    /// Delivered events per second, over the step's publishing time plus the time it took to
    /// drain.
    pub delivered_per_s: f64,
    /// Publish → receive latency of this step's events.
    pub latency: Percentiles,
    /// Seconds from the first publish until the last event of the step arrived.
    pub elapsed_s: f64,
    /// Share of its usable cores the generator used (1.0 = saturated).
    pub generator_cpu: f64,
    /// Server CPU seconds used during the step, when the server's process id is known.
    pub server_cpu_s: Option<f64>,
    /// Server CPU seconds per million deliveries.
    pub server_cpu_s_per_million: Option<f64>,
    /// Cores' worth of CPU that other processes on the machine (neither this generator nor
    /// the server under test) used during the step: a busy machine makes both look slower.
    #[serde(default)]
    pub other_cpu: Option<f64>,
    /// Why this step counts as saturated, if it does.
    pub saturated: Option<String>,
}

/// The stalled subscribers of a slow-consumer run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StalledReport {
    /// How many subscribers stopped reading.
    pub stalled: usize,
    /// How many of them the server cut off (closed the connection).
    pub cut_off: usize,
    /// Close codes received, as sent by the server.
    pub close_codes: Vec<u16>,
    /// Milliseconds from the stall until the publish time of the last event the server still
    /// queued for the stalled subscriber (the moment it stopped queueing), per cut-off
    /// subscriber, largest.
    pub cut_off_after_ms: Option<f64>,
    /// Events the stalled subscribers received in total (after resuming reading at the end).
    pub events_received: u64,
}

/// Idle connection memory.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IdleReport {
    /// Server resident memory before the generator connected, bytes.
    pub rss_before: u64,
    /// Server resident memory with every subscriber connected and idle, bytes.
    pub rss_after: u64,
    /// `(rss_after - rss_before) / connections`, bytes.
    pub bytes_per_connection: f64,
}

/// What the loopback floor (`rtbus-bench --floor`) measured beyond a step: the costs of the plain
/// `write` and `read` that every server and client pays per delivery on this machine.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FloorReport {
    /// Core the writer thread was pinned to, if it was.
    pub writer_core: Option<usize>,
    /// Core the reader thread was pinned to, if it was.
    pub reader_core: Option<usize>,
    /// Where the threads ran, or why they were not pinned.
    pub pinning: String,
    /// Bursts written: one record to every connection each.
    pub bursts: u64,
    /// Writer CPU microseconds per record written (one blocking `write` each).
    pub writer_cpu_us_per_record: f64,
    /// Share of its core the writer used between the first burst and its last.
    pub writer_cpu_share: f64,
    /// Reader CPU microseconds per record read.
    pub reader_cpu_us_per_record: f64,
    /// Share of its core the reader used from the first burst until it stopped.
    pub reader_cpu_share: f64,
    /// Records per successful `read` (above 1 when records queued up in a socket).
    pub records_per_read: f64,
    /// Wall time to write one burst to every connection.
    pub burst_write: Percentiles,
}

/// The whole result of one `rtbus-bench` run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// A name for the server under test.
    pub label: String,
    /// The URL that was driven (the publishers', and the first subscribers').
    pub url: String,
    /// The other servers the subscribers were spread over (nodes of one cluster).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscriber_urls: Vec<String>,
    /// Subscriber connections.
    pub subscribers: usize,
    /// Topics the subscribers are spread over.
    pub topics: usize,
    /// Publisher connections.
    pub publishers: usize,
    /// Target size of each event payload, bytes.
    pub payload_bytes: usize,
    /// Cores the generator may use.
    pub generator_cores: usize,
    /// Time to open, upgrade and subscribe each subscriber connection.
    pub connect: Percentiles,
    /// Seconds to connect and subscribe every subscriber.
    pub setup_s: f64,
    /// The rate ladder, in order.
    pub steps: Vec<Step>,
    /// The highest delivered events/s of any step.
    pub saturation_deliveries_per_s: f64,
    /// The step run at half the saturation rate, for latency.
    pub half_load: Option<Step>,
    /// Events a subscriber missed: a gap in `seq` within an epoch, counted from the `seq` its
    /// `subscribed` entry named (or, in an epoch that began mid-run, from the first publish
    /// acknowledged in it). Any is a failure.
    pub lost: u64,
    /// Acknowledged events still on their way when the drain timeout ended the run (the server
    /// was too slow, nothing was skipped). Reported, not a failure.
    #[serde(default)]
    pub undelivered: u64,
    /// Events delivered twice or out of order. Any is a failure.
    pub out_of_order: u64,
    /// Times a topic's `epoch` changed mid-run, seen by a subscriber or in a publisher's
    /// acknowledgements: the server reset the topic's stream, and `seq` values of the two epochs
    /// are not compared. Any is a failure.
    #[serde(default)]
    pub epoch_changes: u64,
    /// Errors: failed connections, `error` frames, unexpected closes, invalid frames.
    pub errors: u64,
    /// The first few errors, verbatim.
    pub error_samples: Vec<String>,
    /// Whether the generator's own CPU was saturated in a step that counts (its numbers are
    /// then a lower bound for the server).
    pub generator_saturated: bool,
    /// Slow-consumer results, when subscribers were stalled.
    pub stalled: Option<StalledReport>,
    /// Idle memory results, in idle mode.
    pub idle: Option<IdleReport>,
    /// Loopback floor results, in floor mode (the step's `server_cpu_s` is then the writer's
    /// CPU and `generator_cpu` the reader's share of its core).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floor: Option<FloorReport>,
    /// Redis commands per publish, with `--redis-stats`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis: Option<crate::commandstats::RedisCommands>,
}

impl Report {
    /// Whether the run found no lost, reordered or erroneous events and no stream reset.
    pub fn is_clean(&self) -> bool {
        self.lost == 0 && self.out_of_order == 0 && self.epoch_changes == 0 && self.errors == 0
    }

    /// A human-readable summary.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if self.floor.is_some() {
            let _ = writeln!(
                out,
                "{} ({}): {} connections, {}-byte records, one blocking write per record and connection (no WebSocket, no JSON)",
                self.label, self.url, self.subscribers, self.payload_bytes,
            );
            let _ = writeln!(
                out,
                "  connect: p50 {:.0} µs, p99 {:.0} µs, max {:.0} µs",
                self.connect.p50_us, self.connect.p99_us, self.connect.max_us
            );
        } else {
            let _ = writeln!(
                out,
                "{} ({}): {} subscribers over {} topic(s), {} publisher(s), {}-byte payloads, generator on {} core(s)",
                self.label,
                self.url,
                self.subscribers,
                self.topics,
                self.publishers,
                self.payload_bytes,
                self.generator_cores
            );
            let _ = writeln!(
                out,
                "  connect+subscribe: p50 {:.0} µs, p99 {:.0} µs, max {:.0} µs; all connected in {:.2} s",
                self.connect.p50_us, self.connect.p99_us, self.connect.max_us, self.setup_s
            );
        }
        if !self.subscriber_urls.is_empty() {
            let _ = writeln!(
                out,
                "  subscribers also on: {} (publishers on {} only)",
                self.subscriber_urls.join(", "),
                self.url
            );
        }
        for (i, step) in self.steps.iter().enumerate() {
            let _ = writeln!(
                out,
                "  step {i}: {}",
                render_step(step, self.floor.is_some())
            );
        }
        if !self.steps.is_empty() {
            let _ = writeln!(
                out,
                "  saturation: {:.0} delivered events/s",
                self.saturation_deliveries_per_s
            );
        }
        if let Some(half) = &self.half_load {
            let _ = writeln!(
                out,
                "  half load: {}",
                render_step(half, self.floor.is_some())
            );
        }
        if let Some(stalled) = &self.stalled {
            let _ = writeln!(
                out,
                "  stalled: {} of {} cut off (close codes {:?}), cut off {} after the stall",
                stalled.cut_off,
                stalled.stalled,
                stalled.close_codes,
                stalled
                    .cut_off_after_ms
                    .map_or("never".to_owned(), |ms| format!("{ms:.0} ms")),
            );
        }
        if let Some(idle) = &self.idle {
            let _ = writeln!(
                out,
                "  idle memory: {:.0} bytes per connection ({} → {} bytes RSS)",
                idle.bytes_per_connection, idle.rss_before, idle.rss_after
            );
        }
        if let Some(floor) = &self.floor {
            let _ = writeln!(
                out,
                "  floor: {} bursts; writer {:.2} cpu-µs per record ({:.0}% of its core), reader {:.2} cpu-µs per record ({:.0}% of its core), {:.2} records per read; one burst took p50 {:.0} µs, p99 {:.0} µs, max {:.0} µs to write; {}",
                floor.bursts,
                floor.writer_cpu_us_per_record,
                floor.writer_cpu_share * 100.0,
                floor.reader_cpu_us_per_record,
                floor.reader_cpu_share * 100.0,
                floor.records_per_read,
                floor.burst_write.p50_us,
                floor.burst_write.p99_us,
                floor.burst_write.max_us,
                floor.pinning
            );
        }
        if let Some(redis) = &self.redis {
            let _ = writeln!(
                out,
                "  redis: {} publishes, {} EVALSHA ({:.3} per publish), {} commands in all ({:.3} per publish) over {:.1} s: {:?}",
                redis.published,
                redis.evalsha,
                redis.evalsha_per_publish,
                redis.total,
                redis.total_per_publish,
                redis.seconds,
                redis.by_command
            );
        }
        let _ = writeln!(
            out,
            "  lost events: {}, undelivered at the drain deadline: {}, out of order: {}, epoch changes: {}, errors: {}{}",
            self.lost,
            self.undelivered,
            self.out_of_order,
            self.epoch_changes,
            self.errors,
            if self.generator_saturated {
                " — the GENERATOR saturated its CPU: throughput is a lower bound for the server"
            } else {
                ""
            }
        );
        for sample in &self.error_samples {
            let _ = writeln!(out, "    error: {sample}");
        }
        out
    }
}

/// One step as a line; in floor mode the generator is the reader and the server the writer.
fn render_step(step: &Step, floor: bool) -> String {
    let (generator, server) = if floor {
        ("reader", "writer")
    } else {
        ("generator", "server")
    };
    let mut line = format!(
        "offered {:.0} pub/s ({:.0} deliveries/s) → delivered {:.0}/s ({}/{}), p50 {:.0} µs p99 {:.0} µs p999 {:.0} µs, {generator} cpu {:.0}%",
        step.offered_publishes_per_s,
        step.offered_deliveries_per_s,
        step.delivered_per_s,
        step.delivered,
        step.expected,
        step.latency.p50_us,
        step.latency.p99_us,
        step.latency.p999_us,
        step.generator_cpu * 100.0
    );
    if let Some(per_million) = step.server_cpu_s_per_million {
        let _ = write!(line, ", {server} {per_million:.2} cpu-s per million");
    }
    if let Some(other) = step.other_cpu {
        let _ = write!(line, ", other processes {:.0}% of a core", other * 100.0);
    }
    if let Some(why) = &step.saturated {
        let _ = write!(line, " [saturated: {why}]");
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_is_saturated_when_it_falls_behind_or_delivers_under_the_share() {
        assert_eq!(saturation(None, 90_000.0, 100_000.0), None);
        assert_eq!(
            saturation(None, 89_000.0, 100_000.0).as_deref(),
            Some("delivered 89% of the offered rate")
        );
        // Not draining is the stronger statement and wins.
        assert_eq!(
            saturation(Some("3 of 9 not read".into()), 10.0, 100_000.0).as_deref(),
            Some("3 of 9 not read")
        );
    }
}
