//! The loopback floor (`rtbus-bench --floor`): one record per `write` to each of N plain TCP
//! sockets per burst, read on another core, timed like a fixed-rate run: what the machine allows
//! before any server or WebSocket code runs.
//!
//! No async runtime, no WebSocket framing, no JSON: a writer thread (the server's role) does a
//! blocking `write` of one fixed-size record to every connection per burst, at an open-loop rate;
//! a reader thread (the subscribers' role) waits on all connections with epoll (mio) and reads
//! each until it would block. Each record carries its burst number and its burst's *intended*
//! start time, so a writer that falls behind shows up as latency, and a missing or repeated
//! record is counted, not guessed.

use std::io::{self, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use hdrhistogram::Histogram;
use mio::{Events, Interest, Poll, Token};

use crate::report::{self, FloorReport, Percentiles, Report, Step};
use crate::sys;

/// The floor's name in reports and tables.
pub const LABEL: &str = "loopback floor";

/// A record holds its burst number and its burst's intended start time (8 bytes each, little
/// endian); the rest is padding up to the requested size.
pub const MIN_RECORD_BYTES: usize = 16;

/// How many error messages a report keeps verbatim.
const MAX_ERROR_SAMPLES: usize = 10;
/// The reader's wake-up interval when no record arrives, to notice the end of the run.
const IDLE_POLL: Duration = Duration::from_millis(10);
/// Time between the reader being ready and the first burst.
const LEAD_TIME: Duration = Duration::from_millis(20);
/// Padding byte of every record.
const FILL: u8 = 0xa5;
/// The largest latency the histograms resolve; larger samples are clamped to it.
const MAX_LATENCY_NS: u64 = 120_000_000_000;

/// A floor run, resolved from the command line.
#[derive(Debug, Clone)]
pub struct FloorPlan {
    /// Connections: each gets one record per burst.
    pub connections: usize,
    /// Size of each record in bytes, at least [`MIN_RECORD_BYTES`].
    pub record_bytes: usize,
    /// Bursts per second (publishes per second, in server terms).
    pub rate: f64,
    /// How long to write bursts.
    pub step_time: Duration,
    /// How long to wait for the last records after the writer stopped; also bounds each
    /// blocking `write`.
    pub drain_timeout: Duration,
}

/// Runs the floor and reports it like a one-step fixed-rate run.
pub fn run(plan: &FloorPlan) -> anyhow::Result<Report> {
    anyhow::ensure!(plan.connections > 0, "--subscribers must be at least 1");
    anyhow::ensure!(
        plan.record_bytes >= MIN_RECORD_BYTES,
        "--payload-bytes {}: a floor record needs at least {MIN_RECORD_BYTES} bytes (an 8-byte burst number and an 8-byte send stamp)",
        plan.record_bytes
    );
    anyhow::ensure!(
        plan.rate.is_finite() && plan.rate > 0.0,
        "--rate {}: expected a positive number of bursts per second",
        plan.rate
    );
    anyhow::ensure!(!plan.step_time.is_zero(), "--step-secs must be more than 0");
    let cores = Cores::choose();
    let connecting = Instant::now();
    let Pairs {
        addr,
        streams: pairs,
        connect,
    } = connect_pairs(plan.connections)?;
    let setup_s = connecting.elapsed().as_secs_f64();
    // The writer ends stay open until the reader is done: closing one early would end its
    // connection before the reader saw every record.
    let (mut writers, readers): (Vec<TcpStream>, Vec<TcpStream>) = pairs.into_iter().unzip();
    let write_timeout = plan.drain_timeout.max(Duration::from_secs(1));
    for (i, stream) in writers.iter().enumerate() {
        stream
            .set_write_timeout(Some(write_timeout))
            .with_context(|| format!("connection {i}: setting the write timeout"))?;
    }
    let readers = readers
        .into_iter()
        .enumerate()
        .map(|(i, stream)| {
            stream
                .set_nonblocking(true)
                .with_context(|| format!("connection {i}: setting the reader non-blocking"))?;
            Ok(mio::net::TcpStream::from_std(stream))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;

    let flags = Flags::default();
    let epoch = Instant::now();
    let machine_before = sys::machine_jiffies();
    let (writer_out, reader_out, start) = thread::scope(|scope| -> anyhow::Result<_> {
        let (ready_tx, ready_rx) = mpsc::sync_channel::<()>(1);
        let reader = thread::Builder::new()
            .name("floor-reader".to_owned())
            .spawn_scoped(scope, || {
                let out = read_records(readers, plan, epoch, cores.reader, &flags, ready_tx);
                if out.is_err() {
                    // Nobody reads any more: stop writing into filling buffers.
                    flags.abort.store(true, Ordering::Release);
                }
                out
            })
            .context("starting the floor's reader thread")?;
        // The reader registers every socket before the first burst is due.
        let ready = ready_rx.recv();
        let start = Instant::now() + LEAD_TIME;
        let writer = if ready.is_ok() {
            let writers = &mut writers;
            let flags = &flags;
            let spawned = thread::Builder::new()
                .name("floor-writer".to_owned())
                .spawn_scoped(scope, move || {
                    write_bursts(writers, plan, epoch, start, cores.writer, flags)
                });
            match spawned {
                Ok(handle) => Some(handle),
                Err(e) => {
                    flags.abort.store(true, Ordering::Release);
                    flags.done.store(true, Ordering::Release);
                    return Err(anyhow::anyhow!("starting the floor's writer thread: {e}"));
                }
            }
        } else {
            None
        };
        let writer_out = writer.map(|w| w.join());
        let reader_out = reader
            .join()
            .map_err(|_| anyhow::anyhow!("the floor's reader thread panicked"))??;
        let writer_out = writer_out
            .context("the floor's reader stopped before it was ready")?
            .map_err(|_| anyhow::anyhow!("the floor's writer thread panicked"))?;
        Ok((writer_out, reader_out, start))
    })?;
    let machine_after = sys::machine_jiffies();
    Ok(assemble(
        plan,
        addr,
        (connect, setup_s),
        epoch,
        start,
        &writer_out,
        reader_out,
        machine_before.zip(machine_after),
    ))
}

/// The cores the writer and the reader run on: the first two this process may use, when there
/// are two.
#[derive(Debug, Clone, Copy)]
struct Cores {
    writer: Option<usize>,
    reader: Option<usize>,
}

impl Cores {
    fn choose() -> Cores {
        let allowed: Vec<usize> = match rustix::thread::sched_getaffinity(None) {
            Ok(set) => (0..rustix::thread::CpuSet::MAX_CPU)
                .filter(|&c| set.is_set(c))
                .take(2)
                .collect(),
            Err(_) => Vec::new(),
        };
        match allowed[..] {
            [writer, reader] => Cores {
                writer: Some(writer),
                reader: Some(reader),
            },
            _ => Cores {
                writer: None,
                reader: None,
            },
        }
    }
}

/// Pins the calling thread to `core`; says where it runs, or why it is not pinned.
fn pin(core: Option<usize>) -> Result<usize, String> {
    let core = core.ok_or("fewer than two usable cores")?;
    let mut set = rustix::thread::CpuSet::new();
    set.set(core);
    rustix::thread::sched_setaffinity(None, &set)
        .map(|()| core)
        .map_err(|e| format!("pinning to core {core}: {e}"))
}

/// CPU seconds the calling thread has used.
fn thread_cpu_seconds() -> f64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
}

fn since_ns(epoch: Instant, t: Instant) -> u64 {
    u64::try_from(t.saturating_duration_since(epoch).as_nanos()).unwrap_or(u64::MAX)
}

fn histogram() -> anyhow::Result<Histogram<u64>> {
    Ok(Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3)?)
}

/// Connected loopback pairs and how long connecting took.
#[derive(Debug)]
struct Pairs {
    /// The listener's address.
    addr: SocketAddr,
    /// (writer end, reader end) of each connection.
    streams: Vec<(TcpStream, TcpStream)>,
    /// Time to connect and accept each pair.
    connect: Percentiles,
}

/// `n` connected loopback pairs, both ends with `TCP_NODELAY`.
fn connect_pairs(n: usize) -> anyhow::Result<Pairs> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding a loopback listener")?;
    let addr = listener.local_addr()?;
    let mut hist = histogram()?;
    let mut pairs = Vec::with_capacity(n);
    for i in 0..n {
        let began = Instant::now();
        let hint = |e: io::Error| {
            let more = if e.raw_os_error() == Some(24) {
                format!(
                    "; the floor needs 2 descriptors per connection ({} in all): raise `ulimit -n`",
                    2 * n
                )
            } else {
                String::new()
            };
            anyhow::anyhow!("opening connection {i} of {n} on {addr}: {e}{more}")
        };
        let reader = TcpStream::connect(addr).map_err(hint)?;
        let (writer, _) = listener.accept().map_err(hint)?;
        for stream in [&reader, &writer] {
            stream
                .set_nodelay(true)
                .with_context(|| format!("connection {i}: setting TCP_NODELAY"))?;
        }
        hist.saturating_record(since_ns(began, Instant::now()).max(1));
        pairs.push((writer, reader));
    }
    Ok(Pairs {
        addr,
        streams: pairs,
        connect: Percentiles::of(&hist),
    })
}

/// What the writer tells the reader.
#[derive(Debug, Default)]
struct Flags {
    /// Records written so far (whole bursts, plus a partial one if a write failed).
    written: AtomicU64,
    /// The writer has stopped; `written` is final.
    done: AtomicBool,
    /// Stop writing (the reader failed).
    abort: AtomicBool,
}

/// What the writer did.
#[derive(Debug)]
struct WriterOutcome {
    pinned: Result<usize, String>,
    bursts: u64,
    records: u64,
    cpu_s: f64,
    /// When the last burst was written.
    end: Instant,
    burst_write: Percentiles,
    error: Option<String>,
}

/// Writes a record to every connection per burst, bursts due at `start + k / rate` until
/// `step_time` has passed. A burst that is late is written at once (open loop): its record still
/// carries the time it was due.
fn write_bursts(
    streams: &mut [TcpStream],
    plan: &FloorPlan,
    epoch: Instant,
    start: Instant,
    core: Option<usize>,
    flags: &Flags,
) -> WriterOutcome {
    let pinned = pin(core);
    let cpu_start = thread_cpu_seconds();
    let until = start + plan.step_time;
    let interval = 1.0 / plan.rate;
    let mut record = vec![FILL; plan.record_bytes];
    let mut burst_hist = histogram().ok();
    let mut bursts = 0u64;
    let mut records = 0u64;
    let mut error = None;
    'bursts: loop {
        let due = start + Duration::from_secs_f64(bursts as f64 * interval);
        if due >= until {
            break;
        }
        let now = Instant::now();
        if now >= until {
            break;
        }
        if due > now {
            thread::sleep(due - now);
        }
        if flags.abort.load(Ordering::Acquire) {
            error = Some("stopped: the reader failed".to_owned());
            break;
        }
        record[..8].copy_from_slice(&bursts.to_le_bytes());
        record[8..16].copy_from_slice(&since_ns(epoch, due).to_le_bytes());
        let began = Instant::now();
        for (i, stream) in streams.iter_mut().enumerate() {
            if let Err(e) = stream.write_all(&record) {
                error = Some(format!("writing burst {bursts} to connection {i}: {e}"));
                flags.written.fetch_add(i as u64, Ordering::Release);
                records += i as u64;
                break 'bursts;
            }
        }
        if let Some(hist) = &mut burst_hist {
            hist.saturating_record(since_ns(began, Instant::now()).max(1));
        }
        bursts += 1;
        records += streams.len() as u64;
        flags
            .written
            .fetch_add(streams.len() as u64, Ordering::Release);
    }
    let end = Instant::now();
    flags.done.store(true, Ordering::Release);
    WriterOutcome {
        pinned,
        bursts,
        records,
        cpu_s: thread_cpu_seconds() - cpu_start,
        end,
        burst_write: burst_hist.as_ref().map(Percentiles::of).unwrap_or_default(),
        error,
    }
}

/// Counts of what the reader found, over all connections.
#[derive(Debug, Default)]
struct Tally {
    /// Records read in order (the first after a gap included).
    delivered: u64,
    /// Records skipped: a burst number jumped ahead.
    lost: u64,
    /// Records whose burst number was not above the previous one on their connection.
    out_of_order: u64,
    /// Sum over connections of the next expected burst number: how far reading has got,
    /// gaps included.
    advanced: u64,
    errors: u64,
    error_samples: Vec<String>,
}

impl Tally {
    fn error(&mut self, message: String) {
        self.errors += 1;
        if self.error_samples.len() < MAX_ERROR_SAMPLES {
            self.error_samples.push(message);
        }
    }
}

/// One connection's byte stream, cut into fixed-size records: a `read` may end inside a record,
/// or return several.
#[derive(Debug)]
struct RecordStream {
    /// The start of a record whose rest has not arrived yet.
    partial: Vec<u8>,
    /// The burst number the next record must carry.
    next: u64,
}

fn le_u64(bytes: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[..8]);
    u64::from_le_bytes(word)
}

impl RecordStream {
    fn new(size: usize) -> RecordStream {
        RecordStream {
            partial: Vec::with_capacity(size),
            next: 0,
        }
    }

    /// Takes the bytes one `read` returned; calls `delivered` with the send stamp of every
    /// record that arrived in order.
    fn feed(
        &mut self,
        conn: usize,
        size: usize,
        mut bytes: &[u8],
        tally: &mut Tally,
        delivered: &mut impl FnMut(u64),
    ) {
        if !self.partial.is_empty() {
            let take = (size - self.partial.len()).min(bytes.len());
            self.partial.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.partial.len() < size {
                return;
            }
            let record = std::mem::take(&mut self.partial);
            self.check(conn, &record, tally, delivered);
            self.partial = record;
            self.partial.clear();
        }
        let mut records = bytes.chunks_exact(size);
        for record in &mut records {
            self.check(conn, record, tally, delivered);
        }
        self.partial.extend_from_slice(records.remainder());
    }

    fn check(
        &mut self,
        conn: usize,
        record: &[u8],
        tally: &mut Tally,
        delivered: &mut impl FnMut(u64),
    ) {
        let burst = le_u64(record);
        if burst < self.next {
            tally.out_of_order += 1;
            tally.error(format!(
                "connection {conn}: record of burst {burst} after burst {}",
                self.next - 1
            ));
            return;
        }
        if burst > self.next {
            tally.lost += burst - self.next;
            tally.error(format!(
                "connection {conn}: records of bursts {}..={} missing",
                self.next,
                burst - 1
            ));
        }
        tally.delivered += 1;
        tally.advanced += burst + 1 - self.next;
        self.next = burst + 1;
        delivered(le_u64(&record[8..]));
    }
}

/// What the reader saw.
#[derive(Debug)]
struct ReaderOutcome {
    pinned: Result<usize, String>,
    tally: Tally,
    latency: Histogram<u64>,
    reads: u64,
    /// Nanoseconds since the epoch when the last record arrived.
    last_delivery_ns: u64,
    cpu_s: f64,
    /// When the reader stopped.
    end: Instant,
    /// Whether it stopped because every written record had arrived (not at the deadline).
    drained: bool,
}

/// Reads every connection until every record the writer wrote has arrived, or until
/// `drain_timeout` after the writer stopped.
fn read_records(
    mut streams: Vec<mio::net::TcpStream>,
    plan: &FloorPlan,
    epoch: Instant,
    core: Option<usize>,
    flags: &Flags,
    ready: mpsc::SyncSender<()>,
) -> anyhow::Result<ReaderOutcome> {
    let pinned = pin(core);
    let mut poll = Poll::new().context("creating the reader's epoll instance")?;
    for (i, stream) in streams.iter_mut().enumerate() {
        poll.registry()
            .register(stream, Token(i), Interest::READABLE)
            .with_context(|| format!("registering connection {i} with epoll"))?;
    }
    let size = plan.record_bytes;
    let mut parsers: Vec<RecordStream> = (0..streams.len())
        .map(|_| RecordStream::new(size))
        .collect();
    let mut open = vec![true; streams.len()];
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 64 * 1024];
    let mut tally = Tally::default();
    let mut latency = histogram()?;
    let mut reads = 0u64;
    let mut last_delivery_ns = 0u64;
    let cpu_start = thread_cpu_seconds();
    let mut deadline: Option<Instant> = None;
    // The writer waits for this before its first burst.
    let _ = ready.send(());
    let drained = loop {
        if deadline.is_none() && flags.done.load(Ordering::Acquire) {
            deadline = Some(Instant::now() + plan.drain_timeout);
        }
        if let Some(deadline) = deadline {
            if tally.advanced >= flags.written.load(Ordering::Acquire) {
                break true;
            }
            if Instant::now() >= deadline {
                break false;
            }
        }
        match poll.poll(&mut events, Some(IDLE_POLL)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(anyhow::anyhow!("waiting for records (epoll): {e}")),
        }
        for event in &events {
            let conn = event.token().0;
            let (Some(stream), Some(parser)) = (streams.get_mut(conn), parsers.get_mut(conn))
            else {
                continue;
            };
            while open[conn] {
                match stream.read(&mut buf) {
                    Ok(0) => {
                        open[conn] = false;
                        tally.error(format!("connection {conn}: closed by the writer's end"));
                    }
                    Ok(n) => {
                        reads += 1;
                        let now = since_ns(epoch, Instant::now());
                        let mut arrived = false;
                        parser.feed(conn, size, &buf[..n], &mut tally, &mut |stamp| {
                            latency.saturating_record(now.saturating_sub(stamp).max(1));
                            arrived = true;
                        });
                        if arrived {
                            last_delivery_ns = now;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        open[conn] = false;
                        tally.error(format!("connection {conn}: read: {e}"));
                    }
                }
            }
        }
    };
    let cpu_s = thread_cpu_seconds() - cpu_start;
    for (conn, parser) in parsers.iter().enumerate() {
        if !parser.partial.is_empty() {
            tally.error(format!(
                "connection {conn}: {} bytes of a record never completed",
                parser.partial.len()
            ));
        }
    }
    Ok(ReaderOutcome {
        pinned,
        tally,
        latency,
        reads,
        last_delivery_ns,
        cpu_s,
        end: Instant::now(),
        drained,
    })
}

/// Turns what the threads measured into a report shaped like a server's fixed-rate run.
#[allow(clippy::too_many_arguments)]
fn assemble(
    plan: &FloorPlan,
    addr: SocketAddr,
    (connect, setup_s): (Percentiles, f64),
    epoch: Instant,
    start: Instant,
    writer: &WriterOutcome,
    reader: ReaderOutcome,
    machine: Option<((u64, u64), (u64, u64))>,
) -> Report {
    let mut tally = reader.tally;
    if let Some(error) = &writer.error {
        tally.error(format!("writer: {error}"));
    }
    let start_ns = since_ns(epoch, start);
    let reader_wall = reader.end.saturating_duration_since(start).as_secs_f64();
    let writer_wall = writer.end.saturating_duration_since(start).as_secs_f64();
    let elapsed_s = if reader.last_delivery_ns > start_ns {
        (reader.last_delivery_ns - start_ns) as f64 / 1e9
    } else {
        reader_wall
    };
    let delivered_per_s = tally.delivered as f64 / elapsed_s.max(1e-9);
    let offered = plan.rate * plan.connections as f64;
    let undelivered = writer.records.saturating_sub(tally.advanced);
    let behind = (!reader.drained).then(|| {
        format!(
            "{undelivered} of {} records not read within the drain timeout",
            writer.records
        )
    });
    let saturated = report::saturation(behind, delivered_per_s, offered);
    let per_record_us = |cpu_s: f64, records: u64| {
        if records == 0 {
            0.0
        } else {
            cpu_s * 1e6 / records as f64
        }
    };
    let share = |cpu_s: f64, wall: f64| if wall > 0.0 { cpu_s / wall } else { 0.0 };
    let other_cpu = machine.map(|((busy_a, _), (busy_b, _))| {
        let busy_s = busy_b.saturating_sub(busy_a) as f64 * sys::seconds_per_jiffy();
        // The machine readings span connecting and both threads' lifetimes: compare them with
        // the whole run's wall time.
        let wall = reader.end.saturating_duration_since(epoch).as_secs_f64();
        ((busy_s - writer.cpu_s - reader.cpu_s) / wall.max(1e-9)).max(0.0)
    });
    let pinning = match (&writer.pinned, &reader.pinned) {
        (Ok(w), Ok(r)) => format!("writer pinned to core {w}, reader to core {r}"),
        (w, r) => {
            let why = [w.as_ref().err(), r.as_ref().err()]
                .into_iter()
                .flatten()
                .next()
                .cloned()
                .unwrap_or_default();
            format!("NOT pinned ({why}): writer and reader may share a core")
        }
    };
    let step = Step {
        offered_publishes_per_s: plan.rate,
        offered_deliveries_per_s: offered,
        published: writer.bursts,
        delivered: tally.delivered,
        expected: writer.records,
        delivered_per_s,
        latency: Percentiles::of(&reader.latency),
        elapsed_s,
        generator_cpu: share(reader.cpu_s, reader_wall),
        server_cpu_s: Some(writer.cpu_s),
        server_cpu_s_per_million: (writer.records > 0)
            .then(|| writer.cpu_s * 1e6 / writer.records as f64),
        other_cpu,
        saturated,
    };
    Report {
        label: LABEL.to_owned(),
        url: format!("tcp://{addr}"),
        subscriber_urls: Vec::new(),
        subscribers: plan.connections,
        topics: 1,
        publishers: 1,
        payload_bytes: plan.record_bytes,
        generator_cores: if reader.pinned.is_ok() {
            1
        } else {
            sys::usable_cores()
        },
        connect,
        setup_s,
        saturation_deliveries_per_s: delivered_per_s,
        steps: vec![step],
        half_load: None,
        lost: tally.lost,
        undelivered,
        out_of_order: tally.out_of_order,
        // Raw records have no topic stream to reset.
        epoch_changes: 0,
        errors: tally.errors,
        error_samples: tally.error_samples,
        generator_saturated: false,
        stalled: None,
        idle: None,
        redis: None,
        floor: Some(FloorReport {
            writer_core: writer.pinned.as_ref().ok().copied(),
            reader_core: reader.pinned.as_ref().ok().copied(),
            pinning,
            bursts: writer.bursts,
            writer_cpu_us_per_record: per_record_us(writer.cpu_s, writer.records),
            writer_cpu_share: share(writer.cpu_s, writer_wall),
            reader_cpu_us_per_record: per_record_us(reader.cpu_s, tally.delivered),
            reader_cpu_share: share(reader.cpu_s, reader_wall),
            records_per_read: if reader.reads == 0 {
                0.0
            } else {
                tally.delivered as f64 / reader.reads as f64
            },
            burst_write: writer.burst_write.clone(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIZE: usize = 24;

    fn record(burst: u64, stamp: u64) -> Vec<u8> {
        let mut r = vec![FILL; SIZE];
        r[..8].copy_from_slice(&burst.to_le_bytes());
        r[8..16].copy_from_slice(&stamp.to_le_bytes());
        r
    }

    /// Feeds `bytes` cut at `cuts` (as separate reads) and returns the tally and the stamps.
    fn feed(bytes: &[u8], cuts: &[usize]) -> (Tally, Vec<u64>, RecordStream) {
        let mut stream = RecordStream::new(SIZE);
        let mut tally = Tally::default();
        let mut stamps = Vec::new();
        let mut from = 0;
        for &to in cuts.iter().chain([bytes.len()].iter()) {
            stream.feed(7, SIZE, &bytes[from..to], &mut tally, &mut |s| {
                stamps.push(s);
            });
            from = to;
        }
        (tally, stamps, stream)
    }

    #[test]
    fn records_split_across_reads_or_packed_into_one_are_all_counted() {
        let bytes: Vec<u8> = (0..5).flat_map(|b| record(b, 100 + b)).collect();
        for cuts in [
            vec![],
            vec![1],
            vec![SIZE - 1, SIZE + 3],
            vec![8, 16, 40, 41, 100],
            (1..bytes.len()).collect(),
        ] {
            let (tally, stamps, stream) = feed(&bytes, &cuts);
            assert_eq!(tally.delivered, 5, "cuts {cuts:?}");
            assert_eq!(tally.advanced, 5, "cuts {cuts:?}");
            assert_eq!((tally.lost, tally.out_of_order, tally.errors), (0, 0, 0));
            assert_eq!(stamps, vec![100, 101, 102, 103, 104], "cuts {cuts:?}");
            assert!(stream.partial.is_empty());
        }
    }

    #[test]
    fn a_missing_record_is_lost_and_a_repeated_one_out_of_order() {
        let bytes: Vec<u8> = [0, 1, 4, 4, 5]
            .into_iter()
            .flat_map(|b| record(b, b))
            .collect();
        let (tally, stamps, _) = feed(&bytes, &[30]);
        assert_eq!(tally.lost, 2);
        assert_eq!(tally.out_of_order, 1);
        assert_eq!(tally.delivered, 4);
        assert_eq!(tally.advanced, 6);
        assert_eq!(stamps, vec![0, 1, 4, 5]);
        assert_eq!(
            tally.error_samples,
            vec![
                "connection 7: records of bursts 2..=3 missing".to_owned(),
                "connection 7: record of burst 4 after burst 4".to_owned(),
            ]
        );
    }

    #[test]
    fn an_unfinished_record_waits_for_its_rest() {
        let mut bytes = record(0, 9);
        bytes.extend_from_slice(&record(1, 10)[..5]);
        let (tally, stamps, stream) = feed(&bytes, &[3]);
        assert_eq!((tally.delivered, stamps), (1, vec![9]));
        assert_eq!(stream.partial.len(), 5);
        assert_eq!(stream.next, 1);
    }

    #[test]
    fn bad_plans_are_refused_with_the_flag_at_fault() {
        let good = FloorPlan {
            connections: 2,
            record_bytes: 100,
            rate: 10.0,
            step_time: Duration::from_millis(100),
            drain_timeout: Duration::from_secs(1),
        };
        for (plan, says) in [
            (
                FloorPlan {
                    record_bytes: 15,
                    ..good.clone()
                },
                "--payload-bytes 15",
            ),
            (
                FloorPlan {
                    rate: 0.0,
                    ..good.clone()
                },
                "--rate 0",
            ),
            (
                FloorPlan {
                    connections: 0,
                    ..good.clone()
                },
                "--subscribers",
            ),
            (
                FloorPlan {
                    step_time: Duration::ZERO,
                    ..good.clone()
                },
                "--step-secs",
            ),
        ] {
            let err = run(&plan).expect_err("refused");
            assert!(err.to_string().contains(says), "{err}");
        }
    }
}
