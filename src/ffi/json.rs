//! JSON error positions for messages: the byte offset of a syntax error, and the key a typed
//! parse error (wrong type, unknown variant) points at, so a message says `batch.max_events`
//! instead of only "line 1 column 26".

use super::error::{fail, pr_status};
use crate::error::JsonError;

/// Checks that `text` is well-formed JSON; on a syntax error records `PR_ERR_INVALID_JSON` with
/// the byte offset, line and column. Shape errors (unknown keys, wrong types) are left to the
/// typed parser, which reports them with their own code.
pub(crate) fn check_json_syntax(text: &[u8], what: &str) -> Result<(), pr_status> {
    match serde_json::from_slice::<serde::de::IgnoredAny>(text) {
        Ok(_) => Ok(()),
        Err(e) => Err(json_error(text, &e, what)),
    }
}

/// Records a serde_json error as `PR_ERR_INVALID_JSON` with its byte offset.
#[cold]
pub(crate) fn json_error(text: &[u8], e: &serde_json::Error, what: &str) -> pr_status {
    let offset = byte_offset(text, e.line(), e.column());
    fail(
        pr_status::PR_ERR_INVALID_JSON,
        format!("{what} is not valid JSON at byte {offset} (line {}, column {}): {e}", e.line(), e.column()),
    )
}

/// Byte offset of a 1-based (line, column) position as serde_json counts them (columns in bytes).
fn byte_offset(text: &[u8], line: usize, column: usize) -> usize {
    let mut offset = 0;
    for (i, segment) in text.split(|&b| b == b'\n').enumerate() {
        if i + 1 == line {
            return (offset + column.saturating_sub(1)).min(text.len());
        }
        offset += segment.len() + 1;
    }
    text.len()
}

/// Appends the key path and byte offset of the place `json` points at in `text` to `message`,
/// e.g. `... expected usize at line 1 column 26 (key `batch.max_events`, byte 25)`. An error
/// without a position leaves the message unchanged.
pub(crate) fn locate(message: String, text: &str, json: &JsonError) -> String {
    if json.line() == 0 {
        return message;
    }
    let offset = byte_offset(text.as_bytes(), json.line(), json.column());
    if let Some(path) = json.path() {
        // The key path the parser tracked (the message names it too; this keeps the C
        // message's shape, key and byte together).
        return format!("{message} (key `{path}`, byte {offset})");
    }
    match key_at(text.as_bytes(), offset) {
        Some(path) if !path.is_empty() => format!("{message} (key `{path}`, byte {offset})"),
        _ => format!("{message} (byte {offset})"),
    }
}

/// The dotted path (`batch.max_events`, `shards.1`) of the innermost value whose text contains
/// byte `offset` (serde points at a value's last byte). `text` must be well-formed JSON.
fn key_at(text: &[u8], offset: usize) -> Option<String> {
    let mut locator = Locator { text, target: offset, best: None };
    locator.value(0, String::new(), 0);
    locator.best
}

struct Locator<'a> {
    text: &'a [u8],
    target: usize,
    best: Option<String>,
}

impl Locator<'_> {
    fn skip_ws(&self, mut i: usize) -> usize {
        while i < self.text.len() && self.text[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    }

    /// Parses the value at `i` (after whitespace) as `path`; returns the index just past it.
    fn value(&mut self, i: usize, path: String, depth: usize) -> usize {
        let start = self.skip_ws(i);
        // serde_json refuses nesting deeper than 128, so well-formed input never gets here.
        if depth > 256 || start >= self.text.len() {
            return self.text.len();
        }
        let end = match self.text[start] {
            b'{' => self.container(start, &path, depth, b'}'),
            b'[' => self.container(start, &path, depth, b']'),
            b'"' => self.string_end(start),
            _ => {
                let mut j = start;
                while j < self.text.len() && !matches!(self.text[j], b',' | b'}' | b']') {
                    j += 1;
                }
                j
            }
        };
        let deeper = match &self.best {
            Some(best) => best.len() < path.len(),
            None => true,
        };
        if deeper && (start..end).contains(&self.target) {
            self.best = Some(path);
        }
        end
    }

    /// An object (keys name children) or an array (indices do), from its opening byte.
    fn container(&mut self, open: usize, path: &str, depth: usize, close: u8) -> usize {
        let mut i = open + 1;
        let mut index = 0usize;
        loop {
            i = self.skip_ws(i);
            if i >= self.text.len() {
                return i;
            }
            if self.text[i] == close {
                return i + 1;
            }
            if self.text[i] == b',' {
                i += 1;
                continue;
            }
            let name = if close == b'}' {
                let key_end = self.string_end(i);
                let key = String::from_utf8_lossy(&self.text[(i + 1).min(key_end)..key_end.saturating_sub(1)]);
                let name = key.into_owned();
                i = self.skip_ws(key_end);
                if i < self.text.len() && self.text[i] == b':' {
                    i += 1;
                }
                name
            } else {
                index += 1;
                (index - 1).to_string()
            };
            let child = if path.is_empty() { name } else { format!("{path}.{name}") };
            i = self.value(i, child, depth + 1);
        }
    }

    /// Index just past the string starting at the quote `start`.
    fn string_end(&self, start: usize) -> usize {
        let mut j = start + 1;
        while j < self.text.len() {
            match self.text[j] {
                b'\\' => j += 2,
                b'"' => return j + 1,
                _ => j += 1,
            }
        }
        self.text.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_offset_counts_lines() {
        assert_eq!(byte_offset(b"{\n  \"a\": x}", 2, 8), 9);
        assert_eq!(byte_offset(b"{", 1, 1), 0);
    }

    #[test]
    fn key_at_finds_the_innermost_value() {
        let text = br#"{"shards": 4, "batch": {"max_events": "x", "retry": {"max_attempts": 0}}, "l": [1, "two"]}"#;
        let at = |needle: &str| {
            let i = text.windows(needle.len()).position(|w| w == needle.as_bytes()).unwrap();
            key_at(text, i + needle.len() - 1)
        };
        assert_eq!(at("4").as_deref(), Some("shards"));
        assert_eq!(at("\"x\"").as_deref(), Some("batch.max_events"));
        assert_eq!(at("0}").as_deref().map(|p| p.starts_with("batch.retry")), Some(true));
        assert_eq!(at("\"two\"").as_deref(), Some("l.1"));
    }

    #[test]
    fn locate_appends_key_and_byte() {
        let text = r#"{"batch":{"max_events":"x"}}"#;
        let e = JsonError::from(serde_json::from_str::<crate::config::EventBusConfig>(text).unwrap_err());
        let message = locate(e.to_string(), text, &e);
        assert!(message.contains("(key `batch.max_events`, byte 25)"), "{message}");
        let unplaced = JsonError::from(serde_json::from_value::<u8>(serde_json::json!("x")).unwrap_err());
        assert_eq!(locate("no position".into(), text, &unplaced), "no position");
    }
}
