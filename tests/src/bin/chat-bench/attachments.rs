//! Attachments: how long an image takes from asking for its upload form to a thumbnail the other member can
//! load, one image after another, and how much of that is the upload itself.

use std::time::{Duration, Instant};

use chat_e2e::files::{fetch, send_upload, upload};
use chat_shared::testing::images::photo_with_gps;
use serde::Serialize;

use crate::Bench;
use crate::stats::{ms, percentile};

#[derive(Clone, Debug, Serialize)]
pub struct AttachmentResult {
    pub images: usize,
    pub width: u32,
    pub height: u32,
    pub bytes: usize,
    /// Form asked for → the bucket accepted the POST.
    pub upload_p50_ms: f64,
    pub upload_p95_ms: f64,
    /// Form asked for → the thumbnail's read URL served it to the other member.
    pub thumbnail_p50_ms: f64,
    pub thumbnail_p95_ms: f64,
    /// Images whose thumbnail did not come within the wait.
    pub missing: usize,
}

const WAIT: Duration = Duration::from_secs(30);

pub async fn upload_to_thumbnail(bench: &Bench, images: usize) -> AttachmentResult {
    let users = bench.users("att", 2).await;
    let (sender, reader) = (&users[0], &users[1]);
    let conversation = bench.api.private_conversation(sender, reader).await;
    let (width, height) = (1600, 1200);
    let photo = photo_with_gps(width, height);
    let (mut uploads, mut thumbnails, mut missing) = (Vec::new(), Vec::new(), 0);
    for n in 0..images {
        let started = Instant::now();
        let id = upload(&bench.api, sender, &conversation, &format!("photo-{n}.jpg"), "image/jpeg", &photo).await;
        uploads.push(ms(started.elapsed()));
        let (status, sent) = send_upload(&bench.api, sender, &conversation, "image", &id).await;
        assert_eq!(status, 201, "{sent}");
        let message_id = sent["_id"].as_str().expect("message id").to_owned();
        match thumbnail_url(bench, reader, &conversation, &message_id, started + WAIT).await {
            Some(url) if fetch(&url).await.0 == 200 => thumbnails.push(ms(started.elapsed())),
            _ => missing += 1,
        }
    }
    let at = |samples: &[f64], p| percentile(samples, p).unwrap_or(f64::NAN);
    AttachmentResult {
        images,
        width,
        height,
        bytes: photo.len(),
        upload_p50_ms: at(&uploads, 50.0),
        upload_p95_ms: at(&uploads, 95.0),
        thumbnail_p50_ms: at(&thumbnails, 50.0),
        thumbnail_p95_ms: at(&thumbnails, 95.0),
        missing,
    }
}

/// The thumbnail URL the reader is served once the image is ready (history polled every 20 ms until `deadline`).
async fn thumbnail_url(
    bench: &Bench,
    reader: &chat_e2e::TestUser,
    conversation: &str,
    message_id: &str,
    deadline: Instant,
) -> Option<String> {
    let path = format!("/conversations/{conversation}/messages?limit=5");
    while Instant::now() < deadline {
        let (_, page) = bench.api.call("GET", &path, Some(&reader.token), None).await;
        let items = page["items"].as_array().cloned().unwrap_or_default();
        let attachment = items.iter().find(|m| m["_id"] == message_id).map(|m| m["attachment"].clone());
        if let Some(url) = attachment.as_ref().and_then(|a| a["thumbnailUrl"].as_str()) {
            return Some(url.to_owned());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}
