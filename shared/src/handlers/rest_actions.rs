//! REST twins of the WebSocket message and friend actions (seed 002's edit/delete/read routes, and friends).
//! They call the same use cases, so they store the same data and push the same live events.

use lambda_http::http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::rest::{HttpRequest, Reply, body, to_json};
use crate::auth::Identity;
use crate::error::{AppError, AppResult};
use crate::messaging::ReadTarget;
use crate::model::{Sender, User, parse_message_id};
use crate::protocol::UsernameRef;
use crate::service::Services;

/// Whether `(method, path)` is one of these routes (checked before authentication, so unknown paths stay 404).
pub(super) fn handles(method: &Method, segments: &[&str]) -> bool {
    matches!(
        (method, segments),
        (&Method::PUT | &Method::DELETE, ["conversations", _, "messages", _])
            | (&Method::POST, ["conversations", _, "read"])
            | (&Method::GET, ["friends"])
            | (&Method::DELETE, ["friends", _])
            | (&Method::GET | &Method::POST, ["friend-requests"])
            | (&Method::DELETE, ["friend-requests", _])
            | (&Method::POST, ["friend-requests", _, "accept" | "reject"])
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EditBody {
    new_content: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReadBody {
    last_message_id: Option<String>,
    message_ids: Option<Vec<String>>,
}

/// A message id from the path, which must belong to the conversation in the path.
fn message_in(conversation_id: &str, message_id: &str) -> AppResult<()> {
    match parse_message_id(message_id) {
        Some((cid, _)) if cid == conversation_id => Ok(()),
        _ => Err(AppError::NotFound("message not found")),
    }
}

pub(super) async fn route(
    services: &Services,
    me: &User,
    request: &HttpRequest,
    segments: &[&str],
) -> AppResult<Reply> {
    let identity = Identity { user_id: me.id.clone(), username: me.username.clone() };
    let sender = Sender { id: me.id.clone(), username: me.username.clone(), avatar: me.avatar.clone() };
    match (&request.method, segments) {
        (&Method::PUT, ["conversations", cid, "messages", mid]) => {
            message_in(cid, mid)?;
            let input: EditBody = body(request)?;
            let message = services.edit_message(&identity, mid, &input.new_content, None).await?;
            Ok((StatusCode::OK, to_json(&message)?))
        }
        (&Method::DELETE, ["conversations", cid, "messages", mid]) => {
            message_in(cid, mid)?;
            let message = services.delete_message(&identity, mid, None).await?;
            Ok((StatusCode::OK, to_json(&message)?))
        }
        (&Method::POST, ["conversations", cid, "read"]) => {
            let input: ReadBody = body(request)?;
            let target = match (input.message_ids, input.last_message_id) {
                (Some(ids), None) => ReadTarget::Ids(ids),
                (None, Some(last)) => ReadTarget::UpTo(last),
                _ => return Err(AppError::Validation("give either lastMessageId or messageIds".into())),
            };
            Ok((StatusCode::OK, to_json(&services.mark_read(&identity, cid, target, None).await?)?))
        }
        (&Method::GET, ["friends"]) => Ok((StatusCode::OK, json!({ "items": services.friends(&me.id).await? }))),
        (&Method::GET, ["friend-requests"]) => Ok((StatusCode::OK, to_json(&services.friend_requests(&me.id).await?)?)),
        (&Method::POST, ["friend-requests"]) => {
            let input: UsernameRef = body(request)?;
            let outcome = services.send_friend_request(&sender, &input.username, None).await?;
            let status = if outcome.result == "requested" { StatusCode::CREATED } else { StatusCode::OK };
            Ok((status, to_json(&outcome)?))
        }
        (&Method::DELETE, ["friend-requests", username]) => {
            Ok((StatusCode::OK, to_json(&services.cancel_friend_request(&sender, username).await?)?))
        }
        (&Method::POST, ["friend-requests", username, "accept"]) => {
            Ok((StatusCode::OK, to_json(&services.accept_friend_request(&sender, username, None).await?)?))
        }
        (&Method::POST, ["friend-requests", username, "reject"]) => {
            Ok((StatusCode::OK, to_json(&services.reject_friend_request(&sender, username).await?)?))
        }
        (&Method::DELETE, ["friends", username]) => {
            Ok((StatusCode::OK, to_json(&services.unfriend(&sender, username, None).await?)?))
        }
        _ => Err(AppError::NotFound("no such route")),
    }
}
