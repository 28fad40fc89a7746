//! Criterion: `ingest_raw` of 100-byte events against a bare crossbeam `ArrayQueue` push/pop of
//! the same events, measured in the same run (`cargo bench --bench ingest`).

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use crossbeam_queue::ArrayQueue;
use purple_rain::{BackpressureMode, EventBus, EventBusConfig, RawEvent};

const BATCH: usize = 10_000;

fn events() -> Vec<RawEvent> {
    (0..BATCH).map(|i| RawEvent::from_bytes(format!("{{\"id\":{i:>10},\"pad\":\"{}\"}}", "x".repeat(74)))).collect()
}

fn ingest(c: &mut Criterion) {
    let mut group = c.benchmark_group("ingest_100B");
    group.throughput(Throughput::Elements(BATCH as u64));
    let queue = ArrayQueue::new(1 << 16);
    group.bench_function("baseline_crossbeam_push_pop", |b| {
        b.iter_batched(
            events,
            |batch| {
                for e in batch {
                    let _ = queue.push(e);
                }
                while queue.pop().is_some() {}
            },
            BatchSize::LargeInput,
        )
    });
    let config =
        EventBusConfig::builder().shards(4).ring_capacity(1 << 16).backpressure(BackpressureMode::Block).build();
    let bus = purple_rain::runtime::wait(async move { EventBus::new(config.unwrap()).await.unwrap() });
    group.bench_function("ingest_raw_noop", |b| {
        b.iter_batched(
            events,
            |batch| {
                for e in batch {
                    bus.ingest_raw(e).unwrap();
                }
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, ingest);
criterion_main!(benches);
