//! The configuration of events out: webhook deliveries (`[webhooks]`) and notifications
//! (`[notifications]`, with one table per channel). Part of [`super::config`], which
//! re-exports these; `config/default.toml` documents every key.

use serde::{Deserialize, Serialize};

use super::config::Secret;

/// Webhook deliveries (`src/events/webhooks`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhooksConfig {
    /// Lets endpoints on loopback, private and other non-public ranges be registered and
    /// called (off: an SSRF guard; the tests turn it on).
    pub allow_private_targets: bool,
    /// The first retry's backoff ceiling; each next one doubles it (full jitter).
    pub retry_initial_ms: u64,
    /// Attempts before a delivery goes to the dead-letter queue.
    pub max_attempts: u32,
    /// How long one attempt may take (connect, send, answer).
    pub timeout_ms: u64,
    /// An endpoint whose every attempt failed for this long is disabled, with a
    /// `webhook.disabled` event.
    pub disable_after_s: u64,
    /// Most attempts in flight per endpoint on one node.
    pub max_in_flight: usize,
    /// How often the dispatcher looks for due deliveries.
    pub poll_ms: u64,
    /// How long delivered records are kept for `GET /v1/webhooks/{id}/deliveries`.
    pub log_retention_s: u64,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        Self {
            allow_private_targets: false,
            retry_initial_ms: 1000,
            max_attempts: 8,
            timeout_ms: 5000,
            disable_after_s: 5 * 24 * 60 * 60,
            max_in_flight: 16,
            poll_ms: 200,
            log_retention_s: 3 * 24 * 60 * 60,
        }
    }
}

/// Notifications (`src/events/notify`): the channels and how sends are retried.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotificationsConfig {
    pub email: EmailConfig,
    pub sms: SmsConfig,
    pub push: PushConfig,
    /// The first retry's wait; each next one doubles it (at most 6 h between attempts).
    pub retry_initial_ms: u64,
    /// Sends before a message goes to the dead-letter queue.
    pub max_attempts: u32,
    /// How long one send may take (connect, TLS, the SMTP dialogue).
    pub timeout_ms: u64,
    /// Most sends in flight per channel on one node: a slow provider holds only these.
    pub max_in_flight: usize,
    /// How often the dispatcher looks for due messages.
    pub poll_ms: u64,
    /// How long sent messages stay for the notification history.
    pub log_retention_s: u64,
}

impl Default for NotificationsConfig {
    fn default() -> Self {
        Self {
            email: EmailConfig::default(),
            sms: SmsConfig::default(),
            push: PushConfig::default(),
            retry_initial_ms: 1000,
            max_attempts: 8,
            timeout_ms: 10_000,
            max_in_flight: 4,
            poll_ms: 200,
            log_retention_s: 30 * 24 * 60 * 60,
        }
    }
}

impl NotificationsConfig {
    pub(super) fn validate(&self) -> Result<(), String> {
        if !(1..=crate::domain::notification::MAX_ATTEMPTS).contains(&self.max_attempts)
            || self.retry_initial_ms == 0
            || self.timeout_ms == 0
            || self.max_in_flight == 0
            || self.poll_ms == 0
        {
            return Err(format!(
                "notifications: max_attempts must be 1 to {}, and retry_initial_ms, timeout_ms, max_in_flight and poll_ms positive",
                crate::domain::notification::MAX_ATTEMPTS
            ));
        }
        if !self.email.smtp_url.0.is_empty() {
            crate::events::notify::email::check_url(&self.email.smtp_url.0)
                .map_err(|e| format!("notifications.email.smtp_url: {e}"))?;
            if self.email.from.parse::<lettre::message::Mailbox>().is_err() {
                return Err(format!(
                    "notifications.email.from: {:?} is not an email address",
                    self.email.from
                ));
            }
        }
        if let Some(a) = self
            .email
            .operators
            .iter()
            .find(|a| a.parse::<lettre::Address>().is_err())
        {
            return Err(format!(
                "notifications.email.operators: {a:?} is not an email address"
            ));
        }
        self.sms.validate()?;
        if !self.push.vapid_private_key_path.is_empty()
            && !self.push.subject.starts_with("mailto:")
            && !self.push.subject.starts_with("https://")
        {
            return Err(format!(
                "notifications.push.subject must be a mailto: or https: URL (RFC 8292), not {:?}",
                self.push.subject
            ));
        }
        Ok(())
    }
}

/// Email over SMTP.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmailConfig {
    /// `smtp://host:port` (plain), `smtp://host:port?tls=opportunistic` (STARTTLS when the
    /// server offers it), `smtp://user:pass@host:587?tls=required` (STARTTLS or fail), or
    /// `smtps://user:pass@host` (TLS from the first byte); empty: email is off. It may
    /// hold a password, so it is never printed.
    pub smtp_url: Secret,
    /// The sender of every message.
    pub from: String,
    /// The addresses that get operator alerts such as `stock.low`.
    pub operators: Vec<String>,
}

impl Default for EmailConfig {
    fn default() -> Self {
        Self {
            smtp_url: Secret::default(),
            from: "shop@example.com".into(),
            operators: Vec::new(),
        }
    }
}

/// SMS through a Twilio-shaped Messages API (`src/events/notify/sms.rs`):
/// `POST {base_url}/2010-04-01/Accounts/{account_sid}/Messages.json`.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct SmsConfig {
    /// The API's root, such as `https://api.twilio.com`; empty: SMS is off.
    pub base_url: String,
    /// The account the messages are sent from (HTTP basic auth user).
    pub account_sid: String,
    /// The account's auth token (basic auth password); never printed. Set it with
    /// `EMPORIUM_NOTIFICATIONS__SMS__AUTH_TOKEN` rather than in a file.
    pub auth_token: Secret,
    /// The sender: an E.164 number, or a messaging service SID (`MG...`).
    pub from: String,
}

impl SmsConfig {
    fn validate(&self) -> Result<(), String> {
        if self.base_url.is_empty() {
            return Ok(());
        }
        let url = reqwest::Url::parse(&self.base_url)
            .map_err(|e| format!("notifications.sms.base_url: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("notifications.sms.base_url must be an http or https URL".into());
        }
        if self.account_sid.is_empty() || self.auth_token.0.is_empty() {
            return Err(
                "notifications.sms: base_url is set, so account_sid and auth_token are needed"
                    .into(),
            );
        }
        if !self.account_sid.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err("notifications.sms.account_sid must be letters and digits".into());
        }
        let from_ok = crate::http::preferences::e164(&self.from)
            || (self.from.starts_with("MG")
                && self.from.bytes().all(|b| b.is_ascii_alphanumeric()));
        if !from_ok {
            return Err(format!(
                "notifications.sms.from must be an E.164 number or a messaging service SID (MG...), not {:?}",
                self.from
            ));
        }
        Ok(())
    }
}

/// Web Push with VAPID (RFC 8292) and aes128gcm payloads (RFC 8291), in
/// `src/events/notify/push.rs`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PushConfig {
    /// The application server's P-256 private key, PEM (PKCS#8 or SEC1); empty: push is
    /// off. `emporium vapid-key --out FILE` makes one and prints the public key the
    /// shop's page subscribes with.
    pub vapid_private_key_path: String,
    /// Who runs the application server, for the push services (`mailto:` or `https:`).
    pub subject: String,
    /// Lets push endpoints on loopback and private ranges be saved and called (the tests
    /// turn it on; push services are public).
    pub allow_private_targets: bool,
    /// How long a push service keeps an undelivered message (the `TTL` header), seconds.
    pub ttl_s: u32,
}

impl Default for PushConfig {
    fn default() -> Self {
        Self {
            vapid_private_key_path: String::new(),
            subject: "mailto:shop@example.com".into(),
            allow_private_targets: false,
            ttl_s: 24 * 3600,
        }
    }
}
