//! `cluster.md`: the scale-out comparison as Markdown tables, one node beside two nodes on
//! Redis, the added latency of the Redis hop, and Redis's commands per publish.

use std::fmt::Write as _;

use super::{ClusterResults, FANOUT, LATENCY_1K, LATENCY_100, Shape};
use crate::render::verdict;
use crate::report::{Report, Step};
use crate::suite::Mode;

/// `1234567.4` as `1,234,567`.
fn grouped(n: f64) -> String {
    let digits = format!("{:.0}", n.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if n < -0.5 { format!("-{out}") } else { out }
}

fn p50_p99_p999(step: &Step) -> String {
    format!(
        "{:.2} / {:.2} / {:.2} ms",
        step.latency.p50_us / 1000.0,
        step.latency.p99_us / 1000.0,
        step.latency.p999_us / 1000.0
    )
}

/// The step a saturation figure comes from: the one that delivered most.
fn best_step(report: &Report) -> Option<&Step> {
    report
        .steps
        .iter()
        .max_by(|a, b| a.delivered_per_s.total_cmp(&b.delivered_per_s))
}

/// What the first round of `scenario` on `shape` shows in a cell, or why it shows nothing.
fn cell(
    r: &ClusterResults,
    scenario: &str,
    shape: Shape,
    show: impl Fn(&Report) -> String,
) -> String {
    match r.runs_of(scenario, shape).next() {
        None => "not run".to_owned(),
        Some(run) => match &run.report {
            Some(report) => show(report),
            None => "failed (below)".to_owned(),
        },
    }
}

/// The median of `values` (the lower middle one of an even count), `None` for none.
fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let middle = values.len().checked_sub(1)? / 2;
    values.get(middle).copied()
}

/// The fixed-rate step of every round of `scenario` on `shape` that reported one.
fn fixed_steps<'a>(r: &'a ClusterResults, scenario: &'a str, shape: Shape) -> Vec<&'a Step> {
    r.runs_of(scenario, shape)
        .filter_map(|run| run.report.as_ref()?.steps.first())
        .collect()
}

/// The fixed-rate latency of `scenario` on `shape`: each percentile's median over the rounds.
fn fixed_cell(r: &ClusterResults, scenario: &str, shape: Shape) -> String {
    let steps = fixed_steps(r, scenario, shape);
    let of = |pick: fn(&Step) -> f64| median(steps.iter().map(|s| pick(s)).collect());
    match (
        of(|s| s.latency.p50_us),
        of(|s| s.latency.p99_us),
        of(|s| s.latency.p999_us),
    ) {
        (Some(p50), Some(p99), Some(p999)) => format!(
            "{:.2} / {:.2} / {:.2} ms",
            p50 / 1000.0,
            p99 / 1000.0,
            p999 / 1000.0
        ),
        _ => cell(r, scenario, shape, |_| "—".to_owned()),
    }
}

/// The p50 of two nodes minus that of one node, in ms, for each round of `scenario` where both
/// reported (a pair run one after the other).
pub(crate) fn added_p50_ms(r: &ClusterResults, scenario: &str) -> Vec<f64> {
    let p50 = |run: &super::ClusterRun| Some(run.report.as_ref()?.steps.first()?.latency.p50_us);
    r.runs_of(scenario, Shape::Single)
        .filter_map(|one| {
            let two = r
                .runs_of(scenario, Shape::Cluster)
                .find(|two| two.round == one.round)?;
            Some((p50(two)? - p50(one)?) / 1000.0)
        })
        .collect()
}

/// The added latency cell: the median of the rounds' differences, and each when there are
/// several.
fn added_cell(r: &ClusterResults, scenario: &str) -> String {
    let added = added_p50_ms(r, scenario);
    let Some(middle) = median(added.clone()) else {
        return "—".to_owned();
    };
    let mut text = format!("**{middle:+.2} ms** p50 (the Redis hop)");
    if added.len() > 1 {
        let each: Vec<String> = added.iter().map(|ms| format!("{ms:+.2}")).collect();
        let _ = write!(
            text,
            ", median of {} rounds: {} ms",
            added.len(),
            each.join(", ")
        );
    }
    text
}

/// Whether every round of `scenario` on `shape` was clean, or what was wrong.
fn verdict_cell(r: &ClusterResults, scenario: &str, shape: Shape) -> String {
    let verdicts: Vec<String> = r
        .runs_of(scenario, shape)
        .map(|run| {
            run.report
                .as_ref()
                .map_or("failed (below)".to_owned(), verdict)
        })
        .collect();
    if verdicts.is_empty() {
        "not run".to_owned()
    } else if verdicts.iter().all(|v| v == "clean") {
        "clean".to_owned()
    } else {
        verdicts.join(" / ")
    }
}

fn comparison_table(r: &ClusterResults) -> String {
    let mut out = String::new();
    out.push_str(
        "| 1 publisher, 1 topic, 100-byte payloads | one node (memory engine) | 2 nodes + Redis | 2 nodes vs one |\n\
         |---|---|---|---|\n",
    );
    let saturation = |rep: &Report| grouped(rep.saturation_deliveries_per_s);
    let ratio = match (
        r.report(FANOUT, Shape::Single),
        r.report(FANOUT, Shape::Cluster),
    ) {
        (Some(one), Some(two)) if one.saturation_deliveries_per_s > 0.0 => format!(
            "{:.2}×",
            two.saturation_deliveries_per_s / one.saturation_deliveries_per_s
        ),
        _ => "—".to_owned(),
    };
    let _ = writeln!(
        out,
        "| {FANOUT}: saturation, delivered events/s | {} | {} | {ratio} |",
        cell(r, FANOUT, Shape::Single, saturation),
        cell(r, FANOUT, Shape::Cluster, saturation),
    );
    let at_best = |rep: &Report| best_step(rep).map_or("—".to_owned(), p50_p99_p999);
    // (the ladder runs one round)
    let _ = writeln!(
        out,
        "| {FANOUT}: p50 / p99 / p999 at that step | {} | {} | |",
        cell(r, FANOUT, Shape::Single, at_best),
        cell(r, FANOUT, Shape::Cluster, at_best),
    );
    for (scenario, subscribers) in [(LATENCY_1K, 1000.0), (LATENCY_100, 100.0)] {
        let _ = writeln!(
            out,
            "| {scenario}: {} publishes/s × {}, p50 / p99 / p999 | {} | {} | {} |",
            grouped(r.fixed_rate),
            grouped(subscribers),
            fixed_cell(r, scenario, Shape::Single),
            fixed_cell(r, scenario, Shape::Cluster),
            added_cell(r, scenario),
        );
    }
    let verdicts = |shape| {
        [FANOUT, LATENCY_1K, LATENCY_100]
            .iter()
            .map(|s| verdict_cell(r, s, shape))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = writeln!(
        out,
        "| loss check (seq per topic and epoch; {FANOUT}, {LATENCY_1K}, {LATENCY_100}) | {} | {} | |",
        verdicts(Shape::Single),
        verdicts(Shape::Cluster),
    );
    out
}

fn commands_table(r: &ClusterResults) -> String {
    let mut out = String::new();
    out.push_str(
        "| Redis while publishing (2 nodes) | subscribers | publishes | EVALSHA | per publish | all commands, the script's own included | per publish | over | besides EVALSHA |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---|\n",
    );
    let mut per_publish = Vec::new();
    for scenario in [LATENCY_100, LATENCY_1K] {
        let reports: Vec<&Report> = r
            .runs_of(scenario, Shape::Cluster)
            .filter_map(|run| run.report.as_ref())
            .collect();
        let Some(report) = reports.first() else {
            let _ = writeln!(
                out,
                "| {scenario} | — | — | — | — | — | — | — | no report |"
            );
            continue;
        };
        // Every round's commands, or none: a round without them would skew the sums.
        let counted: Option<Vec<_>> = reports.iter().map(|rep| rep.redis.as_ref()).collect();
        let Some(redis) = counted.and_then(crate::commandstats::combined) else {
            let _ = writeln!(
                out,
                "| {scenario} | {} | — | — | — | — | — | — | no commandstats in a report |",
                grouped(report.subscribers as f64)
            );
            continue;
        };
        let others = redis
            .by_command
            .iter()
            .filter(|(name, _)| *name != crate::commandstats::PUBLISH_COMMAND)
            .map(|(name, n)| format!("{name} {n}"))
            .collect::<Vec<_>>();
        let others = if others.is_empty() {
            "none".to_owned()
        } else {
            others.join(", ")
        };
        let _ = writeln!(
            out,
            "| {scenario} | {} | {} | {} | {:.3} | {} | {:.3} | {:.1} s | {others} |",
            grouped(report.subscribers as f64),
            grouped(redis.published as f64),
            grouped(redis.evalsha as f64),
            redis.evalsha_per_publish,
            grouped(redis.total as f64),
            redis.total_per_publish,
            redis.seconds,
        );
        per_publish.push((
            report.subscribers,
            redis.evalsha_per_publish,
            redis.total_per_publish,
        ));
    }
    if let [
        (few, evalsha_few, total_few),
        (many, evalsha_many, total_many),
    ] = per_publish[..]
    {
        let _ = writeln!(
            out,
            "\nFrom {} to {} subscribers, EVALSHA per publish went {evalsha_few:.3} → \
             {evalsha_many:.3} and all commands per publish {total_few:.3} → {total_many:.3}.",
            grouped(few as f64),
            grouped(many as f64),
        );
    }
    out
}

/// The Markdown of a `--cluster` run (`cluster.md`).
pub fn markdown(r: &ClusterResults) -> String {
    let mut out = String::new();
    let mode = match r.mode {
        Mode::Quick => "quick",
        Mode::Full => "full",
    };
    let pinning = if r.pinned {
        "servers and Redis pinned to core 0, the generator to core 1"
    } else {
        "not pinned (taskset or a second core missing)"
    };
    let _ = writeln!(
        out,
        "# Scale-out on Redis\n\n\
         Generated by `rtbus-bench --cluster {mode}` (`cargo xtask bench --cluster`). {}; \
         {pinning}. **One node**: the reference server on the memory engine. **2 nodes + \
         Redis**: two reference-server nodes on one {} (`--save '' --appendonly no`), the \
         publisher on node A, the subscribers split evenly over A and B. Fresh servers for \
         every run; one node, then two, for each scenario.\n",
        r.machine, r.redis_version
    );
    out.push_str(&comparison_table(r));
    out.push('\n');
    out.push_str(&commands_table(r));
    let failures: Vec<String> = r
        .runs
        .iter()
        .filter_map(|run| {
            let failure = run.failure.as_deref()?;
            Some(format!("- {} on {:?}: {failure}", run.scenario, run.shape))
        })
        .collect();
    if !failures.is_empty() {
        let _ = writeln!(out, "\nFailures:\n\n{}", failures.join("\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::ClusterRun;
    use crate::commandstats::{RedisCommands, parse};
    use crate::render::tests::step;

    fn fanout(saturation: f64, p50_ms: f64) -> Report {
        Report {
            subscribers: 1000,
            steps: vec![
                step(100.0, p50_ms / 2.0, p50_ms, p50_ms * 2.0),
                Step {
                    delivered_per_s: saturation,
                    ..step(800.0, p50_ms, p50_ms * 3.0, p50_ms * 4.0)
                },
            ],
            saturation_deliveries_per_s: saturation,
            ..Report::default()
        }
    }

    fn fixed(subscribers: usize, p50_ms: f64, redis: Option<RedisCommands>) -> Report {
        Report {
            subscribers,
            steps: vec![step(25.0, p50_ms, p50_ms * 4.0, p50_ms * 6.0)],
            redis,
            ..Report::default()
        }
    }

    fn commands(evalsha: u64, ping: u64, published: u64) -> RedisCommands {
        let before = parse("# Commandstats\r\n").expect("valid");
        let after = parse(&format!(
            "# Commandstats\r\ncmdstat_evalsha:calls={evalsha}\r\ncmdstat_ping:calls={ping}\r\n\
             cmdstat_get:calls={ping}\r\ncmdstat_info:calls=1\r\n"
        ))
        .expect("valid");
        RedisCommands::of(&before.until(&after).expect("grew"), published, 6.2)
    }

    fn run(scenario: &str, shape: Shape, round: usize, report: Option<Report>) -> ClusterRun {
        ClusterRun {
            scenario: scenario.to_owned(),
            shape,
            round,
            failure: report.is_none().then(|| "node B did not start".to_owned()),
            report,
        }
    }

    /// A full run: the ladder once, latency-1k in three rounds, latency-100 in one, with 3
    /// events lost on two nodes.
    fn results() -> ClusterResults {
        let mut lossy = fixed(100, 7.0, Some(commands(125, 12, 125)));
        lossy.lost = 3;
        let one = |p50| Some(fixed(1000, p50, None));
        let two = |p50| Some(fixed(1000, p50, Some(commands(125, 12, 125))));
        ClusterResults {
            mode: Mode::Full,
            machine: "2 cores, a test CPU, 1.0 GiB RAM".to_owned(),
            pinned: true,
            redis_version: "Redis 7.0.15".to_owned(),
            fixed_rate: 25.0,
            runs: vec![
                run(FANOUT, Shape::Single, 0, Some(fanout(901_825.4, 20.0))),
                run(FANOUT, Shape::Cluster, 0, Some(fanout(700_100.0, 24.0))),
                run(LATENCY_1K, Shape::Single, 0, one(6.4)),
                run(LATENCY_1K, Shape::Cluster, 0, two(7.65)),
                run(LATENCY_1K, Shape::Single, 1, one(8.0)),
                run(LATENCY_1K, Shape::Cluster, 1, two(8.5)),
                run(LATENCY_1K, Shape::Single, 2, one(6.0)),
                run(LATENCY_1K, Shape::Cluster, 2, two(9.0)),
                run(LATENCY_100, Shape::Single, 0, Some(fixed(100, 5.0, None))),
                run(LATENCY_100, Shape::Cluster, 0, Some(lossy)),
            ],
        }
    }

    #[test]
    fn numbers_are_grouped_by_thousands() {
        assert_eq!(grouped(0.0), "0");
        assert_eq!(grouped(999.4), "999");
        assert_eq!(grouped(1000.0), "1,000");
        assert_eq!(grouped(901_825.4), "901,825");
        assert_eq!(grouped(1_234_567.0), "1,234,567");
        assert_eq!(grouped(-1500.0), "-1,500");
    }

    #[test]
    fn medians_take_the_middle_or_the_lower_middle() {
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![3.0]), Some(3.0));
        assert_eq!(median(vec![9.0, 1.0, 5.0]), Some(5.0));
        assert_eq!(median(vec![4.0, 1.0, 9.0, 2.0]), Some(2.0));
    }

    #[test]
    fn the_redis_hop_is_the_p50_difference_of_each_pair_at_the_same_rate() {
        let r = results();
        let close = |a: &[f64], b: &[f64]| {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-9)
        };
        // Round by round: 7.65 − 6.4, 8.5 − 8.0, 9.0 − 6.0.
        let added = added_p50_ms(&r, LATENCY_1K);
        assert!(close(&added, &[1.25, 0.5, 3.0]), "{added:?}");
        assert_eq!(median(added), Some(1.25));
        let added = added_p50_ms(&r, LATENCY_100);
        assert!(close(&added, &[2.0]), "{added:?}");
        // A round whose partner is missing gives no difference.
        let mut missing = results();
        missing
            .runs
            .retain(|run| !(run.shape == Shape::Cluster && run.round == 1));
        let added = added_p50_ms(&missing, LATENCY_1K);
        assert!(close(&added, &[1.25, 3.0]), "{added:?}");
        missing.runs.retain(|run| run.shape == Shape::Single);
        assert!(added_p50_ms(&missing, LATENCY_1K).is_empty());
    }

    #[test]
    fn cluster_table() {
        let r = results();
        assert!(!r.is_clean(), "3 events were lost in one run");
        insta::assert_snapshot!(markdown(&r));
    }

    #[test]
    fn cluster_table_with_failures() {
        let mut r = results();
        r.runs[1] = run(FANOUT, Shape::Cluster, 0, None);
        // A round without commandstats: the commands row says so instead of skewing the sums.
        r.runs[5] = run(LATENCY_1K, Shape::Cluster, 1, Some(fixed(1000, 7.0, None)));
        r.runs.pop();
        assert!(!r.is_clean());
        insta::assert_snapshot!(markdown(&r));
    }
}
