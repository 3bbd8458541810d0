//! Verification of Discord's HTTP interaction signatures.
//!
//! Discord signs every request to the interactions endpoint with Ed25519 over
//! `timestamp ‖ body`, sending the signature (hex) in `X-Signature-Ed25519` and
//! the timestamp (unix seconds) in `X-Signature-Timestamp`.

use ed25519_dalek::{PUBLIC_KEY_LENGTH, SIGNATURE_LENGTH, Signature, VerifyingKey};

/// Largest accepted difference between the signed timestamp and "now", in
/// seconds, in either direction. Bounds how long a captured request can be
/// replayed.
pub const MAX_SKEW_SECS: u64 = 300;

/// The application's public key could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The key is not 64 hexadecimal characters.
    #[error("public key must be {expected} hex characters, got {actual}")]
    BadLength {
        /// Expected number of hex characters.
        expected: usize,
        /// Number of characters given.
        actual: usize,
    },
    /// The key contains non-hexadecimal characters.
    #[error("public key is not valid hex")]
    BadHex,
    /// The bytes do not encode a valid Ed25519 public key.
    #[error("public key is not a valid Ed25519 point")]
    InvalidKey,
}

/// A request failed signature verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The signature header is not 128 hexadecimal characters.
    #[error("signature is not 128 hex characters")]
    BadSignatureEncoding,
    /// The timestamp header is not a unix time in seconds.
    #[error("timestamp is not a unix time in seconds")]
    BadTimestamp,
    /// The timestamp is more than [`MAX_SKEW_SECS`] away from now (either
    /// direction).
    #[error("timestamp is too far from the current time")]
    Stale,
    /// The signature does not match the key, timestamp and body.
    #[error("signature does not match")]
    Invalid,
}

/// Verifies Discord's interaction signatures (Ed25519 over timestamp ‖ body).
#[derive(Debug, Clone)]
pub struct InteractionVerifier {
    key: VerifyingKey,
}

impl InteractionVerifier {
    /// Builds a verifier from the application's public key as shown in the
    /// developer portal (64 hex characters; surrounding whitespace is ignored).
    pub fn from_hex(public_key_hex: &str) -> Result<Self, KeyError> {
        let hex_key = public_key_hex.trim();
        if hex_key.len() != PUBLIC_KEY_LENGTH * 2 {
            return Err(KeyError::BadLength { expected: PUBLIC_KEY_LENGTH * 2, actual: hex_key.chars().count() });
        }
        let mut bytes = [0u8; PUBLIC_KEY_LENGTH];
        hex::decode_to_slice(hex_key, &mut bytes).map_err(|_| KeyError::BadHex)?;
        let key = VerifyingKey::from_bytes(&bytes).map_err(|_| KeyError::InvalidKey)?;
        Ok(Self { key })
    }

    /// Verifies one request.
    ///
    /// Checks, in order: the signature encoding, the timestamp format, that
    /// the timestamp is within [`MAX_SKEW_SECS`] of `now_unix_secs`, and
    /// finally the signature over `timestamp ‖ body` (strict Ed25519, which
    /// rejects malleable signatures). Freshness is checked before the
    /// signature so junk requests cost no curve arithmetic.
    pub fn verify(
        &self,
        signature_hex: &str,
        timestamp: &str,
        body: &[u8],
        now_unix_secs: u64,
    ) -> Result<(), VerifyError> {
        let mut sig_bytes = [0u8; SIGNATURE_LENGTH];
        if signature_hex.len() != SIGNATURE_LENGTH * 2 {
            return Err(VerifyError::BadSignatureEncoding);
        }
        hex::decode_to_slice(signature_hex, &mut sig_bytes).map_err(|_| VerifyError::BadSignatureEncoding)?;
        let signature = Signature::from_bytes(&sig_bytes);

        let ts = parse_timestamp(timestamp)?;
        if ts.abs_diff(now_unix_secs) > MAX_SKEW_SECS {
            return Err(VerifyError::Stale);
        }

        let mut message = Vec::with_capacity(timestamp.len() + body.len());
        message.extend_from_slice(timestamp.as_bytes());
        message.extend_from_slice(body);
        self.key.verify_strict(&message, &signature).map_err(|_| VerifyError::Invalid)
    }
}

/// Parses a unix-seconds timestamp made only of ASCII digits (`u64::from_str`
/// would also accept a leading `+`).
fn parse_timestamp(timestamp: &str) -> Result<u64, VerifyError> {
    if timestamp.is_empty() || !timestamp.bytes().all(|b| b.is_ascii_digit()) {
        return Err(VerifyError::BadTimestamp);
    }
    timestamp.parse().map_err(|_| VerifyError::BadTimestamp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    const NOW: u64 = 1_700_000_000;
    const BODY: &[u8] = br#"{"type":1}"#;

    fn signing_key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn verifier(key: &SigningKey) -> InteractionVerifier {
        InteractionVerifier::from_hex(&hex::encode(key.verifying_key().to_bytes())).expect("valid test key")
    }

    fn sign(key: &SigningKey, timestamp: &str, body: &[u8]) -> String {
        let mut msg = timestamp.as_bytes().to_vec();
        msg.extend_from_slice(body);
        hex::encode(key.sign(&msg).to_bytes())
    }

    #[test]
    fn accepts_valid_signature() {
        let key = signing_key(7);
        let ts = NOW.to_string();
        let sig = sign(&key, &ts, BODY);
        assert_eq!(verifier(&key).verify(&sig, &ts, BODY, NOW), Ok(()));
        // Uppercase hex is still hex.
        let upper = sig.to_uppercase();
        assert_eq!(verifier(&key).verify(&upper, &ts, BODY, NOW), Ok(()));
    }

    #[test]
    fn rejects_wrong_key() {
        let ts = NOW.to_string();
        let sig = sign(&signing_key(7), &ts, BODY);
        assert_eq!(verifier(&signing_key(8)).verify(&sig, &ts, BODY, NOW), Err(VerifyError::Invalid));
    }

    #[test]
    fn rejects_altered_body() {
        let key = signing_key(7);
        let ts = NOW.to_string();
        let sig = sign(&key, &ts, BODY);
        assert_eq!(verifier(&key).verify(&sig, &ts, br#"{"type":2}"#, NOW), Err(VerifyError::Invalid));
    }

    #[test]
    fn rejects_altered_timestamp() {
        let key = signing_key(7);
        let sig = sign(&key, &NOW.to_string(), BODY);
        let altered = (NOW + 1).to_string();
        assert_eq!(verifier(&key).verify(&sig, &altered, BODY, NOW), Err(VerifyError::Invalid));
    }

    #[test]
    fn rejects_stale_in_both_directions_and_accepts_the_edge() {
        let key = signing_key(7);
        let v = verifier(&key);
        for (ts, expected) in [
            (NOW - MAX_SKEW_SECS - 1, Err(VerifyError::Stale)),
            (NOW + MAX_SKEW_SECS + 1, Err(VerifyError::Stale)),
            (NOW - MAX_SKEW_SECS, Ok(())),
            (NOW + MAX_SKEW_SECS, Ok(())),
        ] {
            let ts = ts.to_string();
            let sig = sign(&key, &ts, BODY);
            assert_eq!(v.verify(&sig, &ts, BODY, NOW), expected, "ts={ts}");
        }
    }

    #[test]
    fn rejects_malformed_signature_and_timestamp() {
        let key = signing_key(7);
        let v = verifier(&key);
        let ts = NOW.to_string();
        let sig = sign(&key, &ts, BODY);
        for bad in ["", "zz", &sig[..126], &format!("{sig}00"), &sig.replace('a', "g")] {
            if bad == sig {
                continue;
            }
            assert_eq!(v.verify(bad, &ts, BODY, NOW), Err(VerifyError::BadSignatureEncoding), "sig={bad:?}");
        }
        for bad in ["", "+1700000000", "17e8", " 1700000000", "99999999999999999999999"] {
            assert_eq!(v.verify(&sig, bad, BODY, NOW), Err(VerifyError::BadTimestamp), "ts={bad:?}");
        }
    }

    #[test]
    fn rejects_malformed_keys() {
        assert!(matches!(InteractionVerifier::from_hex("abcd"), Err(KeyError::BadLength { expected: 64, .. })));
        assert_eq!(InteractionVerifier::from_hex(&"zz".repeat(32)).map(|_| ()), Err(KeyError::BadHex));
        let key = signing_key(1);
        let padded = format!("  {}\n", hex::encode(key.verifying_key().to_bytes()));
        assert!(InteractionVerifier::from_hex(&padded).is_ok());
    }
}
