//! Standard Webhooks signatures.
//!
//! Every message carries `webhook-id`, `webhook-timestamp` (Unix seconds) and
//! `webhook-signature`: `v1,` + base64(HMAC-SHA256(secret, "{id}.{timestamp}.{body}")).
//! While a secret rotates, the header carries one signature per secret,
//! separated by spaces, so receivers holding either secret accept it.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Prefix of an endpoint secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// An endpoint signing secret (`whsec_` + base64 of the key bytes).
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecret {
    key: Vec<u8>,
}

impl std::fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningSecret(********)")
    }
}

/// Why a secret string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// Not base64 after the prefix.
    #[error("a webhook secret is `whsec_` followed by base64")]
    Malformed,
    /// Too short or too long.
    #[error("a webhook secret must hold 24 to 64 bytes, got {0}")]
    Length(usize),
}

impl SigningSecret {
    /// Makes a fresh secret of 32 random bytes.
    pub fn generate() -> Self {
        use rand::RngCore;
        let mut key = vec![0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        SigningSecret { key }
    }

    /// Parses `whsec_…` (the prefix is optional, as in the reference libraries).
    pub fn parse(s: &str) -> Result<Self, SecretError> {
        let b64 = s.strip_prefix(SECRET_PREFIX).unwrap_or(s);
        let key = B64.decode(b64).map_err(|_| SecretError::Malformed)?;
        if !(24..=64).contains(&key.len()) {
            return Err(SecretError::Length(key.len()));
        }
        Ok(SigningSecret { key })
    }

    /// Parses a secret without the length rule, for verifying published test vectors.
    pub fn parse_any_length(s: &str) -> Result<Self, SecretError> {
        let b64 = s.strip_prefix(SECRET_PREFIX).unwrap_or(s);
        let key = B64.decode(b64).map_err(|_| SecretError::Malformed)?;
        Ok(SigningSecret { key })
    }

    /// The `whsec_…` form, shown to the operator once.
    pub fn expose(&self) -> String {
        format!("{SECRET_PREFIX}{}", B64.encode(&self.key))
    }

    /// `v1,<base64 signature>` of one message.
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        format!("v1,{}", B64.encode(self.mac(msg_id, timestamp, body)))
    }

    fn mac(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> [u8; 32] {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.key) {
            Ok(m) => m,
            Err(_) => return [0u8; 32],
        };
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.finalize().into_bytes().into()
    }
}

/// The `webhook-signature` header for a message signed with every secret
/// currently valid for its endpoint (two while one rotates).
pub fn signature_header(
    secrets: &[&SigningSecret],
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets
        .iter()
        .map(|s| s.sign(msg_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Why a received message failed verification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The timestamp is further from now than the tolerance.
    #[error("timestamp outside the tolerance window")]
    Timestamp,
    /// No signature in the header matches.
    #[error("no matching signature")]
    Signature,
}

/// Verifies a received message as the reference libraries do: the timestamp
/// within `tolerance_secs` of `now`, and any `v1` signature in the header
/// matching, compared in constant time.
pub fn verify(
    secret: &SigningSecret,
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
    header: &str,
    now: i64,
    tolerance_secs: i64,
) -> Result<(), VerifyError> {
    if (now - timestamp).abs() > tolerance_secs {
        return Err(VerifyError::Timestamp);
    }
    let expected = secret.mac(msg_id, timestamp, body);
    for part in header.split(' ') {
        let Some(sig) = part.strip_prefix("v1,") else {
            continue;
        };
        let Ok(bytes) = B64.decode(sig) else { continue };
        if bytes.len() == expected.len() && bool::from(bytes.as_slice().ct_eq(&expected)) {
            return Ok(());
        }
    }
    Err(VerifyError::Signature)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: i64 = 1614265330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const EXPECTED: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn signs_the_published_test_vector() {
        let secret = SigningSecret::parse_any_length(SECRET).unwrap();
        assert_eq!(secret.sign(ID, TS, BODY), EXPECTED);
    }

    #[test]
    fn verifies_the_published_test_vector_and_rejects_tampering() {
        let secret = SigningSecret::parse_any_length(SECRET).unwrap();
        assert_eq!(
            verify(&secret, ID, TS, BODY, EXPECTED, TS + 10, 300),
            Ok(())
        );
        assert_eq!(
            verify(
                &secret,
                ID,
                TS,
                br#"{"test": 2432232315}"#,
                EXPECTED,
                TS,
                300
            ),
            Err(VerifyError::Signature)
        );
        assert_eq!(
            verify(&secret, "msg_other", TS, BODY, EXPECTED, TS, 300),
            Err(VerifyError::Signature)
        );
        assert_eq!(
            verify(&secret, ID, TS, BODY, EXPECTED, TS + 301, 300),
            Err(VerifyError::Timestamp)
        );
    }

    #[test]
    fn rotation_header_carries_both_signatures_and_either_secret_verifies() {
        let old = SigningSecret::generate();
        let new = SigningSecret::generate();
        let header = signature_header(&[&new, &old], ID, TS, BODY);
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert!(parts.iter().all(|p| p.starts_with("v1,")));
        assert_eq!(verify(&old, ID, TS, BODY, &header, TS, 300), Ok(()));
        assert_eq!(verify(&new, ID, TS, BODY, &header, TS, 300), Ok(()));
        let stranger = SigningSecret::generate();
        assert_eq!(
            verify(&stranger, ID, TS, BODY, &header, TS, 300),
            Err(VerifyError::Signature)
        );
    }

    #[test]
    fn generated_secrets_round_trip_and_are_never_printed() {
        let s = SigningSecret::generate();
        let text = s.expose();
        assert!(text.starts_with("whsec_"));
        assert_eq!(SigningSecret::parse(&text).unwrap(), s);
        assert!(!format!("{s:?}").contains(&text[6..]));
    }

    #[test]
    fn secrets_of_the_wrong_size_or_shape_are_refused() {
        assert_eq!(
            SigningSecret::parse("whsec_not base64!"),
            Err(SecretError::Malformed)
        );
        assert_eq!(
            SigningSecret::parse("whsec_AAAA"),
            Err(SecretError::Length(3))
        );
    }
}
