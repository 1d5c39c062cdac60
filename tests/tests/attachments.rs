//! Attachments on the deployed stack: files go from a client straight to the bucket with a signed form, members
//! read them through short-lived URLs, images gain a thumbnail and lose their GPS, and everything else is
//! refused by S3 or the API: strangers, removed members, oversize or mistyped uploads, reused or stolen upload
//! ids, corrupt images and decompression bombs.

use std::time::{Duration, Instant};

use chat_e2e::files::{fetch, post_form, request_upload, send_upload, settled_attachment, upload};
use chat_e2e::rest::next_event;
use chat_e2e::{Stack, TestUser, WsClient};
use chat_shared::testing::images::{GPS_MARKER, photo_with_gps, png_bomb};
use futures_util::future::join_all;
use image::GenericImageView;
use serde_json::{Value, json};

/// Upload to thumbnail is one S3 notification and one decode; far less than this on an idle emulator.
const PROCESSING_WITHIN: Duration = Duration::from_secs(30);

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

async fn group(stack: &Stack, owner: &TestUser, others: &[&TestUser]) -> String {
    let ids: Vec<&str> = others.iter().map(|u| u.id.as_str()).collect();
    let body = json!({ "type": "group", "name": "attachments", "participantIds": ids });
    let (status, created) = stack.api().call("POST", "/conversations", Some(&owner.token), Some(body)).await;
    assert_eq!(status, 201, "{created}");
    created["_id"].as_str().expect("id").to_owned()
}

#[tokio::test]
async fn an_image_and_a_file_reach_the_other_member_who_reads_them_and_the_thumbnail() {
    let stack = Stack::load();
    let api = stack.api();
    let (alice, bob) = (api.register("alice").await, api.register("bob").await);
    let conversation = api.private_conversation(&alice, &bob).await;
    let mut alice_ws = WsClient::connect(&stack, &alice).await;
    let mut bob_ws = WsClient::connect(&stack, &bob).await;

    // A document, sent over the WebSocket.
    let pdf = b"%PDF-1.7\n% a small report\n".repeat(40);
    let uploaded_at = Instant::now();
    let pdf_id = upload(&api, &alice, &conversation, "report.pdf", "application/pdf", &pdf).await;
    let ack = alice_ws
        .call(json!({"action": "send_message", "conversationId": conversation, "type": "file", "attachment": pdf_id}))
        .await;
    assert_eq!(ack["event"], "ack", "{ack}");
    let received = next_event(&mut bob_ws, "receive_message").await;
    let attachment = &received["message"]["attachment"];
    assert_eq!(attachment["fileName"], "report.pdf");
    assert_eq!(attachment["size"], pdf.len());
    assert_eq!(attachment["contentType"], "application/pdf");
    let (status, bytes) = fetch(attachment["url"].as_str().expect("read URL")).await;
    assert_eq!((status, bytes == pdf), (200, true), "the member reads exactly what was uploaded");

    // A photo with its location in EXIF, sent over HTTP.
    let photo = photo_with_gps(1200, 800);
    let photo_id = upload(&api, &alice, &conversation, "tower.jpg", "image/jpeg", &photo).await;
    let (status, sent) = send_upload(&api, &alice, &conversation, "image", &photo_id).await;
    assert_eq!(status, 201, "{sent}");
    let live = next_event(&mut bob_ws, "receive_message").await;
    assert_eq!(live["message"]["_id"], sent["_id"]);
    let message_id = sent["_id"].as_str().unwrap();
    let ready = match sent["attachment"]["status"].as_str() {
        Some("ready") => sent["attachment"].clone(),
        _ => {
            // Sent before the processor finished: the conversation hears when it has.
            let processed = next_event(&mut bob_ws, "attachment_processed").await;
            assert_eq!(processed["messageId"], message_id);
            processed["attachment"].clone()
        }
    };
    let thumbnail_after = uploaded_at.elapsed();
    assert_eq!(
        (ready["status"].as_str(), ready["width"].as_u64(), ready["height"].as_u64()),
        (Some("ready"), Some(1200), Some(800))
    );
    let (status, served) = fetch(ready["url"].as_str().expect("image URL")).await;
    assert_eq!(status, 200);
    assert!(!contains(&served, GPS_MARKER), "members are never served the photo's location");
    assert_eq!(image::load_from_memory(&served).expect("still a JPEG").dimensions(), (1200, 800));
    let (status, thumbnail) = fetch(ready["thumbnailUrl"].as_str().expect("thumbnail URL")).await;
    assert_eq!(status, 200);
    assert_eq!(image::load_from_memory(&thumbnail).expect("thumbnail decodes").dimensions(), (320, 213));
    println!("upload to thumbnail served: {} ms", thumbnail_after.as_millis());

    // History carries fresh URLs too.
    let history = settled_attachment(&api, &bob, message_id, PROCESSING_WITHIN).await;
    assert!(history["thumbnailUrl"].is_string() && history["url"].is_string(), "{history}");
    alice_ws.close().await;
    bob_ws.close().await;
}

#[tokio::test]
async fn strangers_and_removed_members_get_no_form_no_url_and_no_upload_of_anothers() {
    let stack = Stack::load();
    let api = stack.api();
    let (alice, bob, carol, dave) = (
        api.register("alice").await,
        api.register("bob").await,
        api.register("carol").await,
        api.register("dave").await,
    );
    let conversation = group(&stack, &alice, &[&bob, &carol]).await;
    let elsewhere = group(&stack, &alice, &[&bob]).await;
    let id = upload(&api, &alice, &conversation, "plan.txt", "text/plain", b"the plan").await;

    // Another member cannot attach alice's upload; nor can alice in another conversation.
    let (status, refused) = send_upload(&api, &bob, &conversation, "file", &id).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (404, Some("not_found")), "{refused}");
    let (status, refused) = send_upload(&api, &alice, &elsewhere, "file", &id).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (404, Some("not_found")), "{refused}");
    let (status, sent) = send_upload(&api, &alice, &conversation, "file", &id).await;
    assert_eq!(status, 201, "{sent}");
    let (status, refused) = send_upload(&api, &alice, &conversation, "file", &id).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (409, Some("conflict")), "attached once: {refused}");

    let history = format!("/conversations/{conversation}/messages");
    for stranger in [&dave] {
        let (status, body) = api.call("GET", &history, Some(&stranger.token), None).await;
        assert_eq!(status, 404, "{body}");
        let (status, body) = request_upload(&api, stranger, &conversation, "x.txt", "text/plain", 3).await;
        assert_eq!(status, 404, "{body}");
    }
    let (status, page) = api.call("GET", &history, Some(&carol.token), None).await;
    assert_eq!(status, 200);
    assert!(page["items"][0]["attachment"]["url"].is_string(), "{page}");
    let (status, _) = api
        .call("DELETE", &format!("/conversations/{conversation}/members/{}", carol.id), Some(&carol.token), None)
        .await;
    assert_eq!(status, 200);
    let (status, body) = api.call("GET", &history, Some(&carol.token), None).await;
    assert_eq!(status, 404, "a removed member gets no new URL: {body}");
}

#[tokio::test]
async fn s3_holds_an_upload_to_its_form_and_the_api_refuses_what_it_would_not_sign() {
    let stack = Stack::load();
    let api = stack.api();
    let (alice, bob) = (api.register("alice").await, api.register("bob").await);
    let conversation = api.private_conversation(&alice, &bob).await;

    let (status, issued) = request_upload(&api, &alice, &conversation, "small.txt", "text/plain", 100).await;
    assert_eq!(status, 201, "{issued}");
    let form = &issued["upload"];
    let larger = post_form(form, &[b'x'; 200]).await;
    assert_eq!(larger.status, 400, "{}", larger.body);
    assert!(larger.body.contains("EntityTooLarge"), "{}", larger.body);
    let mut retyped = form.clone();
    retyped["fields"]["Content-Type"] = json!("text/html");
    let posted = post_form(&retyped, &[b'x'; 100]).await;
    assert_eq!(posted.status, 403, "a type the form did not sign: {}", posted.body);
    let mut elsewhere = form.clone();
    elsewhere["fields"]["key"] = json!(format!("uploads/{conversation}/not-mine"));
    let posted = post_form(&elsewhere, &[b'x'; 100]).await;
    assert_eq!(posted.status, 403, "a key the form did not sign: {}", posted.body);
    // Nothing arrived, so there is nothing to send.
    let (status, refused) =
        send_upload(&api, &alice, &conversation, "file", issued["uploadId"].as_str().unwrap()).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (422, Some("validation_failed")), "{refused}");

    for (name, kind, size, want) in [
        ("page.html", "text/html", 10, 422),
        ("drawing.svg", "image/svg+xml", 10, 422),
        ("huge.zip", "application/zip", 26 * 1024 * 1024, 413),
        ("", "text/plain", 10, 422),
    ] {
        let (status, body) = request_upload(&api, &alice, &conversation, name, kind, size).await;
        assert_eq!(status, want, "{name} {kind} {size}: {body}");
        assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
}

#[tokio::test]
async fn a_deleted_messages_files_are_gone() {
    let stack = Stack::load();
    let api = stack.api();
    let (alice, bob) = (api.register("alice").await, api.register("bob").await);
    let conversation = api.private_conversation(&alice, &bob).await;
    let id = upload(&api, &alice, &conversation, "tower.jpg", "image/jpeg", &photo_with_gps(400, 300)).await;
    let (status, sent) = send_upload(&api, &alice, &conversation, "image", &id).await;
    assert_eq!(status, 201, "{sent}");
    let message_id = sent["_id"].as_str().unwrap();
    let attachment = settled_attachment(&api, &bob, message_id, PROCESSING_WITHIN).await;
    let urls: Vec<String> =
        ["url", "thumbnailUrl"].iter().map(|k| attachment[*k].as_str().expect("URL").to_owned()).collect();
    for url in &urls {
        assert_eq!(fetch(url).await.0, 200);
    }
    let (status, deleted) = api
        .call("DELETE", &format!("/conversations/{conversation}/messages/{message_id}"), Some(&alice.token), None)
        .await;
    assert_eq!(status, 200, "{deleted}");
    assert!(deleted.get("attachment").is_none(), "{deleted}");
    for url in &urls {
        assert_eq!(fetch(url).await.0, 404, "a URL served before the delete no longer reads anything");
    }
}

#[tokio::test]
async fn a_corrupt_image_and_a_bomb_get_no_thumbnail_and_the_processor_keeps_working() {
    let stack = Stack::load();
    let api = stack.api();
    let (alice, bob) = (api.register("alice").await, api.register("bob").await);
    let conversation = api.private_conversation(&alice, &bob).await;
    let mut corrupt = photo_with_gps(64, 64);
    corrupt.truncate(300);
    for (name, kind, bytes) in [
        ("corrupt.jpg", "image/jpeg", corrupt),
        ("lying.png", "image/png", b"%PDF-1.7 pretending".to_vec()),
        ("bomb.png", "image/png", png_bomb(50_000, 50_000)),
        ("wide-bomb.png", "image/png", png_bomb(9_000, 9_000)),
    ] {
        let id = upload(&api, &alice, &conversation, name, kind, &bytes).await;
        let (status, sent) = send_upload(&api, &alice, &conversation, "image", &id).await;
        assert_eq!(status, 201, "{name}: {sent}");
        let settled = settled_attachment(&api, &bob, sent["_id"].as_str().unwrap(), PROCESSING_WITHIN).await;
        assert_eq!(settled["status"], "rejected", "{name}: {settled}");
        assert!(settled.get("url").is_none() && settled.get("thumbnailUrl").is_none(), "{name}: {settled}");
    }
    // Still healthy: the next image is processed.
    let id = upload(&api, &alice, &conversation, "fine.jpg", "image/jpeg", &photo_with_gps(640, 480)).await;
    let (_, sent) = send_upload(&api, &alice, &conversation, "image", &id).await;
    let settled = settled_attachment(&api, &bob, sent["_id"].as_str().unwrap(), PROCESSING_WITHIN).await;
    assert_eq!((settled["status"].as_str(), settled["width"].as_u64()), (Some("ready"), Some(640)), "{settled}");
}

/// The bucket's lifecycle rule expires objects tagged `state=pending` after a day (the emulator does not run
/// lifecycle rules, so this checks the tags it reads): an upload nobody sent is never tagged attached, an attached
/// one and its derived images are. (The form tags uploads pending with its `tagging` field, which MiniStack
/// ignores: locally an unsent upload has no tag; docs/deploy.md.)
#[tokio::test]
async fn uploads_stay_pending_until_a_message_attaches_them() {
    let stack = Stack::load();
    let api = stack.api();
    let (alice, bob) = (api.register("alice").await, api.register("bob").await);
    let conversation = api.private_conversation(&alice, &bob).await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&stack.aws_config().await).force_path_style(true).build(),
    );
    let bucket = &stack.attachments_bucket;
    let state = |key: String| {
        let s3 = &s3;
        async move {
            let tags = s3.get_object_tagging().bucket(bucket).key(&key).send().await.expect("GetObjectTagging");
            tags.tag_set().iter().find(|t| t.key() == "state").map(|t| t.value().to_owned())
        }
    };

    let unsent = upload(&api, &alice, &conversation, "draft.txt", "text/plain", b"never sent").await;
    let unsent_state = state(format!("uploads/{conversation}/{unsent}")).await;
    assert_ne!(unsent_state.as_deref(), Some("attached"), "an upload nobody sent must stay expirable");

    let id = upload(&api, &alice, &conversation, "tower.jpg", "image/jpeg", &photo_with_gps(300, 200)).await;
    let (status, sent) = send_upload(&api, &alice, &conversation, "image", &id).await;
    assert_eq!(status, 201, "{sent}");
    let settled = settled_attachment(&api, &bob, sent["_id"].as_str().unwrap(), PROCESSING_WITHIN).await;
    assert_eq!(settled["status"], "ready");
    for key in [
        format!("uploads/{conversation}/{id}"),
        format!("media/{conversation}/{id}"),
        format!("thumbnails/{conversation}/{id}.jpg"),
    ] {
        assert_eq!(state(key.clone()).await.as_deref(), Some("attached"), "{key}");
    }
}

/// Ten members upload an image and send it at the same moment: every message reaches every member, and every
/// image gets its thumbnail.
#[tokio::test]
async fn ten_members_uploading_and_sending_at_once_all_arrive() {
    const MEMBERS: usize = 10;
    let stack = Stack::load();
    let api = stack.api();
    let users: Vec<TestUser> =
        join_all((0..MEMBERS).map(|i| api.register(if i == 0 { "owner" } else { "member" }))).await;
    let others: Vec<&TestUser> = users[1..].iter().collect();
    let conversation = group(&stack, &users[0], &others).await;
    let mut clients = join_all(users.iter().map(|u| WsClient::connect(&stack, u))).await;

    let sent: Vec<Value> = join_all(users.iter().enumerate().map(|(i, user)| {
        let (api, conversation) = (&api, &conversation);
        async move {
            let photo = photo_with_gps(200 + i as u32, 150);
            let id = upload(api, user, conversation, &format!("photo-{i}.jpg"), "image/jpeg", &photo).await;
            let (status, sent) = send_upload(api, user, conversation, "image", &id).await;
            assert_eq!(status, 201, "{sent}");
            sent
        }
    }))
    .await;
    let mut expected: Vec<&str> = sent.iter().map(|m| m["_id"].as_str().unwrap()).collect();
    expected.sort_unstable();
    let received = join_all(clients.iter_mut().map(|client| {
        async move {
            // Sent over HTTP, so every member's connection hears all ten, its own included.
            let mut ids = Vec::new();
            while ids.len() < MEMBERS {
                let frame = next_event(client, "receive_message").await;
                ids.push(frame["message"]["_id"].as_str().unwrap().to_owned());
            }
            ids.sort_unstable();
            ids
        }
    }))
    .await;
    for ids in &received {
        assert_eq!(ids.iter().map(String::as_str).collect::<Vec<_>>(), expected);
    }
    for message in &sent {
        let settled = settled_attachment(&api, &users[0], message["_id"].as_str().unwrap(), PROCESSING_WITHIN).await;
        assert_eq!(settled["status"], "ready", "{settled}");
        assert!(settled["thumbnailUrl"].is_string());
    }
    for client in clients {
        client.close().await;
    }
}
