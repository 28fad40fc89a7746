//! A byte-level pre-check that rejects most non-matching payloads before they are parsed.
//!
//! A selective filter over a large backlog examines mostly events it rejects, and parsing is
//! what examining costs: even the streaming walk reads every byte of the document, because a
//! payload that is not JSON must match nothing. But a payload whose text holds no backslash
//! has no escapes, and then a JSON string value `s` can only appear in it spelled exactly as
//! `"s"`, and `true`, `false` and `null` only as those words. So a filter that needs
//! `kind == "buy"` cannot match a backslash-free payload that does not contain the bytes
//! `"buy"` anywhere, and one substring search (memchr's `memmem`, vectorised) rejects it.
//!
//! The check only ever rejects. A payload it lets through is matched by the parser as before,
//! so the filter's semantics, invalid JSON included, do not depend on it: it is a necessary
//! condition derived from the predicate tree, never a sufficient one.

use super::pred::{Operand, Pred};
use memchr::memmem::Finder;

/// Clauses kept at most: each one is a search over the payload, and dropping a clause only
/// weakens the condition.
const MAX_CLAUSES: usize = 4;
/// Alternatives per clause at most, for the same reason.
const MAX_ALTERNATIVES: usize = 8;

/// All of these clauses must hold; a clause holds when the payload contains any one of its
/// literals. No clause: every payload may match.
#[derive(Debug, Clone, Default)]
pub(super) struct Literals {
    clauses: Vec<Vec<Finder<'static>>>,
}

impl Literals {
    /// The byte strings a backslash-free payload must contain for `pred` to hold.
    pub(super) fn required_by(pred: &Pred) -> Literals {
        let mut clauses = required_clauses(pred);
        clauses.truncate(MAX_CLAUSES);
        let clauses = clauses
            .into_iter()
            .map(|clause| clause.iter().map(|literal| Finder::new(literal).into_owned()).collect())
            .collect();
        Literals { clauses }
    }

    /// Whether the filter may match `payload`; `false` only when it certainly does not.
    #[inline]
    pub(super) fn may_match(&self, payload: &[u8]) -> bool {
        self.clauses.is_empty()
            || memchr::memchr(b'\\', payload).is_some()
            || self.clauses.iter().all(|clause| clause.iter().any(|literal| literal.find(payload).is_some()))
    }

    /// The literals searched for, clause by clause.
    pub(super) fn clauses(&self) -> Vec<Vec<&[u8]>> {
        self.clauses.iter().map(|clause| clause.iter().map(Finder::needle).collect()).collect()
    }
}

impl PartialEq for Literals {
    fn eq(&self, other: &Literals) -> bool {
        self.clauses() == other.clauses()
    }
}

/// A conjunction of clauses, each a disjunction of literals, that `pred` implies. Recursion is
/// bounded by the filter depth limit.
fn required_clauses(pred: &Pred) -> Vec<Vec<Vec<u8>>> {
    match pred {
        Pred::Eq(_, operand) => literal(operand, true).into_iter().map(|l| vec![l]).collect(),
        Pred::In(_, operands) => {
            let alternatives: Option<Vec<Vec<u8>>> = operands.iter().map(|o| literal(o, true)).collect();
            alternatives.filter(|a| !a.is_empty() && a.len() <= MAX_ALTERNATIVES).into_iter().collect()
        }
        Pred::Prefix(_, prefix) => literal(&Operand::Str(prefix.clone()), false).into_iter().map(|l| vec![l]).collect(),
        Pred::And(children) => children.iter().flat_map(required_clauses).collect(),
        // Each branch that matches satisfies its own first clause, so one of those holds.
        Pred::Or(children) => {
            let mut alternatives = Vec::new();
            for child in children {
                let Some(first) = required_clauses(child).into_iter().next() else { return Vec::new() };
                alternatives.extend(first);
            }
            if alternatives.len() > MAX_ALTERNATIVES {
                return Vec::new();
            }
            vec![alternatives]
        }
        Pred::Not(_) | Pred::Ne(..) | Pred::Cmp(..) | Pred::Exists(..) => Vec::new(),
    }
}

/// How `operand` must be spelled in a payload without escapes: a string in quotes (the closing
/// one only when the whole string is meant, not a prefix), a word for `true`, `false` and
/// `null`. `None` for numbers (`1`, `1.0` and `1e0` are equal), arrays and objects, and for
/// strings that would need escaping, which such a payload cannot hold.
fn literal(operand: &Operand, whole: bool) -> Option<Vec<u8>> {
    match operand {
        Operand::Null => Some(b"null".to_vec()),
        Operand::Bool(value) => Some(if *value { b"true".to_vec() } else { b"false".to_vec() }),
        Operand::Str(text) if !text.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) => {
            let mut quoted = Vec::with_capacity(text.len() + 2);
            quoted.push(b'"');
            quoted.extend_from_slice(text.as_bytes());
            if whole {
                quoted.push(b'"');
            }
            Some(quoted)
        }
        Operand::Str(_) | Operand::Num(_) | Operand::Compound(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::Filter;
    use serde_json::json;

    fn clauses(filter: serde_json::Value) -> Vec<Vec<String>> {
        let filter = Filter::from_json(&filter).expect("valid filter");
        let text = |l: &&[u8]| String::from_utf8_lossy(l).into_owned();
        filter.literals.clauses().iter().map(|c| c.iter().map(text).collect()).collect()
    }

    #[test]
    fn equality_needs_the_quoted_string_or_the_word() {
        assert_eq!(clauses(json!({"path": "kind", "value": "buy"})), [[r#""buy""#]]);
        assert_eq!(clauses(json!({"path": "ok", "value": true})), [["true"]]);
        assert_eq!(clauses(json!({"$eq": {"path": "gone", "value": null}})), [["null"]]);
        assert_eq!(clauses(json!({"$prefix": {"path": "kind", "value": "cl"}})), [[r#""cl"#]]);
        assert_eq!(clauses(json!({"$in": {"path": "kind", "value": ["a", false]}})), [[r#""a""#, "false"]]);
    }

    #[test]
    fn numbers_compounds_and_strings_that_need_escapes_need_nothing() {
        for filter in [
            json!({"path": "n", "value": 1}),
            json!({"path": "a", "value": [1]}),
            json!({"path": "q", "value": "say \"hi\""}),
            json!({"path": "q", "value": "line\n"}),
            json!({"$in": {"path": "kind", "value": ["a", 1]}}),
            json!({"$not": {"path": "kind", "value": "buy"}}),
            json!({"$ne": {"path": "kind", "value": "buy"}}),
            json!({"$gt": {"path": "kind", "value": "buy"}}),
            json!({"$exists": {"path": "kind", "value": true}}),
        ] {
            assert!(clauses(filter.clone()).is_empty(), "{filter}");
        }
    }

    #[test]
    fn and_needs_every_branch_and_or_needs_one() {
        let both =
            json!({"$and": [{"path": "a", "value": "x"}, {"path": "n", "value": 1}, {"path": "b", "value": "y"}]});
        assert_eq!(clauses(both), [[r#""x""#], [r#""y""#]]);
        let either = json!({"$or": [{"path": "a", "value": "x"}, {"$and": [{"path": "b", "value": "y"}, {"path": "c", "value": "z"}]}]});
        assert_eq!(clauses(either), [[r#""x""#, r#""y""#]]);
        let open = json!({"$or": [{"path": "a", "value": "x"}, {"path": "n", "value": 1}]});
        assert!(clauses(open).is_empty(), "a branch that needs nothing makes the whole $or need nothing");
        let negated = Filter::negate(Filter::negate(Filter::eq("kind", "buy").unwrap()));
        assert_eq!(negated, Filter::eq("kind", "buy").unwrap());
    }

    #[test]
    fn only_payloads_without_the_literal_and_without_escapes_are_rejected_unparsed() {
        let filter = Filter::eq("kind", "buy").unwrap();
        let literals = &filter.literals;
        assert!(!literals.may_match(br#"{"kind":"view"}"#));
        assert!(!literals.may_match(br#"{"kind":"buyer"}"#));
        assert!(literals.may_match(br#"{"kind":"buy"}"#));
        assert!(literals.may_match(br#"{"other":"buy","kind":"view"}"#), "only a pre-check: the parser decides");
        // Escapes can spell the value without its literal bytes; the parser decides.
        assert!(literals.may_match(br#"{"kind":"b\u0075y"}"#));
        assert!(filter.matches(br#"{"kind":"b\u0075y"}"#));
        assert!(!filter.matches(br#"{"other":"buy","kind":"view"}"#));
        assert!(
            !filter.matches(br#"{"kind":"buy""#),
            "a payload with the literal that is not JSON still matches nothing"
        );
    }
}
