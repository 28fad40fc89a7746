//! Poll filters: MongoDB-style predicates over JSON event payloads.
//!
//! A [`Filter`] is parsed and validated once per poll request and then run
//! against every event the poll examines, often millions of them when a
//! consumer filters a large backlog. So the module is split in two halves with
//! very different budgets:
//!
//! * **Compile (once per request).** The filter JSON is checked completely —
//!   operators, operand shapes and types, paths, nesting depth — and every
//!   problem is reported as a [`FilterError`] naming the place inside the
//!   filter where it went wrong (`$and[2].$gt: "value" must be a number or
//!   string, got a boolean`). The result is a predicate tree whose leaves
//!   refer to numbered *slots*, plus a small trie of the distinct paths the
//!   filter reads, with one slot per path.
//!
//! * **Match (once per event, the hot path).** Building a `serde_json::Value`
//!   per event would allocate a node for every field of every payload, only to
//!   look at one or two of them. Instead [`Filter::matches`] makes a single
//!   streaming pass of `serde_json::Deserializer` over the payload, driven by a
//!   `DeserializeSeed` that walks the path trie alongside the document: object
//!   keys are compared to the trie's segments as borrowed `&str`s (no key is
//!   ever copied, escaped or not), values under keys the trie does not know are
//!   skipped with [`serde::de::IgnoredAny`] (which still checks their syntax),
//!   and only the values at the filter's paths are captured, as small scalars
//!   that borrow strings from the payload where they can. After the pass,
//!   `Deserializer::end` rejects trailing bytes, and the predicate tree is
//!   evaluated over the captured slots. Slots live on the stack for filters
//!   reading up to eight distinct paths, so a typical match does not allocate.
//!
//! * **Reject before parsing.** Most events a selective filter examines do
//!   not match. The strings and words a match needs (`"buy"` for
//!   `kind == "buy"`) are searched for in the raw bytes first, and a payload
//!   without them, and without escapes that could spell them differently, is
//!   rejected without being parsed (`filter/literals.rs`).
//!
//! The files follow these parts: `compile.rs` (validation and compilation),
//! `pred.rs` (the compiled predicate tree and its evaluation), `trie.rs` (the
//! paths a filter reads), `walk.rs` (the streaming pass over a payload) and
//! `literals.rs` (the pre-check); this file holds the public [`Filter`].
//!
//! The semantics are documented on [`Filter`], where users of the re-export
//! see them. The tests (`tests.rs`) pin them against a plain reference
//! evaluator over a fully parsed `serde_json::Value`, on generated documents
//! and filters.

mod compile;
mod literals;
mod pred;
#[cfg(test)]
mod tests;
mod trie;
mod walk;

use compile::{Compiler, Loc};
use literals::Literals;
use pred::{Captured, Pred};
use std::fmt;
use std::str::FromStr;
use trie::PathTrie;
use walk::Walk;

use serde::de::{DeserializeSeed, Deserializer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The deepest nesting of filter objects (`$and`, `$or`, `$not` and leaves)
/// that [`Filter::parse`] and [`Filter::from_json`] accept. A single leaf such
/// as `{"$eq": {..}}` has depth 1.
pub const MAX_FILTER_DEPTH: usize = 32;

/// The deepest nesting of arrays and objects accepted inside an operand
/// `value`: serde_json's own recursion limit, so such a value could not come
/// from JSON text anyway, and could never equal a payload value.
const MAX_VALUE_DEPTH: usize = 128;

/// Filters reading at most this many distinct paths match without allocating.
const INLINE_SLOTS: usize = 8;

/// The operators, in the order error messages list them.
const OPERATORS: &str = "$and, $or, $not, $eq, $ne, $gt, $gte, $lt, $lte, $in, $exists, $prefix";

/// A poll filter, parsed and validated once per request into a compiled form.
///
/// Build one from JSON with [`Filter::parse`] or [`Filter::from_json`] (or
/// through serde), or in Rust with the constructors ([`Filter::eq`],
/// [`Filter::all`], [`Filter::negate`], ...). Then call [`Filter::matches`]
/// on each event payload. The JSON it was built from stays available through
/// [`Filter::as_json`] and `Serialize`.
///
/// # Semantics
///
/// * Forms: `{"$and": [f, ..]}`, `{"$or": [f, ..]}`, `{"$not": f}`,
///   `{"$op": {"path": "a.b.0", "value": V}}` for `$op` one of `$eq $ne $gt
///   $gte $lt $lte $in $exists $prefix`, and the shorthand
///   `{"path": .., "value": V}` for `$eq`. An operator object has exactly one
///   key, an operand object exactly `path` and `value`.
/// * Paths are dot separated, segments non-empty. A segment of decimal digits
///   without a leading zero (`0`, `1`, `17`, not `01`) indexes an array when
///   the value there is an array; on an object every segment is a key.
/// * `$eq` is JSON equality where numbers compare by numeric value (`1 ==
///   1.0`); integers compare exactly, never through `f64`, and an integer is
///   compared with a float exactly too. Objects and arrays compare deeply.
///   A missing path is not equal to anything, not even `null` (unlike
///   MongoDB; use `{"$exists": {"path": .., "value": false}}` for "missing").
/// * `$ne` is exactly `not $eq`, so a missing path matches `$ne`, as in
///   MongoDB.
/// * `$gt $gte $lt $lte` compare numbers with numbers and strings with strings
///   (byte-lexicographically); any other pairing, or a missing path, is false.
///   Arrays are not searched element-wise.
/// * `$in` matches when the value `$eq`s any element of the operand array.
/// * `$exists true` matches when the path is present, `null` included.
/// * `$prefix` matches a string value that starts with the operand.
/// * A payload that is not valid JSON — invalid UTF-8, trailing bytes, empty —
///   matches **no** filter, not even `$not` or `$ne` forms.
///
/// # Limits
///
/// Two limits come from the streaming parser and are worth knowing: a payload
/// nested more than 128 levels deep *along a path the filter reads* is treated
/// as invalid (serde_json's recursion limit), while parts the filter does not
/// read are only checked syntactically (so a lone-surrogate escape such as
/// `"\ud800"` or an out-of-range number there is accepted, as the JSON grammar
/// allows). Duplicate object keys behave as with `serde_json::Value`: the last
/// one wins. Filters nest at most [`MAX_FILTER_DEPTH`] levels, and operand
/// values at most 128 levels of arrays and objects.
///
/// # Examples
///
/// ```
/// use purple_rain::Filter;
///
/// let filter = Filter::parse(r#"{"$and": [
///     {"$eq": {"path": "user.id", "value": 42}},
///     {"$prefix": {"path": "kind", "value": "cl"}}
/// ]}"#)?;
/// assert!(filter.matches(br#"{"user":{"id":42.0},"kind":"click"}"#));
/// assert!(!filter.matches(br#"{"user":{"id":43},"kind":"click"}"#));
/// assert!(!filter.matches(b"not json"));
/// # Ok::<(), purple_rain::filter::FilterError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    /// The JSON the filter was built from, kept for logs and serialisation.
    source: Value,
    /// The predicate tree; its leaves read slots filled by the trie walk.
    root: Pred,
    /// The distinct paths the predicates read.
    paths: PathTrie,
    /// What a payload must contain to match, checked before it is parsed.
    literals: Literals,
}

/// Why a filter was rejected.
///
/// `Display` gives the reason, starting with the place inside the filter
/// where it went wrong, for example
/// `$and[2].$gt: "value" must be a number or string, got a boolean`
/// (`filter` stands for the top level).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError {
    reason: String,
}

impl FilterError {
    /// The reason the filter was rejected (the same text as `Display`).
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// Always [`ErrorKind::InvalidFilter`](crate::error::ErrorKind::InvalidFilter).
    pub fn kind(&self) -> crate::error::ErrorKind {
        crate::error::ErrorKind::InvalidFilter
    }

    fn at(loc: &Loc<'_>, message: impl fmt::Display) -> FilterError {
        FilterError { reason: format!("{loc}: {message}") }
    }
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for FilterError {}

impl Filter {
    /// Validates a filter given as a JSON value and compiles it.
    ///
    /// # Errors
    ///
    /// A [`FilterError`] naming the place and the reason when `value` is not
    /// a valid filter: not an object, an empty `$and`/`$or`, an unknown
    /// operator, more than one operator key in one object, an operand that is
    /// not exactly `{"path", "value"}`, a value of the wrong type, an empty
    /// path or path segment, or nesting deeper than [`MAX_FILTER_DEPTH`].
    pub fn from_json(value: &Value) -> Result<Filter, FilterError> {
        Filter::compile(value.clone())
    }

    /// Parses a filter from JSON text, then validates and compiles it as
    /// [`Filter::from_json`] does.
    ///
    /// # Errors
    ///
    /// A [`FilterError`] when `text` is not JSON or not a valid filter.
    pub fn parse(text: &str) -> Result<Filter, FilterError> {
        // serde_json stops at 128 levels of nesting, so hostile text such as
        // a megabyte of `[` fails here cleanly, before our own depth check.
        let value: Value =
            serde_json::from_str(text).map_err(|e| FilterError { reason: format!("filter: not valid JSON: {e}") })?;
        Filter::compile(value)
    }

    /// Whether the event `payload` (JSON bytes) passes the filter.
    ///
    /// A payload that is not valid JSON (including invalid UTF-8, trailing
    /// bytes after the document, or no document at all) matches no filter.
    pub fn matches(&self, payload: &[u8]) -> bool {
        if !self.literals.may_match(payload) {
            return false;
        }
        // Checking UTF-8 up front lets the parser borrow strings without
        // re-validating them, and covers skipped strings too, which
        // serde_json's slice reader does not validate.
        let Ok(text) = std::str::from_utf8(payload) else {
            return false;
        };
        let slots = self.paths.slot_count;
        if slots <= INLINE_SLOTS {
            let mut captured: [Option<Captured<'_>>; INLINE_SLOTS] = Default::default();
            self.matches_str(text, &mut captured[..slots])
        } else {
            let mut captured = Vec::new();
            captured.resize_with(slots, || None);
            self.matches_str(text, &mut captured)
        }
    }

    /// The JSON this filter was built from, e.g. for logs.
    pub fn as_json(&self) -> &Value {
        &self.source
    }

    /// `{"$eq": {"path": path, "value": value}}`: the value at `path` equals
    /// `value`, numbers by numeric value.
    ///
    /// # Errors
    ///
    /// When `path` is empty or has an empty segment, or `value` nests arrays
    /// and objects more than 128 levels deep.
    ///
    /// # Examples
    ///
    /// ```
    /// use purple_rain::Filter;
    ///
    /// let big = Filter::eq("n", u64::MAX)?;
    /// assert!(big.matches(b"{\"n\": 18446744073709551615}"));
    /// assert!(!big.matches(b"{\"n\": 18446744073709551614}"));
    /// assert!(Filter::eq("tags.1", "b")?.matches(br#"{"tags": ["a", "b"]}"#));
    /// assert!(Filter::eq("a..b", 1).is_err());
    /// # Ok::<(), purple_rain::filter::FilterError>(())
    /// ```
    pub fn eq(path: &str, value: impl Into<Value>) -> Result<Filter, FilterError> {
        Filter::leaf("$eq", path, value.into())
    }

    /// `{"$ne": {..}}`: not [`Filter::eq`]; a missing path matches.
    ///
    /// # Errors
    ///
    /// As for [`Filter::eq`].
    pub fn ne(path: &str, value: impl Into<Value>) -> Result<Filter, FilterError> {
        Filter::leaf("$ne", path, value.into())
    }

    /// `{"$gt": {..}}`: the value at `path` is greater than `value`, a number
    /// or a string (compared with values of the same type only).
    ///
    /// # Errors
    ///
    /// When `path` is invalid or `value` is neither a number nor a string.
    pub fn gt(path: &str, value: impl Into<Value>) -> Result<Filter, FilterError> {
        Filter::leaf("$gt", path, value.into())
    }

    /// `{"$gte": {..}}`: like [`Filter::gt`], or equal.
    ///
    /// # Errors
    ///
    /// As for [`Filter::gt`].
    pub fn gte(path: &str, value: impl Into<Value>) -> Result<Filter, FilterError> {
        Filter::leaf("$gte", path, value.into())
    }

    /// `{"$lt": {..}}`: the value at `path` is less than `value`.
    ///
    /// # Errors
    ///
    /// As for [`Filter::gt`].
    pub fn lt(path: &str, value: impl Into<Value>) -> Result<Filter, FilterError> {
        Filter::leaf("$lt", path, value.into())
    }

    /// `{"$lte": {..}}`: like [`Filter::lt`], or equal.
    ///
    /// # Errors
    ///
    /// As for [`Filter::gt`].
    pub fn lte(path: &str, value: impl Into<Value>) -> Result<Filter, FilterError> {
        Filter::leaf("$lte", path, value.into())
    }

    /// `{"$prefix": {..}}`: the value at `path` is a string starting with
    /// `prefix`.
    ///
    /// # Errors
    ///
    /// When `path` is empty or has an empty segment.
    pub fn prefix(path: &str, prefix: &str) -> Result<Filter, FilterError> {
        Filter::leaf("$prefix", path, Value::from(prefix))
    }

    /// `{"$exists": {..}}`: `path` is present (a JSON `null` counts) when
    /// `exists` is true, absent when it is false.
    ///
    /// # Errors
    ///
    /// When `path` is empty or has an empty segment.
    pub fn exists(path: &str, exists: bool) -> Result<Filter, FilterError> {
        Filter::leaf("$exists", path, Value::Bool(exists))
    }

    /// `{"$in": {..}}`: the value at `path` equals one of `values`.
    ///
    /// # Errors
    ///
    /// As for [`Filter::eq`].
    pub fn in_values(path: &str, values: Vec<Value>) -> Result<Filter, FilterError> {
        Filter::leaf("$in", path, Value::Array(values))
    }

    /// `{"$and": [..]}`: every filter matches.
    ///
    /// # Errors
    ///
    /// When `filters` is empty (an empty `$and` would match everything) or
    /// the result would nest deeper than [`MAX_FILTER_DEPTH`].
    ///
    /// # Examples
    ///
    /// ```
    /// use purple_rain::Filter;
    ///
    /// let clicks_by_admins = Filter::all(vec![
    ///     Filter::eq("kind", "click")?,
    ///     Filter::any(vec![Filter::eq("role", "admin")?, Filter::gte("level", 9)?])?,
    /// ])?;
    /// assert!(clicks_by_admins.matches(br#"{"kind": "click", "level": 9.5}"#));
    /// assert!(!clicks_by_admins.matches(br#"{"kind": "click", "role": "user"}"#));
    /// assert!(Filter::all(Vec::new()).is_err());
    /// # Ok::<(), purple_rain::filter::FilterError>(())
    /// ```
    pub fn all(filters: Vec<Filter>) -> Result<Filter, FilterError> {
        Filter::combine("$and", filters)
    }

    /// `{"$or": [..]}`: at least one filter matches.
    ///
    /// # Errors
    ///
    /// When `filters` is empty or the result would nest deeper than
    /// [`MAX_FILTER_DEPTH`].
    pub fn any(filters: Vec<Filter>) -> Result<Filter, FilterError> {
        Filter::combine("$or", filters)
    }

    /// `{"$not": filter}`: matches valid JSON payloads that `filter` does not
    /// match (a payload that is not JSON still matches nothing).
    ///
    /// Negating a `{"$not": f}` gives back `f` itself, JSON included, so
    /// repeated negation never deepens a filter. A filter that is already
    /// [`MAX_FILTER_DEPTH`] deep and not a `$not` comes back one level deeper
    /// than the limit: it matches correctly, but [`Filter::from_json`] would
    /// reject its JSON.
    ///
    /// # Examples
    ///
    /// ```
    /// use purple_rain::Filter;
    ///
    /// let not_deleted = Filter::negate(Filter::exists("deleted_at", true)?);
    /// assert!(not_deleted.matches(br#"{"id": 1}"#));
    /// assert!(!not_deleted.matches(br#"{"id": 1, "deleted_at": null}"#));
    /// assert!(!not_deleted.matches(b"{\"id\": 1"));
    /// assert_eq!(Filter::negate(not_deleted), Filter::exists("deleted_at", true)?);
    /// # Ok::<(), purple_rain::filter::FilterError>(())
    /// ```
    pub fn negate(filter: Filter) -> Filter {
        let Filter { source, root, paths, .. } = filter;
        match (root, source) {
            (Pred::Not(inner), Value::Object(mut object)) => match object.remove("$not") {
                Some(inner_source) => Filter::assemble(inner_source, *inner, paths),
                // Unreachable: a `Not` root is only ever compiled from a
                // `$not` object. Rebuild it unchanged and wrap it anyway.
                None => Filter::wrap_not(Value::Object(object), Pred::Not(inner), paths),
            },
            (root, source) => Filter::wrap_not(source, root, paths),
        }
    }

    fn wrap_not(source: Value, root: Pred, paths: PathTrie) -> Filter {
        let mut object = Map::new();
        object.insert("$not".to_owned(), source);
        Filter::assemble(Value::Object(object), Pred::Not(Box::new(root)), paths)
    }

    /// A filter of compiled parts; the pre-check's literals are derived from `root` here, so
    /// they always belong to the predicates they stand for.
    fn assemble(source: Value, root: Pred, paths: PathTrie) -> Filter {
        let literals = Literals::required_by(&root);
        Filter { source, root, paths, literals }
    }

    fn leaf(op: &str, path: &str, value: Value) -> Result<Filter, FilterError> {
        let mut operand = Map::new();
        operand.insert("path".to_owned(), Value::from(path));
        operand.insert("value".to_owned(), value);
        let mut object = Map::new();
        object.insert(op.to_owned(), Value::Object(operand));
        Filter::compile(Value::Object(object))
    }

    fn combine(op: &str, filters: Vec<Filter>) -> Result<Filter, FilterError> {
        // Recompiling from JSON keeps one code path for validation (empty
        // lists, depth) and for merging the children's paths into one trie.
        let children = filters.into_iter().map(|f| f.source).collect();
        let mut object = Map::new();
        object.insert(op.to_owned(), Value::Array(children));
        Filter::compile(Value::Object(object))
    }

    fn compile(source: Value) -> Result<Filter, FilterError> {
        let mut compiler = Compiler::default();
        let mut root = compiler.filter(&source, &Loc::Root, 1)?;
        let (paths, slot_of_path) = PathTrie::build(&compiler.paths);
        root.assign_slots(&slot_of_path);
        Ok(Filter::assemble(source, root, paths))
    }

    fn matches_str<'de>(&self, text: &'de str, captured: &mut [Option<Captured<'de>>]) -> bool {
        let mut de = serde_json::Deserializer::from_str(text);
        let walk = Walk { trie: &self.paths, node: 0, captured };
        if walk.deserialize(&mut de).is_err() || de.end().is_err() {
            return false;
        }
        self.root.eval(captured)
    }
}

impl FromStr for Filter {
    type Err = FilterError;

    fn from_str(text: &str) -> Result<Filter, FilterError> {
        Filter::parse(text)
    }
}

impl Serialize for Filter {
    /// Writes the JSON the filter was built from.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.source.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Filter {
    /// Reads any JSON value and validates it as [`Filter::from_json`] does;
    /// a [`FilterError`] becomes the deserializer's custom error.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Filter, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Filter::compile(value).map_err(serde::de::Error::custom)
    }
}
