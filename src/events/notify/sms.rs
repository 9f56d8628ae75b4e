//! SMS through a provider with Twilio's Messages API shape: each message is
//! `POST {base_url}/2010-04-01/Accounts/{account_sid}/Messages.json` with the form fields
//! `To`, `From` (or `MessagingServiceSid` for an `MG...` sender) and `Body`, HTTP basic
//! auth `account_sid:auth_token`, and an `Idempotency-Key` of the message id (the same on
//! every attempt). A 2xx is sent (the answer's `sid` is recorded); 429 and 5xx are
//! retried; any other 4xx is a refusal for good (Twilio answers 400 with code 21211 for a
//! number it cannot reach), so the message goes dead at once.

use std::time::Duration;

use futures::future::BoxFuture;
use serde::Deserialize;

use super::channel::{Channel, SendError};
use crate::app::config::SmsConfig;
use crate::domain::notification::{ChannelKind, Content};

/// Longest body sent (Twilio's limit for one message, in characters).
pub const MAX_BODY_CHARS: usize = 1600;

/// The SMS channel.
pub struct TwilioSms {
    client: reqwest::Client,
    url: String,
    account_sid: String,
    auth_token: String,
    from: String,
}

/// What a Twilio-shaped API answers: a message's `sid` and `status`, or an error's `code`
/// and `message`.
#[derive(Deserialize, Default)]
struct Answer {
    sid: Option<String>,
    status: Option<String>,
    code: Option<i64>,
    message: Option<String>,
}

impl TwilioSms {
    pub fn new(c: &SmsConfig, timeout: Duration) -> Result<Self, String> {
        // The operator's own provider URL: no target guard, and no redirects.
        let client = crate::events::webhooks::client::build(true, timeout);
        Ok(Self {
            client,
            url: format!(
                "{}/2010-04-01/Accounts/{}/Messages.json",
                c.base_url.trim_end_matches('/'),
                c.account_sid
            ),
            account_sid: c.account_sid.clone(),
            auth_token: c.auth_token.0.clone(),
            from: c.from.clone(),
        })
    }
}

/// The body of an SMS: the template's body, trimmed, at most [`MAX_BODY_CHARS`].
pub fn sms_text(content: &Content) -> String {
    content.body.trim().chars().take(MAX_BODY_CHARS).collect()
}

impl Channel for TwilioSms {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Sms
    }

    fn send<'a>(
        &'a self,
        id: &'a str,
        recipient: &'a str,
        content: &'a Content,
    ) -> BoxFuture<'a, Result<String, SendError>> {
        Box::pin(async move {
            let sender = if self.from.starts_with("MG") {
                "MessagingServiceSid"
            } else {
                "From"
            };
            let body = sms_text(content);
            let form = [("To", recipient), (sender, &self.from), ("Body", &body)];
            let r = self
                .client
                .post(&self.url)
                .basic_auth(&self.account_sid, Some(&self.auth_token))
                .header("Idempotency-Key", id)
                .form(&form)
                .send()
                .await
                .map_err(|e| SendError {
                    permanent: false,
                    detail: format!("the SMS provider: {e}"),
                })?;
            let status = r.status();
            let answer: Answer = r.json().await.unwrap_or_default();
            if status.is_success() {
                return Ok(format!(
                    "{} {} {}",
                    status.as_u16(),
                    answer.sid.as_deref().unwrap_or("-"),
                    answer.status.as_deref().unwrap_or("-")
                ));
            }
            let detail = format!(
                "{}{}{}",
                status.as_u16(),
                answer
                    .code
                    .map(|c| format!(" code {c}"))
                    .unwrap_or_default(),
                answer
                    .message
                    .map(|m| format!(": {}", m.chars().take(200).collect::<String>()))
                    .unwrap_or_default()
            );
            Err(SendError {
                permanent: status.is_client_error()
                    && status != reqwest::StatusCode::TOO_MANY_REQUESTS
                    && status != reqwest::StatusCode::REQUEST_TIMEOUT,
                detail,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_is_the_trimmed_body_within_the_limit() {
        let c = Content {
            subject: "ignored".into(),
            body: format!("  {}  ", "é".repeat(2000)),
        };
        let t = sms_text(&c);
        assert_eq!(t.chars().count(), MAX_BODY_CHARS);
        assert!(t.starts_with('é'));
    }
}
