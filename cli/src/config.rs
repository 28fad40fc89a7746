//! The bus config a command runs with: a file or JSON text, with flags for the common cases on
//! top.
//!
//! Flags edit the JSON before the library parses it, so the library's own validation (and its
//! messages, which name the key) apply to every source, and a config for an adapter this tool
//! has no flag for passes through unchanged.

use crate::exit::{Failure, CONFIG};
use purple_rain::{AdapterConfig, EventBusConfig};
use serde_json::{json, Map, Value};
use std::path::PathBuf;

/// Where the bus config comes from (shared by every subcommand).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct BusArgs {
    /// Bus config file, in the JSON shape of `EventBusConfig` (see README). Without any config
    /// source the in-memory adapter is used.
    #[arg(long, value_name = "FILE", conflicts_with = "config_json")]
    pub config: Option<PathBuf>,
    /// Bus config as JSON text, e.g. '{"shards":1,"adapter":{"type":"redis","url":"redis://127.0.0.1:6379"}}'.
    #[arg(long, value_name = "JSON")]
    pub config_json: Option<String>,
    /// Redis Streams at URL (sets the adapter; keeps the config's other Redis keys).
    #[arg(long, value_name = "URL", conflicts_with_all = ["jetstream", "disk"])]
    pub redis: Option<String>,
    /// NATS JetStream at URL (sets the adapter; keeps the config's other JetStream keys).
    #[arg(long, value_name = "URL", conflicts_with = "disk")]
    pub jetstream: Option<String>,
    /// The durable log in directory DIR (sets the adapter; keeps the config's other disk keys).
    /// `consume` and `stats` open it read-only, so they can read a log another process writes.
    /// When the adapter is Net (`--net-*`, or the config's), the Net node's own log is kept
    /// there instead: a durable node, which restarts as the same node with its events.
    #[arg(long, value_name = "DIR")]
    pub disk: Option<PathBuf>,
    /// Join a Net mesh, listening on ADDR (e.g. 0.0.0.0:7777); sets the adapter to `net`.
    #[arg(long, value_name = "ADDR", conflicts_with_all = ["redis", "jetstream"])]
    pub net_listen: Option<String>,
    /// Join a Net mesh through this peer (repeatable); sets the adapter to `net`.
    #[arg(long, value_name = "ADDR", conflicts_with_all = ["redis", "jetstream"])]
    pub net_peer: Vec<String>,
    /// The Net mesh's cluster key: a file holding 64 hex digits.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["redis", "jetstream"])]
    pub net_key_file: Option<PathBuf>,
    /// Number of shards to ingest into (1 keeps the input's order); a consumer reads every shard
    /// the store holds, whatever its own number.
    #[arg(long, value_name = "N")]
    pub shards: Option<u16>,
}

/// What a command does with the bus; it decides the defaults the config does not set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Ingests (`produce`, `bench`): a tool that reads a file should wait for room rather than
    /// refuse events, so back-pressure is `block`.
    Writer,
    /// Only polls (`consume`, `stats`): a disk log is opened `read_only`, without the writer's
    /// lock, so it can be read while its writer runs.
    Reader,
}

impl BusArgs {
    /// The validated config for a command in `role`; the config's own keys win over the role's
    /// defaults.
    pub fn resolve(&self, role: Role) -> Result<EventBusConfig, Failure> {
        let (mut value, source) = self.base()?;
        let Value::Object(map) = &mut value else {
            return Err(Failure::new(CONFIG, format!("{source}: the config must be a JSON object")));
        };
        let mut flags = Vec::new();
        if let Some(shards) = self.shards {
            map.insert("shards".into(), json!(shards));
            flags.push(("shards", "--shards"));
        }
        if let Some(url) = &self.redis {
            set_adapter(map, "redis", "url", json!(url));
            flags.push(("adapter", "--redis"));
        }
        if let Some(url) = &self.jetstream {
            set_adapter(map, "jetstream", "url", json!(url));
            flags.push(("adapter", "--jetstream"));
        }
        if let Some(addr) = &self.net_listen {
            set_adapter(map, "net", "listen", json!(addr));
            flags.push(("adapter", "--net-listen"));
        }
        if !self.net_peer.is_empty() {
            set_adapter(map, "net", "peers", json!(self.net_peer));
            flags.push(("adapter", "--net-peer"));
        }
        if let Some(file) = &self.net_key_file {
            set_adapter(map, "net", "key_file", json!(file));
            flags.push(("adapter", "--net-key-file"));
        }
        if let Some(dir) = &self.disk {
            let net = map.get("adapter").and_then(|a| a.get("type")).and_then(Value::as_str) == Some("net");
            if net {
                set_net_disk(map, dir);
                // Named before the `adapter` flags, so an error in its keys names `--disk`.
                flags.insert(0, ("adapter.disk", "--disk"));
            } else {
                set_adapter(map, "disk", "dir", json!(dir));
                flags.push(("adapter", "--disk"));
            }
        }
        if !map.contains_key("adapter") && self.config.is_none() && self.config_json.is_none() {
            map.insert("adapter".into(), json!({"type": "memory"}));
        }
        match role {
            Role::Writer if !map.contains_key("backpressure") => {
                map.insert("backpressure".into(), json!("block"));
            }
            Role::Reader => {
                if let Some(Value::Object(adapter)) = map.get_mut("adapter") {
                    if adapter.get("type").and_then(Value::as_str) == Some("disk") && !adapter.contains_key("read_only")
                    {
                        adapter.insert("read_only".into(), json!(true));
                    }
                }
            }
            Role::Writer => {}
        }
        EventBusConfig::from_json(&value.to_string()).map_err(|e| {
            // Name the flag when a flag set the key; otherwise the file or text it came from.
            let from = e
                .field()
                .and_then(|field| flags.iter().find(|(key, _)| field == *key || field.starts_with(&format!("{key}."))))
                .map_or(source.clone(), |(_, flag)| flag.to_string());
            Failure::new(CONFIG, format!("{from}: {e}"))
        })
    }

    /// The config's JSON before flags, and how to name it in errors.
    fn base(&self) -> Result<(Value, String), Failure> {
        let (text, source) = if let Some(path) = &self.config {
            let source = format!("--config {}", path.display());
            let text = std::fs::read_to_string(path).map_err(|e| Failure::new(CONFIG, format!("{source}: {e}")))?;
            (text, source)
        } else if let Some(text) = &self.config_json {
            (text.clone(), "--config-json".to_owned())
        } else {
            return Ok((json!({}), "the flags".to_owned()));
        };
        if text.trim().is_empty() || text.trim() == "null" {
            return Ok((json!({}), source));
        }
        let value =
            serde_json::from_str(&text).map_err(|e| Failure::new(CONFIG, format!("{source}: not JSON: {e}")))?;
        Ok((value, source))
    }
}

/// Sets the adapter's `key` (its URL or directory), keeping the other keys when the config
/// already names that type.
fn set_adapter(map: &mut Map<String, Value>, kind: &str, key: &str, value: Value) {
    match map.get_mut("adapter") {
        Some(Value::Object(adapter)) if adapter.get("type").and_then(Value::as_str) == Some(kind) => {
            adapter.insert(key.into(), value);
        }
        _ => {
            map.insert("adapter".into(), json!({"type": kind, key: value}));
        }
    }
}

/// Keeps the Net adapter's log in `dir` (its `disk` config, other disk keys kept).
fn set_net_disk(map: &mut Map<String, Value>, dir: &std::path::Path) {
    if let Some(Value::Object(adapter)) = map.get_mut("adapter") {
        match adapter.get_mut("disk") {
            Some(Value::Object(disk)) => {
                disk.insert("dir".into(), json!(dir));
            }
            _ => {
                adapter.insert("disk".into(), json!({ "dir": dir }));
            }
        }
    }
}

/// Says so when the adapter keeps events only inside this process: another `purple-rain`
/// (or any other process) will not see them.
pub fn warn_if_private(config: &EventBusConfig, command: &str) {
    let private = match &config.adapter {
        AdapterConfig::Memory(_) => Some("memory"),
        AdapterConfig::Noop => Some("noop"),
        _ => None,
    };
    if let Some(name) = private {
        eprintln!(
            "note: the {name} adapter keeps nothing outside this process, so `{command}` sees only its own \
             events; it is useful for `bench`. Use --redis, --jetstream or --config for a shared store."
        );
    }
}
