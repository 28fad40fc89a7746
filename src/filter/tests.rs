//! The filter's semantics, pinned operator by operator and against a reference evaluator.

use super::pred::compare_float_int;
use super::*;
use proptest::prelude::*;
use serde_json::{json, Number};
use std::cmp::Ordering;

const EVENT: &[u8] = br#"{"user":{"id":42,"name":"user-42","score":7.5},"kind":"click","ts":1700000000000,"tags":["a","b"],"nothing":null,"ok":true}"#;

fn filter(json: Value) -> Filter {
    match Filter::from_json(&json) {
        Ok(filter) => filter,
        Err(e) => panic!("{json} should be a valid filter: {e}"),
    }
}

fn op(op: &str, path: &str, value: Value) -> Filter {
    filter(json!({ op: { "path": path, "value": value } }))
}

fn error(json: Value) -> String {
    match Filter::from_json(&json) {
        Ok(_) => panic!("{json} should be rejected"),
        Err(e) => e.to_string(),
    }
}

fn assert_error(json: Value, expected: &str) {
    let message = error(json.clone());
    assert!(message.contains(expected), "error for {json}: {message:?} does not contain {expected:?}");
}

// ---- operators -------------------------------------------------------

#[test]
fn eq_matches_equal_values_only() {
    assert!(op("$eq", "user.id", json!(42)).matches(EVENT));
    assert!(!op("$eq", "user.id", json!(43)).matches(EVENT));
    assert!(op("$eq", "kind", json!("click")).matches(EVENT));
    assert!(!op("$eq", "kind", json!("clic")).matches(EVENT));
    assert!(op("$eq", "ok", json!(true)).matches(EVENT));
    assert!(!op("$eq", "ok", json!(false)).matches(EVENT));
    assert!(op("$eq", "nothing", json!(null)).matches(EVENT));
    assert!(!op("$eq", "user.id", json!(null)).matches(EVENT));
}

#[test]
fn shorthand_is_eq() {
    let short = filter(json!({"path": "user.id", "value": 42}));
    assert!(short.matches(EVENT));
    assert!(!filter(json!({"value": 41, "path": "user.id"})).matches(EVENT));
}

#[test]
fn eq_null_does_not_match_a_missing_path() {
    assert!(!op("$eq", "absent", json!(null)).matches(EVENT));
}

#[test]
fn ne_is_not_eq_and_matches_missing_paths() {
    assert!(op("$ne", "user.id", json!(43)).matches(EVENT));
    assert!(!op("$ne", "user.id", json!(42)).matches(EVENT));
    assert!(!op("$ne", "user.id", json!(42.0)).matches(EVENT));
    assert!(op("$ne", "absent", json!(1)).matches(EVENT));
    assert!(op("$ne", "user.id.deeper", json!(1)).matches(EVENT));
}

#[test]
fn ordering_operators_on_numbers() {
    let cases = [
        ("$gt", 41, true),
        ("$gt", 42, false),
        ("$gte", 42, true),
        ("$gte", 43, false),
        ("$lt", 43, true),
        ("$lt", 42, false),
        ("$lte", 42, true),
        ("$lte", 41, false),
    ];
    for (name, bound, expected) in cases {
        assert_eq!(op(name, "user.id", json!(bound)).matches(EVENT), expected, "{name} {bound}");
    }
    assert!(op("$gt", "user.score", json!(7)).matches(EVENT));
    assert!(op("$lt", "user.score", json!(7.6)).matches(EVENT));
    assert!(!op("$lt", "user.score", json!(7.5)).matches(EVENT));
    assert!(op("$gt", "user.id", json!(41.999)).matches(EVENT));
    assert!(op("$lt", "user.id", json!(42.001)).matches(EVENT));
    assert!(op("$gt", "ts", json!(-1)).matches(EVENT));
}

#[test]
fn ordering_operators_on_strings_are_bytewise() {
    assert!(op("$gt", "kind", json!("click")).matches(br#"{"kind":"clicks"}"#));
    assert!(op("$gt", "kind", json!("Z")).matches(br#"{"kind":"a"}"#));
    assert!(!op("$lt", "kind", json!("Z")).matches(br#"{"kind":"a"}"#));
    assert!(op("$gte", "kind", json!("click")).matches(EVENT));
    assert!(op("$lte", "kind", json!("click")).matches(EVENT));
    assert!(!op("$lt", "kind", json!("click")).matches(EVENT));
    // U+00E9 (0xC3 0xA9) sorts after every ASCII byte.
    assert!(op("$gt", "kind", json!("z")).matches("{\"kind\":\"\u{e9}\"}".as_bytes()));
}

#[test]
fn mixed_type_comparisons_are_false() {
    for name in ["$gt", "$gte", "$lt", "$lte"] {
        assert!(!op(name, "user.id", json!("42")).matches(EVENT), "{name}");
        assert!(!op(name, "kind", json!(1)).matches(EVENT), "{name}");
        assert!(!op(name, "ok", json!(0)).matches(EVENT), "{name}");
        assert!(!op(name, "nothing", json!(0)).matches(EVENT), "{name}");
        assert!(!op(name, "tags", json!("a")).matches(EVENT), "{name}");
        assert!(!op(name, "absent", json!(0)).matches(EVENT), "{name}");
    }
    assert!(!op("$eq", "user.id", json!("42")).matches(EVENT));
    assert!(!op("$eq", "ok", json!(1)).matches(EVENT));
    assert!(!op("$eq", "nothing", json!(false)).matches(EVENT));
}

#[test]
fn in_matches_any_element() {
    assert!(op("$in", "user.id", json!([1, 42.0, "x"])).matches(EVENT));
    assert!(op("$in", "kind", json!(["view", "click"])).matches(EVENT));
    assert!(!op("$in", "kind", json!(["view", "Click"])).matches(EVENT));
    assert!(!op("$in", "user.id", json!([])).matches(EVENT));
    assert!(!op("$in", "absent", json!([null])).matches(EVENT));
    assert!(op("$in", "tags", json!([["a", "b"], 1])).matches(EVENT));
}

#[test]
fn exists_counts_null_as_present() {
    assert!(op("$exists", "nothing", json!(true)).matches(EVENT));
    assert!(!op("$exists", "nothing", json!(false)).matches(EVENT));
    assert!(op("$exists", "user.name", json!(true)).matches(EVENT));
    assert!(op("$exists", "tags", json!(true)).matches(EVENT));
    assert!(op("$exists", "user", json!(true)).matches(EVENT));
    assert!(!op("$exists", "absent", json!(true)).matches(EVENT));
    assert!(op("$exists", "absent", json!(false)).matches(EVENT));
    assert!(op("$exists", "kind.length", json!(false)).matches(EVENT));
}

#[test]
fn prefix_matches_strings_only() {
    assert!(op("$prefix", "user.name", json!("user-")).matches(EVENT));
    assert!(op("$prefix", "user.name", json!("")).matches(EVENT));
    assert!(op("$prefix", "user.name", json!("user-42")).matches(EVENT));
    assert!(!op("$prefix", "user.name", json!("user-421")).matches(EVENT));
    assert!(!op("$prefix", "user.name", json!("User")).matches(EVENT));
    assert!(!op("$prefix", "user.id", json!("4")).matches(EVENT));
    assert!(!op("$prefix", "absent", json!("")).matches(EVENT));
}

// ---- paths -----------------------------------------------------------

#[test]
fn nested_paths_walk_objects() {
    let payload = br#"{"a":{"b":{"c":{"d":"deep"}},"x":1},"b":2}"#;
    assert!(op("$eq", "a.b.c.d", json!("deep")).matches(payload));
    assert!(op("$eq", "b", json!(2)).matches(payload));
    assert!(!op("$exists", "a.b.c.d.e", json!(true)).matches(payload));
    assert!(!op("$exists", "b.c", json!(true)).matches(payload));
    assert!(!op("$exists", "a.c", json!(true)).matches(payload));
    assert!(!op("$eq", "c", json!(2)).matches(payload));
}

#[test]
fn numeric_segments_index_arrays() {
    assert!(op("$eq", "tags.1", json!("b")).matches(EVENT));
    assert!(op("$eq", "tags.0", json!("a")).matches(EVENT));
    assert!(!op("$eq", "tags.0", json!("b")).matches(EVENT));
    assert!(!op("$exists", "tags.2", json!(true)).matches(EVENT));
    let payload = br#"{"rows":[{"v":1},{"v":[10,20,{"w":"x"}]}]}"#;
    assert!(op("$eq", "rows.1.v.2.w", json!("x")).matches(payload));
    assert!(op("$eq", "rows.1.v.1", json!(20)).matches(payload));
    assert!(op("$eq", "rows.0.v", json!(1)).matches(payload));
    assert!(!op("$exists", "rows.v", json!(true)).matches(payload));
    // A top-level array is indexed too.
    assert!(op("$eq", "1.a", json!(true)).matches(br#"[0,{"a":true}]"#));
}

#[test]
fn numeric_segments_are_keys_on_objects() {
    let payload = br#"{"tags":{"1":"one","01":"zero-one"}}"#;
    assert!(op("$eq", "tags.1", json!("one")).matches(payload));
    assert!(op("$eq", "tags.01", json!("zero-one")).matches(payload));
    // A leading zero is not an array index.
    assert!(!op("$exists", "tags.01", json!(true)).matches(br#"{"tags":["a","b"]}"#));
}

#[test]
fn escaped_keys_and_strings_are_decoded() {
    let payload = br#"{"us\u0065r":{"n\"ame":"a\"b\u00e9"},"k":"\ud83d\ude00"}"#;
    assert!(op("$eq", "user.n\"ame", json!("a\"b\u{e9}")).matches(payload));
    assert!(op("$prefix", "user.n\"ame", json!("a\"")).matches(payload));
    assert!(op("$eq", "k", json!("\u{1F600}")).matches(payload));
}

#[test]
fn duplicate_keys_last_one_wins() {
    let payload = br#"{"a":{"b":1},"a":{"c":2}}"#;
    assert!(!op("$exists", "a.b", json!(true)).matches(payload));
    assert!(op("$eq", "a.c", json!(2)).matches(payload));
    assert!(op("$eq", "x", json!(2)).matches(br#"{"x":1,"x":2}"#));
    assert!(!op("$eq", "x", json!(1)).matches(br#"{"x":1,"x":2}"#));
}

#[test]
fn many_paths_beyond_the_inline_slots() {
    let keys: Vec<String> = (0..20).map(|i| format!("k{i}")).collect();
    let mut payload = serde_json::Map::new();
    for (i, key) in keys.iter().enumerate() {
        payload.insert(key.clone(), json!(i));
    }
    let payload = serde_json::to_vec(&payload).unwrap();
    let all = Filter::all(keys.iter().enumerate().map(|(i, k)| Filter::eq(k, i).unwrap()).collect()).unwrap();
    assert!(all.matches(&payload));
    let off_by_one = Filter::all(
        keys.iter().enumerate().map(|(i, k)| Filter::eq(k, if i == 19 { 0 } else { i }).unwrap()).collect(),
    )
    .unwrap();
    assert!(!off_by_one.matches(&payload));
}

// ---- numbers ---------------------------------------------------------

#[test]
fn integers_and_floats_compare_by_value() {
    assert!(op("$eq", "n", json!(1)).matches(br#"{"n":1.0}"#));
    assert!(op("$eq", "n", json!(1.0)).matches(br#"{"n":1}"#));
    assert!(op("$eq", "n", json!(100)).matches(br#"{"n":1e2}"#));
    assert!(op("$eq", "n", json!(0)).matches(br#"{"n":-0.0}"#));
    assert!(!op("$eq", "n", json!(1)).matches(br#"{"n":1.5}"#));
    assert!(op("$in", "n", json!([1])).matches(br#"{"n":1.0}"#));
}

#[test]
fn big_integers_compare_exactly() {
    let max = u64::MAX;
    let payload = format!(r#"{{"n":{max}}}"#);
    assert!(op("$eq", "n", json!(max)).matches(payload.as_bytes()));
    assert!(!op("$eq", "n", json!(max - 1)).matches(payload.as_bytes()));
    assert!(op("$gt", "n", json!(max - 1)).matches(payload.as_bytes()));
    // 2^64 as a float is above u64::MAX, not equal to it.
    assert!(!op("$eq", "n", json!(18446744073709551616.0_f64)).matches(payload.as_bytes()));
    assert!(op("$lt", "n", json!(18446744073709551616.0_f64)).matches(payload.as_bytes()));
    // 2^53 + 1 has no f64; it must not round onto 2^53.
    let odd = br#"{"n":9007199254740993}"#;
    assert!(!op("$eq", "n", json!(9007199254740992.0_f64)).matches(odd));
    assert!(op("$gt", "n", json!(9007199254740992.0_f64)).matches(odd));
    assert!(op("$eq", "n", json!(9007199254740993_u64)).matches(odd));
    // Signed extremes.
    let min = format!(r#"{{"n":{}}}"#, i64::MIN);
    assert!(op("$eq", "n", json!(i64::MIN)).matches(min.as_bytes()));
    assert!(op("$lt", "n", json!(i64::MIN + 1)).matches(min.as_bytes()));
    assert!(op("$lt", "n", json!(max)).matches(min.as_bytes()));
    assert!(op("$eq", "n", json!(-9223372036854775808.0_f64)).matches(min.as_bytes()));
}

#[test]
fn float_int_comparison_is_exact() {
    use Ordering::*;
    assert_eq!(compare_float_int(1.5, 1), Some(Greater));
    assert_eq!(compare_float_int(-1.5, -1), Some(Less));
    assert_eq!(compare_float_int(-1.5, -2), Some(Greater));
    assert_eq!(compare_float_int(-0.0, 0), Some(Equal));
    assert_eq!(compare_float_int(f64::NAN, 0), None);
    assert_eq!(compare_float_int(f64::INFINITY, i128::from(u64::MAX)), Some(Greater));
    assert_eq!(compare_float_int(f64::NEG_INFINITY, i128::from(i64::MIN)), Some(Less));
    assert_eq!(compare_float_int(18446744073709549568.0, i128::from(u64::MAX)), Some(Less));
}

#[test]
fn compound_values_compare_deeply() {
    let payload = br#"{"user":{"id":42.0,"tags":["a",{"b":1}]},"tags":["a","b"]}"#;
    assert!(op("$eq", "tags", json!(["a", "b"])).matches(payload));
    assert!(!op("$eq", "tags", json!(["b", "a"])).matches(payload));
    assert!(!op("$eq", "tags", json!(["a"])).matches(payload));
    let user = json!({"id": 42, "tags": ["a", {"b": 1.0}]});
    assert!(op("$eq", "user", user.clone()).matches(payload));
    assert!(!op("$eq", "user", json!({"id": 42})).matches(payload));
    assert!(!op("$eq", "user", json!({"id": 42, "tags": [], "x": 1})).matches(payload));
    // The same object also read at a deeper path in the same filter.
    let both = Filter::all(vec![
        Filter::eq("user", user).unwrap(),
        Filter::eq("user.tags.1.b", 1).unwrap(),
        Filter::exists("user.id", true).unwrap(),
    ])
    .unwrap();
    assert!(both.matches(payload));
    assert!(!both.matches(br#"{"user":{"id":42,"tags":["a",{"b":2}]}}"#));
    // A compound value never equals a scalar, and vice versa.
    assert!(!op("$eq", "user", json!(1)).matches(payload));
    assert!(!op("$eq", "user.id", json!([42])).matches(payload));
}

// ---- combinators -----------------------------------------------------

#[test]
fn not_inverts() {
    let not = filter(json!({"$not": {"$eq": {"path": "user.id", "value": 42}}}));
    assert!(!not.matches(EVENT));
    assert!(not.matches(br#"{"user":{"id":1}}"#));
    assert!(not.matches(br#"{}"#));
    let twice = filter(json!({"$not": {"$not": {"path": "kind", "value": "click"}}}));
    assert!(twice.matches(EVENT));
}

#[test]
fn nested_and_or() {
    let f = filter(json!({"$or": [
        {"$and": [
            {"$eq": {"path": "kind", "value": "click"}},
            {"$gt": {"path": "user.id", "value": 100}}
        ]},
        {"$and": [
            {"$in": {"path": "tags.0", "value": ["a", "z"]}},
            {"$or": [
                {"$exists": {"path": "absent", "value": true}},
                {"$prefix": {"path": "user.name", "value": "user-4"}}
            ]}
        ]}
    ]}));
    assert!(f.matches(EVENT));
    assert!(!f.matches(br#"{"kind":"click","user":{"id":5,"name":"user-5"},"tags":["a"]}"#));
    assert!(f.matches(br#"{"kind":"click","user":{"id":500},"tags":[]}"#));
    assert!(f.matches(br#"{"kind":"view","absent":0,"tags":["z"]}"#));
    assert!(!f.matches(br#"{"kind":"view","absent":0,"tags":["y"]}"#));
    let single = filter(json!({"$and": [{"path": "kind", "value": "click"}]}));
    assert!(single.matches(EVENT));
    let or = filter(json!({"$or": [{"path": "kind", "value": "x"}, {"path": "ok", "value": true}]}));
    assert!(or.matches(EVENT));
}

// ---- payloads that are not JSON ------------------------------------

#[test]
fn non_json_payloads_match_nothing() {
    let filters = [
        op("$eq", "user.id", json!(42)),
        op("$ne", "user.id", json!(1)),
        op("$ne", "absent", json!(1)),
        op("$exists", "absent", json!(false)),
        filter(json!({"$not": {"$eq": {"path": "user.id", "value": 1}}})),
        filter(json!({"$not": {"$exists": {"path": "absent", "value": true}}})),
        filter(json!({"$or": [{"$ne": {"path": "a", "value": 1}}, {"$not": {"path": "b", "value": 1}}]})),
    ];
    let mut trailing = EVENT.to_vec();
    trailing.extend_from_slice(b" x");
    let mut two_documents = EVENT.to_vec();
    two_documents.extend_from_slice(b"{}");
    let bad: Vec<&[u8]> = vec![
        b"",
        b"   ",
        b"garbage",
        b"{",
        br#"{"user":{"id":42}"#,
        br#"{"user":{"id":42}},"#,
        &trailing,
        &two_documents,
        b"\xff\xfe",
        // Invalid UTF-8 in a string the filter does not read.
        b"{\"user\":{\"id\":42},\"skipped\":\"\xc3\x28\"}",
        // ... and in a key the filter does not read.
        b"{\"\xff\":1,\"user\":{\"id\":42}}",
        br#"{"user":{"id":42},"x":tru}"#,
        br#"{"user":{"id":42},"x":[1,}"#,
        br#"{"user":{"id":42},"x":"\q"}"#,
        br#"{user:{"id":42}}"#,
        b"{\"user\":{\"id\":42},\"x\":\"ctrl\x01\"}",
    ];
    for f in &filters {
        // Each of them matches the valid event, so only invalidity fails them.
        assert!(f.matches(EVENT), "{}", f.as_json());
        for payload in &bad {
            assert!(!f.matches(payload), "{} matched {:?}", f.as_json(), String::from_utf8_lossy(payload));
        }
    }
    // Leading and trailing whitespace is fine.
    assert!(op("$eq", "user.id", json!(42)).matches(b" \n{\"user\":{\"id\":42}}\t\r\n"));
}

#[test]
fn scalar_and_array_documents_are_json() {
    assert!(op("$exists", "a", json!(false)).matches(b"1"));
    assert!(op("$exists", "a", json!(false)).matches(b"[]"));
    assert!(op("$ne", "a", json!(1)).matches(b"null"));
}

#[test]
fn payloads_nested_deeper_than_the_parser_limit_along_a_read_path_match_nothing() {
    let deep = format!("{{\"a\":{}1{}}}", "[".repeat(200), "]".repeat(200));
    // Not read: skipped iteratively by serde_json, so the document is fine.
    assert!(op("$exists", "b", json!(false)).matches(deep.as_bytes()));
    // Read: the walk descends and hits serde_json's recursion limit.
    let path = vec!["0"; 130].join(".");
    let read = format!("a.{path}");
    assert!(!op("$exists", &read, json!(false)).matches(deep.as_bytes()));
}

// ---- errors --------------------------------------------------------

#[test]
fn empty_and_or_are_rejected() {
    assert_error(json!({"$and": []}), "$and: must be a non-empty array of filters");
    assert_error(json!({"$or": []}), "$or: must be a non-empty array of filters");
    assert_error(json!({"$and": [{"$or": []}]}), "$and[0].$or: must be a non-empty array");
    assert_error(json!({"$and": {}}), "$and: must be a non-empty array of filters, got an object");
    assert!(Filter::all(Vec::new()).is_err());
    assert!(Filter::any(Vec::new()).is_err());
}

#[test]
fn unknown_operators_are_rejected() {
    assert_error(json!({"$regex": {"path": "a", "value": "x"}}), "filter: unknown operator \"$regex\"");
    assert_error(json!({"$or": [{"path": "a", "value": 1}, {"$nin": {}}]}), "$or[1]: unknown operator \"$nin\"");
    assert_error(json!({"$EQ": {"path": "a", "value": 1}}), "unknown operator");
}

#[test]
fn extra_keys_are_rejected() {
    assert_error(
        json!({"$eq": {"path": "a", "value": 1}, "$ne": {"path": "a", "value": 2}}),
        "filter: a filter object must have exactly one operator key, got 2",
    );
    assert_error(json!({"path": "a", "value": 1, "$eq": 1}), "exactly one operator key");
    assert_error(json!({"path": "a", "value": 1, "extra": 1}), "filter: unknown key \"extra\"");
    assert_error(json!({"$eq": {"path": "a", "value": 1, "x": 2}}), "$eq: unknown key \"x\"");
    assert_error(json!({"$eq": {"path": "a"}}), "$eq: missing \"value\"");
    assert_error(json!({"$eq": {"value": 1}}), "$eq: missing \"path\"");
    assert_error(json!({"path": "a"}), "filter: missing \"value\"");
    assert_error(json!({"kind": "click"}), "filter: unknown key \"kind\"");
    assert_error(json!({}), "filter: a filter object must not be empty");
}

#[test]
fn wrong_types_are_rejected() {
    assert_error(json!([]), "filter: a filter must be a JSON object, got an array");
    assert_error(json!("x"), "filter: a filter must be a JSON object, got a string");
    assert_error(json!({"$not": 1}), "$not: a filter must be a JSON object, got a number");
    assert_error(json!({"$and": [{"path": "a", "value": 1}, 2]}), "$and[1]: a filter must be a JSON object");
    assert_error(
        json!({"$eq": ["a", 1]}),
        "$eq: the operand must be an object with \"path\" and \"value\", got an array",
    );
    assert_error(json!({"$eq": {"path": 1, "value": 1}}), "$eq: \"path\" must be a string, got a number");
    assert_error(
        json!({"$and": [{"path": "a", "value": 1}, {"path": "b", "value": 1}, {"$gt": {"path": "a", "value": true}}]}),
        "$and[2].$gt: \"value\" must be a number or string, got a boolean",
    );
    for name in ["$gt", "$gte", "$lt", "$lte"] {
        for bad in [json!(null), json!(true), json!([1]), json!({"a": 1})] {
            assert_error(json!({name: {"path": "a", "value": bad}}), "\"value\" must be a number or string");
        }
    }
    assert_error(json!({"$in": {"path": "a", "value": 1}}), "$in: \"value\" must be an array, got a number");
    assert_error(json!({"$exists": {"path": "a", "value": 1}}), "$exists: \"value\" must be a boolean, got a number");
    assert_error(json!({"$exists": {"path": "a", "value": "true"}}), "must be a boolean, got a string");
    assert_error(json!({"$prefix": {"path": "a", "value": 1}}), "$prefix: \"value\" must be a string, got a number");
    assert_error(json!({"$prefix": {"path": "a", "value": null}}), "must be a string, got null");
}

#[test]
fn empty_paths_are_rejected() {
    assert_error(json!({"$eq": {"path": "", "value": 1}}), "$eq: \"path\" must not be empty");
    assert_error(json!({"path": "", "value": 1}), "filter: \"path\" must not be empty");
    for bad in ["a..b", ".a", "a.", "."] {
        assert_error(json!({"$exists": {"path": bad, "value": true}}), "has an empty segment");
    }
    assert!(Filter::eq("", 1).is_err());
    assert!(Filter::exists("a.", true).is_err());
}

fn nested_nots(count: usize) -> Value {
    let mut value = json!({"path": "a", "value": 1});
    for _ in 0..count {
        value = json!({ "$not": value });
    }
    value
}

#[test]
fn nesting_is_limited() {
    // A leaf under 31 `$not`s is 32 levels deep: the limit.
    assert!(Filter::from_json(&nested_nots(MAX_FILTER_DEPTH - 1)).is_ok());
    assert_error(nested_nots(MAX_FILTER_DEPTH), "filter nesting is deeper than 32 levels");
    let mut and = json!({"path": "a", "value": 1});
    for _ in 0..MAX_FILTER_DEPTH {
        and = json!({ "$and": [{"path": "b", "value": 2}, and] });
    }
    assert_error(and, "$and[1].$and[1]");
    // Deep values built in Rust (below serde_json's parse limit) stop at
    // the depth check, long before the stack is in danger.
    assert_error(nested_nots(1000), "deeper than 32");
}

#[test]
fn hostile_text_fails_cleanly() {
    let brackets = "[".repeat(1 << 20);
    assert!(Filter::parse(&brackets).unwrap_err().to_string().starts_with("filter: not valid JSON"));
    let nots = "{\"$not\":".repeat(100_000);
    assert!(Filter::parse(&nots).is_err());
    let braces = "{\"a\":".repeat(100_000);
    assert!(Filter::parse(&braces).is_err());
    assert!(Filter::parse("").is_err());
    assert!(Filter::parse("{\"path\":\"a\",\"value\":1} x").is_err());
}

#[test]
fn over_deep_operand_values_are_rejected() {
    let mut value = json!(1);
    for _ in 0..200 {
        value = json!([value]);
    }
    assert_error(json!({"$eq": {"path": "a", "value": value.clone()}}), "more than 128 levels deep");
    assert_error(json!({"$in": {"path": "a", "value": [value]}}), "more than 128 levels deep");
    let mut ok = json!(1);
    for _ in 0..100 {
        ok = json!({ "k": ok });
    }
    assert!(Filter::eq("a", ok).is_ok());
}

#[test]
fn long_error_keys_are_cut() {
    let key = "k".repeat(10_000);
    let message = error(json!({ key: 1 }));
    assert!(message.len() < 200, "{message}");
}

// ---- constructors and serde ----------------------------------------

#[test]
fn constructors_build_the_documented_json() {
    let cases: Vec<(Filter, Value)> = vec![
        (Filter::eq("a", 1).unwrap(), json!({"$eq": {"path": "a", "value": 1}})),
        (Filter::ne("a", "x").unwrap(), json!({"$ne": {"path": "a", "value": "x"}})),
        (Filter::gt("a", 1.5).unwrap(), json!({"$gt": {"path": "a", "value": 1.5}})),
        (Filter::gte("a", 2).unwrap(), json!({"$gte": {"path": "a", "value": 2}})),
        (Filter::lt("a", "m").unwrap(), json!({"$lt": {"path": "a", "value": "m"}})),
        (Filter::lte("a", 3).unwrap(), json!({"$lte": {"path": "a", "value": 3}})),
        (Filter::prefix("a", "p").unwrap(), json!({"$prefix": {"path": "a", "value": "p"}})),
        (Filter::exists("a", false).unwrap(), json!({"$exists": {"path": "a", "value": false}})),
        (Filter::in_values("a", vec![json!(1), json!("b")]).unwrap(), json!({"$in": {"path": "a", "value": [1, "b"]}})),
    ];
    for (built, expected) in cases {
        assert_eq!(built.as_json(), &expected);
        assert_eq!(built, filter(expected));
    }
    assert_error(json!({"$gt": {"path": "a", "value": true}}), "number or string");
    assert!(Filter::gt("a", true).is_err());
    assert!(Filter::lte("a", Value::Null).is_err());
}

#[test]
fn all_any_negate_compose() {
    let click = Filter::eq("kind", "click").unwrap();
    let big = Filter::gt("user.id", 100).unwrap();
    let all = Filter::all(vec![click.clone(), big.clone()]).unwrap();
    let any = Filter::any(vec![click.clone(), big.clone()]).unwrap();
    assert_eq!(all.as_json(), &json!({"$and": [click.as_json(), big.as_json()]}));
    assert_eq!(any.as_json(), &json!({"$or": [click.as_json(), big.as_json()]}));
    assert!(!all.matches(EVENT));
    assert!(any.matches(EVENT));
    let not_all = Filter::negate(all.clone());
    assert_eq!(not_all.as_json(), &json!({ "$not": all.as_json() }));
    assert!(not_all.matches(EVENT));
    assert!(!not_all.matches(b"nope"));
    // Double negation gives the original back, JSON and all.
    assert_eq!(Filter::negate(not_all), all);
}

#[test]
fn combining_respects_the_depth_limit() {
    let deepest = filter(nested_nots(MAX_FILTER_DEPTH - 1));
    assert!(Filter::all(vec![deepest.clone()]).is_err());
    assert!(Filter::any(vec![Filter::eq("a", 1).unwrap(), deepest.clone()]).is_err());
    // `negate` unwraps a `$not` instead of deepening it.
    let negated = Filter::negate(deepest.clone());
    assert!(Filter::from_json(negated.as_json()).is_ok());
    assert_ne!(negated.matches(br#"{"a":1}"#), deepest.matches(br#"{"a":1}"#));
    // The documented edge: a non-`$not` at the limit goes one deeper.
    let mut and = json!({"path": "a", "value": 1});
    for _ in 1..MAX_FILTER_DEPTH {
        and = json!({ "$and": [and] });
    }
    let and = filter(and);
    let over = Filter::negate(and.clone());
    assert!(Filter::from_json(over.as_json()).is_err());
    assert!(!over.matches(br#"{"a":1}"#));
    assert!(over.matches(br#"{"a":2}"#));
}

#[test]
fn serde_round_trip() {
    let text = r#"{"$or":[{"path":"a.0","value":{"x":[1,2.5]}},{"$not":{"$in":{"path":"b","value":[1,"x",null]}}}]}"#;
    let parsed = Filter::parse(text).unwrap();
    let written = serde_json::to_string(&parsed).unwrap();
    assert_eq!(written, text);
    let read: Filter = serde_json::from_str(&written).unwrap();
    assert_eq!(read, parsed);
    let from_str: Filter = text.parse().unwrap();
    assert_eq!(from_str, parsed);

    #[derive(Deserialize, Serialize, Debug, PartialEq)]
    struct Request {
        limit: u32,
        filter: Option<Filter>,
    }
    let request: Request = serde_json::from_value(json!({"limit": 10, "filter": {"path": "k", "value": "v"}})).unwrap();
    let shorthand = filter(json!({"path": "k", "value": "v"}));
    assert_eq!(request.filter.as_ref(), Some(&shorthand));
    // Same meaning, different source JSON: not the same filter.
    assert_ne!(request.filter, Some(Filter::eq("k", "v").unwrap()));
    let back = serde_json::to_value(&request).unwrap();
    assert_eq!(back, json!({"limit": 10, "filter": {"path": "k", "value": "v"}}));
    let bad = serde_json::from_value::<Request>(json!({"limit": 1, "filter": {"$and": []}}));
    let message = bad.unwrap_err().to_string();
    assert!(message.contains("$and: must be a non-empty array of filters"), "{message}");
}

// ---- reference evaluator -------------------------------------------

/// A direct evaluator over a fully parsed document, written from the
/// module docs without sharing code with the streaming one.
fn reference(filter: &Value, payload: &[u8]) -> bool {
    match serde_json::from_slice::<Value>(payload) {
        Ok(document) => reference_eval(filter, &document),
        Err(_) => false,
    }
}

fn reference_eval(filter: &Value, document: &Value) -> bool {
    let object = filter.as_object().expect("filter object");
    if let Some(children) = object.get("$and") {
        return children.as_array().unwrap().iter().all(|c| reference_eval(c, document));
    }
    if let Some(children) = object.get("$or") {
        return children.as_array().unwrap().iter().any(|c| reference_eval(c, document));
    }
    if let Some(child) = object.get("$not") {
        return !reference_eval(child, document);
    }
    let (name, operand) = if object.contains_key("path") {
        ("$eq", filter)
    } else {
        let (name, operand) = object.iter().next().unwrap();
        (name.as_str(), operand)
    };
    let wanted = &operand["value"];
    let found = reference_resolve(document, operand["path"].as_str().unwrap());
    match name {
        "$eq" => found.is_some_and(|f| reference_eq(f, wanted)),
        "$ne" => !found.is_some_and(|f| reference_eq(f, wanted)),
        "$in" => found.is_some_and(|f| wanted.as_array().unwrap().iter().any(|w| reference_eq(f, w))),
        "$exists" => found.is_some() == wanted.as_bool().unwrap(),
        "$prefix" => found.and_then(Value::as_str).is_some_and(|s| s.starts_with(wanted.as_str().unwrap())),
        ordering => {
            let Some(order) = found.and_then(|f| reference_cmp(f, wanted)) else {
                return false;
            };
            match ordering {
                "$gt" => order.is_gt(),
                "$gte" => order.is_ge(),
                "$lt" => order.is_lt(),
                "$lte" => order.is_le(),
                other => panic!("unexpected operator {other}"),
            }
        }
    }
}

fn reference_resolve<'a>(document: &'a Value, path: &str) -> Option<&'a Value> {
    let mut here = document;
    for segment in path.split('.') {
        here = match here {
            Value::Object(object) => object.get(segment)?,
            Value::Array(items) => {
                let digits = !segment.is_empty() && segment.chars().all(|c| c.is_ascii_digit());
                if !digits || (segment.len() > 1 && segment.starts_with('0')) {
                    return None;
                }
                items.get(segment.parse::<usize>().ok()?)?
            }
            _ => return None,
        };
    }
    Some(here)
}

fn reference_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => reference_number_cmp(x, y) == Some(Ordering::Equal),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y.iter()).all(|(x, y)| reference_eq(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| reference_eq(v, w)))
        }
        _ => a == b,
    }
}

fn reference_cmp(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => reference_number_cmp(x, y),
        (Value::String(x), Value::String(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
        _ => None,
    }
}

fn reference_number_cmp(a: &Number, b: &Number) -> Option<Ordering> {
    let int = |n: &Number| n.as_i64().map(i128::from).or_else(|| n.as_u64().map(i128::from));
    match (int(a), int(b)) {
        (Some(x), Some(y)) => Some(x.cmp(&y)),
        (Some(x), None) => reference_int_float(x, b.as_f64()?),
        (None, Some(y)) => reference_int_float(y, a.as_f64()?).map(Ordering::reverse),
        (None, None) => a.as_f64()?.partial_cmp(&b.as_f64()?),
    }
}

/// `int` compared with `float`, by flooring the float.
fn reference_int_float(int: i128, float: f64) -> Option<Ordering> {
    if float.is_nan() {
        return None;
    }
    if float >= 2f64.powi(64) {
        return Some(Ordering::Less);
    }
    if float < -(2f64.powi(64)) {
        return Some(Ordering::Greater);
    }
    let floor = float.floor();
    let floor_int = floor as i128;
    if float == floor {
        Some(int.cmp(&floor_int))
    } else if int <= floor_int {
        Some(Ordering::Less)
    } else {
        Some(Ordering::Greater)
    }
}

#[test]
fn reference_agrees_on_the_fixed_cases() {
    let f = json!({"$and": [{"path": "user.id", "value": 42.0}, {"$ne": {"path": "x", "value": 1}}]});
    assert!(reference(&f, EVENT));
    assert!(filter(f).matches(EVENT));
}

// ---- property tests ------------------------------------------------

const KEYS: &[&str] = &["a", "b", "c", "0", "1", "x y", "q\"k", "\u{e9}", "k.d"];
const PATHS: &[&str] = &[
    "a",
    "b",
    "c",
    "0",
    "1",
    "a.b",
    "a.0",
    "a.1",
    "b.a",
    "c.0.a",
    "a.b.c",
    "0.a",
    "1.1",
    "q\"k",
    "x y",
    "\u{e9}.a",
    "a.01",
    "missing",
    "a.missing",
];

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!(null)),
        any::<bool>().prop_map(Value::from),
        prop::sample::select(vec![
            json!(-1),
            json!(0),
            json!(1),
            json!(2),
            json!(42),
            json!(i64::MIN),
            json!(i64::MAX),
            json!(u64::MAX),
            json!(u64::MAX - 1),
            json!(9007199254740993_u64),
        ]),
        prop::sample::select(vec![
            json!(1.0),
            json!(1.5),
            json!(-0.5),
            json!(2.0),
            json!(0.0),
            json!(42.0),
            json!(9007199254740992.0),
            json!(18446744073709551616.0),
            json!(-9223372036854775808.0),
        ]),
        prop::sample::select(vec!["", "a", "ab", "abc", "b", "\u{e9}", "q\"uote", "\u{1F600}", "x\n"])
            .prop_map(Value::from),
    ]
}

fn json_value(depth: u32) -> impl Strategy<Value = Value> {
    scalar().prop_recursive(depth, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(prop::sample::select(KEYS.to_vec()), inner, 0..5)
                .prop_map(|m| { Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()) }),
        ]
    })
}

fn document() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => prop::collection::btree_map(prop::sample::select(KEYS.to_vec()), json_value(3), 0..6)
            .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
        1 => json_value(3),
    ]
}

/// Every `(path, value)` in `document` that a filter can name, plus one
/// missing path, so that generated leaves hit existing paths and equal or
/// neighbouring values often.
fn targets(document: &Value) -> Vec<(String, Value)> {
    let mut found = vec![("missing".to_owned(), Value::Null)];
    let mut stack: Vec<(String, &Value)> = vec![(String::new(), document)];
    while let Some((path, value)) = stack.pop() {
        let children: Vec<(String, &Value)> = match value {
            Value::Object(object) => {
                object.iter().filter(|(k, _)| !k.is_empty() && !k.contains('.')).map(|(k, v)| (k.clone(), v)).collect()
            }
            Value::Array(items) => items.iter().enumerate().map(|(i, v)| (i.to_string(), v)).collect(),
            _ => Vec::new(),
        };
        for (segment, child) in children {
            let child_path = if path.is_empty() { segment } else { format!("{path}.{segment}") };
            found.push((child_path.clone(), child.clone()));
            stack.push((child_path, child));
        }
    }
    found
}

/// Values equal or close to `value`, to probe the edges of comparisons:
/// the same number as an integer and as a float, its neighbours, a
/// string's prefix and extensions.
fn neighbours(value: &Value) -> Vec<Value> {
    let mut near = vec![value.clone()];
    match value {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                near.extend([json!(i as f64), json!(i as f64 + 0.5), json!(i as f64 - 0.5)]);
                near.extend(i.checked_add(1).map(Value::from));
                near.extend(i.checked_sub(1).map(Value::from));
            } else if let Some(u) = n.as_u64() {
                near.extend([json!(u as f64), json!(u - 1)]);
            } else if let Some(f) = n.as_f64() {
                near.extend([json!(f.floor()), json!(f.ceil()), json!(f + 0.5)]);
                if f.fract() == 0.0 && f.abs() < 9.0e18 {
                    near.push(json!(f as i64));
                }
                if f.trunc().abs() < 9.0e18 {
                    near.push(json!(f.trunc() as i64));
                }
            }
        }
        Value::String(s) => {
            near.push(json!(format!("{s}a")));
            near.push(json!(s.chars().take(1).collect::<String>()));
            near.push(json!(s.chars().skip(1).collect::<String>()));
        }
        Value::Array(items) => {
            near.push(Value::Array(items.iter().skip(1).cloned().collect()));
            near.push(Value::Array(items.iter().map(as_float).collect()));
        }
        Value::Object(object) => {
            near.push(Value::Object(object.iter().skip(1).map(|(k, v)| (k.clone(), v.clone())).collect()));
            near.push(Value::Object(object.iter().map(|(k, v)| (k.clone(), as_float(v))).collect()));
        }
        _ => {}
    }
    near
}

/// `value` with integers written as floats (equal, by value).
fn as_float(value: &Value) -> Value {
    match value {
        Value::Number(n) if n.is_i64() => json!(n.as_i64().unwrap_or(0) as f64),
        Value::Array(items) => Value::Array(items.iter().map(as_float).collect()),
        Value::Object(object) => Value::Object(object.iter().map(|(k, v)| (k.clone(), as_float(v))).collect()),
        other => other.clone(),
    }
}

/// `path` as is, with its array indexes zero-padded (then they are keys
/// only), or one level deeper.
fn path_variant(path: &str, variant: u8) -> String {
    match variant {
        0 => path
            .split('.')
            .map(|s| if s.bytes().all(|b| b.is_ascii_digit()) { format!("0{s}") } else { s.to_owned() })
            .collect::<Vec<_>>()
            .join("."),
        1 => format!("{path}.0"),
        _ => path.to_owned(),
    }
}

fn leaf_filter(focused: Vec<(String, Value)>, targets: Vec<(String, Value)>) -> impl Strategy<Value = Value> {
    let target = prop_oneof![
        2 => prop::sample::select(focused),
        2 => prop::sample::select(targets),
        1 => (prop::sample::select(PATHS.to_vec()), json_value(2))
            .prop_map(|(p, v)| (p.to_owned(), v)),
    ];
    (target, scalar(), any::<prop::sample::Index>(), 0..10u8, 0..8u8, any::<bool>()).prop_map(
        |((path, value), other, pick, kind, variant, flag)| {
            let path = path_variant(&path, variant);
            let near = if flag { pick.get(&neighbours(&value)).clone() } else { other.clone() };
            let comparable = [&near, &other, &value]
                .into_iter()
                .find(|v| v.is_number() || v.is_string())
                .cloned()
                .unwrap_or(json!(1));
            let operand = |name: &str, v: Value| json!({ name: {"path": path, "value": v} });
            match kind {
                0 => operand("$eq", near),
                1 => operand("$ne", near),
                2 => json!({"path": path, "value": near}),
                3 => operand("$gt", comparable),
                4 => operand("$gte", comparable),
                5 => operand("$lt", comparable),
                6 => operand("$lte", comparable),
                7 => operand("$in", json!([other, near])),
                8 => operand("$exists", json!(flag)),
                _ => {
                    let prefix = match (&near, &other) {
                        (Value::String(s), _) => s.clone(),
                        (_, Value::String(s)) => s.clone(),
                        _ => "a".to_owned(),
                    };
                    operand("$prefix", json!(prefix))
                }
            }
        },
    )
}

fn any_filter(focused: Vec<(String, Value)>, targets: Vec<(String, Value)>) -> impl Strategy<Value = Value> {
    leaf_filter(focused, targets).prop_recursive(4, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 1..4).prop_map(|v| json!({"$and": v})),
            prop::collection::vec(inner.clone(), 1..4).prop_map(|v| json!({"$or": v})),
            inner.prop_map(|f| json!({"$not": f})),
        ]
    })
}

/// A filter aimed at `targets`, and at one of them and the paths below
/// it in particular (so that one filter reads an object both whole and in
/// parts often).
fn filter_for(targets: Vec<(String, Value)>) -> impl Strategy<Value = Value> {
    any::<prop::sample::Index>().prop_flat_map(move |focus| {
        let (path, value) = focus.get(&targets).clone();
        let below = format!("{path}.");
        let focused = targets.iter().filter(|(p, _)| *p == path || p.starts_with(&below)).cloned().collect();
        let whole = neighbours(&value);
        (any_filter(focused, targets.clone()), any::<prop::sample::Index>(), 0..4u8).prop_map(
            move |(rest, pick, mode)| {
                let compared = json!({"path": path, "value": pick.get(&whole)});
                match mode {
                    0 => rest,
                    1 => json!({"$and": [compared, rest]}),
                    2 => json!({"$or": [compared, rest]}),
                    _ => json!({"$and": [{"$not": compared}, rest]}),
                }
            },
        )
    })
}

/// A document and a filter aimed at it.
fn document_and_filter() -> impl Strategy<Value = (Value, Value)> {
    document().prop_flat_map(|document| {
        let targets = targets(&document);
        (Just(document), filter_for(targets))
    })
}

/// Two documents and a filter aimed at both (their keys overlap often,
/// which makes payloads with duplicate keys when they are merged).
fn documents_and_filter() -> impl Strategy<Value = (Value, Value, Value)> {
    (document(), document()).prop_flat_map(|(first, second)| {
        let mut both = targets(&first);
        both.extend(targets(&second));
        (Just(first), Just(second), filter_for(both))
    })
}

fn sample_filters() -> Vec<Filter> {
    vec![
        op("$eq", "user.id", json!(42)),
        op("$ne", "a.0.b", json!({"x": [1]})),
        filter(json!({"$not": {"$prefix": {"path": "kind", "value": "c"}}})),
        filter(json!({"$or": [
            {"$exists": {"path": "0", "value": false}},
            {"$gt": {"path": "a.1", "value": "m"}}
        ]})),
        op("$in", "tags", json!([["a", "b"], 1, null])),
        filter(json!({"$and": [{"path": "a", "value": {"b": 1}}, {"$lt": {"path": "a.b", "value": 2}}]})),
    ]
}

proptest! {
    // Cheap cases, and some disagreements (say, an object compared whole
    // and read in parts by one filter) need a few thousand to show.
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    #[test]
    fn lazy_evaluation_agrees_with_the_reference((doc, other, f) in documents_and_filter()) {
        let compiled = Filter::from_json(&f).expect("generated filters are valid");
        let payload = serde_json::to_vec(&doc).unwrap();
        prop_assert_eq!(compiled.matches(&payload), reference(&f, &payload), "payload {}", doc);
        let pretty = serde_json::to_vec_pretty(&doc).unwrap();
        prop_assert_eq!(compiled.matches(&pretty), reference(&f, &pretty));
        // Duplicate keys: `other`'s entries first, then `doc`'s.
        if let (Value::Object(first), Value::Object(last)) = (&other, &doc) {
            if !first.is_empty() && !last.is_empty() {
                let first = serde_json::to_string(first).unwrap();
                let last = serde_json::to_string(last).unwrap();
                let merged = format!("{},{}", &first[..first.len() - 1], &last[1..]);
                prop_assert_eq!(
                    compiled.matches(merged.as_bytes()),
                    reference(&f, merged.as_bytes()),
                    "payload {}", merged
                );
            }
        }
        // Serialising and reading back gives the same filter.
        let again = Filter::from_json(compiled.as_json());
        prop_assert_eq!(again.as_ref(), Ok(&compiled));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn mutated_payloads_never_panic_and_agree_when_valid(
        (doc, f) in document_and_filter(),
        position in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        cut in any::<bool>(),
    ) {
        let compiled = Filter::from_json(&f).expect("generated filters are valid");
        let mut payload = serde_json::to_vec(&doc).unwrap();
        let at = position.index(payload.len());
        if cut {
            payload.truncate(at);
        } else {
            payload[at] = byte;
        }
        let lazy = compiled.matches(&payload);
        // Parts the filter skips are checked for syntax only, so agreement
        // is only promised for payloads serde_json fully accepts.
        if serde_json::from_slice::<Value>(&payload).is_ok() {
            prop_assert_eq!(lazy, reference(&f, &payload));
        } else if std::str::from_utf8(&payload).is_err() {
            prop_assert!(!lazy);
        }
    }

    #[test]
    fn matches_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        for f in sample_filters() {
            let _ = f.matches(&bytes);
        }
    }

    #[test]
    fn parse_never_panics_on_arbitrary_strings(text in any::<String>()) {
        let _ = Filter::parse(&text);
    }

    #[test]
    fn parse_never_panics_on_json_like_strings(text in "[\\[\\]{}\":,$a-z0-9 .\\\\-]{0,80}") {
        let _ = Filter::parse(&text);
    }

    #[test]
    fn parse_never_panics_on_truncated_filters((_doc, f) in document_and_filter(), position in any::<prop::sample::Index>()) {
        let text = serde_json::to_string(&f).unwrap();
        let mut cut = position.index(text.len() + 1);
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        let result = Filter::parse(&text[..cut]);
        if cut == text.len() {
            prop_assert!(result.is_ok());
        }
    }
}
