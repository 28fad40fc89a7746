//! Real Redis servers for the adapter tests: the shared one on 127.0.0.1:6379 (with a unique
//! key prefix per test, deleted afterwards), or a private `redis-server` on a free port for
//! tests that kill, pause or restart it. A private server stops on Drop.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use super::{free_port, unique_prefix};

pub const SHARED_URL: &str = "redis://127.0.0.1:6379";
const REDIS_SERVER: &str = "/usr/bin/redis-server";

/// The shared server, checked to answer; the project's test command starts it when needed.
pub fn shared_url() -> &'static str {
    let answers = TcpStream::connect_timeout(&"127.0.0.1:6379".parse().unwrap(), Duration::from_secs(1)).is_ok();
    assert!(
        answers,
        "no Redis on 127.0.0.1:6379: start one (`redis-server --save '' --appendonly no --daemonize yes`)"
    );
    SHARED_URL
}

/// Deletes every key of a prefix on the shared server when dropped.
pub struct PrefixGuard {
    pub url: String,
    pub prefix: String,
}

impl PrefixGuard {
    pub fn new(url: &str, test: &str) -> Self {
        Self { url: url.to_owned(), prefix: unique_prefix(test) }
    }
}

impl Drop for PrefixGuard {
    fn drop(&mut self) {
        let Ok(client) = redis::Client::open(self.url.as_str()) else { return };
        let Ok(mut conn) = client.get_connection() else { return };
        let keys: Vec<String> =
            redis::cmd("KEYS").arg(format!("{}:*", self.prefix)).query(&mut conn).unwrap_or_default();
        for key in keys {
            let _: redis::RedisResult<i64> = redis::cmd("DEL").arg(key).query(&mut conn);
        }
    }
}

/// A private `redis-server` on a free port.
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
    persistent: bool,
    paused: bool,
}

impl RedisServer {
    /// Keeps nothing on disk.
    pub fn start() -> Self {
        Self::launch(false)
    }

    /// Appends every write to an AOF and fsyncs it before replying, so a SIGKILL loses nothing
    /// that was acknowledged and a restart on the same directory brings it all back.
    pub fn start_persistent() -> Self {
        Self::launch(true)
    }

    fn launch(persistent: bool) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut server = Self { port: free_port(), child: None, dir, persistent, paused: false };
        server.spawn();
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_owned()
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new(REDIS_SERVER);
        cmd.arg("--port").arg(self.port.to_string()).arg("--bind").arg("127.0.0.1").arg("--save").arg("");
        cmd.arg("--dir").arg(self.dir.path());
        if self.persistent {
            cmd.args(["--appendonly", "yes", "--appendfsync", "always"]);
        } else {
            cmd.args(["--appendonly", "no"]);
        }
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("start redis-server");
        // Ready when it says so; the log is drained by a thread so the server never blocks on it.
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.contains("Ready to accept connections") {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(());
                    }
                }
            }
        });
        if rx.recv_timeout(Duration::from_secs(10)).is_err() {
            let _ = child.kill();
            panic!("redis-server on port {} did not become ready", self.port);
        }
        self.child = Some(child);
    }

    /// SIGKILL, as a crash.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            if self.paused {
                signal(&child, libc::SIGCONT);
                self.paused = false;
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts again on the same port and directory.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// SIGSTOP: the server keeps its connections but answers nothing.
    pub fn pause(&mut self) {
        if let Some(child) = &self.child {
            signal(child, libc::SIGSTOP);
            self.paused = true;
        }
    }

    pub fn resume(&mut self) {
        if let Some(child) = &self.child {
            signal(child, libc::SIGCONT);
            self.paused = false;
        }
    }

    /// A plain synchronous connection for checks.
    pub fn connection(&self) -> redis::Connection {
        redis::Client::open(self.url()).unwrap().get_connection().unwrap()
    }
}

fn signal(child: &Child, sig: libc::c_int) {
    // SAFETY: kill(2) on our own child's pid; it only sends a signal.
    unsafe {
        libc::kill(child.id() as libc::pid_t, sig);
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A TCP proxy to a Redis server that, when armed, forwards the next request containing
/// `EVALSHA` but drops the server's reply to it and closes the connection: the write happened,
/// the client never learns so.
pub struct ReplyDropProxy {
    pub port: u16,
    armed: Arc<AtomicBool>,
    dropped: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl ReplyDropProxy {
    pub fn start(upstream_port: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().unwrap().port();
        let armed = Arc::new(AtomicBool::new(false));
        let dropped = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (a, d, s) = (armed.clone(), dropped.clone(), stop.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if s.load(Ordering::Acquire) {
                    break;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream_port)) else { continue };
                let (a, d) = (a.clone(), d.clone());
                std::thread::spawn(move || pipe_pair(client, server, a, d));
            }
        });
        Self { port, armed, dropped, stop }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Drop the reply to the next `EVALSHA`.
    pub fn arm(&self) {
        self.armed.store(true, Ordering::Release);
    }

    /// Replies dropped so far.
    pub fn dropped(&self) -> usize {
        self.dropped.load(Ordering::Acquire)
    }
}

impl Drop for ReplyDropProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn pipe_pair(client: TcpStream, server: TcpStream, armed: Arc<AtomicBool>, dropped: Arc<AtomicUsize>) {
    let doomed = Arc::new(AtomicBool::new(false));
    let (mut c_read, mut s_write) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    let doomed_up = doomed.clone();
    let upstream = std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        let mut tail: Vec<u8> = Vec::new();
        loop {
            let n = match c_read.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            tail.extend_from_slice(&buf[..n]);
            let hit = tail.windows(7).any(|w| w.eq_ignore_ascii_case(b"EVALSHA"));
            if hit && armed.swap(false, Ordering::AcqRel) {
                doomed_up.store(true, Ordering::Release);
            }
            let keep = tail.len().saturating_sub(6);
            tail.drain(..keep);
            if s_write.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = s_write.shutdown(Shutdown::Write);
    });
    let (mut s_read, mut c_write) = (server, client);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match s_read.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if doomed.load(Ordering::Acquire) {
            dropped.fetch_add(1, Ordering::AcqRel);
            break;
        }
        if c_write.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = c_write.shutdown(Shutdown::Both);
    let _ = s_read.shutdown(Shutdown::Both);
    let _ = upstream.join();
}

/// A listener that accepts TCP connections and never answers (a hung server).
pub struct SilentServer {
    pub port: u16,
    _listener: TcpListener,
}

impl SilentServer {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().unwrap().port();
        // Never accept: the kernel completes the handshake from the backlog, then nothing.
        Self { port, _listener: listener }
    }
}
