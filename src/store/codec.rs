//! The one storage codec: serde + bincode 2.0.1, with a format version byte in front of
//! every record so the layout can evolve without guessing.
//!
//! Every decode runs with a byte limit ([`DECODE_LIMIT_BYTES`]): bincode trusts a length
//! prefix, so without one a corrupt stored record, or a few bytes from a peer, could make
//! it allocate terabytes and abort the process. With the limit such input is a typed
//! [`CodecError::Decode`] for that one record. The journal refuses to write a record
//! larger than the limit ([`encode_bounded`]), so everything it stored decodes again.

use serde::{de::DeserializeOwned, Serialize};

/// The version byte written in front of every record.
pub const FORMAT_VERSION: u8 = 1;

/// The largest record the store accepts (1 MiB). Entity state is bounded by design far
/// below this; a write that would still exceed it is refused before it reaches the journal.
pub const MAX_RECORD_BYTES: usize = 1 << 20;

/// The most any decode reads (4 MiB): a stored record, or a cluster frame carrying a
/// handoff chunk (at most `cluster.handoff_chunk_bytes`, itself capped at
/// [`MAX_CHUNK_BYTES`]) plus one record that did not fit a chunk.
pub const DECODE_LIMIT_BYTES: usize = 4 << 20;

/// The largest handoff chunk a node may be configured to send.
pub const MAX_CHUNK_BYTES: usize = 2 << 20;

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("empty record")]
    Empty,
    #[error("unknown record format version {0} (this build reads {FORMAT_VERSION})")]
    UnknownVersion(u8),
    #[error("record does not decode: {0}")]
    Decode(String),
    #[error("record has {0} trailing bytes")]
    Trailing(usize),
    #[error("record of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
}

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// The decoding configuration: the same layout, with the byte limit.
fn bounded() -> impl bincode::config::Config {
    config().with_limit::<DECODE_LIMIT_BYTES>()
}

/// Encodes a value with the version byte in front.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.push(FORMAT_VERSION);
    bincode::serde::encode_into_std_write(value, &mut out, config())
        .expect("encoding into a Vec cannot fail for our types");
    out
}

/// Encodes a record for storage, refusing one larger than [`MAX_RECORD_BYTES`].
pub fn encode_bounded<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    let out = encode(value);
    if out.len() > MAX_RECORD_BYTES {
        return Err(CodecError::TooLarge {
            size: out.len(),
            limit: MAX_RECORD_BYTES,
        });
    }
    Ok(out)
}

/// Decodes a record written by [`encode`], checking the version byte. Reads at most
/// [`DECODE_LIMIT_BYTES`], whatever the length prefixes inside claim.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    if bytes.len() > DECODE_LIMIT_BYTES + 1 {
        return Err(CodecError::TooLarge {
            size: bytes.len(),
            limit: DECODE_LIMIT_BYTES,
        });
    }
    let (&version, body) = bytes.split_first().ok_or(CodecError::Empty)?;
    if version != FORMAT_VERSION {
        return Err(CodecError::UnknownVersion(version));
    }
    let (value, used) = bincode::serde::decode_from_slice(body, bounded())
        .map_err(|e| CodecError::Decode(e.to_string()))?;
    if used != body.len() {
        return Err(CodecError::Trailing(body.len() - used));
    }
    Ok(value)
}

/// Decodes the first value of a record written by [`encode`], ignoring what follows it
/// (the time at the front of an event record, whatever the event's type).
pub fn decode_prefix<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let (&version, body) = bytes.split_first().ok_or(CodecError::Empty)?;
    if version != FORMAT_VERSION {
        return Err(CodecError::UnknownVersion(version));
    }
    let (value, _) = bincode::serde::decode_from_slice(body, bounded())
        .map_err(|e| CodecError::Decode(e.to_string()))?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::cart::CartEvent;
    use crate::domain::Sku;

    #[test]
    fn round_trips_with_a_version_byte() {
        let e = CartEvent::QuantitySet {
            sku: Sku::parse("A-1").unwrap(),
            quantity: 3,
            unit_price_minor: 250,
        };
        let bytes = encode(&e);
        assert_eq!(bytes[0], FORMAT_VERSION);
        assert_eq!(decode::<CartEvent>(&bytes).unwrap(), e);
    }

    #[test]
    fn rejects_unknown_versions_garbage_and_trailing_bytes() {
        let mut bytes = encode(&CartEvent::Created { owner: None });
        bytes[0] = 99;
        assert!(matches!(
            decode::<CartEvent>(&bytes),
            Err(CodecError::UnknownVersion(99))
        ));
        assert!(matches!(decode::<CartEvent>(&[]), Err(CodecError::Empty)));
        assert!(decode::<CartEvent>(&[FORMAT_VERSION, 250, 1, 2]).is_err());
        let mut bytes = encode(&CartEvent::Created { owner: None });
        bytes.push(0);
        assert!(matches!(
            decode::<CartEvent>(&bytes),
            Err(CodecError::Trailing(1))
        ));
    }

    /// A length prefix of 2^40 (bincode's varint marker 0xFD then a u64) in front of a
    /// string: without the limit this allocates a terabyte and aborts the process.
    #[test]
    fn a_huge_length_prefix_is_an_error_not_an_allocation() {
        let mut bytes = vec![FORMAT_VERSION, 2]; // `QuantitySet` (variant 2), then its sku
        bytes.push(0xFD);
        bytes.extend_from_slice(&(1u64 << 40).to_le_bytes());
        assert!(matches!(
            decode::<CartEvent>(&bytes),
            Err(CodecError::Decode(_))
        ));
        // The same for a byte vector and a sequence.
        let mut seq = vec![FORMAT_VERSION, 0xFD];
        seq.extend_from_slice(&(1u64 << 40).to_le_bytes());
        assert!(decode::<Vec<u8>>(&seq).is_err());
        assert!(decode::<Vec<String>>(&seq).is_err());
        assert!(decode::<String>(&seq).is_err());
    }

    #[test]
    fn records_above_the_limit_are_refused_both_ways() {
        let big = vec![7u8; MAX_RECORD_BYTES];
        // Anything above the decode limit is refused before bincode sees it.
        assert!(matches!(
            decode::<Vec<u8>>(&vec![FORMAT_VERSION; DECODE_LIMIT_BYTES + 2]),
            Err(CodecError::TooLarge { .. })
        ));
        assert!(matches!(
            encode_bounded(&big),
            Err(CodecError::TooLarge { .. })
        ));
        let fits = vec![7u8; MAX_RECORD_BYTES - 16];
        let bytes = encode_bounded(&fits).unwrap();
        assert_eq!(decode::<Vec<u8>>(&bytes).unwrap().len(), fits.len());
    }
}
