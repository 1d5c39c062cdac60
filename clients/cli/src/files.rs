//! `send --file`: the file goes straight to storage with the form the API signs (never through the API), then
//! the message names its upload id.

use std::path::Path;

use crate::context::Context;
use crate::error::{CliError, CliResult};

/// An uploaded file, ready to attach.
pub struct Uploaded {
    pub upload_id: String,
    pub content_type: String,
}

impl Uploaded {
    /// `image` for the types the server thumbnails, `file` for the rest.
    pub fn message_type(&self) -> &'static str {
        match self.content_type.as_str() {
            "image/jpeg" | "image/png" | "image/gif" | "image/webp" => "image",
            _ => "file",
        }
    }
}

/// The MIME type a file's extension stands for; the server decides whether it accepts it.
fn content_type(path: &Path) -> &'static str {
    let extension = path.extension().and_then(|e| e.to_str()).unwrap_or_default().to_ascii_lowercase();
    match extension.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "pdf" => "application/pdf",
        "txt" | "md" | "log" => "text/plain",
        "csv" => "text/csv",
        "doc" => "application/msword",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xls" => "application/vnd.ms-excel",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "ppt" => "application/vnd.ms-powerpoint",
        "pptx" => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "zip" => "application/zip",
        "mp3" => "audio/mpeg",
        "ogg" => "audio/ogg",
        "wav" => "audio/wav",
        "m4a" => "audio/mp4",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "mov" => "video/quicktime",
        _ => "application/octet-stream",
    }
}

pub async fn upload(context: &Context<'_>, conversation_id: &str, path: &str) -> CliResult<Uploaded> {
    let path = Path::new(path);
    let bytes = std::fs::read(path).map_err(|e| CliError::Setup(format!("cannot read {}: {e}", path.display())))?;
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let content_type = content_type(path);
    let rest = context.rest().await?;
    let issued = rest.create_upload(conversation_id, file_name, content_type, bytes.len() as u64).await?;
    rest.post_form(&issued["upload"], bytes).await?;
    let upload_id = issued["uploadId"]
        .as_str()
        .ok_or_else(|| CliError::Connection("the upload answer has no uploadId".into()))?
        .to_owned();
    Ok(Uploaded { upload_id, content_type: content_type.to_owned() })
}
