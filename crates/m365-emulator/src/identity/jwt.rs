//! Compact JWS (RS256 / PS256): signing the emulator's tokens and verifying client assertions.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer as _, Verifier as _};
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde_json::Value;
use sha2::Sha256;
use std::collections::HashSet;
use std::sync::Mutex;

/// The emulator's token-signing key. Fixed, so tokens survive restarts; it signs nothing real.
const SIGNING_KEY_PEM: &str = include_str!("signing-key.pem");

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JwtError {
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("unsupported alg {0}")]
    Algorithm(String),
    #[error("the signature does not verify")]
    Signature,
}

/// A JWT split into its parts; the signature is not yet checked.
#[derive(Debug, Clone)]
pub struct Jwt {
    pub header: Value,
    pub claims: Value,
    signing_input: String,
    signature: Vec<u8>,
}

impl Jwt {
    pub fn parse(token: &str) -> Result<Jwt, JwtError> {
        let mut parts = token.split('.');
        let (Some(h), Some(c), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtError::Malformed);
        };
        let decode = |p: &str| {
            B64.decode(p.trim_end_matches('='))
                .map_err(|_| JwtError::Malformed)
        };
        let header: Value = serde_json::from_slice(&decode(h)?).map_err(|_| JwtError::Malformed)?;
        let claims: Value = serde_json::from_slice(&decode(c)?).map_err(|_| JwtError::Malformed)?;
        Ok(Jwt {
            header,
            claims,
            signing_input: format!("{h}.{c}"),
            signature: decode(s)?,
        })
    }

    pub fn alg(&self) -> &str {
        self.header["alg"].as_str().unwrap_or("")
    }

    /// Verifies an RS256 (PKCS#1 v1.5) or PS256 (PSS) signature.
    pub fn verify(&self, key: &RsaPublicKey) -> Result<(), JwtError> {
        let input = self.signing_input.as_bytes();
        match self.alg() {
            "RS256" => {
                let sig = rsa::pkcs1v15::Signature::try_from(&self.signature[..])
                    .map_err(|_| JwtError::Signature)?;
                rsa::pkcs1v15::VerifyingKey::<Sha256>::new(key.clone())
                    .verify(input, &sig)
                    .map_err(|_| JwtError::Signature)
            }
            "PS256" => {
                let sig = rsa::pss::Signature::try_from(&self.signature[..])
                    .map_err(|_| JwtError::Signature)?;
                rsa::pss::VerifyingKey::<Sha256>::new(key.clone())
                    .verify(input, &sig)
                    .map_err(|_| JwtError::Signature)
            }
            other => Err(JwtError::Algorithm(other.to_string())),
        }
    }
}

/// Signs RS256 with the key the OpenID metadata publishes.
#[derive(Debug)]
pub struct TokenSigner {
    key: RsaPrivateKey,
    pub kid: String,
    /// Tokens whose signature verified (see `verify_issued`).
    verified: Mutex<HashSet<String>>,
}

/// Verified tokens remembered at most; the set starts again when full.
const MAX_VERIFIED_TOKENS: usize = 10_000;

impl Default for TokenSigner {
    fn default() -> Self {
        let key = RsaPrivateKey::from_pkcs8_pem(SIGNING_KEY_PEM)
            .expect("the embedded signing key is valid PKCS#8");
        let kid = {
            use sha1::Digest as _;
            B64.encode(sha1::Sha1::digest(key.n().to_bytes_be()))
        };
        TokenSigner {
            key,
            kid,
            verified: Mutex::default(),
        }
    }
}

impl TokenSigner {
    pub fn sign(&self, claims: &Value) -> String {
        let header =
            serde_json::json!({ "typ": "JWT", "alg": "RS256", "x5t": self.kid, "kid": self.kid });
        sign_with(&self.key, "RS256", &header, claims)
    }

    /// Checks the signature of `jwt`, parsed from `token`, against this signer's key. A
    /// token that verified once is remembered, as a real front door caches validated
    /// tokens: the RSA check costs more CPU than serving a Graph request, and a benchmark's
    /// emulator shares the cores with the client it measures.
    pub fn verify_issued(&self, token: &str, jwt: &Jwt) -> Result<(), JwtError> {
        let known = |v: &HashSet<String>| v.contains(token);
        if known(&self.verified.lock().unwrap_or_else(|e| e.into_inner())) {
            return Ok(());
        }
        jwt.verify(&self.public_key())?;
        let mut verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        if verified.len() >= MAX_VERIFIED_TOKENS {
            verified.clear();
        }
        verified.insert(token.to_owned());
        Ok(())
    }

    pub fn public_key(&self) -> RsaPublicKey {
        self.key.to_public_key()
    }

    /// The JWKS document for `/discovery/v2.0/keys`.
    pub fn jwks(&self) -> Value {
        let public = self.public_key();
        serde_json::json!({ "keys": [{
            "kty": "RSA", "use": "sig", "kid": self.kid, "x5t": self.kid,
            "n": B64.encode(public.n().to_bytes_be()), "e": B64.encode(public.e().to_bytes_be()),
        }]})
    }
}

/// Signs `header.claims` with RS256 or PS256 (tests use this to build client assertions).
pub fn sign_with(key: &RsaPrivateKey, alg: &str, header: &Value, claims: &Value) -> String {
    let input = format!(
        "{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    );
    let signature = match alg {
        "PS256" => {
            let signer = rsa::pss::BlindedSigningKey::<Sha256>::new(key.clone());
            rsa::signature::RandomizedSigner::sign_with_rng(
                &signer,
                &mut rand::thread_rng(),
                input.as_bytes(),
            )
            .to_vec()
        }
        _ => rsa::pkcs1v15::SigningKey::<Sha256>::new(key.clone())
            .sign(input.as_bytes())
            .to_vec(),
    };
    format!("{input}.{}", B64.encode(signature))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_tokens_verify_and_tampering_fails() {
        let signer = TokenSigner::default();
        let token = signer.sign(&serde_json::json!({"aud": "x"}));
        let jwt = Jwt::parse(&token).unwrap();
        assert_eq!(jwt.verify(&signer.public_key()), Ok(()));
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged_claims = B64.encode(r#"{"aud":"y"}"#);
        parts[1] = &forged_claims;
        let forged = Jwt::parse(&parts.join(".")).unwrap();
        assert_eq!(
            forged.verify(&signer.public_key()),
            Err(JwtError::Signature)
        );
        // Remembering verified tokens never lets a forged one through.
        for _ in 0..2 {
            assert_eq!(signer.verify_issued(&token, &jwt), Ok(()));
            assert_eq!(
                signer.verify_issued(&parts.join("."), &forged),
                Err(JwtError::Signature)
            );
        }
    }
}
