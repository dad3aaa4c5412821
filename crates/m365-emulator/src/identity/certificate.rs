//! Registered certificates (`keyCredentials`): the public key and the thumbprints that client
//! assertions name in `x5t` (SHA-1) or `x5t#S256` (SHA-256).

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use rsa::pkcs8::DecodePublicKey;
use rsa::RsaPublicKey;
use sha1::Digest as _;

#[derive(Debug, Clone)]
pub struct Certificate {
    pub der: Vec<u8>,
    pub public_key: RsaPublicKey,
}

impl Certificate {
    /// Parses an X.509 certificate (DER) holding an RSA key.
    pub fn from_der(der: &[u8]) -> Option<Certificate> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        let public_key = RsaPublicKey::from_public_key_der(cert.public_key().raw).ok()?;
        Some(Certificate {
            der: der.to_vec(),
            public_key,
        })
    }

    /// Base64url SHA-1 of the DER, as in `x5t`.
    pub fn x5t(&self) -> String {
        B64.encode(sha1::Sha1::digest(&self.der))
    }

    /// Base64url SHA-256 of the DER, as in `x5t#S256`.
    pub fn x5t_s256(&self) -> String {
        B64.encode(sha2::Sha256::digest(&self.der))
    }

    /// Standard base64 SHA-1 thumbprint: `customKeyIdentifier` in keyCredentials.
    pub fn custom_key_identifier(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(sha1::Sha1::digest(&self.der))
    }
}

/// Decodes a PEM certificate or a bare base64 DER (as keyCredentials.key carries it).
pub fn der_from_text(text: &str) -> Option<Vec<u8>> {
    let body: String = text
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .join("")
        .split_whitespace()
        .collect();
    base64::engine::general_purpose::STANDARD.decode(body).ok()
}
