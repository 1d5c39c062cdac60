//! `docs/openapi.yaml` against the template and the deployed API: both list the same routes, and every deployed
//! route answers, on success and on error, in the shape the spec documents for that status.

use std::collections::BTreeSet;

use chat_e2e::rest::{CheckedApi, OPENAPI_YAML, Spec, TEMPLATE_YAML};
use chat_e2e::{Stack, unique_name};
use serde_json::json;

fn spec() -> Spec {
    Spec::new(serde_norway::from_str(OPENAPI_YAML).expect("docs/openapi.yaml is valid YAML"))
}

/// Route keys of the HTTP API in the template (routes whose `ApiId` is `!Ref HttpApi`).
fn template_routes() -> BTreeSet<String> {
    use serde_norway::Value;
    let template: Value = serde_norway::from_str(TEMPLATE_YAML).expect("template is valid YAML");
    let resources = template["Resources"].as_mapping().expect("template has Resources");
    let mut routes = BTreeSet::new();
    for resource in resources.values() {
        let is_http_route = resource["Type"].as_str() == Some("AWS::ApiGatewayV2::Route")
            && matches!(&resource["Properties"]["ApiId"], Value::Tagged(t)
                if t.tag == "Ref" && t.value.as_str() == Some("HttpApi"));
        if is_http_route {
            routes.insert(resource["Properties"]["RouteKey"].as_str().expect("RouteKey is a string").to_owned());
        }
    }
    routes
}

#[test]
fn the_spec_documents_exactly_the_routes_the_template_deploys() {
    let deployed = template_routes();
    assert!(deployed.contains("GET /conversations/{id}/messages"), "template parsing found {deployed:?}");
    let operations = spec().operations();
    let documented: BTreeSet<String> =
        operations.iter().filter(|(_, planned)| !planned).map(|(r, _)| r.clone()).collect();
    let planned: BTreeSet<String> = operations.iter().filter(|(_, planned)| *planned).map(|(r, _)| r.clone()).collect();
    assert_eq!(
        deployed.difference(&documented).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "deployed but not documented (or still marked x-planned)"
    );
    assert_eq!(documented.difference(&deployed).collect::<Vec<_>>(), Vec::<&String>::new(), "documented, not deployed");
    assert!(planned.is_disjoint(&deployed), "planned routes that are deployed must lose `x-planned`");
}

#[test]
fn the_checker_rejects_answers_that_break_the_schema() {
    // The live test below is only as good as this checker: it must notice missing, mistyped and extra fields.
    let spec = spec();
    let user = json!({"_id": "u", "username": "a", "avatar": null, "createdAt": "t"});
    assert!(spec.check("GET /users/me", 200, &user).is_ok());
    let mut missing = user.clone();
    missing.as_object_mut().unwrap().remove("createdAt");
    assert!(spec.check("GET /users/me", 200, &missing).is_err());
    assert!(
        spec.check("GET /users/me", 200, &json!({"_id": 1, "username": "a", "avatar": null, "createdAt": "t"}))
            .is_err()
    );
    assert!(spec.check("GET /users/me", 418, &user).is_err(), "undocumented status");
    let page = json!({"items": [user.clone()], "nextCursor": null});
    assert!(spec.check("GET /users", 200, &page).is_ok());
    assert!(spec.check("GET /users", 200, &json!({"items": [{"_id": "u"}], "nextCursor": null})).is_err());
    assert!(spec.check("GET /users", 200, &json!({"items": []})).is_err());
    let error = json!({"error": {"code": "not_found", "message": "x"}});
    assert!(spec.check("GET /conversations/{id}", 404, &error).is_ok());
    assert!(spec.check("GET /conversations/{id}", 404, &json!({"error": {"code": "nope", "message": "x"}})).is_err());
    let summary = json!({"_id": "c", "type": "group", "name": "g", "avatar": null, "members": [user],
        "memberCount": 1, "lastMessage": null, "lastSeq": 0, "createdBy": "u", "createdAt": "t", "updatedAt": "t"});
    assert!(spec.check("GET /conversations/{id}", 200, &summary).is_err(), "unreadCount is required");
    let mut with_unread = summary.clone();
    with_unread["unreadCount"] = json!(0);
    assert!(spec.check("GET /conversations/{id}", 200, &with_unread).is_err(), "so are the mentions and settings");
    with_unread["unreadMentionCount"] = json!(0);
    with_unread["notifications"] = json!({"level": "all", "until": null});
    assert!(spec.check("GET /conversations/{id}", 200, &with_unread).is_ok());
    with_unread["lastMessage"] = json!({"content": "no other fields"});
    assert!(spec.check("GET /conversations/{id}", 200, &with_unread).is_err(), "lastMessage is a Message or null");
    assert_eq!(spec.route_of("GET", "/users/me?x=1").as_deref(), Some("GET /users/me"));
    assert_eq!(
        spec.route_of("DELETE", "/conversations/c1/members/u1").as_deref(),
        Some("DELETE /conversations/{id}/members/{userId}")
    );
    assert_eq!(spec.route_of("GET", "/nowhere"), None);
}

#[tokio::test]
async fn every_deployed_route_answers_in_its_documented_shape() {
    let stack = Stack::load();
    let api = CheckedApi::new(stack.api(), spec());
    let plain = stack.api();
    let (alice, bob, carol) =
        (plain.register("alice").await, plain.register("bob").await, plain.register("carol").await);

    // Accounts.
    let name = unique_name("dora");
    let creds = json!({"username": name, "password": "correct-horse-1"});
    assert_eq!(api.call("POST", "/auth/register", None, Some(creds.clone())).await.0, 201);
    assert_eq!(api.call("POST", "/auth/register", None, Some(creds.clone())).await.0, 409);
    assert_eq!(api.call("POST", "/auth/login", None, Some(creds)).await.0, 200);
    let wrong = json!({"username": name, "password": "wrong-horse-1"});
    assert_eq!(api.call("POST", "/auth/login", None, Some(wrong)).await.0, 401);
    assert_eq!(api.call("GET", "/users/me", Some(&alice.token), None).await.0, 200);
    assert_eq!(api.call("GET", "/users/me", None, None).await.0, 401);
    let search = format!("/users?search={}", &alice.username[..8]);
    assert_eq!(api.call("GET", &search, Some(&alice.token), None).await.0, 200);
    assert_eq!(api.call("GET", "/users?search=", Some(&alice.token), None).await.0, 422);

    // Sessions, on a user of their own (the others' tokens stay valid for the rest).
    let (_, dora) =
        api.call("POST", "/auth/login", None, Some(json!({"username": name, "password": "correct-horse-1"}))).await;
    let renew = json!({"refreshToken": dora["refreshToken"]});
    let (status, renewed) = api.call("POST", "/auth/refresh", None, Some(renew)).await;
    assert_eq!(status, 200);
    assert_eq!(api.call("POST", "/auth/refresh", None, Some(json!({"refreshToken": "forged"}))).await.0, 401);
    let token = renewed["token"].as_str().unwrap().to_owned();
    let (status, listed) = api.call("GET", "/users/me/sessions", Some(&token), None).await;
    assert_eq!((status, listed["items"].as_array().map(Vec::len)), (200, Some(3)), "register, two logins: {listed}");
    let other =
        listed["items"].as_array().unwrap().iter().find(|s| s["current"] == false).unwrap()["sessionId"].clone();
    let other = format!("/users/me/sessions/{}", other.as_str().unwrap());
    assert_eq!(api.call("DELETE", &other, Some(&token), None).await.0, 200);
    assert_eq!(api.call("DELETE", &other, Some(&token), None).await.0, 404);
    let change = |current: &str| json!({"currentPassword": current, "newPassword": "correct-horse-2"});
    assert_eq!(api.call("PUT", "/users/me/password", Some(&token), Some(change("wrong-horse-1"))).await.0, 403);
    assert_eq!(api.call("PUT", "/users/me/password", Some(&token), Some(json!({"currentPassword": 1}))).await.0, 400);
    assert_eq!(api.call("PUT", "/users/me/password", Some(&token), Some(change("correct-horse-1"))).await.0, 200);
    assert_eq!(api.call("POST", "/auth/logout-all", Some(&token), None).await.0, 200);
    assert_eq!(api.call("POST", "/auth/logout", Some(&token), None).await.0, 401);

    // Deleting an account, on one of its own (tests/tests/account_deletion.rs: the erasure).
    let leaving = plain.register("leaving").await;
    let mine = Some(leaving.token.as_str());
    assert_eq!(api.call("DELETE", "/users/me", mine, Some(json!({"password": "wrong-horse-1"}))).await.0, 403);
    assert_eq!(api.call("DELETE", "/users/me", mine, Some(json!({"password": 1}))).await.0, 400);
    let (status, deleted) = api.call("DELETE", "/users/me", mine, Some(json!({"password": "correct-horse-1"}))).await;
    assert_eq!((status, &deleted["status"]), (202, &json!("erasing")));
    assert_eq!(api.call("DELETE", "/users/me", mine, Some(json!({"password": "correct-horse-1"}))).await.0, 401);

    // Exporting one's data (tests/tests/account_export.rs: the document).
    assert_eq!(api.call("GET", "/users/me/export", Some(&carol.token), None).await.0, 404);
    let (status, requested) = api.call("POST", "/users/me/export", Some(&carol.token), None).await;
    assert_eq!((status, &requested["status"]), (202, &json!("pending")));
    assert_eq!(api.call("GET", "/users/me/export", Some(&carol.token), None).await.0, 200);
    assert_eq!(api.call("POST", "/users/me/export", None, None).await.0, 401);

    // Conversations.
    let pair = json!({"type": "private", "participantId": bob.id});
    assert_eq!(api.call("POST", "/conversations", Some(&alice.token), Some(pair.clone())).await.0, 201);
    let (status, existing) = api
        .call("POST", "/conversations", Some(&bob.token), Some(json!({"type": "private", "participantId": alice.id})))
        .await;
    assert_eq!(status, 200);
    let private_id = existing["_id"].as_str().unwrap().to_owned();
    let group = api.group(&alice, &[&bob], "contract").await;
    assert_eq!(api.call("GET", "/conversations?limit=1", Some(&alice.token), None).await.0, 200);
    assert_eq!(api.call("GET", "/conversations?page=1", Some(&alice.token), None).await.0, 200);
    assert_eq!(api.call("GET", "/conversations?cursor=forged", Some(&alice.token), None).await.0, 400);
    assert_eq!(api.call("GET", &format!("/conversations/{group}"), Some(&alice.token), None).await.0, 200);
    assert_eq!(api.call("GET", &format!("/conversations/{group}"), Some(&carol.token), None).await.0, 404);
    let rename = json!({"name": "renamed", "avatar": "https://img.example/g.png"});
    assert_eq!(
        api.call("PATCH", &format!("/conversations/{group}"), Some(&bob.token), Some(rename.clone())).await.0,
        403
    );
    let bob_role = format!("/conversations/{group}/members/{}/role", bob.id);
    assert_eq!(api.call("PUT", &bob_role, Some(&bob.token), Some(json!({"role": "admin"}))).await.0, 403);
    assert_eq!(api.call("PUT", &bob_role, Some(&alice.token), Some(json!({"role": "boss"}))).await.0, 400);
    assert_eq!(api.call("PUT", &bob_role, Some(&alice.token), Some(json!({"role": "admin"}))).await.0, 200);
    assert_eq!(api.call("PATCH", &format!("/conversations/{group}"), Some(&bob.token), Some(rename)).await.0, 200);
    assert_eq!(api.call("PATCH", &format!("/conversations/{group}"), Some(&bob.token), Some(json!({}))).await.0, 422);
    let members = format!("/conversations/{group}/members");
    assert_eq!(api.call("POST", &members, Some(&bob.token), Some(json!({"userIds": [carol.id]}))).await.0, 200);
    assert_eq!(api.call("POST", &members, Some(&bob.token), Some(json!({"userIds": []}))).await.0, 422);
    let carol_in_group = format!("{members}/{}", carol.id);
    let bob_in_group = format!("{members}/{}", bob.id);
    assert_eq!(api.call("DELETE", &bob_in_group, Some(&carol.token), None).await.0, 403, "a member removes nobody");
    assert_eq!(api.call("DELETE", &carol_in_group, Some(&alice.token), None).await.0, 200);
    let (status, listed) = api.call("GET", &format!("{members}?limit=1"), Some(&bob.token), None).await;
    assert_eq!((status, listed["items"].as_array().map(Vec::len)), (200, Some(1)), "{listed}");
    assert_eq!(api.call("GET", &format!("{members}?limit=0"), Some(&bob.token), None).await.0, 422);
    assert_eq!(api.call("GET", &members, Some(&carol.token), None).await.0, 404);
    let in_private = format!("/conversations/{private_id}/members/{}", bob.id);
    assert_eq!(api.call("DELETE", &in_private, Some(&alice.token), None).await.0, 422);
    assert_eq!(
        api.call("PUT", &format!("{in_private}/role"), Some(&alice.token), Some(json!({"role": "admin"}))).await.0,
        422
    );
    let owner = format!("/conversations/{group}/owner");
    assert_eq!(api.call("PUT", &owner, Some(&alice.token), Some(json!({"userId": alice.id}))).await.0, 422);
    assert_eq!(api.call("PUT", &owner, Some(&alice.token), Some(json!({"userId": carol.id}))).await.0, 404);
    assert_eq!(api.call("PUT", &owner, Some(&alice.token), Some(json!({"userId": bob.id}))).await.0, 200);
    assert_eq!(
        api.call("PUT", &owner, Some(&alice.token), Some(json!({"userId": bob.id}))).await.0,
        403,
        "no longer the owner"
    );

    // Messages.
    let messages = format!("/conversations/{group}/messages");
    let body = json!({"content": "contract", "type": "text", "clientMessageId": "contract-1"});
    let (status, sent) = api.call("POST", &messages, Some(&alice.token), Some(body.clone())).await;
    assert_eq!(status, 201);
    let (status, again) = api.call("POST", &messages, Some(&alice.token), Some(body)).await;
    assert_eq!((status, &again), (200, &sent));
    assert_eq!(api.call("POST", &messages, Some(&alice.token), Some(json!({"content": ""}))).await.0, 422);
    assert_eq!(api.call("POST", &messages, Some(&carol.token), Some(json!({"content": "x"}))).await.0, 404);
    let (status, page) = api.call("GET", &messages, Some(&bob.token), None).await;
    assert_eq!(status, 200);
    assert_eq!(page["items"][0], sent);
    assert_eq!(api.call("GET", &format!("{messages}?limit=0"), Some(&bob.token), None).await.0, 422);
    assert_eq!(api.call("GET", &format!("/messages?cid={group}"), Some(&bob.token), None).await.0, 200);
    assert_eq!(api.call("GET", &format!("/messages?cid={group}"), Some(&carol.token), None).await.0, 404);

    // Upload forms (the upload itself goes to S3: tests/tests/attachments.rs).
    let uploads = format!("/conversations/{group}/uploads");
    let file = json!({"fileName": "notes.txt", "contentType": "text/plain", "size": 12});
    let (status, issued) = api.call("POST", &uploads, Some(&bob.token), Some(file.clone())).await;
    assert_eq!((status, issued["upload"]["fields"]["Content-Type"].as_str()), (201, Some("text/plain")), "{issued}");
    assert_eq!(api.call("POST", &uploads, Some(&carol.token), Some(file)).await.0, 404);
    let page = json!({"fileName": "page.html", "contentType": "text/html", "size": 12});
    assert_eq!(api.call("POST", &uploads, Some(&bob.token), Some(page)).await.0, 422);
    let huge = json!({"fileName": "huge.zip", "contentType": "application/zip", "size": 1u64 << 40});
    assert_eq!(api.call("POST", &uploads, Some(&bob.token), Some(huge)).await.0, 413);

    // REST twins of the WebSocket message and friend actions.
    let message = format!("{messages}/{}", sent["_id"].as_str().unwrap());
    assert_eq!(api.call("PUT", &message, Some(&bob.token), Some(json!({"newContent": "bob"}))).await.0, 403);
    let (status, edited) = api.call("PUT", &message, Some(&alice.token), Some(json!({"newContent": "edited"}))).await;
    assert_eq!((status, edited["content"].as_str()), (200, Some("edited")));
    assert_eq!(api.call("PUT", &message, Some(&alice.token), Some(json!({"newContent": ""}))).await.0, 422);
    let read = format!("/conversations/{group}/read");
    let (status, receipt) =
        api.call("POST", &read, Some(&bob.token), Some(json!({"lastMessageId": sent["_id"]}))).await;
    assert_eq!((status, &receipt["lastReadSeq"]), (200, &sent["seq"]));
    assert_eq!(api.call("POST", &read, Some(&carol.token), Some(json!({"lastMessageId": sent["_id"]}))).await.0, 404);
    assert_eq!(api.call("POST", &read, Some(&bob.token), Some(json!({}))).await.0, 422);
    let (status, reads) = api.call("GET", &format!("{message}/reads"), Some(&alice.token), None).await;
    assert_eq!((status, &reads["readCount"]), (200, &json!(2)), "alice (the sender) and bob read it: {reads}");
    assert_eq!(api.call("GET", &format!("{message}/reads"), Some(&carol.token), None).await.0, 404);
    let (status, deleted) = api.call("DELETE", &message, Some(&alice.token), None).await;
    assert_eq!((status, &deleted["deleted"]), (200, &json!(true)));
    assert_eq!(api.call("DELETE", &message, Some(&alice.token), None).await.0, 409);

    let to_carol = json!({"username": carol.username});
    assert_eq!(api.call("POST", "/friend-requests", Some(&alice.token), Some(to_carol.clone())).await.0, 201);
    assert_eq!(api.call("POST", "/friend-requests", Some(&alice.token), Some(to_carol)).await.0, 409);
    let (status, requests) = api.call("GET", "/friend-requests", Some(&carol.token), None).await;
    assert_eq!((status, &requests["incoming"][0]["user"]["_id"]), (200, &json!(alice.id)));
    let from_alice = format!("/friend-requests/{}", alice.username);
    assert_eq!(api.call("POST", &format!("{from_alice}/accept"), Some(&carol.token), None).await.0, 200);
    let (status, friends) = api.call("GET", "/friends", Some(&alice.token), None).await;
    assert_eq!((status, &friends["items"][0]["_id"]), (200, &json!(carol.id)));
    let carol_friend = format!("/friends/{}", carol.username);
    assert_eq!(api.call("DELETE", &carol_friend, Some(&alice.token), None).await.0, 200);
    assert_eq!(api.call("DELETE", &carol_friend, Some(&alice.token), None).await.0, 404);
    let to_bob = json!({"username": bob.username});
    assert_eq!(api.call("POST", "/friend-requests", Some(&carol.token), Some(to_bob.clone())).await.0, 201);
    let carol_to_bob = format!("/friend-requests/{}", bob.username);
    assert_eq!(api.call("DELETE", &carol_to_bob, Some(&carol.token), None).await.0, 200);
    assert_eq!(api.call("POST", "/friend-requests", Some(&carol.token), Some(to_bob)).await.0, 201);
    let from_carol = format!("/friend-requests/{}", carol.username);
    assert_eq!(api.call("POST", &format!("{from_carol}/reject"), Some(&bob.token), None).await.0, 200);
    assert_eq!(api.call("POST", &format!("{from_carol}/accept"), Some(&bob.token), None).await.0, 404);

    // Blocks, with the refusals they cause.
    let block_alice = format!("/users/{}/block", alice.id);
    let (status, outcome) = api.call("POST", &block_alice, Some(&carol.token), None).await;
    assert_eq!((status, &outcome["result"]), (200, &json!("blocked")));
    assert_eq!(api.call("POST", &format!("/users/{}/block", carol.id), Some(&carol.token), None).await.0, 422);
    assert_eq!(api.call("POST", "/users/nobody-here/block", Some(&carol.token), None).await.0, 404);
    let (status, blocked) = api.call("GET", "/users/me/blocked", Some(&carol.token), None).await;
    assert_eq!((status, &blocked["items"][0]["user"]["_id"]), (200, &json!(alice.id)));
    let to_carol = json!({"type": "private", "participantId": carol.id});
    assert_eq!(api.call("POST", "/conversations", Some(&alice.token), Some(to_carol)).await.0, 403);
    let to_carol = json!({"username": carol.username});
    assert_eq!(api.call("POST", "/friend-requests", Some(&alice.token), Some(to_carol)).await.0, 403);
    assert_eq!(api.call("DELETE", &block_alice, Some(&carol.token), None).await.0, 200);
    let (status, outcome) = api.call("DELETE", &block_alice, Some(&carol.token), None).await;
    assert_eq!((status, &outcome["result"]), (200, &json!("unchanged")));
    let friends_only = json!({"contactableBy": "friends"});
    assert_eq!(api.call("PUT", "/users/me/privacy", Some(&carol.token), Some(friends_only.clone())).await.0, 200);
    assert_eq!(api.call("GET", "/users/me/privacy", Some(&carol.token), None).await, (200, friends_only));
    assert_eq!(api.call("PUT", "/users/me/privacy", Some(&carol.token), Some(json!({}))).await.0, 400);

    // Mentions and notification settings (tests/tests/mentions.rs: in a crowd).
    let mention = json!({"content": "@bob", "mentions": [bob.id]});
    assert_eq!(api.call("POST", &messages, Some(&alice.token), Some(mention)).await.0, 201);
    let stranger = json!({"content": "@carol", "mentions": [carol.id]});
    assert_eq!(api.call("POST", &messages, Some(&alice.token), Some(stranger)).await.0, 422);
    let settings = format!("/conversations/{group}/notifications");
    let quiet = json!({"level": "mentions", "until": "2099-01-01T00:00:00Z"});
    assert_eq!(api.call("PUT", &settings, Some(&bob.token), Some(quiet)).await.0, 200);
    assert_eq!(api.call("PUT", &settings, Some(&bob.token), Some(json!({"level": "loud"}))).await.0, 400);
    assert_eq!(
        api.call("PUT", &settings, Some(&bob.token), Some(json!({"level": "all", "until": "2099-01-01T00:00:00Z"})))
            .await
            .0,
        422
    );
    assert_eq!(api.call("PUT", &settings, Some(&carol.token), Some(json!({"level": "none"}))).await.0, 404);
    assert_eq!(api.call("GET", "/users/me/notifications", Some(&bob.token), None).await.0, 200);
    let dnd = json!({"doNotDisturbUntil": "2099-01-01T00:00:00Z", "previews": false});
    assert_eq!(api.call("PUT", "/users/me/notifications", Some(&bob.token), Some(dnd)).await.0, 200);
    assert_eq!(
        api.call("PUT", "/users/me/notifications", Some(&bob.token), Some(json!({"previews": "no"}))).await.0,
        400
    );
    assert_eq!(
        api.call(
            "PUT",
            "/users/me/notifications",
            Some(&bob.token),
            Some(json!({"doNotDisturbUntil": "2001-01-01T00:00:00Z"}))
        )
        .await
        .0,
        422
    );

    // Push subscriptions (tests/tests/push.rs: the pushes themselves).
    let (status, key) = api.call("GET", "/push/server-key", None, None).await;
    assert!(status == 200 && key["publicKey"].as_str().is_some_and(|k| !k.is_empty()), "{key}");
    let browser = json!({
        "endpoint": "http://127.0.0.1:9/push/contract",
        "keys": {"p256dh": "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4", "auth": "BTBZMqHH6r4Tts7J_aSIgg"},
        "expirationTime": null
    });
    let subscriptions = "/users/me/push-subscriptions";
    let (status, registered) = api.call("POST", subscriptions, Some(&bob.token), Some(browser.clone())).await;
    assert_eq!(status, 201, "{registered}");
    assert_eq!(api.call("POST", subscriptions, Some(&bob.token), Some(browser)).await.0, 200);
    let short_secret = json!({"endpoint": "http://127.0.0.1:9/push/x", "keys": {"p256dh": "BCVx", "auth": "c2hvcnQ"}});
    assert_eq!(api.call("POST", subscriptions, Some(&bob.token), Some(short_secret)).await.0, 422);
    assert_eq!(api.call("POST", subscriptions, Some(&bob.token), Some(json!({"endpoint": 7}))).await.0, 400);
    let (status, listed) = api.call("GET", subscriptions, Some(&bob.token), None).await;
    assert_eq!((status, listed["items"][0]["id"].clone()), (200, registered["id"].clone()), "{listed}");
    let one = format!("{subscriptions}/{}", registered["id"].as_str().unwrap());
    assert_eq!(api.call("DELETE", &one, Some(&bob.token), None).await.0, 200);
    assert_eq!(api.call("DELETE", &one, Some(&bob.token), None).await.0, 404);

    // Reports, and what operators do with them (tests/tests/moderation.rs: the rules in a crowd).
    let (status, spam) = api.call("POST", &messages, Some(&bob.token), Some(json!({"content": "buy now"}))).await;
    assert_eq!(status, 201);
    let reported = json!({"target": {"type": "message", "messageId": spam["_id"]}, "reason": "spam"});
    assert_eq!(api.call("POST", "/reports", Some(&alice.token), Some(reported.clone())).await.0, 201);
    assert_eq!(api.call("POST", "/reports", Some(&alice.token), Some(reported.clone())).await.0, 200);
    assert_eq!(api.call("POST", "/reports", Some(&carol.token), Some(reported)).await.0, 404, "not carol's to see");
    let about_bob = json!({"target": {"type": "user", "userId": bob.id}, "reason": "nonsense"});
    assert_eq!(api.call("POST", "/reports", Some(&alice.token), Some(about_bob)).await.0, 400);
    let operator = plain.register("operator").await;
    stack.make_operator(&operator).await;
    let op = Some(operator.token.as_str());
    assert_eq!(api.call("GET", "/moderation/reports", Some(&alice.token), None).await.0, 403);
    assert_eq!(api.call("GET", "/moderation/reports?limit=1", op, None).await.0, 200);
    assert_eq!(api.call("GET", "/moderation/reports?cursor=forged", op, None).await.0, 400);
    let moderated = format!("/moderation/messages/{}", spam["_id"].as_str().unwrap());
    assert_eq!(api.call("DELETE", &moderated, Some(&alice.token), None).await.0, 403);
    assert_eq!(api.call("DELETE", &moderated, op, None).await.0, 200);
    assert_eq!(api.call("DELETE", &moderated, op, None).await.0, 409);
    let resolve = json!({"target": {"type": "message", "messageId": spam["_id"]}, "outcome": "actioned"});
    let (status, resolved) = api.call("POST", "/moderation/reports/resolve", op, Some(resolve)).await;
    assert_eq!((status, resolved), (200, json!({"resolved": 1})));
    let suspension = format!("/moderation/users/{}/suspension", carol.id);
    assert_eq!(api.call("PUT", &suspension, op, Some(json!({"reason": "contract"}))).await.0, 200);
    assert_eq!(api.call("GET", "/users/me", Some(&carol.token), None).await.0, 401);
    assert_eq!(api.call("DELETE", &suspension, Some(&alice.token), None).await.0, 403);
    assert_eq!(api.call("DELETE", &suspension, op, None).await.0, 200);
    assert_eq!(api.call("PUT", "/moderation/users/nobody-here/suspension", op, Some(json!({}))).await.0, 404);
    let (status, audit) = api.call("GET", "/moderation/audit?limit=100", op, None).await;
    assert_eq!(status, 200);
    let mine = audit["items"].as_array().unwrap().iter().filter(|e| e["operatorId"] == json!(operator.id)).count();
    assert_eq!(mine, 6, "every attempt is recorded, the refused ones too: {audit}");
    assert_eq!(api.call("GET", "/moderation/audit?month=May", op, None).await.0, 422);

    let deployed = template_routes();
    let missed: Vec<&String> = deployed.iter().filter(|r| !api.seen().contains(*r)).collect();
    assert!(missed.is_empty(), "routes this test did not exercise: {missed:?}");
}
