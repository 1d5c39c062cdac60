//! The table's stream, read as what happened: a record's keys say which kind of item changed (a message, a
//! reaction, a membership, a profile) and its old and new images what changed about it. This is where the item
//! layout is known, so the mapping to the events integrators receive (docs/events.md) lives next to it.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::keys;
use crate::model::{DELETED_ACCOUNT, Message};
use crate::ports::Published;

/// A DynamoDB stream event as Lambda delivers it (view type `NEW_AND_OLD_IMAGES`). Only what the mapping reads.
#[derive(Debug, Deserialize)]
pub struct StreamEvent {
    #[serde(rename = "Records", default)]
    pub records: Vec<StreamRecord>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamRecord {
    /// `INSERT`, `MODIFY` or `REMOVE`.
    pub event_name: String,
    pub dynamodb: StreamChange,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamChange {
    pub keys: Image,
    #[serde(default)]
    pub new_image: Option<Image>,
    #[serde(default)]
    pub old_image: Option<Image>,
    /// Increases with every change of the same partition key (a conversation's messages and reactions share one).
    pub sequence_number: String,
}

/// An item in DynamoDB's JSON form (`{"name": {"S": "…"}}`).
type Image = Map<String, Value>;

fn string<'a>(image: &'a Image, name: &str) -> Option<&'a str> {
    image.get(name)?.get("S")?.as_str()
}

fn number(image: &Image, name: &str) -> Option<u64> {
    image.get(name)?.get("N")?.as_str()?.parse().ok()
}

fn flag(image: &Image, name: &str) -> bool {
    image.get(name).and_then(|v| v.get("BOOL")).and_then(Value::as_bool).unwrap_or(false)
}

fn strings(image: &Image, name: &str) -> Vec<String> {
    let mut values: Vec<String> = image
        .get(name)
        .and_then(|v| v.get("SS"))
        .and_then(Value::as_array)
        .map(|values| values.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    values.sort();
    values
}

/// The events the records stand for, in the records' order; changes integrators are not told of (presence,
/// sessions, rate counters, a message's attachment being processed…) stand for none.
pub fn published(event: &StreamEvent) -> Vec<Published> {
    event.records.iter().filter_map(published_of).collect()
}

fn published_of(record: &StreamRecord) -> Option<Published> {
    let change = &record.dynamodb;
    let (pk, sk) = (string(&change.keys, "pk")?, string(&change.keys, "sk")?);
    let (new, old) = (change.new_image.as_ref(), change.old_image.as_ref());
    let (detail_type, mut detail) = match record.event_name.as_str() {
        "INSERT" if sk.starts_with(keys::MESSAGE_PREFIX) => ("message.sent", message_sent(new?)),
        "MODIFY" if sk.starts_with(keys::MESSAGE_PREFIX) => message_changed(old?, new?)?,
        "INSERT" if sk.starts_with(keys::REACTION_PREFIX) => ("reaction.added", reaction(pk, new?)?),
        "REMOVE" if sk.starts_with(keys::REACTION_PREFIX) => ("reaction.removed", reaction(pk, old?)?),
        "INSERT" if pk.starts_with(keys::USER_PREFIX) && sk.starts_with(keys::CONV_PREFIX) => {
            ("member.joined", membership(pk, new?)?)
        }
        "REMOVE" if pk.starts_with(keys::USER_PREFIX) && sk.starts_with(keys::CONV_PREFIX) => {
            ("member.left", membership(pk, old?)?)
        }
        "INSERT" if sk == keys::PROFILE => {
            let new = new?;
            ("account.created", json!({"userId": string(new, "userId")?, "username": string(new, "username")?}))
        }
        "MODIFY" if sk == keys::PROFILE && flag(new?, "deleted") && !flag(old?, "deleted") => {
            ("account.deleted", json!({"userId": string(new?, "userId")?, "deletedAt": string(new?, "deletedAt")}))
        }
        _ => return None,
    };
    detail["streamSequence"] = json!(change.sequence_number);
    Some(Published { detail_type, detail })
}

/// The messages the batch sends (inserts of message items), in the records' order: what the push worker
/// notifies offline members of. An image it cannot read is logged and skipped (it would fail every retry).
pub fn sent_messages(event: &StreamEvent) -> Vec<Message> {
    event
        .records
        .iter()
        .filter(|record| record.event_name == "INSERT")
        .filter(|record| string(&record.dynamodb.keys, "sk").is_some_and(|sk| sk.starts_with(keys::MESSAGE_PREFIX)))
        .filter_map(|record| {
            let item = attribute_values(record.dynamodb.new_image.as_ref()?)?;
            super::items::message_from_item(&item)
                .inspect_err(|e| tracing::error!(error = ?e, "unreadable message in the stream"))
                .ok()
        })
        .collect()
}

/// An image in DynamoDB's JSON form as the SDK's attribute values.
fn attribute_values(image: &Image) -> Option<super::Item> {
    image.iter().map(|(name, value)| Some((name.clone(), attribute_value(value)?))).collect()
}

fn attribute_value(value: &Value) -> Option<aws_sdk_dynamodb::types::AttributeValue> {
    use aws_sdk_dynamodb::types::AttributeValue as A;
    let (kind, inner) = value.as_object()?.iter().next()?;
    let texts = || inner.as_array().map(|v| v.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect());
    Some(match kind.as_str() {
        "S" => A::S(inner.as_str()?.to_owned()),
        "N" => A::N(inner.as_str()?.to_owned()),
        "BOOL" => A::Bool(inner.as_bool()?),
        "NULL" => A::Null(true),
        "SS" => A::Ss(texts()?),
        "NS" => A::Ns(texts()?),
        "L" => A::L(inner.as_array()?.iter().map(attribute_value).collect::<Option<_>>()?),
        "M" => A::M(attribute_values(inner.as_object()?)?),
        _ => return None,
    })
}

/// The fields every message event carries.
fn message_ref(image: &Image) -> Value {
    json!({
        "conversationId": string(image, "conversationId"),
        "messageId": string(image, "messageId"),
        "seq": number(image, "seq"),
        "senderId": string(image, "senderId"),
    })
}

fn message_sent(new: &Image) -> Value {
    let mut detail = message_ref(new);
    detail["type"] = json!(string(new, "type"));
    detail["content"] = json!(string(new, "content"));
    detail["mentions"] = json!(strings(new, "mentions"));
    detail["createdAt"] = json!(string(new, "createdAt"));
    detail
}

/// An edit, a deletion, or the erasure of a deleted account's message; other changes (an attachment processed)
/// are not events.
fn message_changed(old: &Image, new: &Image) -> Option<(&'static str, Value)> {
    let mut detail = message_ref(new);
    if string(new, "senderName") == Some(DELETED_ACCOUNT) && string(old, "senderName") != Some(DELETED_ACCOUNT) {
        return Some(("message.erased", detail));
    }
    if flag(new, "deleted") && !flag(old, "deleted") {
        detail["deletedAt"] = json!(string(new, "deletedAt"));
        return Some(("message.deleted", detail));
    }
    if string(new, "editedAt").is_some() && string(new, "editedAt") != string(old, "editedAt") {
        detail["content"] = json!(string(new, "content"));
        detail["editedAt"] = json!(string(new, "editedAt"));
        return Some(("message.edited", detail));
    }
    None
}

fn reaction(pk: &str, image: &Image) -> Option<Value> {
    let conversation_id = pk.strip_prefix(keys::CONV_PREFIX)?;
    let seq = number(image, "seq")?;
    Some(json!({
        "conversationId": conversation_id,
        "messageId": format!("{conversation_id}-{seq}"),
        "seq": seq,
        "userId": string(image, "userId")?,
        "emoji": string(image, "emoji")?,
    }))
}

fn membership(pk: &str, image: &Image) -> Option<Value> {
    Some(json!({"conversationId": string(image, "conversationId")?, "userId": pk.strip_prefix(keys::USER_PREFIX)?}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::DELETED_CONTENT;

    fn record(event_name: &str, pk: &str, sk: &str, old: Option<Value>, new: Option<Value>, seq: &str) -> Value {
        let mut change = json!({"Keys": {"pk": {"S": pk}, "sk": {"S": sk}}, "SequenceNumber": seq});
        if let Some(old) = old {
            change["OldImage"] = old;
        }
        if let Some(new) = new {
            change["NewImage"] = new;
        }
        json!({"eventName": event_name, "dynamodb": change})
    }

    fn message(seq: u64, extra: Value) -> Value {
        let mut item = json!({
            "messageId": {"S": format!("c1-{seq}")}, "conversationId": {"S": "c1"}, "seq": {"N": seq.to_string()},
            "senderId": {"S": "u1"}, "senderName": {"S": "alice"}, "content": {"S": "hi"}, "type": {"S": "text"},
            "createdAt": {"S": "2026-12-04T10:00:00.000Z"}, "edited": {"BOOL": false}, "deleted": {"BOOL": false},
        });
        item.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        item
    }

    fn events(records: Vec<Value>) -> Vec<(String, Value)> {
        let event: StreamEvent = serde_json::from_value(json!({"Records": records})).unwrap();
        published(&event).into_iter().map(|p| (p.detail_type.to_owned(), p.detail)).collect()
    }

    #[test]
    fn the_messages_a_batch_sends_are_read_whole_from_their_images() {
        let sk = keys::message(2);
        let attachment = json!({"fileName": {"S": "a.pdf"}, "mentions": {"SS": ["u3", "u2"]}, "content": {"S": ""}});
        let event: StreamEvent = serde_json::from_value(json!({"Records": [
            record("INSERT", "CONV#c1", &sk, None, Some(message(2, attachment)), "1"),
            record("MODIFY", "CONV#c1", &sk, Some(message(2, json!({}))), Some(message(2, json!({}))), "2"),
            record("INSERT", "CONV#c1", &keys::reaction(2, "👍", "u2"), None, Some(json!({})), "3"),
            record("INSERT", "CONV#c1", &keys::message(3), None, Some(json!({"seq": {"N": "3"}})), "4"),
        ]}))
        .unwrap();
        let sent = sent_messages(&event);
        assert_eq!(sent.len(), 1, "edits, reactions and unreadable images send nothing: {sent:?}");
        let message = &sent[0];
        assert_eq!((message.seq, message.sender.username.as_str()), (2, "alice"));
        assert_eq!(message.file_name.as_deref(), Some("a.pdf"));
        let mentions: Vec<String> = message.mentions.iter().map(ToString::to_string).collect();
        assert_eq!(mentions, ["u2", "u3"]);
    }

    #[test]
    fn each_kind_of_change_is_one_event_and_the_rest_are_none() {
        let sk = keys::message(1);
        let mentioned = json!({"mentions": {"SS": ["u3", "u2"]}});
        let edited = json!({"content": {"S": "hello"}, "edited": {"BOOL": true}, "editedAt": {"S": "t2"}});
        let deleted = json!({"content": {"S": DELETED_CONTENT}, "deleted": {"BOOL": true}, "deletedAt": {"S": "t3"}});
        let erased = json!({"deleted": {"BOOL": true}, "senderName": {"S": DELETED_ACCOUNT}});
        let reaction = json!({"seq": {"N": "1"}, "userId": {"S": "u2"}, "emoji": {"S": "👍"}});
        let member = json!({"conversationId": {"S": "c1"}});
        let profile = json!({"userId": {"S": "u9"}, "username": {"S": "zoe"}});
        let closed = json!({"userId": {"S": "u9"}, "username": {"S": DELETED_ACCOUNT}, "deleted": {"BOOL": true}, "deletedAt": {"S": "t9"}});
        let published = events(vec![
            record("INSERT", "CONV#c1", &sk, None, Some(message(1, mentioned)), "1"),
            record("MODIFY", "CONV#c1", &sk, Some(message(1, json!({}))), Some(message(1, edited.clone())), "2"),
            record("MODIFY", "CONV#c1", &sk, Some(message(1, edited.clone())), Some(message(1, deleted.clone())), "3"),
            record("MODIFY", "CONV#c1", &sk, Some(message(1, deleted)), Some(message(1, erased)), "4"),
            record("MODIFY", "CONV#c1", &sk, Some(message(1, edited.clone())), Some(message(1, edited)), "5"),
            record("INSERT", "CONV#c1", &keys::reaction(1, "👍", "u2"), None, Some(reaction.clone()), "6"),
            record("REMOVE", "CONV#c1", &keys::reaction(1, "👍", "u2"), Some(reaction), None, "7"),
            record("INSERT", "USER#u2", "CONV#c1", None, Some(member.clone()), "8"),
            record("REMOVE", "USER#u2", "CONV#c1", Some(member), None, "9"),
            record("INSERT", "USER#u9", keys::PROFILE, None, Some(profile.clone()), "10"),
            record("MODIFY", "USER#u9", keys::PROFILE, Some(profile), Some(closed), "11"),
            record("MODIFY", "USER#u9", keys::PRESENCE, Some(json!({})), Some(json!({})), "12"),
            record("INSERT", "CONV#c1", keys::META, None, Some(json!({})), "13"),
        ]);
        let kinds: Vec<&str> = published.iter().map(|(kind, _)| kind.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "message.sent",
                "message.edited",
                "message.deleted",
                "message.erased",
                "reaction.added",
                "reaction.removed",
                "member.joined",
                "member.left",
                "account.created",
                "account.deleted"
            ]
        );
        let sent = &published[0].1;
        assert_eq!(
            *sent,
            json!({"conversationId": "c1", "messageId": "c1-1", "seq": 1, "senderId": "u1", "type": "text",
                "content": "hi", "mentions": ["u2", "u3"], "createdAt": "2026-12-04T10:00:00.000Z", "streamSequence": "1"})
        );
        assert_eq!(published[1].1["content"], "hello");
        assert_eq!(
            published[4].1,
            json!({"conversationId": "c1", "messageId": "c1-1", "seq": 1, "userId": "u2", "emoji": "👍", "streamSequence": "6"})
        );
        assert_eq!(published[6].1, json!({"conversationId": "c1", "userId": "u2", "streamSequence": "8"}));
        assert_eq!(published[9].1["userId"], "u9");
    }
}
