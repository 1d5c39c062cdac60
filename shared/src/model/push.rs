//! Push subscriptions: where a user's browsers (Web Push, RFC 8030) and phones (Amazon SNS mobile push: FCM, APNs)
//! receive notifications while none of their sockets is open, and what one notification says. A browser's
//! subscription is what `PushSubscription.toJSON()` gives, a phone's its device token; both are validated here,
//! at the edge, so the push worker only meets good ones.

use base64::Engine;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};

use super::{ConversationId, Message, MessageId, Sender};
use crate::error::{AppError, AppResult};

/// Subscriptions one user may hold (a browser profile has one per site; ten covers every device they own).
pub const MAX_PUSH_SUBSCRIPTIONS: u32 = 10;
/// Push services' endpoints are a few hundred characters.
pub const MAX_ENDPOINT_LEN: usize = 1024;
/// The text a notification shows of the message (push payloads are capped at 4 KB after encryption).
pub const PREVIEW_CHARS: usize = 140;

/// Device tokens are at most a few hundred characters (APNs: 64 hex digits; FCM: about 160).
pub const MAX_TOKEN_LEN: usize = 4096;

/// Where a subscription's notifications go.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PushPlatform {
    /// A browser's push service (Web Push).
    #[default]
    Web,
    /// An Android (or any Firebase) app, through the deployment's SNS platform application for FCM.
    Fcm,
    /// An iOS app, through the deployment's SNS platform application for APNs.
    Apns,
}

impl PushPlatform {
    pub fn as_str(self) -> &'static str {
        match self {
            PushPlatform::Web => "web",
            PushPlatform::Fcm => "fcm",
            PushPlatform::Apns => "apns",
        }
    }
}

/// The body of `POST /users/me/push-subscriptions`: a browser's `PushSubscription.toJSON()`, or a phone's
/// `{platform: "fcm" | "apns", token}`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewPushSubscription {
    #[serde(default)]
    pub platform: PushPlatform,
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default)]
    pub keys: Option<PushKeys>,
    /// A phone's device token (FCM registration token, APNs device token).
    #[serde(default)]
    pub token: Option<String>,
    /// Browsers send it (usually `null`); push services report expiry with a 404/410 anyway.
    #[serde(default)]
    pub expiration_time: Option<serde_json::Value>,
}

/// A subscription request that passed validation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ValidSubscription {
    Web(PushSubscription),
    /// A phone: its SNS platform endpoint is made before it is stored.
    Device {
        platform: PushPlatform,
        token: String,
    },
}

/// The user agent's keys for RFC 8291: its ECDH P-256 public key and the authentication secret, base64url.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushKeys {
    pub p256dh: String,
    pub auth: String,
}

/// A stored subscription. Its id is derived from the browser's endpoint or the phone's token, so registering the
/// same browser or phone twice is one subscription.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PushSubscription {
    pub id: String,
    #[serde(default)]
    pub platform: PushPlatform,
    /// A browser's push service URL, or a phone's SNS platform endpoint ARN.
    pub endpoint: String,
    /// A browser's keys (phones have none: SNS holds what it needs).
    #[serde(default)]
    pub keys: Option<PushKeys>,
    pub created_at: String,
}

/// A subscription as its owner sees it listed (the keys stay on the server).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PushSubscriptionView {
    pub id: String,
    pub platform: PushPlatform,
    pub endpoint: String,
    pub created_at: String,
}

impl From<&PushSubscription> for PushSubscriptionView {
    fn from(s: &PushSubscription) -> Self {
        PushSubscriptionView {
            id: s.id.clone(),
            platform: s.platform,
            endpoint: s.endpoint.clone(),
            created_at: s.created_at.clone(),
        }
    }
}

/// Decodes base64url with or without padding (browsers give it without; some libraries pad).
pub fn decode_base64url(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).or_else(|_| URL_SAFE.decode(text)).ok()
}

impl NewPushSubscription {
    /// Checks the subscription. A browser's: an `https` endpoint (`http` only where the deployment allows it, for a
    /// push service on a private network), a P-256 public key and a 16-byte secret. A phone's: a token.
    pub fn validated(self, allow_http: bool, created_at: String) -> AppResult<ValidSubscription> {
        let invalid = |what: &str| AppError::Validation(format!("push subscription: {what}"));
        if self.platform != PushPlatform::Web {
            if self.endpoint.is_some() || self.keys.is_some() {
                return Err(invalid("a phone is registered with its token, without endpoint or keys"));
            }
            let token = self.token.as_deref().map(str::trim).unwrap_or_default();
            if token.is_empty() || token.len() > MAX_TOKEN_LEN || token.chars().any(char::is_control) {
                return Err(invalid("token must be the device token the platform gave the app"));
            }
            return Ok(ValidSubscription::Device { platform: self.platform, token: token.to_owned() });
        }
        if self.token.is_some() {
            return Err(invalid("a browser is registered with its endpoint and keys, without a token"));
        }
        let (Some(endpoint), Some(keys)) = (self.endpoint, self.keys) else {
            return Err(invalid("a browser's subscription needs endpoint and keys"));
        };
        let endpoint = endpoint.trim().to_owned();
        if endpoint.len() > MAX_ENDPOINT_LEN {
            return Err(invalid("endpoint is too long"));
        }
        let url = reqwest::Url::parse(&endpoint).map_err(|_| invalid("endpoint must be a URL"))?;
        let scheme_allowed = url.scheme() == "https" || (allow_http && url.scheme() == "http");
        if !scheme_allowed || url.host_str().is_none_or(str::is_empty) || !url.username().is_empty() {
            return Err(invalid("endpoint must be an https URL of a push service"));
        }
        let p256dh = decode_base64url(&keys.p256dh).ok_or_else(|| invalid("keys.p256dh must be base64url"))?;
        let point_valid = p256dh.len() == 65 && p256dh[0] == 4 && is_p256_point(&p256dh);
        if !point_valid {
            return Err(invalid("keys.p256dh must be an uncompressed P-256 public key"));
        }
        if decode_base64url(&keys.auth).is_none_or(|auth| auth.len() != 16) {
            return Err(invalid("keys.auth must be 16 bytes, base64url"));
        }
        let id = subscription_id(&endpoint);
        Ok(ValidSubscription::Web(PushSubscription {
            id,
            platform: PushPlatform::Web,
            endpoint,
            keys: Some(keys),
            created_at,
        }))
    }
}

/// Whether `point` is on the curve: an agreement with a throwaway key succeeds only then.
fn is_p256_point(point: &[u8]) -> bool {
    use aws_lc_rs::agreement::{ECDH_P256, PrivateKey, UnparsedPublicKey, agree};
    PrivateKey::generate(&ECDH_P256)
        .is_ok_and(|key| agree(&key, UnparsedPublicKey::new(&ECDH_P256, point), (), |_| Ok(())).is_ok())
}

/// The id of the subscription with this endpoint (a browser's) or `<platform>:<token>` (a phone's): the first 16
/// bytes of its SHA-256, hex.
pub fn subscription_id(endpoint: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, endpoint.as_bytes());
    digest.as_ref()[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `id` could be a subscription id (so a malformed one is a 404 without a read).
pub fn is_subscription_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// What a push notification carries, as JSON, to the service worker: who wrote where, and the text unless the
/// recipient turned previews off. Enough to show the notification and open the conversation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PushNotification {
    /// Always `message` (a service worker can tell future kinds apart).
    #[serde(rename = "type")]
    pub kind: String,
    pub conversation_id: ConversationId,
    /// A group's name; `None` for a private conversation (the sender's name says who).
    pub conversation_name: Option<String>,
    pub message_id: MessageId,
    pub seq: u64,
    pub sender: Sender,
    /// The message's first [`PREVIEW_CHARS`] characters (or its file's name); `None` when previews are off.
    pub preview: Option<String>,
    /// Whether the message mentions the recipient.
    pub mentioned: bool,
    pub sent_at: String,
}

impl PushNotification {
    pub fn of(message: &Message, conversation_name: Option<String>, previews: bool, mentioned: bool) -> Self {
        let text = if message.content.trim().is_empty() {
            message.file_name.clone().or_else(|| message.attachment.as_ref().map(|a| a.file_name.clone()))
        } else {
            Some(message.content.clone())
        };
        let preview = text.filter(|_| previews).map(|text| {
            let mut chars = text.chars();
            let cut: String = chars.by_ref().take(PREVIEW_CHARS).collect();
            if chars.next().is_some() { format!("{cut}…") } else { cut }
        });
        PushNotification {
            kind: "message".into(),
            conversation_id: message.conversation_id.clone(),
            conversation_name,
            message_id: message.id.clone(),
            seq: message.seq,
            sender: message.sender.clone(),
            preview,
            mentioned,
            sent_at: message.created_at.clone(),
        }
    }

    /// This notification with `message` as it reads now (edited since it was planned), previews as chosen.
    pub fn as_of(&self, message: &Message) -> Self {
        PushNotification::of(message, self.conversation_name.clone(), self.preview.is_some(), self.mentioned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P256DH: &str = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";

    fn subscription(endpoint: &str, p256dh: &str, auth: &str) -> NewPushSubscription {
        NewPushSubscription {
            platform: PushPlatform::Web,
            endpoint: Some(endpoint.into()),
            keys: Some(PushKeys { p256dh: p256dh.into(), auth: auth.into() }),
            token: None,
            expiration_time: None,
        }
    }

    fn web(valid: ValidSubscription) -> PushSubscription {
        match valid {
            ValidSubscription::Web(subscription) => subscription,
            other => panic!("not a browser: {other:?}"),
        }
    }

    #[test]
    fn a_browser_subscription_is_accepted_and_its_id_follows_the_endpoint() {
        let endpoint = "https://fcm.googleapis.com/fcm/send/abc:def";
        let valid = web(subscription(endpoint, P256DH, "BTBZMqHH6r4Tts7J_aSIgg").validated(false, "t".into()).unwrap());
        assert_eq!(valid.id, subscription_id(endpoint));
        assert!(is_subscription_id(&valid.id));
        let again =
            web(subscription(endpoint, P256DH, "BTBZMqHH6r4Tts7J_aSIgg==").validated(false, "t".into()).unwrap());
        assert_eq!(again.id, valid.id, "padding does not make another subscription");
    }

    #[test]
    fn bad_subscriptions_are_refused_with_what_is_wrong() {
        let auth = "BTBZMqHH6r4Tts7J_aSIgg";
        let not_on_curve = format!("BA{}", &P256DH[2..]);
        let cases = [
            subscription("http://push.example/1", P256DH, auth),
            subscription("not a url", P256DH, auth),
            subscription("https://user:pw@push.example/1", P256DH, auth),
            subscription(&format!("https://push.example/{}", "a".repeat(MAX_ENDPOINT_LEN)), P256DH, auth),
            subscription("https://push.example/1", "BTBZMqHH6r4Tts7J_aSIgg", auth),
            subscription("https://push.example/1", &not_on_curve, auth),
            subscription("https://push.example/1", P256DH, "c2hvcnQ"),
            subscription("https://push.example/1", P256DH, "!!"),
        ];
        for case in cases {
            let err = case.clone().validated(false, "t".into()).unwrap_err();
            assert_eq!(err.code(), "validation_failed", "{case:?}");
        }
        assert!(subscription("http://127.0.0.1:9/1", P256DH, auth).validated(true, "t".into()).is_ok());
    }

    #[test]
    fn a_phone_is_registered_with_its_token_alone() {
        let phone = |platform, token: Option<&str>, endpoint: Option<&str>| NewPushSubscription {
            platform,
            endpoint: endpoint.map(str::to_owned),
            keys: None,
            token: token.map(str::to_owned),
            expiration_time: None,
        };
        let valid = phone(PushPlatform::Apns, Some(" abc123 "), None).validated(false, "t".into()).unwrap();
        assert_eq!(valid, ValidSubscription::Device { platform: PushPlatform::Apns, token: "abc123".into() });
        for bad in [
            phone(PushPlatform::Fcm, None, None),
            phone(PushPlatform::Fcm, Some(" "), None),
            phone(PushPlatform::Fcm, Some("a\nb"), None),
            phone(PushPlatform::Fcm, Some("t"), Some("https://push.example/1")),
            phone(PushPlatform::Web, Some("t"), None),
        ] {
            assert_eq!(bad.clone().validated(true, "t".into()).unwrap_err().code(), "validation_failed", "{bad:?}");
        }
    }
}
