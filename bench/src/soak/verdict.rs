//! What a soak run measured (samples over time, totals, the server's memory) and its verdict:
//! pure functions over the numbers, so the bound and the loss rules are tested without timing.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

const MIB: f64 = 1024.0 * 1024.0;

/// One reading, taken every `--sample-secs`: the server's resident memory and the run's counters
/// so far (cumulative since the first publish).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Seconds since publishing started.
    pub t_s: f64,
    /// Whether the sample falls in the warm-up, which the memory bound ignores.
    pub warmup: bool,
    /// The server's resident set (`VmRSS`), in bytes; `None` when it could not be read.
    pub rss_bytes: Option<u64>,
    /// Publishes the server acknowledged.
    pub published: u64,
    /// Events the subscribers received (replays after a resume included).
    pub received: u64,
    /// Events missed (a gap in a subscriber's `seq`).
    pub lost: u64,
    /// Events received twice.
    pub duplicated: u64,
    /// Events received after a later one (a gap filled late).
    pub out_of_order: u64,
    /// Errors: `error` frames, unexpected frames or closes, refused resumes.
    pub errors: u64,
    /// Churn: unsubscribe-then-resubscribe cycles on an open connection.
    pub resubscribes: u64,
    /// Churn: close-then-reconnect cycles, each resuming where it left off.
    pub reconnects: u64,
}

/// The load a soak run offered.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SoakLoad {
    /// The server under test.
    pub url: String,
    /// Seconds of publishing.
    pub duration_s: f64,
    /// Publishes per second, all publishers together.
    pub rate: f64,
    /// Topics the publishes are spread over.
    pub topics: usize,
    /// Subscriber connections, churners included.
    pub subscribers: usize,
    /// Subscribers that leave and come back every `churn_s` (alternately unsubscribing and
    /// reconnecting), resuming where they left off.
    pub churners: usize,
    /// Seconds between a churner's cycles.
    pub churn_s: f64,
    /// Publisher connections.
    pub publishers: usize,
    /// Approximate payload size in bytes.
    pub payload_bytes: usize,
    /// Seconds between samples.
    pub sample_s: f64,
}

/// The memory rule: after `warmup_s`, the last sample may exceed the first one by at most
/// `growth_bytes`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct RssBound {
    /// Seconds after the first publish that the bound ignores (histories filling, buffers and
    /// allocator pools reaching their working size).
    pub warmup_s: f64,
    /// Growth allowed from the first post-warm-up sample to the last one, in bytes.
    pub growth_bytes: u64,
}

/// The server's memory over the run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct RssSummary {
    /// The first sample.
    pub first: u64,
    /// The largest sample.
    pub peak: u64,
    /// The last sample.
    pub last: u64,
    /// The first sample after the warm-up: the baseline of the bound.
    pub baseline: u64,
    /// `last − baseline` (negative when memory shrank).
    pub growth: i64,
}

/// Everything a soak run measured, and its verdict.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SoakReport {
    /// The load.
    pub load: SoakLoad,
    /// The memory rule.
    pub bound: RssBound,
    /// Every sample, in order.
    pub samples: Vec<Sample>,
    /// Publishes the server acknowledged.
    pub published: u64,
    /// Deliveries the acknowledgements called for: for each subscriber, the events of its topic
    /// from its first subscription to the end of the run.
    pub expected: u64,
    /// Distinct expected events the subscribers received.
    pub received: u64,
    /// Expected events never received (gaps, and what had not arrived by the drain deadline).
    pub lost: u64,
    /// Events received twice.
    pub duplicated: u64,
    /// Events received after a later one.
    pub out_of_order: u64,
    /// Errors (`error` frames, unexpected frames or closes, refused resumes).
    pub errors: u64,
    /// The first errors, verbatim.
    pub error_samples: Vec<String>,
    /// Unsubscribe-then-resubscribe cycles.
    pub resubscribes: u64,
    /// Close-then-reconnect cycles.
    pub reconnects: u64,
    /// The server's memory, when every reading needed was there.
    pub rss: Option<RssSummary>,
    /// Why the run failed; empty when it passed.
    pub failures: Vec<String>,
}

/// The server's memory over `samples` under `bound`: `None` without a readable sample, or
/// without one after the warm-up (the baseline).
pub fn rss_summary(samples: &[Sample], bound: &RssBound) -> Option<RssSummary> {
    let readings: Vec<(f64, u64)> = samples
        .iter()
        .filter_map(|s| s.rss_bytes.map(|rss| (s.t_s, rss)))
        .collect();
    let &(_, first) = readings.first()?;
    let &(_, last) = readings.last()?;
    let &(_, baseline) = readings.iter().find(|(t, _)| *t >= bound.warmup_s)?;
    let peak = readings.iter().map(|(_, rss)| *rss).max()?;
    Some(RssSummary {
        first,
        peak,
        last,
        baseline,
        growth: i64::try_from(last).unwrap_or(i64::MAX) - i64::try_from(baseline).unwrap_or(0),
    })
}

/// Why the run fails, empty when it passes: any lost, duplicated or out-of-order event, any
/// error, no memory baseline after the warm-up, or growth beyond the bound.
pub fn verdict(report: &SoakReport) -> Vec<String> {
    let mut failures = Vec::new();
    let counts = [
        (report.lost, "lost"),
        (report.duplicated, "duplicated"),
        (report.out_of_order, "out of order"),
    ];
    for (count, what) in counts {
        if count > 0 {
            failures.push(format!("{count} event(s) {what}"));
        }
    }
    if report.errors > 0 {
        failures.push(format!("{} error(s)", report.errors));
    }
    if report.published == 0 {
        failures.push("nothing was published".to_owned());
    }
    let unread = report
        .samples
        .iter()
        .filter(|s| s.rss_bytes.is_none())
        .count();
    if unread > 0 {
        failures.push(format!(
            "the server's memory could not be read at {unread} of {} sample(s) (did it exit?)",
            report.samples.len()
        ));
    }
    match rss_summary(&report.samples, &report.bound) {
        None => failures.push(format!(
            "no reading of the server's memory after the {:.0} s warm-up: the run is too \
             short, or the server's /proc/<pid>/status could not be read",
            report.bound.warmup_s
        )),
        Some(rss) if rss.growth > i64::try_from(report.bound.growth_bytes).unwrap_or(i64::MAX) => {
            failures.push(format!(
                "server memory grew {:.1} MiB after the warm-up ({:.1} → {:.1} MiB), more \
                 than the bound of {:.1} MiB",
                rss.growth as f64 / MIB,
                rss.baseline as f64 / MIB,
                rss.last as f64 / MIB,
                report.bound.growth_bytes as f64 / MIB
            ));
        }
        Some(_) => {}
    }
    failures
}

impl SoakReport {
    /// Whether the run passed.
    pub fn is_clean(&self) -> bool {
        self.failures.is_empty()
    }

    /// The summary for people: the load, the totals, the memory, the verdict.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let load = &self.load;
        let _ = writeln!(
            out,
            "soak: {} for {:.0} s: {} publishes/s over {} topic(s), {} subscriber(s) ({} \
             churning every {} s), {} publisher(s), ~{} B payloads",
            load.url,
            load.duration_s,
            load.rate,
            load.topics,
            load.subscribers,
            load.churners,
            load.churn_s,
            load.publishers,
            load.payload_bytes,
        );
        let _ = writeln!(out, "  events published       {}", self.published);
        let _ = writeln!(out, "  deliveries expected    {}", self.expected);
        let _ = writeln!(out, "  deliveries received    {}", self.received);
        let _ = writeln!(out, "  lost                   {}", self.lost);
        let _ = writeln!(out, "  duplicated             {}", self.duplicated);
        let _ = writeln!(out, "  out of order           {}", self.out_of_order);
        let _ = writeln!(out, "  errors                 {}", self.errors);
        let _ = writeln!(
            out,
            "  churn                  {} resubscribes, {} reconnects",
            self.resubscribes, self.reconnects
        );
        for sample in &self.error_samples {
            let _ = writeln!(out, "    {sample}");
        }
        match &self.rss {
            Some(rss) => {
                let _ = writeln!(
                    out,
                    "  server RSS             first {:.1} MiB, peak {:.1} MiB, last {:.1} MiB",
                    rss.first as f64 / MIB,
                    rss.peak as f64 / MIB,
                    rss.last as f64 / MIB
                );
                let _ = writeln!(
                    out,
                    "  growth after warm-up   {:+.1} MiB (from {:.1} MiB, the first sample after \
                     the {:.1} s warm-up; bound: last ≤ that + {:.1} MiB)",
                    rss.growth as f64 / MIB,
                    rss.baseline as f64 / MIB,
                    self.bound.warmup_s,
                    self.bound.growth_bytes as f64 / MIB
                );
            }
            None => {
                let _ = writeln!(out, "  server RSS             not measured");
            }
        }
        if self.failures.is_empty() {
            let _ = writeln!(out, "PASS");
        } else {
            for failure in &self.failures {
                let _ = writeln!(out, "FAIL: {failure}");
            }
        }
        out
    }

    /// The samples as CSV, one row per sample, for plotting.
    pub fn csv(&self) -> String {
        let mut out = String::from(
            "t_s,warmup,rss_bytes,published,received,lost,duplicated,out_of_order,errors,\
             resubscribes,reconnects\n",
        );
        for s in &self.samples {
            let rss = s.rss_bytes.map(|r| r.to_string()).unwrap_or_default();
            let _ = writeln!(
                out,
                "{:.1},{},{rss},{},{},{},{},{},{},{},{}",
                s.t_s,
                s.warmup,
                s.published,
                s.received,
                s.lost,
                s.duplicated,
                s.out_of_order,
                s.errors,
                s.resubscribes,
                s.reconnects
            );
        }
        out
    }
}

/// The header of the table [`sample_row`] prints a line of.
pub const SAMPLE_HEADER: &str =
    "    t_s   rss_MiB   published    received  lost  dup  ooo  errors  resubs  reconnects";

/// One sample as a line of the table printed while the run goes on.
pub fn sample_row(s: &Sample) -> String {
    let rss = s
        .rss_bytes
        .map_or_else(|| "-".to_owned(), |r| format!("{:.1}", r as f64 / MIB));
    format!(
        "{:>7.1}{} {rss:>8} {:>11} {:>11} {:>5} {:>4} {:>4} {:>7} {:>7} {:>11}",
        s.t_s,
        if s.warmup { "w" } else { " " },
        s.published,
        s.received,
        s.lost,
        s.duplicated,
        s.out_of_order,
        s.errors,
        s.resubscribes,
        s.reconnects
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUND: RssBound = RssBound {
        warmup_s: 15.0,
        growth_bytes: 8 << 20,
    };

    fn sample(t_s: f64, rss_mib: u64) -> Sample {
        Sample {
            t_s,
            warmup: t_s < BOUND.warmup_s,
            rss_bytes: Some(rss_mib << 20),
            ..Sample::default()
        }
    }

    fn clean(samples: Vec<Sample>) -> SoakReport {
        SoakReport {
            bound: BOUND,
            samples,
            published: 1000,
            expected: 50_000,
            received: 50_000,
            ..SoakReport::default()
        }
    }

    #[test]
    fn growth_during_the_warm_up_is_not_counted() {
        // 10 → 40 MiB while the histories fill, then flat: the baseline is the 15 s sample.
        let report = clean(vec![
            sample(5.0, 10),
            sample(10.0, 30),
            sample(15.0, 40),
            sample(20.0, 44),
            sample(25.0, 41),
        ]);
        let rss = rss_summary(&report.samples, &report.bound).expect("baseline exists");
        assert_eq!(
            rss,
            RssSummary {
                first: 10 << 20,
                peak: 44 << 20,
                last: 41 << 20,
                baseline: 40 << 20,
                growth: 1 << 20,
            }
        );
        assert_eq!(verdict(&report), Vec::<String>::new());
    }

    #[test]
    fn growth_up_to_the_bound_passes_and_beyond_it_fails() {
        let at_bound = clean(vec![sample(15.0, 40), sample(60.0, 48)]);
        assert_eq!(verdict(&at_bound), Vec::<String>::new());
        let beyond = SoakReport {
            samples: vec![
                sample(15.0, 40),
                Sample {
                    rss_bytes: Some((48 << 20) + 4096),
                    ..sample(60.0, 0)
                },
            ],
            ..at_bound
        };
        assert_eq!(
            verdict(&beyond),
            [
                "server memory grew 8.0 MiB after the warm-up (40.0 → 48.0 MiB), more than the \
              bound of 8.0 MiB"
            ]
        );
        // A peak in between that came back down is not growth.
        let spike = clean(vec![sample(15.0, 40), sample(30.0, 90), sample(60.0, 41)]);
        assert_eq!(verdict(&spike), Vec::<String>::new());
        // Shrinking is fine.
        let shrink = clean(vec![sample(15.0, 40), sample(60.0, 30)]);
        assert_eq!(
            rss_summary(&shrink.samples, &shrink.bound).map(|r| r.growth),
            Some(-10 << 20)
        );
        assert_eq!(verdict(&shrink), Vec::<String>::new());
    }

    #[test]
    fn a_run_without_a_post_warm_up_reading_fails() {
        let short = clean(vec![sample(5.0, 10), sample(10.0, 12)]);
        assert_eq!(rss_summary(&short.samples, &short.bound), None);
        let failures = verdict(&short);
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert!(
            failures[0].starts_with("no reading of the server's memory after the 15 s warm-up")
        );
        // Unreadable samples after the warm-up do not count as a baseline.
        let unreadable = clean(vec![
            sample(5.0, 10),
            Sample {
                rss_bytes: None,
                ..sample(20.0, 0)
            },
        ]);
        assert_eq!(rss_summary(&unreadable.samples, &unreadable.bound), None);
        assert_eq!(
            verdict(&unreadable)[0],
            "the server's memory could not be read at 1 of 2 sample(s) (did it exit?)"
        );
        assert_eq!(verdict(&unreadable).len(), 2);
        // A server that vanished after the baseline fails too, though its readings were flat.
        let vanished = clean(vec![
            sample(15.0, 40),
            sample(20.0, 40),
            Sample {
                rss_bytes: None,
                ..sample(25.0, 0)
            },
        ]);
        assert_eq!(
            verdict(&vanished),
            ["the server's memory could not be read at 1 of 3 sample(s) (did it exit?)"]
        );
    }

    #[test]
    fn any_loss_duplicate_reordering_or_error_fails() {
        let samples = vec![sample(15.0, 40), sample(60.0, 40)];
        let report = SoakReport {
            lost: 3,
            duplicated: 1,
            out_of_order: 2,
            errors: 4,
            ..clean(samples.clone())
        };
        assert_eq!(
            verdict(&report),
            [
                "3 event(s) lost",
                "1 event(s) duplicated",
                "2 event(s) out of order",
                "4 error(s)"
            ]
        );
        let idle = SoakReport {
            published: 0,
            ..clean(samples)
        };
        assert_eq!(verdict(&idle), ["nothing was published"]);
    }

    #[test]
    fn samples_render_as_csv_and_table_rows() {
        let mut report = clean(vec![sample(5.0, 10), sample(15.0, 40)]);
        report.samples[1].published = 7;
        report.samples[1].rss_bytes = None;
        assert_eq!(
            report.csv(),
            "t_s,warmup,rss_bytes,published,received,lost,duplicated,out_of_order,errors,\
             resubscribes,reconnects\n\
             5.0,true,10485760,0,0,0,0,0,0,0,0\n\
             15.0,false,,7,0,0,0,0,0,0,0\n"
        );
        assert_eq!(
            sample_row(&report.samples[0]),
            "    5.0w     10.0           0           0     0    0    0       0       0           0"
        );
        assert_eq!(SAMPLE_HEADER.len(), sample_row(&report.samples[0]).len());
    }
}
