//! Criterion: polling a Memory-adapter backlog in pages of 1000 (`cargo bench --bench poll`),
//! next to a baseline measured in the same run: cloning the same number of `Bytes` payloads
//! out of a `Vec` (the floor of handing out shared payloads).

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use purple_rain::{
    AdapterConfig, BackpressureMode, ConsumeRequest, ConsumeResponse, EventBus, EventBusConfig, Filter, Ordering,
    RawEvent,
};

/// A 1M-event backlog, as in `benches/bench.rs`; every iteration polls all of it.
const BACKLOG: usize = 1_000_000;

fn payload(i: usize) -> String {
    let kind = if i % 100 == 0 { "buy " } else { "view" };
    let text = format!(r#"{{"id":{i:>10},"kind":"{kind}","pad":"{}"}}"#, "x".repeat(60));
    debug_assert_eq!(text.len(), 100);
    text
}

fn backlog_bus(shards: u16) -> EventBus {
    purple_rain::runtime::wait(async move {
        let config = EventBusConfig::builder()
            .shards(shards)
            .ring_capacity(1 << 16)
            .backpressure(BackpressureMode::Block)
            .adapter(AdapterConfig::memory().max_events_per_shard(BACKLOG))
            .build()
            .unwrap();
        let bus = EventBus::new(config).await.unwrap();
        for i in 0..BACKLOG {
            bus.ingest_raw(RawEvent::from_bytes(payload(i))).unwrap();
        }
        bus.flush().await.unwrap();
        bus
    })
}

/// Reads the whole backlog page by page; returns the events returned. With `reuse`, each page
/// is read with `poll_into` into the previous one.
async fn drain(bus: &EventBus, ordering: Ordering, filter: Option<&Filter>, reuse: bool) -> usize {
    let mut page = ConsumeResponse::default();
    let mut returned = 0;
    loop {
        let mut request = ConsumeRequest::new(1000).ordering(ordering).from(std::mem::take(&mut page.cursor));
        if let Some(filter) = filter {
            request = request.filter(filter.clone());
        }
        if reuse {
            bus.poll_into(request, &mut page).await.unwrap();
        } else {
            page = bus.poll(request).await.unwrap();
        }
        returned += page.events.len();
        if !page.has_more {
            return returned;
        }
    }
}

fn poll(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let mut group = c.benchmark_group("poll_100B_backlog");
    group.throughput(Throughput::Elements(BACKLOG as u64));
    group.sample_size(20);
    let payloads: Vec<Bytes> = (0..BACKLOG).map(|i| Bytes::from(payload(i))).collect();
    group.bench_function("baseline_clone_bytes_in_pages", |b| {
        b.iter(|| payloads.chunks(1000).map(|page| page.to_vec()).map(|page| page.len()).sum::<usize>())
    });
    let one = backlog_bus(1);
    let eight = backlog_bus(8);
    let buy = Filter::eq("kind", "buy ").unwrap();
    // Numbers have no single spelling to search for, so every event examined is parsed.
    let low_ids = Filter::lt("id", 10_000).unwrap();
    for (name, bus, ordering, filter, reuse) in [
        ("sequence_1_shard", &one, Ordering::Sequence, None, false),
        ("sequence_1_shard_poll_into", &one, Ordering::Sequence, None, true),
        ("sequence_8_shards", &eight, Ordering::Sequence, None, false),
        ("sequence_8_shards_poll_into", &eight, Ordering::Sequence, None, true),
        ("timestamp_8_shards", &eight, Ordering::Timestamp, None, false),
        ("filter_1pct_8_shards_examined", &eight, Ordering::Sequence, Some(&buy), false),
        ("filter_1pct_on_a_number_8_shards_examined", &eight, Ordering::Sequence, Some(&low_ids), false),
    ] {
        group.bench_function(name, |b| b.iter(|| runtime.block_on(drain(bus, ordering, filter, reuse))));
    }
    group.finish();
}

criterion_group!(benches, poll);
criterion_main!(benches);
