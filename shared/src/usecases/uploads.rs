//! Uploads: issuing the signed form a member uploads a file with (straight to S3, never through a function),
//! resolving an upload into a message's attachment when it is sent, serving members short-lived read URLs,
//! deriving thumbnails and metadata-free copies of images (the attachment processor), and deleting a deleted
//! message's files.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::membership::{conversation_audience, member_conversation};
use crate::delivery::Delivery;
use crate::error::{AppError, AppResult};
use crate::events::Event;
use crate::images;
use crate::model::{
    Actor, Attachment, AttachmentStatus, ConversationId, Message, ObjectKeys, Processed, Upload, UploadId, UploadRules,
    now_iso,
};
use crate::ports::{ConversationStore, FileStore, MessageStore, RateLimit, RateStore, Store, UploadForm, UploadStore};
use crate::retry;

const MAX_FILE_NAME_CHARS: usize = 255;
/// Tries at retagging an attached upload before it is logged and left.
const KEEP_ATTEMPTS: u32 = 3;
/// Forms one user may ask for: room for an album, far below what fills a bucket.
pub const UPLOAD_LIMIT: RateLimit = RateLimit { kind: "upload", max: 30, window_secs: 60 };

/// `POST /conversations/{id}/uploads`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewUpload {
    pub file_name: String,
    pub content_type: String,
    pub size: u64,
}

/// The answer: the id to attach, and the form to upload with.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IssuedUpload {
    pub upload_id: UploadId,
    pub upload: UploadForm,
}

pub struct Uploads {
    uploads: Arc<dyn UploadStore>,
    conversations: Arc<dyn ConversationStore>,
    messages: Arc<dyn MessageStore>,
    rates: Arc<dyn RateStore>,
    files: Arc<dyn FileStore>,
    delivery: Delivery,
    rules: UploadRules,
}

impl Uploads {
    pub fn new(store: &Arc<dyn Store>, files: Arc<dyn FileStore>, delivery: Delivery, rules: UploadRules) -> Self {
        Uploads {
            uploads: store.clone(),
            conversations: store.clone(),
            messages: store.clone(),
            rates: store.clone(),
            files,
            delivery,
            rules,
        }
    }

    /// Records an upload by a member and signs its form. Nothing is signed for a type or size the deployment
    /// does not accept.
    pub async fn create(
        &self,
        actor: &Actor,
        conversation_id: &ConversationId,
        input: NewUpload,
    ) -> AppResult<IssuedUpload> {
        let file_name = input.file_name.trim();
        if file_name.is_empty()
            || file_name.chars().count() > MAX_FILE_NAME_CHARS
            || file_name.chars().any(|c| c.is_control() || c == '/' || c == '\\')
        {
            return Err(AppError::Validation(format!(
                "fileName must have 1-{MAX_FILE_NAME_CHARS} characters, without control characters or slashes"
            )));
        }
        let content_type = input.content_type.trim().to_ascii_lowercase();
        if !self.rules.allowed_types.contains(&content_type) {
            return Err(AppError::Validation(format!(
                "contentType {:?} is not accepted; accepted: {}",
                input.content_type,
                self.rules.allowed_types.join(", ")
            )));
        }
        if input.size == 0 {
            return Err(AppError::Validation("size must be at least 1 byte".into()));
        }
        if input.size > self.rules.max_bytes {
            return Err(AppError::PayloadTooLarge(format!("files are limited to {} bytes", self.rules.max_bytes)));
        }
        member_conversation(self.conversations.as_ref(), conversation_id, actor.id()).await?;
        self.rates.take(actor.id(), &UPLOAD_LIMIT).await?;
        let upload = Upload {
            id: UploadId::random(),
            conversation_id: conversation_id.clone(),
            uploader: actor.id().clone(),
            file_name: file_name.to_owned(),
            content_type,
            size: input.size,
            created_at: now_iso(),
            message_id: None,
            processed: None,
        };
        self.uploads.create_upload(&upload).await?;
        let form = self
            .files
            .upload_form(&upload.keys().original, &upload.content_type, upload.size, self.rules.form_valid_for)
            .await?;
        Ok(IssuedUpload { upload_id: upload.id, upload: form })
    }

    /// The attachment `upload_id` becomes when `actor` sends it to `conversation_id`: only their own upload
    /// for this conversation, uploaded in full as declared. Whether it is still unattached is judged by the
    /// write that attaches it.
    pub async fn attachment(
        &self,
        actor: &Actor,
        conversation_id: &ConversationId,
        upload_id: &UploadId,
    ) -> AppResult<Attachment> {
        let upload = self
            .uploads
            .get_upload(upload_id)
            .await?
            .filter(|u| u.uploader == *actor.id() && u.conversation_id == *conversation_id)
            .ok_or(AppError::NotFound("upload not found"))?;
        let stored = self.files.head(&upload.keys().original).await?.ok_or_else(|| {
            AppError::Validation("nothing was uploaded with this upload's form yet: upload the file first".into())
        })?;
        let declared_type =
            stored.content_type.as_deref().is_some_and(|t| t.eq_ignore_ascii_case(&upload.content_type));
        if stored.size != upload.size || !declared_type {
            // S3 holds a form's upload to its policy; this is only reachable if the bucket was written otherwise.
            tracing::warn!(%upload_id, stored = ?stored, "uploaded object does not match its declaration");
            return Err(AppError::Validation("the uploaded file does not match its declared size and type".into()));
        }
        Ok(upload.attachment())
    }

    /// Whether the upload is attached to a message already (after a send found it changed).
    pub async fn is_attached(&self, upload_id: &UploadId) -> AppResult<bool> {
        Ok(self.uploads.get_upload(upload_id).await?.is_some_and(|u| u.message_id.is_some()))
    }

    /// Tags a just-attached upload's objects so the expiry of never-attached uploads spares them (the processor
    /// tags what it writes later itself). Retried, then logged as an error: the message is stored either way.
    pub async fn keep(&self, attachment: &Attachment) {
        let keys = ObjectKeys::new(&attachment.conversation_id, &attachment.id);
        let mut kept = vec![keys.original];
        if attachment.is_image() && attachment.status != AttachmentStatus::Processing {
            kept.extend([keys.thumbnail, keys.clean]);
        }
        for attempt in 1..=KEEP_ATTEMPTS {
            match self.files.mark_attached(&kept).await {
                Ok(()) => return,
                Err(e) if attempt == KEEP_ATTEMPTS => {
                    tracing::error!(upload_id = %attachment.id, error = ?e, "attached upload left tagged pending");
                }
                Err(_) => retry::pause(attempt).await,
            }
        }
    }

    /// Adds read URLs to a message served to a member (nothing to a message without a ready attachment). A URL
    /// that cannot be signed is left out (and logged): the message is served, its file can be asked for again.
    pub async fn sign(&self, message: &mut Message) {
        if let Some(attachment) = message.attachment.take() {
            message.attachment = Some(self.signed(attachment).await);
        }
    }

    pub async fn sign_all(&self, messages: &mut [Message]) {
        futures_util::future::join_all(messages.iter_mut().map(|m| self.sign(m))).await;
    }

    /// Deletes the objects and record of a deleted message's attachment. Logged, not failed: the message is
    /// deleted either way, and the never-attached expiry does not apply to attached objects.
    pub async fn discard(&self, attachment: &Attachment) {
        let keys = ObjectKeys::new(&attachment.conversation_id, &attachment.id).all();
        let deleted = self.files.delete(&keys).await;
        let forgotten = self.uploads.delete_upload(&attachment.id).await;
        if let Err(e) = deleted.and(forgotten) {
            tracing::error!(upload_id = %attachment.id, error = ?e, "could not delete a deleted message's files");
        }
    }

    /// The attachment processor's work on one uploaded object (a bucket notification): for an image, the
    /// thumbnail and the metadata-free copy, then the outcome on the upload and, if a message carries it
    /// already, on the message and to its conversation (`attachment_processed`). Idempotent: a notification
    /// delivered twice finds the outcome recorded.
    pub async fn process(&self, key: &str) -> AppResult<()> {
        let Some((_, upload_id)) = ObjectKeys::parse_original(key) else {
            tracing::warn!(key, "notification for an object that is no upload");
            return Ok(());
        };
        let Some(upload) = self.uploads.get_upload(&upload_id).await? else {
            tracing::warn!(key, "object without an upload record");
            return Ok(());
        };
        if !upload.is_image() || upload.processed.is_some() {
            return Ok(());
        }
        let keys = upload.keys();
        let Some(bytes) = self.files.get(&keys.original).await? else { return Ok(()) };
        let content_type = upload.content_type.clone();
        // Decoding is CPU-bound: off the async workers.
        let derived = tokio::task::spawn_blocking(move || images::derive(&bytes, &content_type))
            .await
            .map_err(AppError::internal)?;
        let attached = upload.message_id.is_some();
        let processed = match derived {
            Ok(derived) => {
                let thumbnail = self.files.put(&keys.thumbnail, derived.thumbnail, "image/jpeg", attached);
                let clean = self.files.put(&keys.clean, derived.clean, &upload.content_type, attached);
                tokio::try_join!(thumbnail, clean)?;
                Processed::Image { width: derived.width, height: derived.height }
            }
            Err(reason) => {
                tracing::info!(%upload_id, reason, "image refused");
                Processed::Rejected { reason }
            }
        };
        let Some(after) = self.uploads.record_processed(&upload_id, &processed).await? else { return Ok(()) };
        let Some(message_id) = after.message_id.clone() else { return Ok(()) };
        if !attached && matches!(processed, Processed::Image { .. }) {
            self.files.mark_attached(&[keys.thumbnail, keys.clean]).await?;
        }
        let attachment = after.attachment();
        let Some(_) = self.messages.set_attachment(&message_id.conversation_id, message_id.seq, &attachment).await?
        else {
            return Ok(());
        };
        let Some(conversation) = self.conversations.get_conversation(&message_id.conversation_id).await? else {
            return Ok(());
        };
        let served = self.signed(attachment).await;
        let recipients =
            conversation_audience(self.conversations.as_ref(), &conversation.roster, &conversation.id).await?;
        let event =
            Event::AttachmentProcessed { conversation_id: conversation.id.clone(), message_id, attachment: served };
        self.delivery.event(&recipients, event.frame(), None).await;
        Ok(())
    }

    /// The attachment with its read URLs while it is ready; without them (logged) if they cannot be signed.
    async fn signed(&self, mut attachment: Attachment) -> Attachment {
        let Some((object, thumbnail)) = attachment.readable_keys() else { return attachment };
        let valid_for = self.rules.read_url_valid_for;
        let urls = async {
            let url = self.files.read_url(&object, valid_for).await?;
            let thumbnail_url = match thumbnail {
                Some(key) => Some(self.files.read_url(&key, valid_for).await?),
                None => None,
            };
            AppResult::Ok((url, thumbnail_url))
        };
        match urls.await {
            Ok((url, thumbnail_url)) => {
                attachment.url = Some(url);
                attachment.thumbnail_url = thumbnail_url;
            }
            Err(e) => tracing::error!(upload_id = %attachment.id, error = ?e, "could not sign a read URL"),
        }
        attachment
    }
}
