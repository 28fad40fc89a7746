//! The Prometheus text exposition read back by a real parser: the Prometheus project's Python
//! client, `prometheus_client`, installed with pip into a venv under the target directory on
//! first use (`tests/prometheus/parse.py`).

use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;

/// A Python with `prometheus_client`, made once per test process.
fn python() -> PathBuf {
    static READY: Mutex<Option<PathBuf>> = Mutex::new(None);
    let mut ready = READY.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(python) = ready.as_ref() {
        return python.clone();
    }
    let venv = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("prometheus-venv");
    let python = venv.join("bin/python");
    let has_parser = |python: &PathBuf| {
        Command::new(python).args(["-c", "import prometheus_client.parser"]).status().is_ok_and(|s| s.success())
    };
    if !has_parser(&python) {
        let made = Command::new("python3").arg("-m").arg("venv").arg(&venv).status();
        assert!(made.is_ok_and(|s| s.success()), "python3 -m venv {} failed", venv.display());
        let pip = Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check", "prometheus_client"])
            .status();
        assert!(pip.is_ok_and(|s| s.success()), "pip install prometheus_client failed");
        assert!(has_parser(&python), "prometheus_client does not import after pip install");
    }
    *ready = Some(python.clone());
    python
}

/// One parsed family: its type, help, and samples as (name, labels, value).
#[derive(Debug)]
pub struct Family {
    pub kind: String,
    pub help: String,
    pub samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

/// Parses `text` with prometheus_client; panics (with the parser's message) if it cannot.
pub fn parse_prometheus(text: &str) -> BTreeMap<String, Family> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/prometheus/parse.py");
    let mut child = Command::new(python())
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the parser");
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "prometheus_client rejected:\n{text}\n{}", String::from_utf8_lossy(&out.stderr));
    let parsed: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let mut families = BTreeMap::new();
    for f in parsed {
        let samples = f["samples"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let labels = s["labels"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                    .collect();
                (s["name"].as_str().unwrap().to_owned(), labels, s["value"].as_str().unwrap().parse::<f64>().unwrap())
            })
            .collect();
        let name = f["name"].as_str().unwrap().to_owned();
        let family = Family {
            kind: f["type"].as_str().unwrap().to_owned(),
            help: f["documentation"].as_str().unwrap().to_owned(),
            samples,
        };
        // A family split in two (samples not together) would come back twice.
        assert!(families.insert(name.clone(), family).is_none(), "family {name} appears twice");
    }
    families
}

/// The value of the one sample `sample` of family `family` with these labels.
pub fn value(families: &BTreeMap<String, Family>, family: &str, sample: &str, labels: &[(&str, &str)]) -> f64 {
    let f = families.get(family).unwrap_or_else(|| panic!("no family {family}"));
    let want: BTreeMap<String, String> = labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    let hits: Vec<f64> = f.samples.iter().filter(|(n, l, _)| n == sample && *l == want).map(|s| s.2).collect();
    assert_eq!(hits.len(), 1, "{sample}{labels:?} in {f:?}");
    hits[0]
}

/// The value of the adapter metric `name` (no labels) in `bus.stats_prometheus()`, as
/// `prometheus_client` reads it (a counter's family drops `_total`, its sample keeps it); `None`
/// when the family is not there.
pub fn scraped(bus: &purple_rain::EventBus, name: &str) -> Option<f64> {
    let families = parse_prometheus(&bus.stats_prometheus());
    let family = format!("purple_rain_{}", name.strip_suffix("_total").unwrap_or(name));
    families.contains_key(&family).then(|| value(&families, &family, &format!("purple_rain_{name}"), &[]))
}

/// The value of the adapter metric `name` in `bus.stats_json()`; `None` when it is not there.
pub fn json_metric(bus: &purple_rain::EventBus, name: &str) -> Option<f64> {
    let doc: Value = serde_json::from_str(&bus.stats_json()).expect("stats_json is JSON");
    let metrics = doc["adapter"]["metrics"].as_array().cloned().unwrap_or_default();
    metrics.iter().find(|m| m["name"] == name).and_then(|m| m["value"].as_f64())
}
