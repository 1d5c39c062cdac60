//! Files attached to messages. The bytes live in S3 and never pass through a function on the way in or out: an
//! [`Upload`] records what a member declared before uploading (checked against what S3 holds when a message
//! attaches it), and an [`Attachment`] is what the message keeps and members are served, with short-lived read
//! URLs added for each reader.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{ConversationId, MessageId, UploadId, UserId};

/// The default ceiling of one upload (the template's `MaxUploadBytes`).
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 25 * 1024 * 1024;

/// What may be uploaded (the template's default `AllowedUploadTypes`): common images, PDF, text, office
/// documents, zip, audio and video. Never HTML or SVG, which a browser would run if opened from the bucket.
pub const ALLOWED_CONTENT_TYPES: &[&str] = &[
    "image/jpeg",
    "image/png",
    "image/gif",
    "image/webp",
    "application/pdf",
    "text/plain",
    "text/csv",
    "application/msword",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.ms-excel",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/zip",
    "audio/mpeg",
    "audio/ogg",
    "audio/wav",
    "audio/mp4",
    "video/mp4",
    "video/webm",
    "video/quicktime",
];

/// The deployment's upload rules (template parameters `MaxUploadBytes`, `AllowedUploadTypes`).
#[derive(Clone, Debug)]
pub struct UploadRules {
    pub max_bytes: u64,
    /// Lowercase MIME types, without parameters.
    pub allowed_types: Vec<String>,
    /// How long a form accepts its upload.
    pub form_valid_for: Duration,
    /// How long a read URL served to a member works.
    pub read_url_valid_for: Duration,
}

impl Default for UploadRules {
    fn default() -> Self {
        UploadRules {
            max_bytes: DEFAULT_MAX_UPLOAD_BYTES,
            allowed_types: ALLOWED_CONTENT_TYPES.iter().map(|t| (*t).to_owned()).collect(),
            form_valid_for: Duration::from_secs(600),
            read_url_valid_for: Duration::from_secs(900),
        }
    }
}

/// The types the attachment processor decodes, thumbnails and strips of metadata.
pub fn is_image_type(content_type: &str) -> bool {
    matches!(content_type, "image/jpeg" | "image/png" | "image/gif" | "image/webp")
}

/// What the attachment processor made of an upload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "camelCase")]
pub enum Processed {
    /// A decodable image of the declared type: a thumbnail and a copy without metadata were written.
    Image { width: u32, height: u32 },
    /// Not an image of the declared type, too large to decode safely, or corrupt: members get no bytes.
    Rejected { reason: String },
}

/// An upload as recorded when its form was issued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upload {
    pub id: UploadId,
    pub conversation_id: ConversationId,
    pub uploader: UserId,
    pub file_name: String,
    pub content_type: String,
    /// Exactly the bytes the form lets S3 accept.
    pub size: u64,
    pub created_at: String,
    /// The message that attached it; an upload is attached at most once.
    pub message_id: Option<MessageId>,
    /// Images only, once the processor has seen the object.
    pub processed: Option<Processed>,
}

impl Upload {
    pub fn keys(&self) -> ObjectKeys {
        ObjectKeys::new(&self.conversation_id, &self.id)
    }

    pub fn is_image(&self) -> bool {
        is_image_type(&self.content_type)
    }

    /// The attachment a message keeps, as of what is known about the upload now.
    pub fn attachment(&self) -> Attachment {
        let (status, dimensions) = match (&self.processed, self.is_image()) {
            (_, false) => (AttachmentStatus::Ready, None),
            (None, true) => (AttachmentStatus::Processing, None),
            (Some(Processed::Image { width, height }), true) => (AttachmentStatus::Ready, Some((*width, *height))),
            (Some(Processed::Rejected { .. }), true) => (AttachmentStatus::Rejected, None),
        };
        Attachment {
            id: self.id.clone(),
            conversation_id: self.conversation_id.clone(),
            file_name: self.file_name.clone(),
            content_type: self.content_type.clone(),
            size: self.size,
            status,
            width: dimensions.map(|d| d.0),
            height: dimensions.map(|d| d.1),
            url: None,
            thumbnail_url: None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttachmentStatus {
    /// An image the processor has not finished with: no URLs yet (`attachment_ready` follows).
    Processing,
    /// Readable: `url` (and for images `thumbnailUrl`).
    Ready,
    /// An image that could not be decoded safely: members get its name and size, never its bytes.
    Rejected,
}

/// A message's file. Stored without URLs; each member is served short-lived read URLs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    pub id: UploadId,
    pub conversation_id: ConversationId,
    pub file_name: String,
    pub content_type: String,
    pub size: u64,
    pub status: AttachmentStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// Served only (never stored): a read URL valid for minutes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Served only, images only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail_url: Option<String>,
}

impl Attachment {
    /// The same attachment without its URLs, as it is stored.
    pub fn unsigned(&self) -> Attachment {
        Attachment { url: None, thumbnail_url: None, ..self.clone() }
    }

    pub fn is_image(&self) -> bool {
        is_image_type(&self.content_type)
    }

    /// The object a reader is served, and its thumbnail, while the attachment is ready.
    pub fn readable_keys(&self) -> Option<(String, Option<String>)> {
        if self.status != AttachmentStatus::Ready {
            return None;
        }
        let keys = ObjectKeys::new(&self.conversation_id, &self.id);
        Some(if self.is_image() { (keys.clean, Some(keys.thumbnail)) } else { (keys.original, None) })
    }
}

/// Where S3 keeps an upload and what the processor derives from it. Every key starts with the conversation, so
/// a key says where it may be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectKeys {
    /// The bytes as uploaded.
    pub original: String,
    /// An image's thumbnail (JPEG, at most 320 px on the long side).
    pub thumbnail: String,
    /// An image as members are served it: the upload without its metadata (EXIF GPS among it).
    pub clean: String,
}

impl ObjectKeys {
    pub const ORIGINAL_PREFIX: &str = "uploads/";

    pub fn new(conversation_id: &ConversationId, id: &UploadId) -> Self {
        ObjectKeys {
            original: format!("{}{conversation_id}/{id}", Self::ORIGINAL_PREFIX),
            thumbnail: format!("thumbnails/{conversation_id}/{id}.jpg"),
            clean: format!("media/{conversation_id}/{id}"),
        }
    }

    /// The upload an original's key names (what the bucket's notification carries).
    pub fn parse_original(key: &str) -> Option<(ConversationId, UploadId)> {
        let (conversation, id) = key.strip_prefix(Self::ORIGINAL_PREFIX)?.split_once('/')?;
        Some((ConversationId::parse(conversation).ok()?, UploadId::parse(id).ok()?))
    }

    pub fn all(&self) -> Vec<String> {
        vec![self.original.clone(), self.thumbnail.clone(), self.clean.clone()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default of a template parameter: its `Default:` value, a folded `>-` block joined without spaces.
    fn template_default(parameter: &str) -> String {
        let template = include_str!("../../../infra/template.yaml");
        let mut lines = template.lines().skip_while(|l| l.trim() != format!("{parameter}:"));
        let default = lines.find_map(|l| l.trim().strip_prefix("Default:")).expect("parameter with a default").trim();
        if default != ">-" {
            return default.trim_matches('"').to_owned();
        }
        let block = template.lines().skip_while(|l| l.trim() != format!("{parameter}:"));
        let folded = block.skip_while(|l| !l.contains("Default: >-")).skip(1);
        folded.take_while(|l| l.starts_with("      ")).map(str::trim).collect()
    }

    #[test]
    fn the_code_defaults_are_the_templates() {
        let rules = UploadRules::default();
        assert_eq!(template_default("AllowedUploadTypes"), ALLOWED_CONTENT_TYPES.join(","));
        assert_eq!(template_default("MaxUploadBytes"), rules.max_bytes.to_string());
        assert_eq!(template_default("ReadUrlSeconds"), rules.read_url_valid_for.as_secs().to_string());
    }

    #[test]
    fn an_original_key_names_its_upload_and_nothing_else_does() {
        let (conversation, id) = (ConversationId::parse("c1").unwrap(), UploadId::parse("u1").unwrap());
        let keys = ObjectKeys::new(&conversation, &id);
        assert_eq!(ObjectKeys::parse_original(&keys.original), Some((conversation, id)));
        assert_eq!(ObjectKeys::parse_original(&keys.thumbnail), None);
        assert_eq!(ObjectKeys::parse_original("uploads/c1/../x"), None);
        assert_eq!(ObjectKeys::parse_original("uploads/c1"), None);
    }
}
