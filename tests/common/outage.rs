//! A producer that keeps ingesting while the broker behind the bus is down.

use super::payload;
use purple_rain::{EventBus, RawEvent};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

/// Ingests `payload(source, i)` for `i` in `0..count` from a plain thread (so `Block` mode may
/// park it), pausing every 2 000 events to spread ingest over time. It holds the second half
/// back until [`broker_down`](Self::broker_down) is called, so an outage always meets events
/// in flight, whatever the machine's speed.
pub struct OutageProducer {
    down: mpsc::Sender<()>,
    thread: JoinHandle<()>,
}

impl OutageProducer {
    pub fn start(bus: &Arc<EventBus>, source: &'static str, count: usize, pause: Duration) -> Self {
        let bus = bus.clone();
        let (down, wait_for_down) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            for i in 0..count {
                if i == count / 2 {
                    wait_for_down.recv().unwrap();
                }
                bus.ingest_raw(RawEvent::from_bytes(payload(source, i))).unwrap();
                if i % 2_000 == 0 {
                    std::thread::sleep(pause);
                }
            }
        });
        Self { down, thread }
    }

    /// Lets the second half go: the broker is down now.
    pub fn broker_down(&self) {
        self.down.send(()).unwrap();
    }

    /// Waits until every event was ingested.
    pub fn finish(self) {
        self.thread.join().unwrap();
    }
}
