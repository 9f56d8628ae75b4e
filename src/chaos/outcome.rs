//! What an answer means for the ledger: acknowledged, refused, never sent, or unknown.
//! Pure, so the rule that decides what the checker may require is tested on its own.

use crate::loadgen::client::Reply;
use bytes::Bytes;

/// The fate of one write as the driver saw it.
#[derive(Debug)]
pub enum Outcome {
    /// A 2xx: the write is durable and must be found.
    Acked(u16, Bytes),
    /// A 4xx: refused before any change (typed errors never half-apply).
    Refused(u16, String),
    /// The connection could not be opened: the request never left.
    NotSent,
    /// A 5xx, a timeout or a connection lost mid-request: it may or may not have applied.
    Unknown,
}

/// Classifies a reply.
pub fn classify(reply: Reply) -> Outcome {
    match reply {
        Reply::Status(s, body) if (200..300).contains(&s) => Outcome::Acked(s, body),
        Reply::Status(s, body) if (400..500).contains(&s) => {
            Outcome::Refused(s, Reply::error_key(s, &body))
        }
        Reply::Status(..) | Reply::Timeout => Outcome::Unknown,
        // `Conn` names failures to dial "connect ...": nothing was written to a socket.
        Reply::Io(e) if e.starts_with("connect") => Outcome::NotSent,
        Reply::Io(_) => Outcome::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_2xx_is_acked_and_only_a_failed_dial_is_not_sent() {
        assert!(matches!(
            classify(Reply::Status(201, Bytes::new())),
            Outcome::Acked(201, _)
        ));
        let refused = classify(Reply::Status(
            409,
            Bytes::from_static(br#"{"error":{"code":"cart_empty","message":""}}"#),
        ));
        assert!(matches!(refused, Outcome::Refused(409, ref k) if k == "409 cart_empty"));
        assert!(matches!(
            classify(Reply::Status(503, Bytes::new())),
            Outcome::Unknown
        ));
        assert!(matches!(
            classify(Reply::Status(504, Bytes::new())),
            Outcome::Unknown
        ));
        assert!(matches!(classify(Reply::Timeout), Outcome::Unknown));
        assert!(matches!(
            classify(Reply::Io("connect: ConnectionRefused".into())),
            Outcome::NotSent
        ));
        assert!(matches!(
            classify(Reply::Io("connect timeout".into())),
            Outcome::NotSent
        ));
        assert!(matches!(
            classify(Reply::Io("send: connection reset".into())),
            Outcome::Unknown
        ));
    }
}
