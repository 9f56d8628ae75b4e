//! A real SMTP server on loopback for the notification tests (`mailin-embedded`: the SMTP
//! dialogue, on its own threads), which keeps every message it accepts. It can refuse
//! for a while (451 on DATA: a transient failure the sender must retry) and refuse some
//! recipients for good (550 on RCPT).

use std::collections::HashSet;
use std::net::{IpAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mailin_embedded::{response, Handler, Response, Server, SslConfig};

use crate::helpers::Deadline;

/// One accepted message.
#[derive(Debug, Clone)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    /// The raw message: headers, a blank line, the body.
    pub data: String,
}

impl Mail {
    /// The `Subject:` header.
    pub fn subject(&self) -> String {
        self.data
            .lines()
            .find_map(|l| l.strip_prefix("Subject: "))
            .unwrap_or_default()
            .to_owned()
    }
}

#[derive(Default)]
struct Shared {
    mails: Mutex<Vec<Mail>>,
    refusing: AtomicBool,
    /// DATA commands refused while `refusing`.
    refused: AtomicUsize,
    gone: Mutex<HashSet<String>>,
}

#[derive(Clone)]
struct Session {
    shared: Arc<Shared>,
    from: String,
    to: Vec<String>,
    buf: Vec<u8>,
}

impl Handler for Session {
    fn rcpt(&mut self, to: &str) -> Response {
        if self.shared.gone.lock().unwrap().contains(to) {
            return response::NO_MAILBOX;
        }
        response::OK
    }

    fn data_start(&mut self, _domain: &str, from: &str, _is8bit: bool, to: &[String]) -> Response {
        if self.shared.refusing.load(Ordering::SeqCst) {
            self.shared.refused.fetch_add(1, Ordering::SeqCst);
            return response::INTERNAL_ERROR;
        }
        self.from = from.to_owned();
        self.to = to.to_vec();
        self.buf.clear();
        response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.buf.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let mail = Mail {
            from: std::mem::take(&mut self.from),
            to: std::mem::take(&mut self.to),
            data: String::from_utf8_lossy(&std::mem::take(&mut self.buf)).into_owned(),
        };
        self.shared.mails.lock().unwrap().push(mail);
        response::OK
    }

    fn helo(&mut self, _ip: IpAddr, _domain: &str) -> Response {
        response::OK
    }
}

/// The server; it runs until the test process ends.
pub struct Smtp {
    /// `smtp://127.0.0.1:PORT`, for `notifications.email.smtp_url`.
    pub url: String,
    shared: Arc<Shared>,
}

impl Smtp {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind an SMTP port");
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared::default());
        let handler = Session {
            shared: shared.clone(),
            from: String::new(),
            to: Vec::new(),
            buf: Vec::new(),
        };
        let mut server = Server::new(handler);
        server
            .with_name("smtp.test")
            .with_ssl(SslConfig::None)
            .expect("no TLS")
            .with_num_threads(4)
            .with_tcp_listener(listener);
        std::thread::spawn(move || {
            let _ = server.serve();
        });
        Self {
            url: format!("smtp://127.0.0.1:{port}"),
            shared,
        }
    }

    /// Answers 451 to every DATA until [`Smtp::accept`].
    pub fn refuse(&self) {
        self.shared.refusing.store(true, Ordering::SeqCst);
    }

    pub fn accept(&self) {
        self.shared.refusing.store(false, Ordering::SeqCst);
    }

    /// Refuses `address` for good (550 on RCPT).
    pub fn gone(&self, address: &str) {
        self.shared.gone.lock().unwrap().insert(address.to_owned());
    }

    /// Takes `address` again.
    pub fn back(&self, address: &str) {
        self.shared.gone.lock().unwrap().remove(address);
    }

    pub fn refused(&self) -> usize {
        self.shared.refused.load(Ordering::SeqCst)
    }

    pub fn mails(&self) -> Vec<Mail> {
        self.shared.mails.lock().unwrap().clone()
    }

    /// The messages to `to`, once there are at least `n` (bounded wait).
    pub async fn wait_for(&self, to: &str, n: usize, secs: u64) -> Vec<Mail> {
        let deadline = Deadline::new(Duration::from_secs(secs), format!("{n} message(s) to {to}"));
        loop {
            let got: Vec<Mail> = self
                .mails()
                .into_iter()
                .filter(|m| m.to.iter().any(|t| t == to))
                .collect();
            if got.len() >= n {
                return got;
            }
            deadline.tick(Duration::from_millis(25)).await;
        }
    }
}
