//! The one storage codec: serde + bincode 2.0.1, with a format version byte in front of
//! every record so the layout can evolve without guessing.

use serde::{de::DeserializeOwned, Serialize};

/// The version byte written in front of every record.
pub const FORMAT_VERSION: u8 = 1;

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
}

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// Encodes a value with the version byte in front.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.push(FORMAT_VERSION);
    bincode::serde::encode_into_std_write(value, &mut out, config())
        .expect("encoding into a Vec cannot fail for our types");
    out
}

/// Decodes a record written by [`encode`], checking the version byte.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let (&version, body) = bytes.split_first().ok_or(CodecError::Empty)?;
    if version != FORMAT_VERSION {
        return Err(CodecError::UnknownVersion(version));
    }
    let (value, used) = bincode::serde::decode_from_slice(body, config())
        .map_err(|e| CodecError::Decode(e.to_string()))?;
    if used != body.len() {
        return Err(CodecError::Trailing(body.len() - used));
    }
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
}
