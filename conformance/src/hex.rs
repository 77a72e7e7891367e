//! Hex encoding of binary frames in transcripts.

/// Decodes a hex string (whitespace allowed between bytes).
pub fn decode(text: &str) -> Result<Vec<u8>, String> {
    let digits: Vec<char> = text.chars().filter(|c| !c.is_whitespace()).collect();
    if digits.len() % 2 != 0 {
        return Err(format!(
            "binary frame {text:?} has an odd number of hex digits; expected pairs like \"00ff\""
        ));
    }
    digits
        .chunks(2)
        .enumerate()
        .map(|(i, pair)| {
            let s: String = pair.iter().collect();
            u8::from_str_radix(&s, 16)
                .map_err(|_| format!("binary frame has {s:?} at byte {i}; expected two hex digits"))
        })
        .collect()
}

/// Encodes bytes as lowercase hex.
pub fn encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trips_and_rejects_bad_digits() {
        assert_eq!(super::decode("00 ff").unwrap(), vec![0, 255]);
        assert_eq!(super::encode(&[1, 171]), "01ab");
        assert!(super::decode("0").unwrap_err().contains("odd"));
        assert!(super::decode("zz").unwrap_err().contains("\"zz\""));
    }
}
