//! The one place where a shared secret is checked: constant-time comparison of bearer tokens
//! and HMAC-SHA256 signatures over a request body.
//!
//! Every webhook endpoint (registry pushes, Git host pushes) authenticates through these two
//! functions, so a timing-safe comparison and one hex decoder are written — and reviewed —
//! once. Pure computation, no I/O, which is why it lives in the crate everything depends on.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Why a signature was not accepted. The variants never carry the secret or the signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The signature is not an even number of hex digits.
    #[error("signature is not hex")]
    NotHex,
    /// The signature is well formed but not the body's HMAC under the secret.
    #[error("signature does not match the body")]
    Mismatch,
}

/// Whether `given` equals `secret`, in time that depends only on `secret`'s length, so a
/// caller cannot learn the secret byte by byte (or its length) from response times.
pub fn secret_matches(given: &[u8], secret: &[u8]) -> bool {
    // Lengths differing is folded into the accumulator instead of returning early; the loop
    // always walks the whole secret, reading a zero where `given` is shorter.
    let mut diff = u8::from(given.len() != secret.len());
    for (i, s) in secret.iter().enumerate() {
        diff |= given.get(i).copied().unwrap_or(0) ^ s;
    }
    diff == 0
}

/// Verifies that `hex_signature` (lower- or upper-case hex, without any `sha256=` prefix) is
/// the HMAC-SHA256 of `body` under `secret`. The MAC comparison is constant-time.
pub fn verify_hmac_sha256(
    secret: &[u8],
    body: &[u8],
    hex_signature: &str,
) -> Result<(), SignatureError> {
    let given = decode_hex(hex_signature.trim()).ok_or(SignatureError::NotHex)?;
    // HMAC takes keys of any length, so this cannot fail; a failure is still a refusal.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| SignatureError::Mismatch)?;
    mac.update(body);
    mac.verify_slice(&given)
        .map_err(|_| SignatureError::Mismatch)
}

/// Bytes as lowercase hex.
pub fn encode_hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Bytes from lowercase or uppercase hex; `None` for an odd length or a non-hex digit.
pub fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &[u8], body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
        mac.update(body);
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(secret_matches(b"s3cret", b"s3cret"));
        assert!(!secret_matches(b"s3cre", b"s3cret"));
        assert!(!secret_matches(b"s3cret!", b"s3cret"));
        assert!(!secret_matches(b"s3creT", b"s3cret"));
        assert!(!secret_matches(b"", b"s3cret"));
        // A prefix padded with zero bytes must not pass as the secret.
        assert!(!secret_matches(b"ab\0", b"ab"));
        assert!(!secret_matches(b"ab", b"ab\0"));
        assert!(secret_matches(b"", b""));
    }

    #[test]
    fn signatures() {
        let sig = sign(b"k", b"body");
        assert_eq!(verify_hmac_sha256(b"k", b"body", &sig), Ok(()));
        assert_eq!(
            verify_hmac_sha256(b"k", b"body", &sig.to_uppercase()),
            Ok(())
        );
        assert_eq!(
            verify_hmac_sha256(b"other", b"body", &sig),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_hmac_sha256(b"k", b"tampered", &sig),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_hmac_sha256(b"k", b"body", &sig[..10]),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_hmac_sha256(b"k", b"body", "abc"),
            Err(SignatureError::NotHex)
        );
        assert_eq!(
            verify_hmac_sha256(b"k", b"body", "zz"),
            Err(SignatureError::NotHex)
        );
        assert_eq!(
            verify_hmac_sha256(b"k", b"body", ""),
            Err(SignatureError::Mismatch)
        );
    }
}
