//! Attachments as a client handles them: ask the API for a form, post the file to S3 with it (multipart, as a
//! browser would), fetch what a read URL serves.

use std::time::Duration;

use serde_json::{Value, json};

use crate::{Api, TestUser};

/// What S3 answered a form's POST: its status and body (an XML error when refused).
pub struct Posted {
    pub status: u16,
    pub body: String,
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("http client")
}

/// `POST /conversations/{id}/uploads`.
pub async fn request_upload(
    api: &Api,
    who: &TestUser,
    conversation: &str,
    name: &str,
    kind: &str,
    size: usize,
) -> (u16, Value) {
    let body = json!({ "fileName": name, "contentType": kind, "size": size });
    api.call("POST", &format!("/conversations/{conversation}/uploads"), Some(&who.token), Some(body)).await
}

/// Posts `bytes` with an issued form (`{url, fields}`), the file last as S3 requires; `content_type` is the
/// file part's own header, which S3 ignores in favour of the form's `Content-Type` field.
pub async fn post_form(form: &Value, bytes: &[u8]) -> Posted {
    let mut multipart = reqwest::multipart::Form::new();
    for (name, value) in form["fields"].as_object().expect("form fields") {
        multipart = multipart.text(name.clone(), value.as_str().expect("field value").to_owned());
    }
    multipart = multipart.part("file", reqwest::multipart::Part::bytes(bytes.to_vec()).file_name("upload"));
    let url = form["url"].as_str().expect("form url");
    let response = http().post(url).multipart(multipart).send().await.expect("POST to the bucket");
    Posted { status: response.status().as_u16(), body: response.text().await.unwrap_or_default() }
}

/// Asks for a form and uploads `bytes` with it; the upload id.
pub async fn upload(api: &Api, who: &TestUser, conversation: &str, name: &str, kind: &str, bytes: &[u8]) -> String {
    let (status, issued) = request_upload(api, who, conversation, name, kind, bytes.len()).await;
    assert_eq!(status, 201, "upload form for {name}: {issued}");
    let posted = post_form(&issued["upload"], bytes).await;
    assert!((200..300).contains(&posted.status), "S3 refused {name}: {} {}", posted.status, posted.body);
    issued["uploadId"].as_str().expect("upload id").to_owned()
}

/// What a read URL serves: status and bytes.
pub async fn fetch(url: &str) -> (u16, Vec<u8>) {
    let response = http().get(url).send().await.expect("GET a read URL");
    let status = response.status().as_u16();
    (status, response.bytes().await.map(|b| b.to_vec()).unwrap_or_default())
}

/// `POST /conversations/{id}/messages` of an uploaded file.
pub async fn send_upload(api: &Api, who: &TestUser, conversation: &str, kind: &str, upload_id: &str) -> (u16, Value) {
    let body = json!({ "type": kind, "attachment": upload_id });
    api.call("POST", &format!("/conversations/{conversation}/messages"), Some(&who.token), Some(body)).await
}

/// The message's attachment as `who` reads it in history, once its status is no longer `processing` (polled
/// for at most `within`).
pub async fn settled_attachment(api: &Api, who: &TestUser, message_id: &str, within: Duration) -> Value {
    let conversation = message_id.rsplit_once('-').expect("message id").0;
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let (status, page) =
            api.call("GET", &format!("/conversations/{conversation}/messages?limit=100"), Some(&who.token), None).await;
        assert_eq!(status, 200, "{page}");
        let message = page["items"].as_array().expect("items").iter().find(|m| m["_id"] == message_id).cloned();
        let attachment = message.expect("message in history")["attachment"].clone();
        if attachment["status"] != "processing" {
            return attachment;
        }
        assert!(tokio::time::Instant::now() < deadline, "{message_id} still processing after {within:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
