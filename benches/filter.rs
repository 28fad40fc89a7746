//! Criterion: `Filter::matches` of a 1%-matching filter over 100 000 payloads of ~100 bytes,
//! next to two baselines measured in the same run: checking the same payloads with serde's
//! `IgnoredAny` (a full syntax pass that builds nothing) and parsing them into a `Value` to read
//! the same field (`cargo bench --bench filter`).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use purple_rain::Filter;
use serde::de::IgnoredAny;
use serde_json::Value;

const PAYLOADS: u64 = 100_000;

fn payloads() -> Vec<Vec<u8>> {
    (0..PAYLOADS)
        .map(|n| {
            let id = if n % 100 == 0 { 42 } else { 1000 + n };
            format!(
                r#"{{"user":{{"id":{id},"name":"user-{n}"}},"kind":"click","ts":{},"tags":["a","b"]}}"#,
                1_700_000_000_000u64 + n
            )
            .into_bytes()
        })
        .collect()
}

fn filter(c: &mut Criterion) {
    let payloads = payloads();
    let one_percent = Filter::parse(r#"{"$eq":{"path":"user.id","value":42}}"#).unwrap();
    let matched = payloads.iter().filter(|p| one_percent.matches(p)).count();
    assert_eq!(matched as u64, PAYLOADS / 100, "the filter must match 1% of the payloads");

    let mut group = c.benchmark_group("filter_1pct_100k");
    group.throughput(Throughput::Elements(PAYLOADS));
    group.sample_size(20);
    group.bench_function("baseline_ignored_any", |b| {
        b.iter(|| payloads.iter().filter(|p| serde_json::from_slice::<IgnoredAny>(p).is_ok()).count())
    });
    group.bench_function("baseline_value_field", |b| {
        b.iter(|| {
            payloads.iter().filter(|p| serde_json::from_slice::<Value>(p).is_ok_and(|v| v["user"]["id"] == 42)).count()
        })
    });
    group.bench_function("filter_matches", |b| b.iter(|| payloads.iter().filter(|p| one_percent.matches(p)).count()));
    group.finish();
}

criterion_group!(benches, filter);
criterion_main!(benches);
