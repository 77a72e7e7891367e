//! The suite's results rendered: the Markdown tables of `results.md` (throughput, the loopback
//! floor beside the servers, idle memory, the slow consumer, micro-benchmarks) and the SVG bar
//! chart of `chart.svg`, with ratios against the reference server.

use std::fmt::Write as _;

use crate::report::{Report, Step};
use crate::suite::{
    Entry, FALLBACK_HALF_LOAD_RATE, FLOOR, FLOOR_HALF, FLOOR_LOW, FLOOR_LOW_RATE, REFERENCE,
    SuiteResults,
};

fn find<'a>(r: &'a SuiteResults, scenario: &str, server: &str) -> Option<&'a Entry> {
    r.entries
        .iter()
        .find(|e| e.scenario == scenario && e.server == server)
}

fn servers(r: &SuiteResults) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for e in &r.entries {
        if e.server != FLOOR && !names.contains(&e.server) {
            names.push(e.server.clone());
        }
    }
    names
}

fn scenario_ids(r: &SuiteResults) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for e in &r.entries {
        if !ids.contains(&e.scenario) {
            ids.push(e.scenario.clone());
        }
    }
    ids
}

fn kib(bytes: f64) -> String {
    format!("{:.1} KiB", bytes / 1024.0)
}

pub(crate) fn verdict(report: &Report) -> String {
    let mut notes = Vec::new();
    if report.lost > 0 {
        notes.push(format!("**{} lost**", report.lost));
    }
    if report.out_of_order > 0 {
        notes.push(format!("**{} out of order**", report.out_of_order));
    }
    if report.epoch_changes > 0 {
        notes.push(format!("**{} epoch changes**", report.epoch_changes));
    }
    if report.undelivered > 0 {
        notes.push(format!(
            "{} still undelivered at the drain deadline",
            report.undelivered
        ));
    }
    if report.errors > 0 {
        notes.push(format!("{} errors", report.errors));
    }
    if report.generator_saturated {
        notes.push("generator CPU-bound".to_owned());
    }
    if notes.is_empty() {
        "clean".to_owned()
    } else {
        notes.join(", ")
    }
}

/// What a scenario measures, and so which table shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A rate ladder to saturation: the throughput table and the chart.
    Throughput,
    /// A fixed-rate latency run (servers or floor): the floor table.
    FixedRate,
    /// Idle memory per connection: its own table and the chart.
    Idle,
    /// The stalled-subscriber runs: its own table.
    SlowConsumer,
}

impl Kind {
    fn of(id: &str) -> Kind {
        if id.starts_with("idle") {
            Kind::Idle
        } else if id.starts_with("slow") {
            Kind::SlowConsumer
        } else if id.starts_with("latency") || id.starts_with("floor") {
            Kind::FixedRate
        } else {
            Kind::Throughput
        }
    }
}

/// The Markdown of a suite run (`results.md`): the machine line, then one table per kind of
/// scenario, with ratios against the reference server. A table none of whose scenarios ran is
/// left out.
pub fn markdown(r: &SuiteResults) -> String {
    let names = servers(r);
    let mut out = header(r);
    out.push_str(&throughput_table(r, &names));
    out.push_str(&floor_table(r, &names));
    for id in scenario_ids(r) {
        match Kind::of(&id) {
            Kind::Idle => out.push_str(&idle_table(r, &id, &names)),
            Kind::SlowConsumer => out.push_str(&slow_consumer_table(r, &id, &names)),
            Kind::Throughput | Kind::FixedRate => {}
        }
    }
    out.push_str(&micro_table(r));
    out
}

/// The machine the suite ran on and how.
fn header(r: &SuiteResults) -> String {
    format!(
        "Machine: {}. Server pinned to core 0 and generator to core 1: {}. Mode: {:?}.\n\n",
        r.machine,
        if r.pinned { "yes" } else { "no" },
        r.mode
    )
}

/// Saturation throughput, half-load latency, CPU and connect time of every throughput scenario
/// and server. Empty when no such scenario ran.
fn throughput_table(r: &SuiteResults, names: &[String]) -> String {
    let mut rows = String::new();
    for id in scenario_ids(r) {
        if Kind::of(&id) != Kind::Throughput {
            continue;
        }
        let reference = find(r, &id, REFERENCE)
            .and_then(|e| e.report.as_ref())
            .map(|rep| rep.saturation_deliveries_per_s);
        for name in names {
            if let Some(entry) = find(r, &id, name) {
                rows.push_str(&throughput_row(&id, name, entry, reference));
            }
        }
    }
    if rows.is_empty() {
        return String::new();
    }
    format!(
        "| scenario | server | delivered events/s (saturation) | × vs reference | p50 / p99 / p999 at half load | server CPU-s per million deliveries | connect p99 | result |\n\
         |---|---|---:|---:|---|---:|---:|---|\n\
         {rows}\n\
         × vs reference: the reference server's throughput divided by this server's.\n\n"
    )
}

/// One server's row of the throughput table; `reference` is the reference server's saturation
/// throughput in the same scenario.
fn throughput_row(id: &str, name: &str, entry: &Entry, reference: Option<f64>) -> String {
    let Some(rep) = &entry.report else {
        return format!(
            "| {id} | {name} | — | — | — | — | — | {} |\n",
            failure_cell(entry, "?")
        );
    };
    let ratio = match reference {
        Some(base) if rep.saturation_deliveries_per_s > 0.0 && name != REFERENCE => {
            format!("{:.2}×", base / rep.saturation_deliveries_per_s)
        }
        _ => "—".to_owned(),
    };
    let half = rep
        .half_load
        .as_ref()
        .map_or("—".to_owned(), percentiles_ms);
    // CPU per million at the busiest step.
    let cpu = rep
        .steps
        .iter()
        .max_by(|a, b| a.delivered_per_s.total_cmp(&b.delivered_per_s))
        .and_then(|s| s.server_cpu_s_per_million)
        .map_or("—".to_owned(), |c| format!("{c:.2}"));
    format!(
        "| {id} | {name} | {:.0} | {ratio} | {half} | {cpu} | {:.1} ms | {} |\n",
        rep.saturation_deliveries_per_s,
        rep.connect.p99_us / 1000.0,
        verdict(rep)
    )
}

/// A step's latency as `p50 / p99 / p999 ms`.
fn percentiles_ms(step: &Step) -> String {
    format!(
        "{:.2} / {:.2} / {:.2} ms",
        step.latency.p50_us / 1000.0,
        step.latency.p99_us / 1000.0,
        step.latency.p999_us / 1000.0
    )
}

/// Server memory before and with every client connected, per connection, for one idle
/// scenario.
fn idle_table(r: &SuiteResults, id: &str, names: &[String]) -> String {
    let mut out = format!(
        "| {id} | server | RSS before | RSS with every client connected, subscribed, idle | per connection | × vs reference |\n\
         |---|---|---:|---:|---:|---:|\n"
    );
    let reference = find(r, id, REFERENCE)
        .and_then(|e| e.report.as_ref()?.idle.as_ref())
        .map(|i| i.bytes_per_connection);
    for name in names {
        let Some(entry) = find(r, id, name) else {
            continue;
        };
        match entry.report.as_ref().and_then(|rep| rep.idle.as_ref()) {
            Some(idle) => {
                let ratio = match reference {
                    Some(base) if name != REFERENCE && base > 0.0 => {
                        format!("{:.2}× more", idle.bytes_per_connection / base)
                    }
                    _ => "—".to_owned(),
                };
                let _ = writeln!(
                    out,
                    "| {id} | {name} | {} | {} | {} | {ratio} |",
                    kib(idle.rss_before as f64),
                    kib(idle.rss_after as f64),
                    kib(idle.bytes_per_connection)
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "| {id} | {name} | — | — | — | {} |",
                    failure_cell(entry, "no memory figure")
                );
            }
        }
    }
    out.push('\n');
    out
}

/// Healthy subscribers' p99 without and with a stalled one, and whether the server cut the
/// stalled one off, for one slow-consumer scenario.
fn slow_consumer_table(r: &SuiteResults, id: &str, names: &[String]) -> String {
    let mut out = format!(
        "| {id} | server | healthy p99 without the stalled subscriber (runs 1, 4) | with it (runs 2, 3) | change of the means | runs 1 vs 4 (noise) | stalled subscriber cut off | result |\n\
         |---|---|---|---|---:|---:|---|---|\n"
    );
    for name in names {
        if let Some(entry) = find(r, id, name) {
            out.push_str(&slow_consumer_row(id, name, entry));
        }
    }
    out.push('\n');
    out
}

/// One server's row of a slow-consumer table. The runs went clean, stalled, stalled, clean (the
/// last two are the entry's repeats), so drift cancels out in the means and runs 1 vs 4 show
/// the noise between identical runs.
fn slow_consumer_row(id: &str, name: &str, entry: &Entry) -> String {
    let (Some(base), Some(rep)) = (&entry.baseline, &entry.report) else {
        return format!(
            "| {id} | {name} | — | — | — | — | — | {} |\n",
            failure_cell(entry, "?")
        );
    };
    let p99 = |rep: &Report| rep.steps.first().map_or(0.0, |s| s.latency.p99_us);
    let mut clean = vec![p99(base)];
    let mut stalled = vec![p99(rep)];
    if let [again, base_again] = entry.repeats.as_slice() {
        stalled.push(p99(again));
        clean.push(p99(base_again));
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let noise = match clean.as_slice() {
        [a, b] => percent_change(*a, *b),
        _ => "—".to_owned(),
    };
    format!(
        "| {id} | {name} | {} | {} | {} | {noise} | {} | {} |\n",
        ms_list(&clean),
        ms_list(&stalled),
        percent_change(mean(&clean), mean(&stalled)),
        cut_off_cell(rep),
        verdict(rep)
    )
}

/// Microseconds as a list of milliseconds: `10.00, 12.50 ms`.
fn ms_list(us: &[f64]) -> String {
    us.iter()
        .map(|us| format!("{:.2}", us / 1000.0))
        .collect::<Vec<_>>()
        .join(", ")
        + " ms"
}

/// The change from `a` to `b` in percent, signed.
fn percent_change(a: f64, b: f64) -> String {
    if a > 0.0 {
        format!("{:+.0}%", (b - a) / a * 100.0)
    } else {
        "—".to_owned()
    }
}

/// When (and with which close code) the server cut the stalled subscriber off.
fn cut_off_cell(rep: &Report) -> String {
    rep.stalled.as_ref().map_or("—".to_owned(), |s| {
        if s.cut_off > 0 {
            format!(
                "after {} (close {:?})",
                s.cut_off_after_ms
                    .map_or("?".to_owned(), |ms| format!("{ms:.0} ms")),
                s.close_codes
            )
        } else {
            "never".to_owned()
        }
    })
}

/// The criterion micro-benchmarks found for this run. Empty when there are none.
fn micro_table(r: &SuiteResults) -> String {
    if r.micro.is_empty() {
        return String::new();
    }
    let mut out = "| micro-benchmark (criterion) | ns per frame |\n|---|---:|\n".to_owned();
    for m in &r.micro {
        let _ = writeln!(out, "| {} | {:.0} |", m.id, m.ns);
    }
    out.push('\n');
    out
}

/// Why an entry has no figures, as a table cell: the first line of its failure (the rest, e.g.
/// the harness's summary of a failed conformance gate, is in `results.json`), or `missing`.
fn failure_cell(entry: &Entry, missing: &str) -> String {
    let first = entry
        .failure
        .as_deref()
        .and_then(|f| f.lines().next())
        .unwrap_or(missing);
    format!("failed: {first}")
}

/// One latency cell: p50 / p99 / p999 of a fixed-rate step, flagged when the step saturated or
/// the run was not clean.
fn latency_cell(report: &Report, step: &Step) -> String {
    let mut cell = percentiles_ms(step);
    if step.saturated.is_some() {
        let _ = write!(
            cell,
            " (saturated: {:.0} of {:.0} deliveries/s)",
            step.delivered_per_s, step.offered_deliveries_per_s
        );
    }
    if !report.is_clean() || report.undelivered > 0 {
        let _ = write!(cell, " — {}", verdict(report));
    }
    cell
}

/// The cell of a fixed-rate run: its only step, or why there is none.
fn fixed_rate_cell(entry: Option<&Entry>) -> String {
    let Some(entry) = entry else {
        return "—".to_owned();
    };
    match entry
        .report
        .as_ref()
        .and_then(|r| Some((r, r.steps.first()?)))
    {
        Some((report, step)) => latency_cell(report, step),
        None => failure_cell(entry, "no step"),
    }
}

/// The "loopback floor vs servers at the same rates" table: the floor and every server at the
/// low fixed rate (`latency-1k`), and the floor and the reference server at the reference
/// server's fanout-1k half-load rate. Empty when neither ran.
fn floor_table(r: &SuiteResults, names: &[String]) -> String {
    let low = find(r, FLOOR_LOW, FLOOR);
    let half = find(r, FLOOR_HALF, FLOOR);
    let has_latency = names.iter().any(|n| find(r, "latency-1k", n).is_some());
    if low.is_none() && half.is_none() && !has_latency {
        return String::new();
    }
    let mut out = format!(
        "Loopback floor vs servers at the same rates (1,000 subscribers, 100-byte payloads). The \
         floor is what this machine allows without any server: per publish, one blocking `write` \
         of a 100-byte record to each of 1,000 plain TCP loopback sockets by a thread on core 0, \
         read with epoll by a thread on core 1 (no WebSocket, no JSON, no async runtime; \
         `rtbus-bench --floor`). Servers at {FLOOR_LOW_RATE:.0}/s: the `latency-1k` \
         scenario; {REFERENCE} at the half-load rate: its fanout-1k half-load step.\n\n\
         | publishes/s × 1,000 subscribers | loopback floor p50 / p99 / p999 | floor writer CPU-µs per record, reader share of its core |"
    );
    for name in names {
        let _ = write!(out, " {name} p50 / p99 / p999 |");
    }
    out.push_str("\n|---:|---|---|");
    for _ in names {
        out.push_str("---|");
    }
    out.push('\n');
    if low.is_some() || has_latency {
        out.push_str(&floor_low_row(r, low, names));
    }
    if let Some(half) = half {
        out.push_str(&floor_half_row(r, half, names));
    }
    out.push('\n');
    out
}

/// The floor table's low-rate row: the floor and every server's `latency-1k` run.
fn floor_low_row(r: &SuiteResults, low: Option<&Entry>, names: &[String]) -> String {
    let mut row = format!(
        "| {:.0} | {} | {} |",
        floor_rate(low, FLOOR_LOW_RATE),
        fixed_rate_cell(low),
        floor_cpu_cell(low)
    );
    for name in names {
        let _ = write!(row, " {} |", fixed_rate_cell(find(r, "latency-1k", name)));
    }
    row.push('\n');
    row
}

/// The floor table's half-load row: the floor at the reference server's fanout-1k half-load
/// rate, beside that half-load step (when it ran at that rate), and where the rate came from.
fn floor_half_row(r: &SuiteResults, half: &Entry, names: &[String]) -> String {
    let rate = floor_rate(Some(half), FALLBACK_HALF_LOAD_RATE);
    let reference = find(r, "fanout-1k", REFERENCE)
        .and_then(|e| Some((e.report.as_ref()?, e.report.as_ref()?.half_load.as_ref()?)))
        .filter(|(_, step)| (step.offered_publishes_per_s - rate).abs() < 1.0);
    let mut row = format!(
        "| {rate:.0} ({REFERENCE} half load) | {} | {} |",
        fixed_rate_cell(Some(half)),
        floor_cpu_cell(Some(half))
    );
    for name in names {
        let cell = match reference {
            Some((report, step)) if name == REFERENCE => latency_cell(report, step),
            _ => "—".to_owned(),
        };
        let _ = write!(row, " {cell} |");
    }
    row.push('\n');
    if let Some(note) = &half.note {
        let _ = writeln!(row, "\nHalf-load rate: {note}.");
    }
    row
}

/// The publish rate a floor run offered, or `fallback` when it has no step.
fn floor_rate(entry: Option<&Entry>, fallback: f64) -> f64 {
    entry
        .and_then(|e| e.report.as_ref()?.steps.first())
        .map_or(fallback, |s| s.offered_publishes_per_s)
}

/// The floor's own costs: the writer's CPU per record and the reader's share of its core.
fn floor_cpu_cell(entry: Option<&Entry>) -> String {
    entry
        .and_then(|e| e.report.as_ref()?.floor.as_ref())
        .map_or("—".to_owned(), |f| {
            let mut cell = format!(
                "{:.1} µs, {:.0} %",
                f.writer_cpu_us_per_record,
                f.reader_cpu_share * 100.0
            );
            if f.writer_core.is_none() || f.reader_core.is_none() {
                cell.push_str(" (threads not pinned)");
            }
            cell
        })
}

/// A bar chart of saturation throughput per scenario and server, and idle memory per
/// connection, as a self-contained SVG.
pub fn chart(r: &SuiteResults) -> String {
    const COLORS: [&str; 4] = ["#2f6fdf", "#e07a22", "#3a9a4a", "#9a3a8a"];
    let names = servers(r);
    let mut groups: Vec<(String, Vec<f64>, String)> = Vec::new();
    for id in scenario_ids(r) {
        let kind = Kind::of(&id);
        if !matches!(kind, Kind::Throughput | Kind::Idle) {
            continue;
        }
        let values = names
            .iter()
            .map(|n| {
                find(r, &id, n)
                    .and_then(|e| e.report.as_ref())
                    .map_or(0.0, |rep| match &rep.idle {
                        Some(i) => i.bytes_per_connection / 1024.0,
                        None => rep.saturation_deliveries_per_s,
                    })
            })
            .collect();
        let unit = if kind == Kind::Idle {
            "KiB per idle connection (less is better)"
        } else {
            "delivered events/s (more is better)"
        };
        groups.push((id, values, unit.to_owned()));
    }
    let bar = 18.0;
    let group_h = bar * names.len() as f64 + 34.0;
    let width = 760.0;
    let left = 150.0;
    let plot = width - left - 130.0;
    let height = 40.0 + group_h * groups.len() as f64 + 24.0;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height:.0}" viewBox="0 0 {width} {height:.0}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        svg,
        r##"<rect width="100%" height="100%" fill="#ffffff"/><text x="10" y="22" font-size="15" font-weight="bold">rtbus benchmarks ({:?} run)</text>"##,
        r.mode
    );
    for (i, name) in names.iter().enumerate() {
        let x = 330.0 + i as f64 * 140.0;
        let _ = writeln!(
            svg,
            r#"<rect x="{x}" y="11" width="12" height="12" fill="{}"/><text x="{}" y="22">{}</text>"#,
            COLORS[i % COLORS.len()],
            x + 16.0,
            escape(name)
        );
    }
    let mut y = 40.0;
    for (id, values, unit) in &groups {
        let max = values.iter().copied().fold(0.0, f64::max).max(1e-9);
        let _ = writeln!(
            svg,
            r##"<text x="10" y="{:.0}" font-weight="bold">{}</text><text x="{left}" y="{:.0}" fill="#555">{}</text>"##,
            y + 14.0,
            escape(id),
            y + 14.0,
            escape(unit)
        );
        for (i, value) in values.iter().enumerate() {
            let by = y + 22.0 + i as f64 * bar;
            let w = (value / max * plot).max(1.0);
            let label = if unit.starts_with("KiB") {
                format!("{value:.1} KiB")
            } else {
                format!("{value:.0}/s")
            };
            let _ = writeln!(
                svg,
                r#"<rect x="{left}" y="{by:.0}" width="{w:.1}" height="{:.0}" fill="{}"/><text x="{:.1}" y="{:.0}">{label}</text>"#,
                bar - 4.0,
                COLORS[i % COLORS.len()],
                left + w + 4.0,
                by + bar - 7.0
            );
        }
        y += group_h;
    }
    let _ = writeln!(svg, "</svg>");
    svg
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::report::{FloorReport, Percentiles};
    use crate::suite::Mode;

    pub(crate) fn step(rate: f64, p50_ms: f64, p99_ms: f64, p999_ms: f64) -> Step {
        Step {
            offered_publishes_per_s: rate,
            offered_deliveries_per_s: rate * 1000.0,
            delivered_per_s: rate * 1000.0,
            latency: Percentiles {
                count: 1000,
                p50_us: p50_ms * 1000.0,
                p99_us: p99_ms * 1000.0,
                p999_us: p999_ms * 1000.0,
                max_us: p999_ms * 1000.0,
            },
            ..Step::default()
        }
    }

    pub(crate) fn entry(scenario: &str, server: &str, report: Report) -> Entry {
        Entry {
            scenario: scenario.to_owned(),
            server: server.to_owned(),
            report: Some(report),
            failure: None,
            baseline: None,
            repeats: Vec::new(),
            note: None,
        }
    }

    fn floor_report(step: Step) -> Report {
        Report {
            label: FLOOR.to_owned(),
            steps: vec![step],
            floor: Some(FloorReport {
                writer_core: Some(0),
                reader_core: Some(1),
                writer_cpu_us_per_record: 5.25,
                reader_cpu_share: 0.125,
                ..FloorReport::default()
            }),
            ..Report::default()
        }
    }

    fn results(entries: Vec<Entry>) -> SuiteResults {
        SuiteResults {
            mode: Mode::Quick,
            machine: "test".to_owned(),
            pinned: true,
            entries,
            micro: Vec::new(),
        }
    }

    fn failed(scenario: &str, server: &str, why: &str) -> Entry {
        Entry {
            report: None,
            failure: Some(why.to_owned()),
            ..entry(scenario, server, Report::default())
        }
    }

    #[test]
    fn the_slow_consumer_table_compares_the_means_and_shows_the_clean_to_clean_noise() {
        let run = |p99_ms| Report {
            steps: vec![step(40.0, 1.0, p99_ms, p99_ms)],
            ..Report::default()
        };
        let mut slow = entry("slow-consumer-1k", REFERENCE, run(12.0));
        slow.baseline = Some(run(10.0));
        slow.repeats = vec![run(14.0), run(10.0)];
        // Clean 10, 10; stalled 12, 14: the means differ by +30 %, the clean runs by +0 %.
        insta::assert_snapshot!("slow_consumer", markdown(&results(vec![slow])));
    }

    #[test]
    fn the_floor_table_puts_floor_and_servers_side_by_side_at_each_rate() {
        let mut fanout = Report {
            saturation_deliveries_per_s: 900_000.0,
            half_load: Some(step(450.0, 9.5, 55.0, 70.0)),
            ..Report::default()
        };
        fanout.steps.push(step(900.0, 20.0, 90.0, 99.0));
        let mut saturated = step(450.0, 300.0, 900.0, 950.0);
        saturated.saturated = Some("delivered 55% of the offered rate".to_owned());
        saturated.delivered_per_s = 247_000.0;
        let mut half_floor = entry(FLOOR_HALF, FLOOR, floor_report(saturated));
        half_floor.note = Some("rtbus-server's fanout-1k half-load rate in this run".to_owned());
        let r = results(vec![
            entry("fanout-1k", REFERENCE, fanout),
            entry(
                "latency-1k",
                REFERENCE,
                Report {
                    steps: vec![step(25.0, 6.9, 19.4, 25.0)],
                    ..Report::default()
                },
            ),
            entry(
                "latency-1k",
                "node-ws",
                Report {
                    steps: vec![step(25.0, 4.0, 30.0, 41.0)],
                    lost: 3,
                    ..Report::default()
                },
            ),
            entry(FLOOR_LOW, FLOOR, floor_report(step(25.0, 0.6, 6.25, 9.0))),
            half_floor,
        ]);
        // Fixed-rate runs and the floor stay out of the throughput table and the chart; the
        // floor's half-load row shows the reference server's half-load step beside it.
        insta::assert_snapshot!("floor_table", markdown(&r));
        insta::assert_snapshot!("floor_table_chart", chart(&r));
    }

    #[test]
    fn without_fixed_rate_runs_there_is_no_floor_table() {
        let r = results(vec![entry("fanout-1k", REFERENCE, Report::default())]);
        insta::assert_snapshot!("no_floor_table", markdown(&r));
    }

    #[test]
    fn with_only_fixed_rate_runs_there_is_no_empty_throughput_table() {
        let r = results(vec![entry(
            FLOOR_LOW,
            FLOOR,
            floor_report(step(25.0, 0.6, 6.25, 9.0)),
        )]);
        insta::assert_snapshot!("only_fixed_rate", markdown(&r));
    }

    #[test]
    fn failures_and_missing_figures_are_cells_not_gaps() {
        let fanout = |saturation: f64| Report {
            saturation_deliveries_per_s: saturation,
            steps: vec![Step {
                server_cpu_s_per_million: Some(1.25),
                ..step(saturation / 1000.0, 1.0, 2.0, 3.0)
            }],
            connect: Percentiles {
                p99_us: 2500.0,
                ..Percentiles::default()
            },
            ..Report::default()
        };
        let idle = |before: u64, after: u64| Report {
            idle: Some(crate::report::IdleReport {
                rss_before: before,
                rss_after: after,
                bytes_per_connection: (after - before) as f64 / 1000.0,
            }),
            ..Report::default()
        };
        let mut unpinned = floor_report(step(25.0, 0.5, 5.0, 8.0));
        if let Some(floor) = unpinned.floor.as_mut() {
            floor.reader_core = None;
        }
        let stalled = Report {
            steps: vec![step(40.0, 1.0, 15.0, 20.0)],
            stalled: Some(crate::report::StalledReport {
                stalled: 1,
                cut_off: 1,
                cut_off_after_ms: Some(1234.4),
                close_codes: vec![1008],
                ..crate::report::StalledReport::default()
            }),
            generator_saturated: true,
            errors: 2,
            ..Report::default()
        };
        let mut slow_ref = entry("slow-consumer-1k", REFERENCE, stalled);
        slow_ref.baseline = Some(Report {
            steps: vec![step(40.0, 1.0, 10.0, 12.0)],
            ..Report::default()
        });
        let mut r = results(vec![
            // The gate's failure is the harness's whole summary: one line of it goes in a cell.
            failed(
                "conformance-gate",
                "python-websockets",
                "failed 1 of 4 fan-out conformance cases (delivery.fanout)\n\n✗ delivery.fanout — …\n",
            ),
            entry("fanout-1k", REFERENCE, fanout(800_000.0)),
            entry("fanout-1k", "node-ws", fanout(200_000.0)),
            failed(
                "fanout-1k",
                "go-ws",
                "the generator exited with 1 and wrote no report",
            ),
            entry(FLOOR_LOW, FLOOR, unpinned),
            failed(
                FLOOR_HALF,
                FLOOR,
                "the floor exited with 2\nand wrote no report",
            ),
            entry("idle-2k", REFERENCE, idle(10_000_000, 30_000_000)),
            entry("idle-2k", "node-ws", idle(40_000_000, 100_000_000)),
            failed(
                "idle-2k",
                "go-ws",
                "the generator exited with 2\nand wrote no report",
            ),
            slow_ref,
            failed(
                "slow-consumer-1k",
                "node-ws",
                "starting node-ws: no such file\ncaused by: ENOENT",
            ),
        ]);
        r.pinned = false;
        r.micro = vec![
            crate::suite::Micro {
                id: "decode/event".to_owned(),
                ns: 812.4,
            },
            crate::suite::Micro {
                id: "encode/event".to_owned(),
                ns: 301.6,
            },
        ];
        insta::assert_snapshot!("failures", markdown(&r));
        insta::assert_snapshot!("failures_chart", chart(&r));
    }
}
