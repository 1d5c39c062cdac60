//! [`MobilePush`] over Amazon SNS: a phone's device token becomes a platform endpoint of the deployment's FCM or
//! APNs platform application (`CreatePlatformEndpoint` answers the same endpoint for the same token), and a
//! notification is one `Publish` to it, with a payload per platform (FCM HTTP v1, APNs alert) carrying the same
//! fields as a browser's.

use async_trait::async_trait;
use aws_sdk_sns::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sns::operation::publish::PublishError;
use serde_json::json;

use crate::error::{AppError, AppResult};
use crate::model::{PushNotification, PushPlatform};
use crate::ports::{MobilePush, PushResponse};

pub struct SnsMobilePush {
    client: aws_sdk_sns::Client,
    fcm_application: Option<String>,
    apns_application: Option<String>,
}

impl SnsMobilePush {
    /// The platform applications' ARNs (`None`: that platform is not offered).
    pub fn new(client: aws_sdk_sns::Client, fcm_application: Option<String>, apns_application: Option<String>) -> Self {
        SnsMobilePush { client, fcm_application, apns_application }
    }
}

/// The notification's title and text as a phone shows them.
pub fn title_and_body(notification: &PushNotification) -> (String, String) {
    let who = &notification.sender.username;
    let title = match &notification.conversation_name {
        Some(name) => format!("{who} in {name}"),
        None => who.clone(),
    };
    let body = notification.preview.clone().unwrap_or_else(|| {
        if notification.mentioned { format!("{who} mentioned you") } else { format!("New message from {who}") }
    });
    (title, body)
}

/// The `Publish` message (`MessageStructure: json`): one payload per platform, each a JSON string.
pub fn sns_message(notification: &PushNotification) -> AppResult<String> {
    let (title, body) = title_and_body(notification);
    let fields = serde_json::to_value(notification).map_err(AppError::internal)?;
    // FCM data values must be strings.
    let data: serde_json::Map<String, serde_json::Value> = fields
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), json!(v.as_str().map_or_else(|| v.to_string(), str::to_owned))))
        .collect();
    let fcm = json!({"fcmV1Message": {"message": {
        "notification": {"title": title, "body": body},
        "data": data,
        "android": {"priority": if notification.mentioned { "high" } else { "normal" }, "ttl": "86400s"},
    }}});
    let apns = json!({
        "aps": {"alert": {"title": title, "body": body}, "thread-id": notification.conversation_id, "sound": "default"},
        "chat": fields,
    });
    Ok(json!({
        "default": body,
        "GCM": fcm.to_string(),
        "APNS": apns.to_string(),
        "APNS_SANDBOX": apns.to_string(),
    })
    .to_string())
}

#[async_trait]
impl MobilePush for SnsMobilePush {
    async fn register(&self, platform: PushPlatform, token: &str) -> AppResult<String> {
        let application = match platform {
            PushPlatform::Fcm => self.fcm_application.as_deref(),
            PushPlatform::Apns => self.apns_application.as_deref(),
            PushPlatform::Web => None,
        }
        .ok_or_else(|| {
            AppError::Validation(format!("this deployment has no push for platform {}", platform.as_str()))
        })?;
        let created = self.client.create_platform_endpoint().platform_application_arn(application).token(token).send();
        let arn = created
            .await
            .map_err(|e| AppError::internal(format!("CreatePlatformEndpoint: {e:?}")))?
            .endpoint_arn
            .ok_or_else(|| AppError::internal("CreatePlatformEndpoint answered no endpoint"))?;
        Ok(arn)
    }

    async fn send(&self, endpoint_arn: &str, notification: &PushNotification) -> PushResponse {
        let message = match sns_message(notification) {
            Ok(message) => message,
            Err(e) => {
                tracing::error!(error = ?e, "push payload");
                return PushResponse::Refused(400);
            }
        };
        let published =
            self.client.publish().target_arn(endpoint_arn).message_structure("json").message(message).send().await;
        match published {
            Ok(_) => PushResponse::Accepted,
            Err(e) => response_of(&e),
        }
    }

    async fn forget(&self, endpoint_arn: &str) {
        if let Err(e) = self.client.delete_endpoint().endpoint_arn(endpoint_arn).send().await {
            tracing::warn!(error = ?e, "could not delete a gone SNS endpoint");
        }
    }
}

/// A disabled or deleted endpoint is gone; throttling, SNS's own failures and no answer are worth a retry;
/// anything else (a payload SNS refused) will never succeed.
fn response_of(error: &SdkError<PublishError>) -> PushResponse {
    match error.as_service_error() {
        Some(PublishError::EndpointDisabledException(_) | PublishError::NotFoundException(_)) => PushResponse::Gone,
        Some(PublishError::InternalErrorException(_) | PublishError::KmsThrottlingException(_)) => {
            PushResponse::Retry { retry_after: None }
        }
        // SNS's rate limit has no modelled error: its code is `Throttling`.
        Some(other) if other.code().is_some_and(|code| code.starts_with("Throttl")) => {
            PushResponse::Retry { retry_after: None }
        }
        Some(other) => {
            tracing::warn!(error = ?other, "SNS refused a push");
            PushResponse::Refused(400)
        }
        None => PushResponse::Retry { retry_after: None },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_platform_gets_its_payload_with_the_same_fields() {
        let notification: PushNotification = serde_json::from_value(json!({
            "type": "message", "conversationId": "c1", "conversationName": "team", "messageId": "c1-1", "seq": 3,
            "sender": {"_id": "u1", "username": "alice", "avatar": null}, "preview": null, "mentioned": true,
            "sentAt": "2026-12-04T10:00:00.000Z"}))
        .unwrap();
        let message: serde_json::Value = serde_json::from_str(&sns_message(&notification).unwrap()).unwrap();
        assert_eq!(message["default"], "alice mentioned you");
        let fcm: serde_json::Value = serde_json::from_str(message["GCM"].as_str().unwrap()).unwrap();
        let fcm = &fcm["fcmV1Message"]["message"];
        assert_eq!(fcm["notification"]["title"], "alice in team");
        assert_eq!((fcm["data"]["seq"].as_str(), fcm["data"]["conversationId"].as_str()), (Some("3"), Some("c1")));
        let apns: serde_json::Value = serde_json::from_str(message["APNS"].as_str().unwrap()).unwrap();
        assert_eq!(apns["aps"]["thread-id"], "c1");
        assert_eq!(apns["chat"]["sender"]["username"], "alice");
    }
}
