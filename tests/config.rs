//! Config parsing and validation: every invalid field is refused with an error naming it.

use purple_rain::{AdapterConfig, BackpressureMode, BatchConfig, ConfigError, EventBusConfig, RawEvent, ScalingPolicy};

fn field_of(result: Result<EventBusConfig, ConfigError>) -> String {
    match result {
        Err(ConfigError::Invalid { field, .. }) => field,
        other => panic!("expected an invalid-field error, got {other:?}"),
    }
}

#[test]
fn the_spec_builder_example_compiles_and_validates() {
    let config = EventBusConfig::builder()
        .shards(16)
        .ring_capacity(4096)
        .batch(BatchConfig::default().max_events(1024).max_delay_ms(5))
        .backpressure(BackpressureMode::DropOldest)
        .adapter(AdapterConfig::net().listen("0.0.0.0:7777").peer("10.0.0.2:7777"))
        .scaling(ScalingPolicy::default())
        .build()
        .unwrap();
    assert_eq!(config.shards, 16);
    assert_eq!(config.backpressure, BackpressureMode::DropOldest);
}

#[test]
fn default_is_noop() {
    assert_eq!(EventBusConfig::default().adapter, AdapterConfig::Noop);
    assert!(EventBusConfig::default().validate().is_ok());
}

#[test]
fn each_invalid_field_is_named() {
    let b = EventBusConfig::builder;
    assert_eq!(field_of(b().shards(0).build()), "shards");
    assert_eq!(field_of(b().shards(5000).build()), "shards");
    assert_eq!(field_of(b().ring_capacity(0).build()), "ring_capacity");
    assert_eq!(field_of(b().ring_capacity(1000).build()), "ring_capacity");
    assert_eq!(field_of(b().batch(BatchConfig::default().max_events(0)).build()), "batch.max_events");
    let retry = purple_rain::RetryPolicy { max_attempts: 0, ..Default::default() };
    assert_eq!(field_of(b().batch(BatchConfig::default().retry(retry)).build()), "batch.retry.max_attempts");
    let retry = purple_rain::RetryPolicy { initial_backoff_ms: 0, ..Default::default() };
    assert_eq!(field_of(b().batch(BatchConfig::default().retry(retry)).build()), "batch.retry.initial_backoff_ms");
    let policy = |f: fn(&mut ScalingPolicy)| {
        let mut p = ScalingPolicy::default();
        f(&mut p);
        p
    };
    assert_eq!(field_of(b().scaling(policy(|p| p.min_shards = 0)).build()), "scaling.min_shards");
    assert_eq!(field_of(b().scaling(policy(|p| p.max_shards = 0)).build()), "scaling.max_shards");
    assert_eq!(field_of(b().scaling(policy(|p| p.fill_ratio_high = f64::NAN)).build()), "scaling.fill_ratio_high");
    assert_eq!(field_of(b().scaling(policy(|p| p.fill_ratio_low = 0.9)).build()), "scaling.fill_ratio_low");
    assert_eq!(
        field_of(b().scaling(policy(|p| p.ingest_rate_high = f64::INFINITY)).build()),
        "scaling.ingest_rate_high"
    );
    assert_eq!(
        field_of(b().scaling(policy(|p| p.cooldown = std::time::Duration::ZERO)).build()),
        "scaling.cooldown_ms"
    );
    assert_eq!(
        field_of(b().shards(8).scaling(policy(|p| p.max_shards = 4)).build()),
        "shards",
        "shards outside the scaling bounds"
    );
    assert_eq!(
        field_of(b().adapter(AdapterConfig::memory().max_events_per_shard(0)).build()),
        "adapter.max_events_per_shard"
    );
    assert_eq!(field_of(b().adapter(AdapterConfig::net().listen("nowhere")).build()), "adapter.listen");
    assert_eq!(field_of(b().adapter(AdapterConfig::net().peer("a:b")).build()), "adapter.peers[0]");
    assert_eq!(field_of(b().adapter(AdapterConfig::redis("http://x")).build()), "adapter.url");
    assert_eq!(field_of(b().producer_nonce_path("").build()), "producer_nonce_path");
}

#[test]
fn json_shape_round_trips_and_parses_every_documented_field() {
    let text = r#"{"shards": 4, "ring_capacity": 4096,
        "batch": {"max_events": 1024, "max_delay_ms": 5},
        "backpressure": "drop_oldest",
        "adapter": {"type": "memory", "max_events_per_shard": 1000000},
        "scaling": {"min_shards": 1, "max_shards": 16, "auto": true},
        "producer_nonce_path": "/var/lib/app/producer.nonce"}"#;
    let config = EventBusConfig::from_json(text).unwrap();
    assert_eq!(config.shards, 4);
    assert_eq!(config.backpressure, BackpressureMode::DropOldest);
    assert_eq!(config.adapter, AdapterConfig::Memory(AdapterConfig::memory().max_events_per_shard(1_000_000)));
    let scaling = config.scaling.clone().unwrap();
    assert_eq!((scaling.min_shards, scaling.max_shards, scaling.auto), (1, 16, true));
    assert_eq!(EventBusConfig::from_json(&config.to_json()).unwrap(), config);
    for adapter in [
        r#"{"type":"noop"}"#,
        r#"{"type":"redis","url":"redis://127.0.0.1:6379","stream_prefix":"purple"}"#,
        r#"{"type":"jetstream","url":"nats://127.0.0.1:4222","stream_prefix":"purple"}"#,
        r#"{"type":"net","listen":"127.0.0.1:7777","peers":["127.0.0.1:7778"],"insecure":true}"#,
        r#"{"type":"net","listen":"0.0.0.0:7777","key":"000102030405060708090a0b0c0d0e0f000102030405060708090a0b0c0d0e0f"}"#,
    ] {
        EventBusConfig::from_json(&format!(r#"{{"adapter":{adapter}}}"#)).unwrap();
    }
    for mode in ["block", "drop_oldest", "drop_newest"] {
        EventBusConfig::from_json(&format!(r#"{{"backpressure":"{mode}"}}"#)).unwrap();
    }
    assert_eq!(EventBusConfig::from_json("").unwrap(), EventBusConfig::default());
    assert_eq!(EventBusConfig::from_json("null").unwrap(), EventBusConfig::default());
}

#[test]
fn json_errors_name_the_key() {
    let err = |text: &str| match EventBusConfig::from_json(text) {
        Err(e) => e.to_string(),
        Ok(c) => panic!("accepted {text}: {c:?}"),
    };
    assert!(err(r#"{"shard": 4}"#).contains("shard"), "unknown top-level key");
    assert!(err(r#"{"batch": {"max_event": 4}}"#).contains("max_event"), "unknown nested key");
    assert!(err(r#"{"adapter": {"type": "memory", "max": 1}}"#).contains("max"), "unknown adapter key");
    assert!(err(r#"{"adapter": {"type": "kafka"}}"#).contains("kafka"), "unknown adapter type");
    assert!(err(r#"{"backpressure": "sample"}"#).contains("sample"), "unknown mode never falls back");
    assert!(err(r#"{"shards": "4"}"#).contains("invalid type"), "wrong type");
    assert!(err(r#"{"shards": 0}"#).contains("shards"), "validation runs on JSON too");
    assert!(err(r#"{"scaling": {"min_shards": 1, "max_shards": 16, "autoo": true}}"#).contains("autoo"));
}

#[test]
fn from_bytes_validated_rejects_bad_json() {
    for bad in [&b"{"[..], b"{\"a\":}", b"[1,2", b"nul", b"{} {}", b"\xff\xfe", b""] {
        assert!(RawEvent::from_bytes_validated(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
    }
    assert!(RawEvent::from_bytes_validated(&br#"{"a":[1,{"b":null}]}"#[..]).is_ok());
}

#[tokio::test]
async fn unavailable_adapters_are_config_errors_not_panics() {
    // A Net config without its cluster key validates (the spec's example has none) but no bus
    // runs with it.
    let config = EventBusConfig::builder().adapter(AdapterConfig::net().listen("127.0.0.1:7777")).build().unwrap();
    let error = purple_rain::EventBus::new(config).await.unwrap_err();
    assert!(matches!(error, ConfigError::Invalid { .. }), "{error:?}");
    assert!(error.to_string().contains("cluster key is required"), "{error}");
}

#[test]
fn a_config_is_an_object_never_an_array_read_by_position() {
    for text in ["[]", "[1]", " [4, 1024]"] {
        match EventBusConfig::from_json(text) {
            Err(e @ ConfigError::Json(_)) => {
                assert_eq!(e.kind(), purple_rain::error::ErrorKind::Config);
                assert!(e.to_string().contains("expected a JSON object"), "{e}");
            }
            other => panic!("{text} gave {other:?}"),
        }
    }
    for (text, field) in [
        (r#"{"batch": [10]}"#, "batch"),
        (r#"{"batch": {"retry": [3]}}"#, "batch.retry"),
        (r#"{"adapter": ["memory"]}"#, "adapter"),
    ] {
        assert_eq!(field_of(EventBusConfig::from_json(text)), field, "{text}");
    }
    // Arrays where the config has arrays stay fine, and objects parse as before.
    assert_eq!(EventBusConfig::from_json(r#"{"shards": 3}"#).unwrap().shards, 3);
}

#[test]
fn json_errors_carry_the_full_key_path_typed() {
    let path = |text: &str| match EventBusConfig::from_json(text) {
        Err(ConfigError::Json(json)) => {
            let path = json.path().map(str::to_owned);
            if let Some(path) = &path {
                assert!(json.to_string().contains(&format!("`{path}`")), "the message names the path: {json}");
            }
            path
        }
        other => panic!("{text} gave {other:?}"),
    };
    for (text, expected) in [
        (r#"{"adapter":{"type":"memory","max_events_per_shard":-5}}"#, "adapter.max_events_per_shard"),
        (r#"{"adapter":{"type":"memory","max_bytes_per_shard":"x"}}"#, "adapter.max_bytes_per_shard"),
        (r#"{"batch":{"max_events":"ten"}}"#, "batch.max_events"),
        (r#"{"batch":{"retry":{"max_attempts":-1}}}"#, "batch.retry.max_attempts"),
        (r#"{"shards":"4"}"#, "shards"),
    ] {
        assert_eq!(path(text).as_deref(), Some(expected), "{text}");
    }
    assert_eq!(path("{"), None, "a syntax error has no key path");
}
