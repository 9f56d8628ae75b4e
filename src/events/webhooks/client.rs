//! The HTTP client of webhook deliveries, and one attempt with it.
//!
//! - No redirects (a 3xx is an answer, not a new target the guard has not seen).
//! - Every name is resolved by [`GuardedResolver`], which drops the addresses
//!   [`crate::events::target::check_addr`] refuses, so a public name that resolves to a
//!   private address (DNS rebinding) is refused like the address itself.
//! - One limit, `webhooks.timeout_ms`, on the whole attempt: connect, send, status and
//!   the excerpt of the body.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::{Attempt, EXCERPT_CHARS};
use crate::domain::Millis;
use crate::events::retry::AttemptOutcome;
use crate::events::signing::{signature_header, SigningKey};
use crate::events::target::{check_addr, check_url};

/// Every address of the name was refused by the target guard.
#[derive(Debug, thiserror::Error)]
#[error("{0} resolves only to refused addresses")]
pub struct RefusedTarget(String);

/// A resolver that keeps only the addresses the target guard allows.
pub struct GuardedResolver {
    pub allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| check_addr(a.ip(), allow).is_ok())
                .collect();
            if found.is_empty() {
                return Err(
                    Box::new(RefusedTarget(host)) as Box<dyn std::error::Error + Send + Sync>
                );
            }
            Ok(Box::new(found.into_iter()) as Addrs)
        })
    }
}

/// The deliveries' client.
pub fn build(allow_private: bool, timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout)
        .pool_idle_timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(8)
        .user_agent(concat!("emporium-webhooks/", env!("CARGO_PKG_VERSION")))
        .dns_resolver(Arc::new(GuardedResolver { allow_private }))
        .build()
        .expect("a client with these settings builds")
}

/// One signed POST of `body` to `url`, and how it went.
pub struct Post<'a> {
    pub url: &'a str,
    pub event_id: &'a str,
    pub body: &'a str,
    pub keys: Vec<&'a [u8]>,
    pub allow_private: bool,
    pub timeout: Duration,
    pub now: Millis,
}

fn refused_in(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err.is::<RefusedTarget>() {
            return true;
        }
        cur = err.source();
    }
    false
}

/// Sends one attempt; never fails (every failure is an outcome).
pub async fn attempt(client: &reqwest::Client, post: Post<'_>) -> (AttemptOutcome, Attempt) {
    let started = Instant::now();
    let done = |outcome: AttemptOutcome, status: Option<u16>, excerpt: String| {
        let name = match outcome {
            AttemptOutcome::Status(200..=299) => "ok",
            AttemptOutcome::Status(_) => "http_error",
            AttemptOutcome::Timeout => "timeout",
            AttemptOutcome::ConnectionError => "connection_error",
            AttemptOutcome::Refused => "refused",
        };
        let a = Attempt {
            at: post.now,
            status,
            outcome: name.to_owned(),
            latency_ms: started.elapsed().as_millis() as u64,
            excerpt: excerpt.chars().take(EXCERPT_CHARS).collect(),
        };
        (outcome, a)
    };
    let url = match check_url(post.url, post.allow_private) {
        Ok(u) => u,
        Err(e) => return done(AttemptOutcome::Refused, None, e.to_string()),
    };
    let keys: Vec<SigningKey> = post
        .keys
        .iter()
        .map(|k| SigningKey::from_bytes(k.to_vec()))
        .collect();
    let refs: Vec<&SigningKey> = keys.iter().collect();
    let ts = post.now / 1000;
    let signature = signature_header(&refs, post.event_id, ts, post.body.as_bytes());
    let send = async {
        let mut resp = client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", post.event_id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", signature)
            .body(post.body.to_owned())
            .send()
            .await?;
        let status = resp.status().as_u16();
        let mut excerpt = Vec::new();
        while excerpt.len() < EXCERPT_CHARS * 4 {
            match resp.chunk().await {
                Ok(Some(c)) => excerpt.extend_from_slice(&c),
                _ => break,
            }
        }
        Ok::<_, reqwest::Error>((status, String::from_utf8_lossy(&excerpt).into_owned()))
    };
    match tokio::time::timeout(post.timeout, send).await {
        Err(_) => done(AttemptOutcome::Timeout, None, "no answer in time".into()),
        Ok(Ok((status, excerpt))) => done(AttemptOutcome::Status(status), Some(status), excerpt),
        Ok(Err(e)) if e.is_timeout() => done(AttemptOutcome::Timeout, None, e.to_string()),
        Ok(Err(e)) if refused_in(&e) => done(AttemptOutcome::Refused, None, e.to_string()),
        Ok(Err(e)) => {
            let mut text = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                text.push_str(": ");
                text.push_str(&s.to_string());
                src = s.source();
            }
            done(AttemptOutcome::ConnectionError, None, text)
        }
    }
}
