//! `consume`: prints events from a cursor and, on exit, the cursor to resume from.
//!
//! A page is written and flushed to stdout before the cursor moves past it, and the cursor is
//! written last (to stderr, or atomically to `--cursor-file`), so a pipeline that resumes from
//! it gets every event exactly once, unless the output itself broke mid-page: then the cursor
//! stays before that page and its events may come again (at least once).

use crate::config::{warn_if_private, BusArgs, Role};
use crate::exit::{Failure, INTERRUPTED, IO, OK, REQUEST};
use crate::interrupt::Interrupt;
use crate::output::{EventWriter, OutputFormat};
use crate::units;
use purple_rain::consume::Cursor;
use purple_rain::{ConsumeRequest, EventBus, Filter, Ordering};
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Events per poll.
const PAGE: usize = 1000;
/// How long one poll of `--follow` waits for new events before asking again. Brokers wake a
/// waiting poll when events arrive; a read-only disk log has no such signal, so this is the
/// longest it takes `--follow` to see what its writer appended.
const FOLLOW_WAIT: Duration = Duration::from_secs(1);

/// Arguments of `consume`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub bus: BusArgs,
    /// Resume from this cursor (as printed by an earlier `consume`).
    #[arg(long, value_name = "CURSOR", conflicts_with_all = ["from_beginning", "from_end"])]
    pub from: Option<String>,
    /// Start at the oldest retained event (the default, unless --cursor-file holds a cursor).
    #[arg(long, conflicts_with = "from_end")]
    pub from_beginning: bool,
    /// Start after the last event stored when the command starts (reads past the log once).
    #[arg(long)]
    pub from_end: bool,
    /// Only events that match this JSON filter, e.g. '{"path":"kind","value":"click"}' or
    /// '{"$and":[{"$gt":{"path":"n","value":5}},{"$exists":{"path":"user","value":true}}]}'.
    #[arg(long, value_name = "JSON")]
    pub filter: Option<String>,
    /// sequence: each shard's events in order, shard after shard per page; timestamp: merged
    /// across shards by storage time.
    #[arg(long, value_enum, default_value_t = OrderingArg::Sequence)]
    pub ordering: OrderingArg,
    /// Stop after N events (e.g. 1000, 10k).
    #[arg(long, value_name = "N", value_parser = units::count)]
    pub limit: Option<u64>,
    /// Keep waiting for new events, like `tail -f`; Ctrl-C then ends with exit code 0.
    #[arg(long)]
    pub follow: bool,
    /// How events are printed.
    #[arg(long, value_enum, default_value_t = OutputFormat::Jsonl)]
    pub format: OutputFormat,
    /// Start from the cursor in FILE when it exists and no --from* flag is given; on exit,
    /// write the cursor to resume from into FILE (atomically) instead of to stderr.
    #[arg(long, value_name = "FILE")]
    pub cursor_file: Option<PathBuf>,
}

/// `--ordering`.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderingArg {
    Sequence,
    Timestamp,
}

/// Where reading starts.
enum Start {
    Cursor(String),
    End,
}

/// Runs `consume`; returns the exit code.
pub async fn run(args: Args, interrupt: Interrupt) -> Result<u8, Failure> {
    let filter = match &args.filter {
        None => None,
        Some(text) => {
            let value =
                serde_json::from_str(text).map_err(|e| Failure::new(REQUEST, format!("--filter: not JSON: {e}")))?;
            Some(Filter::from_json(&value).map_err(|e| Failure::new(REQUEST, format!("--filter: {e}")))?)
        }
    };
    let start = start(&args)?;
    let config = args.bus.resolve(Role::Reader)?;
    warn_if_private(&config, "consume");
    let bus = EventBus::new(config).await.map_err(Failure::start)?;
    let mut consumer = Consumer { cursor: String::new(), consumed: 0, interrupted: false };
    let outcome = match start {
        Start::Cursor(cursor) => {
            consumer.cursor = cursor;
            consumer.run(&bus, &args, filter, &interrupt).await
        }
        Start::End => match consumer.skip_to_end(&bus, &interrupt).await {
            Ok(()) if !consumer.interrupted => consumer.run(&bus, &args, filter, &interrupt).await,
            other => other,
        },
    };
    let saved = save_cursor(args.cursor_file.as_deref(), &consumer.cursor);
    let _ = tokio::time::timeout(Duration::from_secs(5), bus.shutdown_via_ref()).await;
    outcome?;
    saved?;
    Ok(if consumer.interrupted && !args.follow { INTERRUPTED } else { OK })
}

fn start(args: &Args) -> Result<Start, Failure> {
    let check = |cursor: String, source: &str| match Cursor::decode(&cursor) {
        Ok(_) => Ok(Start::Cursor(cursor)),
        Err(e) => Err(Failure::new(REQUEST, format!("{source}: invalid cursor: {e}"))),
    };
    if let Some(cursor) = &args.from {
        return check(cursor.trim().to_owned(), "--from");
    }
    if args.from_end {
        return Ok(Start::End);
    }
    if let (false, Some(path)) = (args.from_beginning, &args.cursor_file) {
        match std::fs::read_to_string(path) {
            Ok(text) if !text.trim().is_empty() => {
                return check(text.trim().to_owned(), &format!("--cursor-file {}", path.display()))
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Failure::new(IO, format!("--cursor-file {}: {e}", path.display()))),
        }
    }
    Ok(Start::Cursor(String::new()))
}

/// Writes the cursor where the next run will find it.
fn save_cursor(file: Option<&Path>, cursor: &str) -> Result<(), Failure> {
    let Some(path) = file else {
        eprintln!("cursor: {cursor}");
        return Ok(());
    };
    let mut temp = path.as_os_str().to_owned();
    temp.push(".tmp");
    std::fs::write(&temp, format!("{cursor}\n"))
        .and_then(|()| std::fs::rename(&temp, path))
        .map_err(|e| Failure::new(IO, format!("--cursor-file {}: {e}; resume with --from {cursor}", path.display())))
}

struct Consumer {
    /// Just past every event written so far.
    cursor: String,
    consumed: u64,
    interrupted: bool,
}

impl Consumer {
    async fn run(
        &mut self,
        bus: &EventBus,
        args: &Args,
        filter: Option<Filter>,
        interrupt: &Interrupt,
    ) -> Result<(), Failure> {
        let mut out = EventWriter::new(BufWriter::with_capacity(1 << 16, io::stdout().lock()), args.format);
        let ordering = match args.ordering {
            OrderingArg::Sequence => Ordering::Sequence,
            OrderingArg::Timestamp => Ordering::Timestamp,
        };
        loop {
            let remaining = args.limit.map(|limit| limit - self.consumed);
            if remaining == Some(0) {
                return Ok(());
            }
            let limit = remaining.map_or(PAGE, |r| r.min(PAGE as u64) as usize);
            let mut request = ConsumeRequest::new(limit).from(self.cursor.as_str()).ordering(ordering);
            if let Some(filter) = &filter {
                request = request.filter(filter.clone());
            }
            if args.follow {
                request = request.wait(FOLLOW_WAIT);
            }
            let page = tokio::select! {
                page = bus.poll(request) => page.map_err(Failure::poll)?,
                () = interrupt.wait() => {
                    self.interrupted = true;
                    return Ok(());
                }
            };
            let written = page.events.iter().try_for_each(|e| out.write(e)).and_then(|()| out.flush());
            match written {
                Ok(()) => {}
                // The reader went away (`| head`): a normal end; the cursor stays before this page.
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(()),
                Err(e) => return Err(Failure::new(IO, format!("writing events: {e}"))),
            }
            self.consumed += page.events.len() as u64;
            self.cursor = page.cursor;
            if page.missed > 0 {
                eprintln!("warning: {} events were removed by retention before they could be read", page.missed);
            }
            if interrupt.is_set() {
                self.interrupted = true;
                return Ok(());
            }
            if !page.has_more && !args.follow {
                return Ok(());
            }
        }
    }

    /// Moves the cursor past every stored event without printing any.
    async fn skip_to_end(&mut self, bus: &EventBus, interrupt: &Interrupt) -> Result<(), Failure> {
        loop {
            let request = ConsumeRequest::new(10 * PAGE).from(self.cursor.as_str());
            let page = tokio::select! {
                page = bus.poll(request) => page.map_err(Failure::poll)?,
                () = interrupt.wait() => {
                    self.interrupted = true;
                    return Ok(());
                }
            };
            self.cursor = page.cursor;
            if !page.has_more {
                return Ok(());
            }
        }
    }
}
