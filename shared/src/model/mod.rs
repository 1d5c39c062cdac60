//! Domain types, serialised exactly as clients see them (seed 003's shapes: `_id`, camelCase fields), one file
//! per resource.
//!
//! Storage has its own mapping in [`crate::aws::dynamo`]; these types never carry keys or secrets to the wire.

mod attachments;
mod clock;
mod connections;
mod conversations;
mod erasure;
mod exports;
mod ids;
mod messages;
mod notifications;
mod presence;
mod push;
mod reports;
mod sessions;
mod users;

pub use attachments::{
    ALLOWED_CONTENT_TYPES, Attachment, AttachmentStatus, DEFAULT_MAX_UPLOAD_BYTES, ObjectKeys, Processed, Upload,
    UploadRules, is_image_type,
};
pub use clock::{now_epoch_seconds, now_iso};
pub use connections::{Connection, LiveConnection};
pub use conversations::{
    Conversation, ConversationKind, ConversationView, DEFAULT_MAX_GROUP_MEMBERS, LISTED_MEMBERS_MAX, MAX_ADMINS,
    MemberLeft, MemberView, Role, Roles, Roster,
};
pub use erasure::{DELETED_ACCOUNT, ErasureJob, ErasurePhase};
pub use exports::{
    AccountExport, EXPORT_FORMAT, ExportGathered, ExportJob, ExportPhase, ExportRecord, ExportedProfile,
    ExportedReaction, ReadyExport,
};
pub use ids::{ConnectionId, ConversationId, ExportId, INVALID_ID, MAX_ID_LEN, MessageId, SessionId, UploadId, UserId};
pub use messages::{DELETED_CONTENT, Message, MessageKind, MessageStatus, NOT_MEMBERS_MENTIONED, NewMessage};
pub use notifications::{ConversationNotifications, NotificationPreferences, NotifyLevel};
pub use presence::{ContactableBy, INVISIBLE, UserPresence, VisiblePresence};
pub use push::{
    MAX_PUSH_SUBSCRIPTIONS, NewPushSubscription, PushKeys, PushNotification, PushPlatform, PushSubscription,
    PushSubscriptionView, ValidSubscription, decode_base64url, is_subscription_id, subscription_id,
};
pub use reports::{AuditAction, AuditEntry, Report, ReportReason, ReportStatus, ReportTarget};
pub use sessions::{SessionRecord, SessionView};
pub use users::{Actor, Sender, Standing, User, UserRecord};

/// A user id for this module's tests.
#[cfg(test)]
fn test_user(id: &str) -> UserId {
    UserId::parse(id).unwrap()
}
