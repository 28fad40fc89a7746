//! `produce`: events from stdin or files into the bus, with a summary that accounts for every
//! one of them.
//!
//! The input is read on a thread of its own (ingest may block for room in `block` mode, and
//! stdin may block for input) while the main task waits for the end of the input or Ctrl-C.
//! Either way the bus is then shut down within `--flush-timeout`, and the summary comes from
//! the bus's own counters, so it is exact however the run ended.

use crate::config::{warn_if_private, BusArgs, Role};
use crate::exit::{Failure, INTERRUPTED, IO, LOST, OK};
use crate::interrupt::Interrupt;
use crate::{progress, units};
use bytes::Bytes;
use indicatif::ProgressBar;
use purple_rain::{EventBus, FlushError, IngestionError, RawEvent, StatsSnapshot};
use serde_json::Value;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Largest raw record accepted (a corrupt length prefix should not allocate gigabytes).
const MAX_RAW_RECORD: usize = 64 << 20;
/// Events between progress-bar updates.
const PROGRESS_STEP: u64 = 1024;

/// Arguments of `produce`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub bus: BusArgs,
    /// Input files, read in order; none or `-` reads stdin.
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// jsonl: one JSON event per line, stored byte for byte without the newline (blank lines
    /// are skipped, lines that are not JSON are rejected). raw: each event is a 4-byte
    /// big-endian length and that many bytes, stored unchecked.
    #[arg(long, value_enum, default_value_t = InputFormat::Jsonl)]
    pub format: InputFormat,
    /// Route by this field (dot path, e.g. `user` or `order.items.0.sku`), so that the events of
    /// one key keep their order; events without the field are routed by their bytes. Without
    /// it only a single shard keeps the input's order.
    #[arg(long, value_name = "PATH")]
    pub key_field: Option<String>,
    /// How long to wait, at the end or after Ctrl-C, for accepted events to reach the adapter.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = units::duration)]
    pub flush_timeout: Duration,
}

/// How `produce` reads its input.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    /// JSON lines.
    Jsonl,
    /// Length-prefixed binary records.
    Raw,
}

/// What the reader saw, besides what the bus counts.
#[derive(Default)]
struct Tally {
    not_json: AtomicU64,
    refused: AtomicU64,
    /// The first problem of each kind, with its place in the input.
    first_not_json: Mutex<Option<String>>,
    first_refused: Mutex<Option<String>>,
    /// Reading stopped early: unreadable input or a cut raw record.
    input_error: Mutex<Option<String>>,
}

fn remember(slot: &Mutex<Option<String>>, text: impl FnOnce() -> String) {
    if let Ok(mut slot) = slot.lock() {
        slot.get_or_insert_with(text);
    }
}

fn taken(slot: &Mutex<Option<String>>) -> Option<String> {
    slot.lock().ok().and_then(|s| s.clone())
}

/// One input, opened before the bus starts so a wrong path fails early.
struct Input {
    name: String,
    reader: BufReader<Box<dyn Read + Send>>,
}

fn open_inputs(files: &[PathBuf]) -> Result<Vec<Input>, Failure> {
    if files.is_empty() {
        return Ok(vec![stdin()]);
    }
    files
        .iter()
        .map(|path| {
            if path.as_os_str() == "-" {
                return Ok(stdin());
            }
            let file = File::open(path).map_err(|e| Failure::new(IO, format!("{}: {e}", path.display())))?;
            Ok(Input { name: path.display().to_string(), reader: BufReader::with_capacity(1 << 18, Box::new(file)) })
        })
        .collect()
}

fn stdin() -> Input {
    Input { name: "stdin".into(), reader: BufReader::with_capacity(1 << 18, Box::new(io::stdin())) }
}

/// Runs `produce`; returns the exit code.
pub async fn run(args: Args, interrupt: Interrupt) -> Result<u8, Failure> {
    let config = args.bus.resolve(Role::Writer)?;
    let ring_capacity = config.ring_capacity;
    warn_if_private(&config, "produce");
    let inputs = open_inputs(&args.files)?;
    let bus = Arc::new(EventBus::new(config).await.map_err(Failure::start)?);
    let reader = Reader {
        bus: bus.clone(),
        tally: Arc::new(Tally::default()),
        stop: Arc::new(AtomicBool::new(false)),
        key: args.key_field.as_deref().map(|k| k.split('.').map(str::to_owned).collect()),
        format: args.format,
        bar: progress::counter("producing", "events"),
        wake_every: (ring_capacity as u64 / 4).clamp(1, 256),
    };
    let started = Instant::now();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let thread = reader.clone_handles();
    std::thread::spawn(move || {
        thread.read_all(inputs);
        let _ = done_tx.send(());
    });
    let interrupted = tokio::select! {
        _ = done_rx => false,
        () = interrupt.wait() => true,
    };
    // Stop reading (a reader blocked on input stays blocked: it holds no event), flush within
    // the deadline, then shut down; after a timed-out flush, shutting down would wait for the
    // very retries the deadline cut short, so the summary is made without it.
    reader.stop.store(true, Ordering::Release);
    let unreached = wait_for_peers(&bus, Instant::now() + args.flush_timeout).await;
    let flushed = bus.flush_timeout(args.flush_timeout).await;
    let shutdown = match flushed {
        Ok(_) => tokio::time::timeout(args.flush_timeout, bus.shutdown_via_ref()).await.unwrap_or(Ok(())),
        Err(FlushError::Adapter(e)) => Err(e),
        // Timed out (the summary counts what was not flushed), or a kind added later.
        Err(_) => Ok(()),
    };
    reader.bar.finish_and_clear();
    let stats = bus.stats().snapshot();
    let summary = Summary { stats, tally: &reader.tally, elapsed: started.elapsed(), interrupted };
    eprintln!("{}", summary.line());
    let mut causes = summary.losses(&bus, args.flush_timeout);
    if let Err(e) = shutdown {
        causes.push(format!("the adapter failed to flush: {e}"));
    }
    if !unreached.is_empty() {
        causes.push(format!(
            "Net peers never connected within {:?} ({}): the events stayed in this process",
            args.flush_timeout,
            unreached.join(", ")
        ));
    }
    if !causes.is_empty() {
        return Err(Failure::new(LOST, format!("not every event was stored: {}", causes.join("; "))));
    }
    if let Some(error) = taken(&reader.tally.input_error) {
        return Err(Failure::new(IO, error));
    }
    Ok(if interrupted { INTERRUPTED } else { OK })
}

/// A Net node's flush waits only for the peers connected at the time, and a `produce` that
/// just started may not have reached its peers yet: its events would leave with the process.
/// So wait (up to `deadline`) until every configured peer is connected; returns those that
/// never were (learned members are not waited for). Other adapters report no
/// `net_dial_connected` figure and return at once.
async fn wait_for_peers(bus: &EventBus, deadline: Instant) -> Vec<String> {
    loop {
        let unreached: Vec<String> = bus
            .stats()
            .adapter_metrics()
            .into_iter()
            .filter(|m| m.name == "net_dial_connected" && m.value < 1.0)
            // Only the peers given on the command line: a member learned from them that cannot
            // be reached is not where these events must go.
            .filter(|m| !m.labels.iter().any(|(name, value)| *name == "source" && value == "learned"))
            .filter_map(|m| m.labels.into_iter().find(|(name, _)| *name == "peer").map(|(_, addr)| addr))
            .collect();
        if unreached.is_empty() || Instant::now() >= deadline {
            return unreached;
        }
        // The adapter has no connection event to wait on; its figure is cheap to read.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The reading side, shared with the reader thread.
struct Reader {
    bus: Arc<EventBus>,
    tally: Arc<Tally>,
    stop: Arc<AtomicBool>,
    key: Option<Vec<String>>,
    format: InputFormat,
    bar: ProgressBar,
    /// Events ingested without waking their shard's worker before the workers are woken: one
    /// futex wake per run of events instead of one per event. Well under a ring, so a run
    /// never fills one.
    wake_every: u64,
}

/// Counts of the events the reader ingested since it last reported them.
#[derive(Default)]
struct Pending {
    /// Not yet added to the progress bar.
    unreported: u64,
    /// Not yet followed by a wake of the workers.
    unwoken: u64,
}

impl Reader {
    fn clone_handles(&self) -> Self {
        Self {
            bus: self.bus.clone(),
            tally: self.tally.clone(),
            stop: self.stop.clone(),
            key: self.key.clone(),
            format: self.format,
            bar: self.bar.clone(),
            wake_every: self.wake_every,
        }
    }

    fn read_all(&self, inputs: Vec<Input>) {
        let mut pending = Pending::default();
        for mut input in inputs {
            let result = match self.format {
                InputFormat::Jsonl => self.read_lines(&mut input, &mut pending),
                InputFormat::Raw => self.read_records(&mut input, &mut pending),
            };
            if let Err(error) = result {
                remember(&self.tally.input_error, || error);
                break;
            }
            if self.stop.load(Ordering::Acquire) {
                break;
            }
        }
        self.bus.wake_workers();
        self.bar.inc(pending.unreported);
    }

    /// Before a read that may block (nothing buffered), hand over what was ingested: the input
    /// may pause for a long time (a terminal, a slow pipe), and its events must not wait.
    fn before_read(&self, input: &Input, pending: &mut Pending) {
        if input.reader.buffer().is_empty() && pending.unwoken > 0 {
            self.bus.wake_workers();
            pending.unwoken = 0;
        }
    }

    fn read_lines(&self, input: &mut Input, pending: &mut Pending) -> Result<(), String> {
        let mut line = Vec::with_capacity(1024);
        for number in 1u64.. {
            line.clear();
            self.before_read(input, pending);
            match input.reader.read_until(b'\n', &mut line) {
                Ok(0) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(format!("{}: line {number}: {e}", input.name)),
            }
            if line.last() == Some(&b'\n') {
                line.pop();
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match self.event(&line) {
                Ok(event) => {
                    if !self.send(event, || format!("{}:{number}", input.name), pending) {
                        return Ok(());
                    }
                }
                Err(reason) => {
                    self.tally.not_json.fetch_add(1, Ordering::Relaxed);
                    remember(&self.tally.first_not_json, || format!("{}:{number}: {reason}", input.name));
                }
            }
        }
        Ok(())
    }

    fn read_records(&self, input: &mut Input, pending: &mut Pending) -> Result<(), String> {
        for number in 1u64.. {
            self.before_read(input, pending);
            let mut prefix = [0u8; 4];
            let got = read_full(&mut input.reader, &mut prefix).map_err(|e| format!("{}: {e}", input.name))?;
            if got == 0 {
                return Ok(());
            }
            if got < prefix.len() {
                return Err(format!("{}: record {number}: cut off inside its length prefix", input.name));
            }
            let len = u32::from_be_bytes(prefix) as usize;
            if len > MAX_RAW_RECORD {
                return Err(format!(
                    "{}: record {number}: length {len} is over the {MAX_RAW_RECORD}-byte limit",
                    input.name
                ));
            }
            let mut payload = vec![0u8; len];
            let got = read_full(&mut input.reader, &mut payload).map_err(|e| format!("{}: {e}", input.name))?;
            if got < len {
                return Err(format!("{}: record {number}: {got} of {len} bytes, then the input ended", input.name));
            }
            let event = self.keyed(Bytes::from(payload), None);
            if !self.send(event, || format!("{} record {number}", input.name), pending) {
                return Ok(());
            }
        }
        Ok(())
    }

    /// A JSON line as an event, routed by its key field when there is one.
    fn event(&self, line: &[u8]) -> Result<RawEvent, String> {
        let bytes = Bytes::copy_from_slice(line);
        if self.key.is_some() {
            let value: Value = serde_json::from_slice(line).map_err(|e| e.to_string())?;
            return Ok(self.keyed(bytes, Some(&value)));
        }
        serde_json::from_slice::<serde::de::IgnoredAny>(line).map_err(|e| e.to_string())?;
        Ok(RawEvent::from_bytes(bytes))
    }

    /// Routes by the key field when the payload has it, by the bytes otherwise.
    fn keyed(&self, bytes: Bytes, parsed: Option<&Value>) -> RawEvent {
        let Some(path) = &self.key else {
            return RawEvent::from_bytes(bytes);
        };
        let owned;
        let value = match parsed {
            Some(v) => Some(v),
            None => {
                owned = serde_json::from_slice::<Value>(&bytes).ok();
                owned.as_ref()
            }
        };
        match value.and_then(|v| lookup(v, path)) {
            Some(Value::String(key)) => RawEvent::with_key(bytes, key.as_bytes()),
            Some(other) => RawEvent::with_key(bytes, other.to_string().as_bytes()),
            None => RawEvent::from_bytes(bytes),
        }
    }

    /// Ingests one event; false when reading should stop (Ctrl-C, or the bus is shutting down).
    fn send(&self, event: RawEvent, place: impl FnOnce() -> String, pending: &mut Pending) -> bool {
        if self.stop.load(Ordering::Acquire) {
            return false;
        }
        match self.bus.ingest_raw_unwoken(event) {
            Ok(()) => {
                pending.unwoken += 1;
                if pending.unwoken == self.wake_every {
                    self.bus.wake_workers();
                    pending.unwoken = 0;
                }
                pending.unreported += 1;
                if pending.unreported == PROGRESS_STEP {
                    self.bar.inc(PROGRESS_STEP);
                    pending.unreported = 0;
                }
                true
            }
            // Shutdown began (Ctrl-C): this event is simply not sent, like the unread rest.
            Err(IngestionError::ShuttingDown) => false,
            Err(e) => {
                self.tally.refused.fetch_add(1, Ordering::Relaxed);
                remember(&self.tally.first_refused, || format!("{}: {e}", place()));
                true
            }
        }
    }
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_full(reader: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// The value at a dot path; numeric segments index arrays.
fn lookup<'a>(value: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, segment| match v {
        Value::Object(map) => map.get(segment),
        Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}

/// The end-of-run report.
struct Summary<'a> {
    stats: StatsSnapshot,
    tally: &'a Tally,
    elapsed: Duration,
    interrupted: bool,
}

impl Summary<'_> {
    fn rejected(&self) -> u64 {
        self.tally.not_json.load(Ordering::Relaxed) + self.tally.refused.load(Ordering::Relaxed)
    }

    fn unflushed(&self) -> u64 {
        let s = &self.stats;
        s.events_ingested.saturating_sub(s.events_dispatched + s.events_dropped)
    }

    fn line(&self) -> String {
        let s = &self.stats;
        let secs = self.elapsed.as_secs_f64();
        let rate = if secs > 0.0 { s.events_ingested as f64 / secs } else { 0.0 };
        format!(
            "{}accepted {} events in {secs:.2}s ({rate:.0} events/s): stored {}, rejected {}, dropped {}, not flushed {}",
            if self.interrupted { "interrupted: " } else { "" },
            s.events_ingested,
            s.events_dispatched,
            self.rejected(),
            s.events_dropped,
            self.unflushed(),
        )
    }

    /// Every cause of loss, each with its count and first example.
    fn losses(&self, bus: &EventBus, flush_timeout: Duration) -> Vec<String> {
        let s = &self.stats;
        let t = self.tally;
        let last_error =
            || bus.stats().last_adapter_error().map(|e| format!(" (last adapter error: {e})")).unwrap_or_default();
        let mut causes = Vec::new();
        let not_json = t.not_json.load(Ordering::Relaxed);
        if not_json > 0 {
            causes.push(format!("{not_json} not JSON (first at {})", taken(&t.first_not_json).unwrap_or_default()));
        }
        let refused = t.refused.load(Ordering::Relaxed);
        if refused > 0 {
            causes.push(format!(
                "{refused} refused by the bus (first at {})",
                taken(&t.first_refused).unwrap_or_default()
            ));
        }
        for (count, cause) in [
            (s.dropped_evicted, "evicted from a full ring (drop_oldest)"),
            (s.dropped_adapter_fatal, "rejected by the adapter"),
            (s.dropped_retry_exhausted, "dropped after the adapter's retries ran out"),
            (s.dropped_lost, "lost with a failed shard worker"),
        ] {
            if count > 0 {
                causes.push(format!("{count} {cause}{}", last_error()));
            }
        }
        let unflushed = self.unflushed();
        if unflushed > 0 {
            causes.push(format!("{unflushed} not flushed within {flush_timeout:?}{}", last_error()));
        }
        causes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lookup_follows_dot_paths_into_objects_and_arrays() {
        let v = json!({"user": {"id": 7}, "items": [{"sku": "a"}, {"sku": "b"}]});
        let path = |p: &str| p.split('.').map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(lookup(&v, &path("user.id")), Some(&json!(7)));
        assert_eq!(lookup(&v, &path("items.1.sku")), Some(&json!("b")));
        assert_eq!(lookup(&v, &path("items.9.sku")), None);
        assert_eq!(lookup(&v, &path("user.name")), None);
    }

    #[test]
    fn read_full_reports_a_short_read_at_the_end() {
        let mut buf = [0u8; 4];
        assert_eq!(read_full(&mut &b"ab"[..], &mut buf).ok(), Some(2));
        assert_eq!(read_full(&mut &b"abcdef"[..], &mut buf).ok(), Some(4));
    }
}
