//! A notification channel: the seam between the dispatcher and a provider. Each channel
//! is a real implementation (email over SMTP in [`super::email`], SMS in [`super::sms`],
//! Web Push in [`super::push`]); the dispatcher only
//! knows this trait, so a failing provider is one `Err` per send and nothing more.

use futures::future::BoxFuture;

use crate::domain::notification::{ChannelKind, Content};

/// Why a send failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct SendError {
    /// The provider refused the message for good (an unknown mailbox): no retry.
    pub permanent: bool,
    /// What the provider said, or the transport error.
    pub detail: String,
}

/// One way of sending a message.
pub trait Channel: Send + Sync + 'static {
    fn kind(&self) -> ChannelKind;

    /// Sends message `id` (the same on every attempt, for the provider or the recipient
    /// to deduplicate on) with `content` to `recipient`; `Ok` carries the provider's
    /// answer, shortened.
    fn send<'a>(
        &'a self,
        id: &'a str,
        recipient: &'a str,
        content: &'a Content,
    ) -> BoxFuture<'a, Result<String, SendError>>;
}
