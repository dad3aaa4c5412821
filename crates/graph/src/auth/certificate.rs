//! The app's certificate credential: a self-signed RSA certificate whose private key signs
//! client assertions (JWT, PS256 with `x5t#S256`, or legacy RS256 with `x5t`).

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use chrono::{DateTime, Datelike, Duration as ChronoDuration, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use url::Url;
use uuid::Uuid;

use crate::error::GraphError;

/// How long a client assertion is valid after `nbf` (Entra's guidance: 5 to 10 minutes).
const ASSERTION_LIFETIME_SECS: i64 = 600;

/// Signature scheme of the client assertion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AssertionAlgorithm {
    /// RSASSA-PSS with SHA-256; header carries `x5t#S256`. What Entra documents today.
    #[default]
    Ps256,
    /// RSASSA-PKCS1-v1_5 with SHA-256; header carries the SHA-1 `x5t`. The older form.
    Rs256,
}

/// The registered claims of a client assertion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssertionClaims {
    /// The token endpoint the assertion is presented to.
    pub aud: String,
    /// The client (application) id.
    pub iss: String,
    /// The client (application) id again.
    pub sub: String,
    /// Unique per assertion.
    pub jti: String,
    pub nbf: i64,
    pub iat: i64,
    pub exp: i64,
}

impl AssertionClaims {
    pub fn new(token_url: &Url, client_id: &str, now: DateTime<Utc>, jti: Uuid) -> AssertionClaims {
        let t = now.timestamp();
        AssertionClaims {
            aud: token_url.to_string(),
            iss: client_id.to_owned(),
            sub: client_id.to_owned(),
            jti: jti.to_string(),
            nbf: t,
            iat: t,
            exp: t + ASSERTION_LIFETIME_SECS,
        }
    }
}

/// A certificate and its RSA private key (PKCS#8 PEM). The key never leaves this value except
/// through [`AppCertificate::private_key_pem`], for the caller to seal.
#[derive(Clone)]
pub struct AppCertificate {
    der: Vec<u8>,
    key_pem: String,
}

impl std::fmt::Debug for AppCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppCertificate")
            .field("x5t", &self.x5t())
            .field("private_key", &"<redacted>")
            .finish()
    }
}

impl AppCertificate {
    /// A new 2048-bit RSA key and a self-signed certificate `CN={common_name}`, valid from
    /// yesterday for two years.
    pub fn generate(common_name: &str) -> Result<AppCertificate, GraphError> {
        use rsa::pkcs8::{EncodePrivateKey, LineEnding};
        let cert_err = |e: &dyn std::fmt::Display| GraphError::Certificate(e.to_string());
        let key =
            rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).map_err(|e| cert_err(&e))?;
        let key_pem = key
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| cert_err(&e))?
            .to_string();
        let key_pair =
            rcgen::KeyPair::from_pkcs8_pem_and_sign_algo(&key_pem, &rcgen::PKCS_RSA_SHA256)
                .map_err(|e| cert_err(&e))?;
        let mut params =
            rcgen::CertificateParams::new(Vec::<String>::new()).map_err(|e| cert_err(&e))?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, common_name);
        let from = Utc::now() - ChronoDuration::days(1);
        let to = from + ChronoDuration::days(2 * 365);
        let ymd = |d: DateTime<Utc>| rcgen::date_time_ymd(d.year(), d.month() as u8, d.day() as u8);
        params.not_before = ymd(from);
        params.not_after = ymd(to);
        let cert = params.self_signed(&key_pair).map_err(|e| cert_err(&e))?;
        Ok(AppCertificate {
            der: cert.der().to_vec(),
            key_pem,
        })
    }

    /// An existing certificate (PEM) and its RSA private key (PKCS#8 or PKCS#1 PEM), for the
    /// manual "bring your own app registration" mode.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<AppCertificate, GraphError> {
        let der = pem_body(cert_pem, "CERTIFICATE")?;
        // Fail now rather than at the first token request.
        EncodingKey::from_rsa_pem(key_pem.as_bytes())
            .map_err(|e| GraphError::Certificate(format!("private key: {e}")))?;
        Ok(AppCertificate {
            der,
            key_pem: key_pem.to_owned(),
        })
    }

    /// DER bytes of the certificate.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    pub fn certificate_pem(&self) -> String {
        let b64 = STANDARD.encode(&self.der);
        let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
        for chunk in b64.as_bytes().chunks(64) {
            out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
            out.push('\n');
        }
        out.push_str("-----END CERTIFICATE-----\n");
        out
    }

    /// The private key, for the caller to seal into its secrets store. Never log it.
    pub fn private_key_pem(&self) -> &str {
        &self.key_pem
    }

    pub fn sha1_thumbprint(&self) -> [u8; 20] {
        Sha1::digest(&self.der).into()
    }

    pub fn sha256_thumbprint(&self) -> [u8; 32] {
        Sha256::digest(&self.der).into()
    }

    /// `x5t`: base64url SHA-1 thumbprint of the DER certificate.
    pub fn x5t(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.sha1_thumbprint())
    }

    /// `x5t#S256`: base64url SHA-256 thumbprint of the DER certificate.
    pub fn x5t_s256(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.sha256_thumbprint())
    }

    /// The `keyCredentials` entry that registers this certificate on an application.
    pub fn key_credential(&self, display_name: &str) -> serde_json::Value {
        serde_json::json!({
            "customKeyIdentifier": STANDARD.encode(self.sha1_thumbprint()),
            "keyId": Uuid::new_v4().to_string(),
            "type": "AsymmetricX509Cert",
            "usage": "Verify",
            "key": STANDARD.encode(&self.der),
            "displayName": display_name,
        })
    }

    /// A signed client assertion JWT with the given claims.
    pub fn client_assertion(
        &self,
        alg: AssertionAlgorithm,
        claims: &AssertionClaims,
    ) -> Result<String, GraphError> {
        let mut header = match alg {
            AssertionAlgorithm::Ps256 => {
                let mut h = Header::new(Algorithm::PS256);
                h.x5t_s256 = Some(self.x5t_s256());
                h
            }
            AssertionAlgorithm::Rs256 => {
                let mut h = Header::new(Algorithm::RS256);
                h.x5t = Some(self.x5t());
                h
            }
        };
        header.typ = Some("JWT".into());
        let key = EncodingKey::from_rsa_pem(self.key_pem.as_bytes())
            .map_err(|e| GraphError::Certificate(format!("private key: {e}")))?;
        jsonwebtoken::encode(&header, claims, &key)
            .map_err(|e| GraphError::Certificate(format!("signing the client assertion: {e}")))
    }
}

/// The base64 body of the first PEM block labelled `label`.
fn pem_body(pem: &str, label: &str) -> Result<Vec<u8>, GraphError> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem
        .find(&begin)
        .ok_or_else(|| GraphError::Certificate(format!("no {label} PEM block")))?
        + begin.len();
    let stop = pem[start..]
        .find(&end)
        .ok_or_else(|| GraphError::Certificate(format!("unterminated {label} PEM block")))?
        + start;
    let b64: String = pem[start..stop]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    STANDARD
        .decode(b64)
        .map_err(|e| GraphError::Certificate(format!("{label} PEM is not base64: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_fixtures::fixture;
    use jsonwebtoken::{DecodingKey, Validation};
    use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey, LineEnding};
    use std::sync::OnceLock;

    /// Key generation is the slow part; share one certificate across tests.
    fn cert() -> &'static AppCertificate {
        static CERT: OnceLock<AppCertificate> = OnceLock::new();
        CERT.get_or_init(|| AppCertificate::generate("Strongroom test").unwrap())
    }

    fn public_pem(c: &AppCertificate) -> String {
        let key = rsa::RsaPrivateKey::from_pkcs8_pem(c.private_key_pem()).unwrap();
        key.to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap()
    }

    fn decode_part(jwt: &str, i: usize) -> serde_json::Value {
        let part = jwt.split('.').nth(i).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    }

    fn claims() -> AssertionClaims {
        let url = Url::parse(
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token",
        )
        .unwrap();
        AssertionClaims::new(
            &url,
            "aaaabbbb-0000-cccc-1111-dddd2222eeee",
            Utc::now(),
            Uuid::new_v4(),
        )
    }

    #[test]
    fn ps256_assertion_matches_the_documented_shape_and_verifies() {
        let c = cert();
        let claims = claims();
        let jwt = c
            .client_assertion(AssertionAlgorithm::Ps256, &claims)
            .unwrap();
        let header = decode_part(&jwt, 0);
        // Same header keys as client-assertion-decoded-PS256.json.
        let documented: serde_json::Value =
            serde_json::from_slice(&fixture("client-assertion-decoded-PS256.json")).unwrap();
        let mut want: Vec<_> = documented["header"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        let mut got: Vec<_> = header.as_object().unwrap().keys().cloned().collect();
        want.sort();
        got.sort();
        assert_eq!(got, want);
        assert_eq!(header["alg"], "PS256");
        assert_eq!(header["typ"], "JWT");
        let thumb = URL_SAFE_NO_PAD
            .decode(header["x5t#S256"].as_str().unwrap())
            .unwrap();
        assert_eq!(thumb, Sha256::digest(c.der()).to_vec());

        let payload = decode_part(&jwt, 1);
        assert_eq!(payload["iss"], payload["sub"]);
        assert_eq!(payload["iss"], "aaaabbbb-0000-cccc-1111-dddd2222eeee");
        assert_eq!(
            payload["exp"].as_i64().unwrap() - payload["nbf"].as_i64().unwrap(),
            600
        );
        for key in documented["payload"].as_object().unwrap().keys() {
            assert!(payload.get(key).is_some(), "claim {key} missing");
        }

        let mut v = Validation::new(Algorithm::PS256);
        v.set_audience(&[claims.aud.as_str()]);
        v.set_issuer(&[claims.iss.as_str()]);
        let key = DecodingKey::from_rsa_pem(public_pem(c).as_bytes()).unwrap();
        let decoded = jsonwebtoken::decode::<AssertionClaims>(&jwt, &key, &v).unwrap();
        assert_eq!(decoded.claims, claims);
    }

    #[test]
    fn rs256_assertion_carries_the_sha1_x5t_and_verifies() {
        let c = cert();
        let claims = claims();
        let jwt = c
            .client_assertion(AssertionAlgorithm::Rs256, &claims)
            .unwrap();
        let header = decode_part(&jwt, 0);
        assert_eq!(header["alg"], "RS256");
        assert!(header.get("x5t#S256").is_none());
        let thumb = URL_SAFE_NO_PAD
            .decode(header["x5t"].as_str().unwrap())
            .unwrap();
        assert_eq!(thumb.len(), 20);
        assert_eq!(thumb, Sha1::digest(c.der()).to_vec());
        let mut v = Validation::new(Algorithm::RS256);
        v.set_audience(&[claims.aud.as_str()]);
        let key = DecodingKey::from_rsa_pem(public_pem(c).as_bytes()).unwrap();
        jsonwebtoken::decode::<AssertionClaims>(&jwt, &key, &v).unwrap();
        // A tampered payload fails verification.
        let mut parts: Vec<&str> = jwt.split('.').collect();
        let other = URL_SAFE_NO_PAD.encode(
            br#"{"aud":"x","iss":"y","sub":"y","jti":"j","nbf":0,"iat":0,"exp":9999999999}"#,
        );
        parts[1] = &other;
        assert!(jsonwebtoken::decode::<AssertionClaims>(&parts.join("."), &key, &v).is_err());
    }

    #[test]
    fn key_credential_and_pem_round_trip() {
        let c = cert();
        let kc = c.key_credential("Strongroom");
        assert_eq!(kc["type"], "AsymmetricX509Cert");
        assert_eq!(kc["usage"], "Verify");
        assert_eq!(
            STANDARD.decode(kc["key"].as_str().unwrap()).unwrap(),
            c.der()
        );
        assert_eq!(
            STANDARD
                .decode(kc["customKeyIdentifier"].as_str().unwrap())
                .unwrap(),
            c.sha1_thumbprint().to_vec()
        );
        let again = AppCertificate::from_pem(&c.certificate_pem(), c.private_key_pem()).unwrap();
        assert_eq!(again.der(), c.der());
        assert!(AppCertificate::from_pem("junk", c.private_key_pem()).is_err());
        assert!(AppCertificate::from_pem(&c.certificate_pem(), "junk").is_err());
        assert!(!format!("{c:?}").contains("PRIVATE"));
    }
}
