//! Hex encoding of binary frames in transcripts.

pub use crate::error::HexError;

/// Decodes a hex string (whitespace allowed between bytes).
pub fn decode(text: &str) -> Result<Vec<u8>, HexError> {
    let digits: Vec<char> = text.chars().filter(|c| !c.is_whitespace()).collect();
    if digits.len() % 2 != 0 {
        return Err(HexError::OddLength {
            text: text.to_owned(),
        });
    }
    digits
        .chunks(2)
        .enumerate()
        .map(|(byte, pair)| {
            let pair: String = pair.iter().collect();
            u8::from_str_radix(&pair, 16).map_err(|_| HexError::BadDigit { pair, byte })
        })
        .collect()
}

/// Encodes bytes as lowercase hex.
pub fn encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_bad_digits() {
        assert_eq!(decode("00 ff").unwrap(), vec![0, 255]);
        assert_eq!(encode(&[1, 171]), "01ab");
        assert_eq!(decode("0"), Err(HexError::OddLength { text: "0".into() }));
        let err = decode("00zz").unwrap_err();
        assert_eq!(
            err,
            HexError::BadDigit {
                pair: "zz".into(),
                byte: 1
            }
        );
        assert_eq!(
            err.to_string(),
            "binary frame has \"zz\" at byte 1; expected two hex digits"
        );
    }
}
