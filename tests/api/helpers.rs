//! Test harness: runs the real `emporium` binary as a child process on a
//! temporary data directory and talks to it over HTTP.
//!
//! Every wait in here is bounded; every child is SIGKILLed when its
//! `TestApp` is dropped, so a failing test never leaks a process.

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub use crate::domain::*;

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789abcdef";

/// How to start the server.
#[derive(Clone, Debug, Default)]
pub struct AppOpts {
    pub demo: bool,
    /// Extra environment for the child, e.g. `EMPORIUM_ACTORS__IDLE_TIMEOUT_MS`.
    pub env: Vec<(String, String)>,
    /// Do not set `EMPORIUM_ADMIN_TOKEN` (the server must generate one).
    pub no_admin_token: bool,
    /// A TOML configuration file's contents, passed with `--config`.
    pub config: Option<String>,
    /// A data directory copied in before the first start (for example one written by an
    /// earlier version).
    pub preload: Option<PathBuf>,
}

impl AppOpts {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn demo(mut self) -> Self {
        self.demo = true;
        self
    }

    pub fn env(mut self, key: &str, value: impl ToString) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    pub fn config(mut self, toml: impl Into<String>) -> Self {
        self.config = Some(toml.into());
        self
    }

    pub fn preload(mut self, data_dir: impl Into<PathBuf>) -> Self {
        self.preload = Some(data_dir.into());
        self
    }

    pub fn no_admin_token(mut self) -> Self {
        self.no_admin_token = true;
        self
    }
}

/// A deadline for a bounded polling loop: `tick` sleeps, and panics with
/// `what` once the deadline has passed.
pub struct Deadline {
    end: Instant,
    what: String,
}

impl Deadline {
    pub fn new(timeout: Duration, what: impl Into<String>) -> Self {
        Self {
            end: Instant::now() + timeout,
            what: what.into(),
        }
    }

    pub fn expired(&self) -> bool {
        Instant::now() >= self.end
    }

    pub async fn tick(&self, interval: Duration) {
        if self.expired() {
            panic!("timed out waiting for: {}", self.what);
        }
        tokio::time::sleep(interval).await;
    }
}

/// A response, fully read.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    /// The body parsed as JSON, or `Value::Null` when it is not JSON.
    pub json: Value,
}

impl Resp {
    #[track_caller]
    pub fn expect(&self, status: u16) -> &Value {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.text
        );
        &self.json
    }

    pub fn error_code(&self) -> Option<&str> {
        self.json["error"]["code"].as_str()
    }

    /// Asserts the status and the `{"error":{"code","message"}}` envelope.
    #[track_caller]
    pub fn expect_error(&self, status: u16, code: &str) {
        self.expect_error_in(&[status], &[code]);
    }

    /// Asserts that the status is one of `statuses` and the error code one of
    /// `codes` (an empty `codes` accepts any code), with a non-empty message.
    #[track_caller]
    pub fn expect_error_in(&self, statuses: &[u16], codes: &[&str]) {
        assert!(
            statuses.contains(&self.status),
            "expected status in {statuses:?}, got {}; body: {}",
            self.status,
            self.text
        );
        let code = self
            .error_code()
            .unwrap_or_else(|| panic!("no error.code in the error body: {:?}", self.text));
        assert!(
            codes.is_empty() || codes.contains(&code),
            "expected error code in {codes:?}, got {code:?}; body: {}",
            self.text
        );
        assert!(
            code.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
            "error code is not snake_case: {code:?}"
        );
        let message = self.json["error"]["message"].as_str();
        assert!(
            message.is_some_and(|m| !m.is_empty()),
            "error.message missing or empty: {}",
            self.text
        );
    }
}

/// Turns a finished request into a `Resp`; panics on transport errors.
pub async fn read(resp: reqwest::Response) -> Resp {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.expect("reading the response body");
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Resp {
        status,
        headers,
        text,
        json,
    }
}

pub async fn send(rb: reqwest::RequestBuilder) -> Resp {
    read(rb.send().await.expect("sending the request")).await
}

pub struct TestApp {
    /// `http://127.0.0.1:PORT`; changes on every restart.
    pub address: String,
    /// `127.0.0.1:PORT` of the gRPC listener; changes on every restart.
    pub grpc_address: String,
    pub client: reqwest::Client,
    pub opts: AppOpts,
    root: tempfile::TempDir,
    child: Option<Child>,
    generation: u32,
}

pub async fn spawn_app(opts: AppOpts) -> TestApp {
    let root = tempfile::Builder::new()
        .prefix("emporium-test-")
        .tempdir()
        .expect("tempdir");
    std::fs::create_dir_all(root.path().join("data")).expect("data dir");
    if let Some(from) = &opts.preload {
        let status = Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", from.display()))
            .arg(root.path().join("data"))
            .status()
            .expect("running cp");
        assert!(status.success(), "copying the preloaded data dir");
    }
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client");
    let mut app = TestApp {
        address: String::new(),
        grpc_address: String::new(),
        client,
        opts,
        root,
        child: None,
        generation: 0,
    };
    app.start().await;
    app
}

impl TestApp {
    pub fn data_dir(&self) -> PathBuf {
        self.root.path().join("data")
    }

    /// The bound cluster transport address (`cluster.addr`), once written.
    pub fn cluster_addr(&self) -> Option<String> {
        std::fs::read_to_string(self.data_dir().join("cluster.addr"))
            .ok()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    }

    fn addr_file(&self) -> PathBuf {
        self.data_dir().join("http.addr")
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server is not running").id()
    }

    /// Starts the binary (again) on the same data dir and waits until ready.
    async fn start(&mut self) {
        assert!(self.child.is_none(), "server already running");
        let _ = std::fs::remove_file(self.addr_file());
        let _ = std::fs::remove_file(self.data_dir().join("grpc.addr"));
        self.generation += 1;
        let out = File::create(
            self.root
                .path()
                .join(format!("stdout.{}.log", self.generation)),
        )
        .expect("stdout log");
        let err = File::create(
            self.root
                .path()
                .join(format!("stderr.{}.log", self.generation)),
        )
        .expect("stderr log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_emporium"));
        cmd.arg("serve")
            .arg("--http-addr")
            .arg("127.0.0.1:0")
            .arg("--grpc-addr")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(self.data_dir())
            .arg("--log-format")
            .arg("json")
            .current_dir(self.root.path())
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        if self.opts.demo {
            cmd.arg("--demo");
        }
        if let Some(toml) = &self.opts.config {
            let path = self.root.path().join("node.toml");
            std::fs::write(&path, toml).expect("writing the config file");
            cmd.arg("--config").arg(path);
        }
        // Hermetic: nothing from the outer environment configures the child.
        for (key, _) in std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v)))
            .filter(|(k, _)| k.starts_with("EMPORIUM_"))
        {
            cmd.env_remove(key);
        }
        if !self.opts.no_admin_token {
            cmd.env("EMPORIUM_ADMIN_TOKEN", ADMIN_TOKEN);
        }
        // Rate limits are tested on their own; elsewhere they would only add noise.
        cmd.env("EMPORIUM_RATE_LIMIT__ENABLED", "false");
        for (k, v) in &self.opts.env {
            cmd.env(k, v);
        }
        self.child = Some(cmd.spawn().expect("spawning the emporium binary"));

        // 1. The bound address, written by the server after binding.
        let deadline = Deadline::new(Duration::from_secs(30), "the server to write http.addr");
        let addr = loop {
            if let Ok(s) = std::fs::read_to_string(self.addr_file()) {
                if let Ok(addr) = s.trim().parse::<std::net::SocketAddr>() {
                    break addr;
                }
            }
            self.assert_alive("before writing http.addr");
            deadline.tick(Duration::from_millis(25)).await;
        };
        self.address = format!("http://{addr}");
        // Written right after http.addr, before recovery starts.
        let deadline = Deadline::new(Duration::from_secs(10), "the server to write grpc.addr");
        self.grpc_address = loop {
            if let Ok(s) = std::fs::read_to_string(self.data_dir().join("grpc.addr")) {
                if let Ok(addr) = s.trim().parse::<std::net::SocketAddr>() {
                    break addr.to_string();
                }
            }
            self.assert_alive("before writing grpc.addr");
            deadline.tick(Duration::from_millis(25)).await;
        };

        // 2. Readiness: the store is open and recovery is done.
        let deadline = Deadline::new(Duration::from_secs(30), "GET /health/ready to return 200");
        loop {
            if let Ok(resp) = self.client.get(self.url("/health/ready")).send().await {
                if resp.status().as_u16() == 200 {
                    break;
                }
            }
            self.assert_alive("before becoming ready");
            deadline.tick(Duration::from_millis(25)).await;
        }
    }

    #[track_caller]
    fn assert_alive(&mut self, when: &str) {
        let child = self.child.as_mut().expect("child");
        if let Ok(Some(status)) = child.try_wait() {
            self.child = None;
            panic!("emporium exited {when} with {status}\n{}", self.logs());
        }
    }

    /// SIGKILL, then reap.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts again on the same data directory; SIGKILLs the process first
    /// if it is still running.
    pub async fn restart(&mut self) {
        self.kill();
        self.start().await;
    }

    /// Sends SIGTERM and waits (bounded) for the exit status.
    pub async fn sigterm(&mut self, timeout: Duration) -> ExitStatus {
        send_sigterm(self.pid());
        self.wait_exit(timeout).await
    }

    /// Waits (bounded) for the server to exit on its own and returns its status.
    pub async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Deadline::new(timeout, "the server to exit on its own");
        loop {
            let child = self.child.as_mut().expect("child");
            if let Some(status) = child.try_wait().expect("try_wait") {
                self.child = None;
                return status;
            }
            deadline.tick(Duration::from_millis(20)).await;
        }
    }

    /// The child's stdout and stderr of every start so far.
    pub fn logs(&self) -> String {
        let mut all = String::new();
        for g in 1..=self.generation {
            for stream in ["stdout", "stderr"] {
                let path = self.root.path().join(format!("{stream}.{g}.log"));
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                all.push_str(&format!("----- {stream} (start #{g}) -----\n{text}\n"));
            }
        }
        all
    }

    pub fn log_files(&self) -> Vec<PathBuf> {
        (1..=self.generation)
            .flat_map(|g| {
                ["stdout", "stderr"].map(|s| self.root.path().join(format!("{s}.{g}.log")))
            })
            .collect()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    // ---- raw HTTP ------------------------------------------------------

    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, self.url(path))
    }

    pub fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.request(method, path).bearer_auth(ADMIN_TOKEN)
    }

    pub async fn get(&self, path: &str) -> Resp {
        send(self.request(reqwest::Method::GET, path)).await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Resp {
        send(self.request(reqwest::Method::POST, path).json(body)).await
    }

    pub async fn put_json(&self, path: &str, body: &Value) -> Resp {
        send(self.request(reqwest::Method::PUT, path).json(body)).await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        send(self.request(reqwest::Method::DELETE, path)).await
    }

    pub async fn admin_get(&self, path: &str) -> Resp {
        send(self.admin(reqwest::Method::GET, path)).await
    }

    pub async fn admin_post(&self, path: &str, body: Option<&Value>) -> Resp {
        let rb = self.admin(reqwest::Method::POST, path);
        send(match body {
            Some(b) => rb.json(b),
            None => rb,
        })
        .await
    }

    pub async fn admin_put_json(&self, path: &str, body: &Value) -> Resp {
        send(self.admin(reqwest::Method::PUT, path).json(body)).await
    }

    pub async fn admin_delete(&self, path: &str) -> Resp {
        send(self.admin(reqwest::Method::DELETE, path)).await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() && std::env::var_os("TEST_LOG").is_some() {
            eprintln!("emporium logs ({}):\n{}", self.address, self.logs());
        }
    }
}

#[allow(unsafe_code)]
pub fn send_sigterm(pid: u32) {
    // SAFETY: kill(2) has no memory-safety preconditions.
    let rc = unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
    assert_eq!(
        rc,
        0,
        "kill(SIGTERM) failed: {}",
        std::io::Error::last_os_error()
    );
}

impl TestApp {
    /// The file the child's stdout goes to, for the current start.
    pub fn stdout_log(&self) -> PathBuf {
        self.root
            .path()
            .join(format!("stdout.{}.log", self.generation))
    }
}
