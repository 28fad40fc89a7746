//! Real NATS servers for the JetStream adapter tests: the shared one on 127.0.0.1:4222 (or
//! `PURPLE_RAIN_NATS_URL`), or a private `nats-server -js` on a free port with its own store for
//! tests that stop, pause or restart it. A private server stops on drop.

use super::{block, free_port};
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A nats-server process of this test, stopped on drop.
pub struct NatsServer {
    child: Option<Child>,
    port: u16,
    store: PathBuf,
}

impl NatsServer {
    pub fn start(port: u16, store: &Path) -> Self {
        let binary = std::env::var("NATS_SERVER_BIN").unwrap_or_else(|_| {
            if Path::new("/usr/sbin/nats-server").exists() {
                "/usr/sbin/nats-server".into()
            } else {
                "nats-server".into()
            }
        });
        let mut child = Command::new(binary)
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(store)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("nats-server must be installed (Debian package nats-server)");
        // The server logs to stderr; wait for its ready line, then keep draining the pipe.
        let stderr = child.stderr.take().unwrap();
        let (ready_tx, ready_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut ready_tx = Some(ready_tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("Server is ready") {
                    if let Some(tx) = ready_tx.take() {
                        let _ = tx.send(());
                    }
                }
            }
        });
        ready_rx.recv_timeout(Duration::from_secs(20)).expect("nats-server did not become ready");
        Self { child: Some(child), port, store: store.to_owned() }
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn signal(&self, signal: libc::c_int) {
        if let Some(child) = &self.child {
            // SAFETY: `kill` only sends a signal to the pid of a child this struct owns and
            // has not reaped yet.
            unsafe { libc::kill(child.id() as libc::pid_t, signal) };
        }
    }

    /// Freezes the server: connections stay open, nothing is answered.
    pub fn pause(&self) {
        self.signal(libc::SIGSTOP);
    }

    pub fn resume(&self) {
        self.signal(libc::SIGCONT);
    }

    /// Graceful stop (SIGTERM), as an orderly restart does.
    pub fn stop(&mut self) {
        self.resume();
        self.signal(libc::SIGTERM);
        if let Some(mut child) = self.child.take() {
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        let store = self.store.clone();
        *self = Self::start(self.port, &store);
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The shared server when one answers, else a private one for this test.
pub struct TestServer {
    pub url: String,
    _own: Option<(NatsServer, tempfile::TempDir)>,
}

pub fn server() -> TestServer {
    if let Ok(url) = std::env::var("PURPLE_RAIN_NATS_URL") {
        return TestServer { url, _own: None };
    }
    let shared = "127.0.0.1:4222".parse().unwrap();
    if TcpStream::connect_timeout(&shared, Duration::from_millis(500)).is_ok() {
        return TestServer { url: "nats://127.0.0.1:4222".into(), _own: None };
    }
    let dir = tempfile::tempdir().unwrap();
    let own = NatsServer::start(free_port(), dir.path());
    TestServer { url: own.url(), _own: Some((own, dir)) }
}

/// Deletes a prefix's streams when the test ends, pass or fail.
pub struct Streams {
    pub url: String,
    pub prefix: String,
}

impl Drop for Streams {
    fn drop(&mut self) {
        let (url, prefix) = (self.url.clone(), self.prefix.clone());
        let _ = block(async move {
            let client = async_nats::connect(url).await?;
            let js = async_nats::jetstream::new(client);
            for shard in 0..64u16 {
                let _ = js.delete_stream(format!("{prefix}_{shard}")).await;
            }
            Ok::<(), async_nats::Error>(())
        });
    }
}
