//! Web Push from the application server's side: the payload encrypted for one browser (RFC 8291, `aes128gcm`
//! content coding of RFC 8188) and signed for the push service with VAPID (RFC 8292), then POSTed (RFC 8030).
//! The key pair comes from a Secrets Manager secret: a PKCS#8 PEM key if the operator brings one (keeping the
//! subscriptions made with an earlier deployment's key), else one derived from the secret's random string.

use std::time::Duration;

use async_trait::async_trait;
use aws_lc_rs::{aead, agreement, hkdf, rand, signature};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::{AppError, AppResult};
use crate::model::{PushSubscription, decode_base64url};
use crate::ports::{PushRequest, PushResponse, PushService};

/// The record size announced in the header; one record holds any push payload (at most 4 KB).
const RECORD_SIZE: u32 = 4096;
/// How long a VAPID token is valid (RFC 8292 allows at most 24 hours).
pub const VAPID_TOKEN_LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// Encrypts `plaintext` for the browser holding `subscription`'s keys, with a fresh key pair and salt.
pub fn encrypt(subscription: &PushSubscription, plaintext: &[u8]) -> AppResult<Vec<u8>> {
    let ephemeral = agreement::PrivateKey::generate(&agreement::ECDH_P256).map_err(crypto_error)?;
    let mut salt = [0u8; 16];
    rand::fill(&mut salt).map_err(crypto_error)?;
    let keys = subscription.keys.as_ref().ok_or_else(|| crypto_error("a browser's subscription without keys"))?;
    let ua_public = decode_base64url(&keys.p256dh).ok_or_else(|| crypto_error("p256dh"))?;
    let auth = decode_base64url(&keys.auth).ok_or_else(|| crypto_error("auth"))?;
    encrypt_with(&ephemeral, &salt, &ua_public, &auth, plaintext)
}

/// RFC 8291 section 3 with a given sender key and salt (the RFC's example fixes both).
fn encrypt_with(
    sender: &agreement::PrivateKey,
    salt: &[u8; 16],
    ua_public: &[u8],
    auth_secret: &[u8],
    plaintext: &[u8],
) -> AppResult<Vec<u8>> {
    let as_public = sender.compute_public_key().map_err(crypto_error)?;
    let as_public = as_public.as_ref();
    let peer = agreement::UnparsedPublicKey::new(&agreement::ECDH_P256, ua_public);
    let ecdh_secret = agreement::agree(sender, peer, crypto_error("agreement"), |secret| Ok(secret.to_vec()))?;
    // IKM = HKDF(auth_secret, ecdh_secret, "WebPush: info" || 0x00 || ua_public || as_public, 32)
    let key_info = [b"WebPush: info\0".as_slice(), ua_public, as_public];
    let ikm: [u8; 32] = expand(&hkdf::Salt::new(hkdf::HKDF_SHA256, auth_secret).extract(&ecdh_secret), &key_info)?;
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(&ikm);
    let cek: [u8; 16] = expand(&prk, &[b"Content-Encoding: aes128gcm\0"])?;
    let nonce: [u8; 12] = expand(&prk, &[b"Content-Encoding: nonce\0"])?;

    // One record: the plaintext, then the last-record delimiter 0x02 (no padding).
    let mut record = Vec::with_capacity(plaintext.len() + 17);
    record.extend_from_slice(plaintext);
    record.push(2);
    let key = aead::LessSafeKey::new(aead::UnboundKey::new(&aead::AES_128_GCM, &cek).map_err(crypto_error)?);
    key.seal_in_place_append_tag(aead::Nonce::assume_unique_for_key(nonce), aead::Aad::empty(), &mut record)
        .map_err(crypto_error)?;

    let mut body = Vec::with_capacity(21 + as_public.len() + record.len());
    body.extend_from_slice(salt);
    body.extend_from_slice(&RECORD_SIZE.to_be_bytes());
    body.push(as_public.len() as u8);
    body.extend_from_slice(as_public);
    body.extend_from_slice(&record);
    Ok(body)
}

struct Length(usize);

impl hkdf::KeyType for Length {
    fn len(&self) -> usize {
        self.0
    }
}

fn expand<const N: usize>(prk: &hkdf::Prk, info: &[&[u8]]) -> AppResult<[u8; N]> {
    let mut out = [0u8; N];
    prk.expand(info, Length(N)).and_then(|okm| okm.fill(&mut out)).map_err(crypto_error)?;
    Ok(out)
}

fn crypto_error(cause: impl std::fmt::Debug) -> AppError {
    AppError::internal(format!("web push cryptography failed: {cause:?}"))
}

/// The application server's VAPID key pair (RFC 8292): signs the token each push request carries, and its public
/// key is what browsers subscribe with (`applicationServerKey`).
#[derive(Clone)]
pub struct VapidKey {
    signing: jsonwebtoken::EncodingKey,
    /// The uncompressed P-256 public key, base64url: the `k` of the header and the browsers' server key.
    public_key: String,
    /// Who to contact about this sender (`mailto:` or `https:`), the token's `sub`.
    contact: String,
}

impl std::fmt::Debug for VapidKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VapidKey").field("public_key", &self.public_key).finish_non_exhaustive()
    }
}

impl VapidKey {
    /// The key in the secret: a PKCS#8 PEM P-256 key, or any other text (at least 32 characters) that a key is
    /// derived from.
    pub fn from_secret(secret: &str, contact: &str) -> AppResult<VapidKey> {
        let secret = secret.trim();
        let key_pair = if secret.starts_with("-----BEGIN") {
            let der = pem_body(secret).ok_or_else(|| AppError::internal("the VAPID secret is not a PEM key"))?;
            signature::EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &der)
                .map_err(|e| AppError::internal(format!("the VAPID secret is not a PKCS#8 P-256 key: {e}")))?
        } else if secret.len() >= 32 {
            derived_key_pair(secret.as_bytes())?
        } else {
            return Err(AppError::internal("the VAPID secret must be a PEM key or at least 32 characters"));
        };
        let pkcs8 = key_pair.to_pkcs8v1().map_err(crypto_error)?;
        use signature::KeyPair;
        Ok(VapidKey {
            signing: jsonwebtoken::EncodingKey::from_ec_der(pkcs8.as_ref()),
            public_key: URL_SAFE_NO_PAD.encode(key_pair.public_key().as_ref()),
            contact: contact.to_owned(),
        })
    }

    pub fn public_key(&self) -> &str {
        &self.public_key
    }

    /// The `Authorization` header for a push to `endpoint`: `vapid t=<ES256 JWT for the endpoint's origin>,
    /// k=<public key>`, valid [`VAPID_TOKEN_LIFETIME`] from `now_epoch_seconds`.
    pub fn authorization(&self, endpoint: &str, now_epoch_seconds: u64) -> AppResult<String> {
        let url = reqwest::Url::parse(endpoint).map_err(AppError::internal)?;
        let claims = serde_json::json!({
            "aud": url.origin().ascii_serialization(),
            "exp": now_epoch_seconds + VAPID_TOKEN_LIFETIME.as_secs(),
            "sub": self.contact,
        });
        let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        let token = jsonwebtoken::encode(&header, &claims, &self.signing).map_err(AppError::internal)?;
        Ok(format!("vapid t={token}, k={}", self.public_key))
    }
}

fn pem_body(pem: &str) -> Option<Vec<u8>> {
    let body: String = pem.lines().filter(|line| !line.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD.decode(body.trim()).ok()
}

/// A P-256 key pair derived from `seed`: HKDF-SHA256 to 32 bytes, tried with the next counter in the rare case the
/// bytes are not a valid scalar (zero or at least the group order).
fn derived_key_pair(seed: &[u8]) -> AppResult<signature::EcdsaKeyPair> {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"chat vapid key").extract(seed);
    for counter in 0u8..16 {
        let scalar: [u8; 32] = expand(&prk, &[&[counter]])?;
        let Ok(private) = agreement::PrivateKey::from_private_key(&agreement::ECDH_P256, &scalar) else { continue };
        let public = private.compute_public_key().map_err(crypto_error)?;
        if let Ok(pair) = signature::EcdsaKeyPair::from_private_key_and_public_key(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &scalar,
            public.as_ref(),
        ) {
            return Ok(pair);
        }
    }
    Err(AppError::internal("no VAPID key could be derived from the secret"))
}

/// [`PushService`] over HTTP, every request bounded by `timeout` (a hung push service costs one job that long).
pub struct HttpPushService {
    client: reqwest::Client,
}

impl HttpPushService {
    pub fn new(timeout: Duration) -> AppResult<HttpPushService> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(3)))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(AppError::internal)?;
        Ok(HttpPushService { client })
    }
}

#[async_trait]
impl PushService for HttpPushService {
    async fn send(&self, request: &PushRequest) -> PushResponse {
        let sent = self
            .client
            .post(&request.endpoint)
            .header("authorization", &request.authorization)
            .header("content-encoding", "aes128gcm")
            .header("content-type", "application/octet-stream")
            .header("ttl", request.ttl.to_string())
            .header("urgency", request.urgency)
            .body(request.body.clone())
            .send()
            .await;
        match sent {
            Ok(response) => {
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                PushResponse::of_status(response.status().as_u16(), retry_after)
            }
            Err(e) => {
                tracing::warn!(error = %e, "push service did not answer");
                PushResponse::Retry { retry_after: None }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(text: &str) -> Vec<u8> {
        decode_base64url(text).unwrap()
    }

    /// RFC 8291 Appendix A: the example's sender key and salt give the example's body, byte for byte.
    #[test]
    fn encryption_reproduces_the_rfc_8291_example() {
        let sender = agreement::PrivateKey::from_private_key(
            &agreement::ECDH_P256,
            &b64("yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw"),
        )
        .unwrap();
        let salt: [u8; 16] = b64("DGv6ra1nlYgDCS1FRnbzlw").try_into().unwrap();
        let body = encrypt_with(
            &sender,
            &salt,
            &b64("BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"),
            &b64("BTBZMqHH6r4Tts7J_aSIgg"),
            b"When I grow up, I want to be a watermelon",
        )
        .unwrap();
        assert_eq!(
            URL_SAFE_NO_PAD.encode(body),
            "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN"
        );
    }

    #[test]
    fn the_vapid_token_is_for_the_push_services_origin_and_verifies_with_the_public_key() {
        let key = VapidKey::from_secret(&"s".repeat(40), "mailto:ops@example.com").unwrap();
        let same = VapidKey::from_secret(&"s".repeat(40), "mailto:ops@example.com").unwrap();
        assert_eq!(key.public_key(), same.public_key(), "the same secret gives the same key");
        let header = key.authorization("https://push.example.net:8443/send/abc?x=1", 1_000).unwrap();
        let (token, public_key) = header.strip_prefix("vapid t=").unwrap().split_once(", k=").unwrap();
        assert_eq!(public_key, key.public_key());
        let point = b64(public_key);
        let decoding = jsonwebtoken::DecodingKey::from_ec_components(
            &URL_SAFE_NO_PAD.encode(&point[1..33]),
            &URL_SAFE_NO_PAD.encode(&point[33..]),
        )
        .unwrap();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
        validation.validate_exp = false;
        validation.set_audience(&["https://push.example.net:8443"]);
        let claims = jsonwebtoken::decode::<serde_json::Value>(token, &decoding, &validation).unwrap().claims;
        assert_eq!(claims["exp"], 1_000 + VAPID_TOKEN_LIFETIME.as_secs());
        assert_eq!(claims["sub"], "mailto:ops@example.com");
        assert!(VapidKey::from_secret("short", "mailto:x@y").is_err());
    }

    #[test]
    fn a_pem_key_in_the_secret_is_used_as_it_is() {
        let generated = signature::EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let der = generated.to_pkcs8v1().unwrap();
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            base64::engine::general_purpose::STANDARD.encode(der.as_ref())
        );
        use signature::KeyPair;
        let key = VapidKey::from_secret(&pem, "mailto:x@y").unwrap();
        assert_eq!(key.public_key(), URL_SAFE_NO_PAD.encode(generated.public_key().as_ref()));
    }

    #[test]
    fn statuses_map_to_what_the_worker_does() {
        assert_eq!(PushResponse::of_status(201, None), PushResponse::Accepted);
        assert_eq!(PushResponse::of_status(410, None), PushResponse::Gone);
        assert_eq!(PushResponse::of_status(404, None), PushResponse::Gone);
        let later = Some(Duration::from_secs(7));
        assert_eq!(PushResponse::of_status(429, later), PushResponse::Retry { retry_after: later });
        assert_eq!(PushResponse::of_status(503, None), PushResponse::Retry { retry_after: None });
        assert_eq!(PushResponse::of_status(413, None), PushResponse::Refused(413));
    }
}
