//! How `consume` prints events.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use purple_rain::StoredEvent;
use std::io::{self, Write};

/// Longest payload shown in a table row, in characters.
const TABLE_PAYLOAD: usize = 80;

/// Output format of `consume`.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// One JSON object per event: id, shard, sequence, timestamp_ns and the payload (embedded
    /// when it is JSON, else base64 in `payload_base64`).
    Jsonl,
    /// The payload bytes and a newline: a file that `produce` read comes back byte for byte.
    Payload,
    /// Aligned columns for reading, payload cut to 80 characters.
    Table,
    /// 4-byte big-endian length and the payload bytes, as `produce --format raw` reads.
    Raw,
}

/// Writes events in one format.
pub struct EventWriter<W: Write> {
    out: W,
    format: OutputFormat,
    header_done: bool,
}

impl<W: Write> EventWriter<W> {
    pub fn new(out: W, format: OutputFormat) -> Self {
        Self { out, format, header_done: false }
    }

    pub fn write(&mut self, event: &StoredEvent) -> io::Result<()> {
        match self.format {
            OutputFormat::Payload => {
                self.out.write_all(&event.payload)?;
                self.out.write_all(b"\n")
            }
            OutputFormat::Raw => {
                let len = u32::try_from(event.payload.len())
                    .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "payload over 4 GiB"))?;
                self.out.write_all(&len.to_be_bytes())?;
                self.out.write_all(&event.payload)
            }
            OutputFormat::Jsonl => self.jsonl(event),
            OutputFormat::Table => self.row(event),
        }
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    fn jsonl(&mut self, event: &StoredEvent) -> io::Result<()> {
        let id = serde_json::to_string(&event.id).map_err(io::Error::other)?;
        write!(
            self.out,
            r#"{{"id":{id},"shard":{},"sequence":{},"timestamp_ns":{},"#,
            event.shard, event.sequence, event.timestamp_ns
        )?;
        if event.origin != 0 {
            // The Net node that ingested it (0, not written, from adapters without nodes).
            write!(self.out, r#""origin":{},"#, event.origin)?;
        }
        // Embed JSON payloads as they are (their exact bytes, less surrounding whitespace).
        let text = std::str::from_utf8(&event.payload).ok().map(str::trim);
        match text.filter(|t| serde_json::from_str::<serde::de::IgnoredAny>(t).is_ok()) {
            Some(json) => write!(self.out, r#""payload":{json}}}"#)?,
            None => write!(self.out, r#""payload_base64":"{}"}}"#, STANDARD.encode(&event.payload))?,
        }
        self.out.write_all(b"\n")
    }

    fn row(&mut self, event: &StoredEvent) -> io::Result<()> {
        if !self.header_done {
            writeln!(self.out, "{:>5}  {:>10}  {:<27}  {:<24}  PAYLOAD", "SHARD", "SEQUENCE", "TIME (UTC)", "ID")?;
            self.header_done = true;
        }
        let payload = String::from_utf8_lossy(&event.payload);
        let mut shown: String =
            payload.chars().map(|c| if c.is_control() { ' ' } else { c }).take(TABLE_PAYLOAD).collect();
        if payload.chars().count() > TABLE_PAYLOAD {
            shown.push('…');
        }
        writeln!(
            self.out,
            "{:>5}  {:>10}  {:<27}  {:<24}  {shown}",
            event.shard,
            event.sequence,
            utc(event.timestamp_ns),
            event.id
        )
    }
}

/// `2026-12-03T05:42:32.123456Z` for nanoseconds since the Unix epoch.
pub fn utc(timestamp_ns: u64) -> String {
    let secs = timestamp_ns / 1_000_000_000;
    let micros = (timestamp_ns % 1_000_000_000) / 1_000;
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{micros:06}Z", rest / 3600, rest / 60 % 60, rest % 60)
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn event(payload: &'static [u8]) -> StoredEvent {
        StoredEvent {
            id: "0-1".into(),
            shard: 2,
            sequence: 9,
            timestamp_ns: 1_000_000_000_123_456_789,
            payload: Bytes::from_static(payload),
            origin: 0,
        }
    }

    fn written(format: OutputFormat, e: &StoredEvent) -> Vec<u8> {
        let mut w = EventWriter::new(Vec::new(), format);
        w.write(e).unwrap();
        w.out
    }

    #[test]
    fn jsonl_embeds_json_payloads_and_encodes_others() {
        let line = written(OutputFormat::Jsonl, &event(br#"{"a":1}"#));
        let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(v["payload"], serde_json::json!({"a": 1}));
        assert_eq!(v["sequence"], 9);
        let line = written(OutputFormat::Jsonl, &event(b"\xff not json"));
        let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(STANDARD.decode(v["payload_base64"].as_str().unwrap()).unwrap(), b"\xff not json");
    }

    #[test]
    fn payload_and_raw_keep_the_bytes() {
        assert_eq!(written(OutputFormat::Payload, &event(b"x y")), b"x y\n");
        assert_eq!(written(OutputFormat::Raw, &event(b"xyz")), b"\0\0\0\x03xyz");
    }

    #[test]
    fn utc_formats_known_instants() {
        assert_eq!(utc(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(utc(1_000_000_000_123_456_789), "2001-09-09T01:46:40.123456Z");
        assert_eq!(utc(951_782_400_000_000_000), "2000-02-29T00:00:00.000000Z");
    }
}
