//! Compiling, once per request: the filter JSON is checked completely and turned into a
//! predicate tree over path ids, every problem reported as a [`FilterError`] that names the
//! place inside the filter.

use super::pred::{CmpOp, Operand, Pred};
use super::{FilterError, MAX_FILTER_DEPTH, MAX_VALUE_DEPTH, OPERATORS};
use serde_json::Value;
use std::collections::HashMap;
use std::fmt;

/// Where in the filter JSON the compiler is, for error messages.
#[derive(Clone, Copy)]
pub(super) enum Loc<'a> {
    Root,
    Key(&'a Loc<'a>, &'a str),
    Index(&'a Loc<'a>, usize),
}

impl fmt::Display for Loc<'_> {
    /// `filter` at the top, else e.g. `$and[2].$gt` (keys are operator names,
    /// never payload-controlled text). Recursion is bounded by the filter
    /// depth limit.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Loc::Root => f.write_str("filter"),
            Loc::Key(Loc::Root, key) => f.write_str(key),
            Loc::Key(parent, key) => write!(f, "{parent}.{key}"),
            Loc::Index(parent, index) => write!(f, "{parent}[{index}]"),
        }
    }
}

#[derive(Default)]
pub(super) struct Compiler {
    /// Path id of each distinct path.
    ids: HashMap<String, usize>,
    /// The distinct paths by id, with whether an array or object at the path
    /// must be kept whole.
    pub(super) paths: Vec<(String, bool)>,
}

impl Compiler {
    fn path_id(&mut self, path: &str, keep_compound: bool) -> usize {
        let id = match self.ids.get(path) {
            Some(&id) => id,
            None => {
                let id = self.paths.len();
                self.ids.insert(path.to_owned(), id);
                self.paths.push((path.to_owned(), false));
                id
            }
        };
        if let Some(entry) = self.paths.get_mut(id) {
            entry.1 |= keep_compound;
        }
        id
    }

    /// Compiles the filter object `value` found at `loc`, `depth` levels
    /// deep. The depth is checked before recursing, so hostile input cannot
    /// exhaust the stack.
    pub(super) fn filter(&mut self, value: &Value, loc: &Loc<'_>, depth: usize) -> Result<Pred, FilterError> {
        if depth > MAX_FILTER_DEPTH {
            return Err(FilterError::at(loc, format_args!("filter nesting is deeper than {MAX_FILTER_DEPTH} levels")));
        }
        let Value::Object(object) = value else {
            return Err(FilterError::at(loc, format_args!("a filter must be a JSON object, got {}", kind(value))));
        };
        let mut entries = object.iter();
        match (entries.next(), entries.next()) {
            (None, _) => Err(FilterError::at(
                loc,
                "a filter object must not be empty: expected an operator such as \"$eq\", or \"path\" and \"value\"",
            )),
            (Some((op, operand)), None) if op.starts_with('$') => {
                let here = Loc::Key(loc, op);
                match op.as_str() {
                    "$and" | "$or" => {
                        let children = self.filters(operand, &here, depth)?;
                        Ok(if op == "$and" { Pred::And(children) } else { Pred::Or(children) })
                    }
                    "$not" => Ok(Pred::Not(Box::new(self.filter(operand, &here, depth + 1)?))),
                    "$eq" | "$ne" | "$gt" | "$gte" | "$lt" | "$lte" | "$in" | "$exists" | "$prefix" => {
                        self.leaf(op, operand, &here)
                    }
                    _ => Err(FilterError::at(
                        loc,
                        format_args!("unknown operator {} (expected one of {OPERATORS})", quote(op)),
                    )),
                }
            }
            _ if object.keys().any(|k| k.starts_with('$')) => {
                let listed: Vec<String> = object.keys().take(4).map(|k| quote(k)).collect();
                let more = if object.len() > 4 { ", ..." } else { "" };
                Err(FilterError::at(
                    loc,
                    format_args!(
                        "a filter object must have exactly one operator key, got {}: {}{more}",
                        object.len(),
                        listed.join(", ")
                    ),
                ))
            }
            // The shorthand `{"path": .., "value": ..}` for `$eq`.
            _ => self.leaf("$eq", value, loc),
        }
    }

    /// The operand of `$and`/`$or` at `loc`: a non-empty array of filters.
    fn filters(&mut self, value: &Value, loc: &Loc<'_>, depth: usize) -> Result<Vec<Pred>, FilterError> {
        let Value::Array(items) = value else {
            return Err(FilterError::at(
                loc,
                format_args!("must be a non-empty array of filters, got {}", kind(value)),
            ));
        };
        if items.is_empty() {
            return Err(FilterError::at(loc, "must be a non-empty array of filters, got an empty array"));
        }
        items.iter().enumerate().map(|(i, item)| self.filter(item, &Loc::Index(loc, i), depth + 1)).collect()
    }

    /// A comparison operator `op` whose operand object is `operand`.
    fn leaf(&mut self, op: &str, operand: &Value, loc: &Loc<'_>) -> Result<Pred, FilterError> {
        let (path, value) = path_and_value(operand, loc)?;
        let wrong_type =
            |expected: &str| FilterError::at(loc, format_args!("\"value\" must be {expected}, got {}", kind(value)));
        Ok(match op {
            "$eq" | "$ne" => {
                check_value_depth(value, loc)?;
                let id = self.path_id(path, is_compound(value));
                let operand = Operand::of(value);
                if op == "$eq" {
                    Pred::Eq(id, operand)
                } else {
                    Pred::Ne(id, operand)
                }
            }
            "$gt" | "$gte" | "$lt" | "$lte" => {
                if !(value.is_number() || value.is_string()) {
                    return Err(wrong_type("a number or string"));
                }
                let cmp = match op {
                    "$gt" => CmpOp::Gt,
                    "$gte" => CmpOp::Gte,
                    "$lt" => CmpOp::Lt,
                    _ => CmpOp::Lte,
                };
                Pred::Cmp(self.path_id(path, false), cmp, Operand::of(value))
            }
            "$in" => {
                let Value::Array(items) = value else {
                    return Err(wrong_type("an array"));
                };
                check_value_depth(value, loc)?;
                let id = self.path_id(path, items.iter().any(is_compound));
                Pred::In(id, items.iter().map(Operand::of).collect())
            }
            "$exists" => {
                let Value::Bool(wanted) = value else {
                    return Err(wrong_type("a boolean"));
                };
                Pred::Exists(self.path_id(path, false), *wanted)
            }
            _ => {
                let Value::String(prefix) = value else {
                    return Err(wrong_type("a string"));
                };
                Pred::Prefix(self.path_id(path, false), prefix.clone())
            }
        })
    }
}

/// Checks an operand object (exactly `path` and `value`) and its path.
fn path_and_value<'v>(operand: &'v Value, loc: &Loc<'_>) -> Result<(&'v str, &'v Value), FilterError> {
    let Value::Object(object) = operand else {
        return Err(FilterError::at(
            loc,
            format_args!("the operand must be an object with \"path\" and \"value\", got {}", kind(operand)),
        ));
    };
    if let Some(key) = object.keys().find(|k| *k != "path" && *k != "value") {
        return Err(FilterError::at(
            loc,
            format_args!(
                "unknown key {}: expected an operator such as \"$eq\", or exactly \"path\" and \"value\"",
                quote(key)
            ),
        ));
    }
    let path = match object.get("path") {
        Some(Value::String(path)) => path,
        Some(other) => {
            return Err(FilterError::at(loc, format_args!("\"path\" must be a string, got {}", kind(other))))
        }
        None => return Err(FilterError::at(loc, "missing \"path\"")),
    };
    if path.is_empty() {
        return Err(FilterError::at(loc, "\"path\" must not be empty"));
    }
    if path.split('.').any(str::is_empty) {
        return Err(FilterError::at(loc, format_args!("\"path\" {} has an empty segment", quote(path))));
    }
    let value = object.get("value").ok_or_else(|| FilterError::at(loc, "missing \"value\""))?;
    Ok((path, value))
}

/// Rejects operand values nested deeper than `MAX_VALUE_DEPTH`, without
/// recursing, so that comparing, cloning and dropping them stays shallow.
fn check_value_depth(value: &Value, loc: &Loc<'_>) -> Result<(), FilterError> {
    let mut stack = vec![(value, 0usize)];
    while let Some((value, depth)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match value {
            Value::Array(items) => Box::new(items.iter()),
            Value::Object(object) => Box::new(object.values()),
            _ => continue,
        };
        if depth >= MAX_VALUE_DEPTH {
            return Err(FilterError::at(
                loc,
                format_args!("\"value\" nests arrays and objects more than {MAX_VALUE_DEPTH} levels deep"),
            ));
        }
        stack.extend(children.map(|child| (child, depth + 1)));
    }
    Ok(())
}

fn is_compound(value: &Value) -> bool {
    matches!(value, Value::Array(_) | Value::Object(_))
}

pub(super) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `text` quoted for an error message, cut to a sane length.
fn quote(text: &str) -> String {
    const MAX: usize = 64;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{:?}...", &text[..cut]),
        None => format!("{text:?}"),
    }
}
