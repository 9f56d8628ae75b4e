//! Email over SMTP with `lettre`: plain, STARTTLS (`?tls=opportunistic` or
//! `?tls=required`) or TLS from the first byte (`smtps://`), with the credentials of the
//! URL. A 5xx answer is a permanent refusal; a 4xx, a timeout or a lost connection is
//! retried by the dispatcher. Each message carries its id as `Message-ID`.

use std::time::Duration;

use futures::future::BoxFuture;
use lettre::message::{header::ContentType, Mailbox};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::channel::{Channel, SendError};
use crate::domain::notification::{ChannelKind, Content};

/// Whether `url` is an SMTP URL this channel can use (checked when the config loads).
pub fn check_url(url: &str) -> Result<(), String> {
    AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
        .map(|_| ())
        .map_err(|e| format!("{e} (expected smtp://host:port, smtp://host?tls=required or smtps://user:pass@host)"))
}

/// The `Message-ID` of message `id`: the same on every attempt and after a restart, so a
/// mail system that saw a message twice (a crash between its 250 and our record of it)
/// can tell.
pub fn message_id_header(id: &str) -> String {
    format!("<{id}@emporium>")
}

/// The email channel.
pub struct SmtpEmail {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl SmtpEmail {
    pub fn new(url: &str, from: &str, timeout: Duration) -> Result<Self, String> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| e.to_string())?
            .timeout(Some(timeout))
            .build();
        let from = from.parse().map_err(|e| format!("{from:?}: {e}"))?;
        Ok(Self { transport, from })
    }
}

impl Channel for SmtpEmail {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Email
    }

    fn send<'a>(
        &'a self,
        id: &'a str,
        recipient: &'a str,
        content: &'a Content,
    ) -> BoxFuture<'a, Result<String, SendError>> {
        Box::pin(async move {
            let to: Mailbox = recipient.parse().map_err(|e| SendError {
                permanent: true,
                detail: format!("{recipient:?} is not an email address: {e}"),
            })?;
            let message = Message::builder()
                .message_id(Some(message_id_header(id)))
                .from(self.from.clone())
                .to(to)
                .subject(content.subject.clone())
                .header(ContentType::TEXT_PLAIN)
                .body(content.body.clone())
                .map_err(|e| SendError {
                    permanent: true,
                    detail: format!("the message cannot be built: {e}"),
                })?;
            match self.transport.send(message).await {
                Ok(r) => Ok(format!(
                    "{} {}",
                    r.code(),
                    r.message().collect::<Vec<_>>().join(" ")
                )),
                Err(e) => Err(SendError {
                    permanent: e.is_permanent(),
                    detail: e.to_string(),
                }),
            }
        })
    }
}
