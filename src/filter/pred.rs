//! The compiled form of a filter: a predicate tree whose leaves read numbered slots, and its
//! evaluation over the values one payload's walk captured.

use serde_json::{Number, Value};
use std::borrow::Cow;
use std::cmp::Ordering;

/// A node of the compiled predicate tree. Leaves hold a slot: an index into
/// the values captured for one payload (a path id until `assign_slots`).
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Pred {
    And(Vec<Pred>),
    Or(Vec<Pred>),
    Not(Box<Pred>),
    Eq(usize, Operand),
    Ne(usize, Operand),
    Cmp(usize, CmpOp, Operand),
    In(usize, Vec<Operand>),
    Exists(usize, bool),
    Prefix(usize, String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CmpOp {
    Gt,
    Gte,
    Lt,
    Lte,
}

impl CmpOp {
    pub(super) fn holds(self, ordering: Ordering) -> bool {
        match self {
            CmpOp::Gt => ordering == Ordering::Greater,
            CmpOp::Gte => ordering != Ordering::Less,
            CmpOp::Lt => ordering == Ordering::Less,
            CmpOp::Lte => ordering != Ordering::Greater,
        }
    }
}

impl Pred {
    /// Replaces path ids by trie slots. Recursion is bounded by
    /// `MAX_FILTER_DEPTH` (+1 after `negate`).
    pub(super) fn assign_slots(&mut self, slot_of_path: &[usize]) {
        let remap = |id: &mut usize| {
            if let Some(&slot) = slot_of_path.get(*id) {
                *id = slot;
            }
        };
        match self {
            Pred::And(children) | Pred::Or(children) => {
                for child in children {
                    child.assign_slots(slot_of_path);
                }
            }
            Pred::Not(child) => child.assign_slots(slot_of_path),
            Pred::Eq(id, _)
            | Pred::Ne(id, _)
            | Pred::Cmp(id, _, _)
            | Pred::In(id, _)
            | Pred::Exists(id, _)
            | Pred::Prefix(id, _) => remap(id),
        }
    }

    pub(super) fn eval(&self, captured: &[Option<Captured<'_>>]) -> bool {
        let at = |slot: &usize| captured.get(*slot).and_then(Option::as_ref);
        match self {
            Pred::And(children) => children.iter().all(|c| c.eval(captured)),
            Pred::Or(children) => children.iter().any(|c| c.eval(captured)),
            Pred::Not(child) => !child.eval(captured),
            Pred::Eq(slot, operand) => at(slot).is_some_and(|v| v.equals(operand)),
            Pred::Ne(slot, operand) => !at(slot).is_some_and(|v| v.equals(operand)),
            Pred::Cmp(slot, op, operand) => {
                at(slot).and_then(|v| v.compare(operand)).is_some_and(|ordering| op.holds(ordering))
            }
            Pred::In(slot, operands) => at(slot).is_some_and(|v| operands.iter().any(|o| v.equals(o))),
            Pred::Exists(slot, wanted) => at(slot).is_some() == *wanted,
            Pred::Prefix(slot, prefix) => {
                matches!(at(slot), Some(Captured::Str(s)) if s.starts_with(prefix.as_str()))
            }
        }
    }
}

/// A JSON number, integers kept exact (every `i64` and `u64` fits an `i128`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Num {
    Int(i128),
    Float(f64),
}

impl Num {
    pub(super) fn of(number: &Number) -> Num {
        if let Some(i) = number.as_i64() {
            Num::Int(i128::from(i))
        } else if let Some(u) = number.as_u64() {
            Num::Int(i128::from(u))
        } else {
            // Without serde_json's arbitrary_precision every other number is
            // an f64; NaN compares unequal to everything.
            Num::Float(number.as_f64().unwrap_or(f64::NAN))
        }
    }

    pub(super) fn compare(self, other: Num) -> Option<Ordering> {
        match (self, other) {
            (Num::Int(a), Num::Int(b)) => Some(a.cmp(&b)),
            (Num::Float(a), Num::Float(b)) => a.partial_cmp(&b),
            (Num::Float(a), Num::Int(b)) => compare_float_int(a, b),
            (Num::Int(a), Num::Float(b)) => compare_float_int(b, a).map(Ordering::reverse),
        }
    }
}

/// Compares a float with an integer in `i64::MIN ..= u64::MAX` exactly,
/// without rounding the integer to `f64`.
pub(super) fn compare_float_int(float: f64, int: i128) -> Option<Ordering> {
    const TWO_POW_64: f64 = 18_446_744_073_709_551_616.0;
    const MINUS_TWO_POW_63: f64 = -9_223_372_036_854_775_808.0;
    if float.is_nan() {
        None
    } else if float >= TWO_POW_64 {
        Some(Ordering::Greater)
    } else if float < MINUS_TWO_POW_63 {
        Some(Ordering::Less)
    } else {
        let whole = float.trunc();
        // Exact: `whole` is an integer with magnitude below 2^64.
        match (whole as i128).cmp(&int) {
            Ordering::Equal => float.partial_cmp(&whole),
            ordering => Some(ordering),
        }
    }
}

/// An operand of `$eq $ne $in` (any JSON) or `$gt..$lte` (number or string).
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Operand {
    Null,
    Bool(bool),
    Num(Num),
    Str(String),
    /// An array or object; compared deeply.
    Compound(Value),
}

impl Operand {
    pub(super) fn of(value: &Value) -> Operand {
        match value {
            Value::Null => Operand::Null,
            Value::Bool(b) => Operand::Bool(*b),
            Value::Number(n) => Operand::Num(Num::of(n)),
            Value::String(s) => Operand::Str(s.clone()),
            Value::Array(_) | Value::Object(_) => Operand::Compound(value.clone()),
        }
    }
}

/// The value found at one of the filter's paths in one payload.
#[derive(Debug)]
pub(super) enum Captured<'de> {
    Null,
    Bool(bool),
    Num(Num),
    /// Borrowed from the payload unless it held escapes.
    Str(Cow<'de, str>),
    /// An array or object, present but not kept: no predicate on this path
    /// compares it with an array or object.
    Opaque,
    /// An array or object kept whole, for `$eq`/`$ne`/`$in` with an array or
    /// object operand.
    Compound(Box<Value>),
}

impl Captured<'_> {
    pub(super) fn of_value(value: &Value, keep_compound: bool) -> Captured<'static> {
        match value {
            Value::Null => Captured::Null,
            Value::Bool(b) => Captured::Bool(*b),
            Value::Number(n) => Captured::Num(Num::of(n)),
            Value::String(s) => Captured::Str(Cow::Owned(s.clone())),
            Value::Array(_) | Value::Object(_) if keep_compound => Captured::Compound(Box::new(value.clone())),
            Value::Array(_) | Value::Object(_) => Captured::Opaque,
        }
    }

    pub(super) fn equals(&self, operand: &Operand) -> bool {
        match (self, operand) {
            (Captured::Null, Operand::Null) => true,
            (Captured::Bool(a), Operand::Bool(b)) => a == b,
            (Captured::Num(a), Operand::Num(b)) => a.compare(*b) == Some(Ordering::Equal),
            (Captured::Str(a), Operand::Str(b)) => **a == **b,
            (Captured::Compound(a), Operand::Compound(b)) => json_eq(a, b),
            _ => false,
        }
    }

    pub(super) fn compare(&self, operand: &Operand) -> Option<Ordering> {
        match (self, operand) {
            (Captured::Num(a), Operand::Num(b)) => a.compare(*b),
            (Captured::Str(a), Operand::Str(b)) => Some(a.as_bytes().cmp(b.as_bytes())),
            _ => None,
        }
    }
}

/// JSON equality with numbers compared by value. Recursion is bounded by the
/// payload side, which serde_json parsed with its 128-level limit.
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => Num::of(x).compare(Num::of(y)) == Some(Ordering::Equal),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_eq(x, y)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(key, x)| y.get(key).is_some_and(|y| json_eq(x, y)))
        }
        _ => a == b,
    }
}
