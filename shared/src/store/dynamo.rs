//! The DynamoDB [`Store`](super::Store): one table, keys as listed in docs/data-model.md.
//!
//! Multi-item invariants (unique usernames, one private conversation per pair, gap-free `seq`, idempotent sends)
//! are enforced with conditional transactions, never with read-then-write races. No operation scans.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, KeysAndAttributes, Put, TransactWriteItem, Update};

use super::{Appended, ConnectionStore, ConversationStore, Created, MessageStore, UserStore, username_key};
use crate::error::{AppError, AppResult};
use crate::model::{
    Connection, Conversation, ConversationKind, Message, MessageKind, MessageStatus, NewMessage, Sender, User,
    UserRecord, now_epoch_seconds, now_iso,
};

pub(crate) type Item = HashMap<String, AttributeValue>;

/// Key builders: the only place that knows how entities map to `pk`/`sk`.
pub(crate) mod keys {
    pub fn user(user_id: &str) -> String {
        format!("USER#{user_id}")
    }
    pub const PROFILE: &str = "PROFILE";
    pub fn username(key: &str) -> String {
        format!("UNAME#{key}")
    }
    pub const UNAME: &str = "UNAME";
    /// Partition of the username search index, sharded by first character so no single key gets every user.
    pub fn username_shard(key: &str) -> String {
        format!("UNAME#{}", key.chars().next().unwrap_or('_'))
    }
    pub fn connection(connection_id: &str) -> String {
        format!("CONN#{connection_id}")
    }
    pub const CONN: &str = "CONN";
    pub const CONN_PREFIX: &str = "CONN#";
    pub fn conversation(conversation_id: &str) -> String {
        format!("CONV#{conversation_id}")
    }
    pub const META: &str = "META";
    pub fn pair(pair_key: &str) -> String {
        format!("PAIR#{pair_key}")
    }
    pub const PAIR: &str = "PAIR";
    /// Zero-padded so that string order is numeric order.
    pub fn message(seq: u64) -> String {
        format!("MSG#{seq:020}")
    }
    pub fn client_message(sender_id: &str, client_message_id: &str) -> String {
        format!("CMID#{sender_id}#{client_message_id}")
    }
}

/// How often `append_message` retries when another writer took the same `seq` first.
const APPEND_ATTEMPTS: u32 = 8;

pub struct DynamoDbStore {
    pub(crate) client: Client,
    pub(crate) table: String,
}

impl DynamoDbStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoDbStore { client, table: table.into() }
    }

    pub(crate) fn key(pk: String, sk: impl Into<String>) -> Item {
        HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
    }

    pub(crate) async fn get(&self, pk: String, sk: &str) -> AppResult<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(AppError::internal)?;
        Ok(out.item)
    }

    pub(crate) fn put(&self, item: Item, if_absent: bool) -> AppResult<TransactWriteItem> {
        let mut put = Put::builder().table_name(&self.table).set_item(Some(item));
        if if_absent {
            put = put.condition_expression("attribute_not_exists(pk)");
        }
        Ok(TransactWriteItem::builder().put(put.build().map_err(AppError::internal)?).build())
    }

    pub(crate) fn delete(&self, pk: String, sk: &str) -> AppResult<TransactWriteItem> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(pk, sk)))
            .build()
            .map_err(AppError::internal)?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    pub(crate) async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
    ) -> Result<(), SdkError<TransactWriteItemsError>> {
        self.client.transact_write_items().set_transact_items(Some(items)).send().await.map(|_| ())
    }

    /// Reads a message item by conversation and seq.
    pub(crate) async fn get_message(&self, conversation_id: &str, seq: u64) -> AppResult<Option<Message>> {
        self.get(keys::conversation(conversation_id), &keys::message(seq))
            .await?
            .map(|item| message_from_item(&item))
            .transpose()
    }
}

/// Cancellation reason codes of a cancelled transaction, one per item in request order; `None` otherwise.
pub(crate) fn cancellation_codes(err: &SdkError<TransactWriteItemsError>) -> Option<Vec<String>> {
    match err.as_service_error()? {
        TransactWriteItemsError::TransactionCanceledException(e) => {
            Some(e.cancellation_reasons().iter().map(|r| r.code().unwrap_or("None").to_owned()).collect())
        }
        _ => None,
    }
}

pub(crate) fn failed_condition(codes: &[String], index: usize) -> bool {
    codes.get(index).is_some_and(|c| c == "ConditionalCheckFailed")
}

/// Contention that is worth retrying: another writer won the condition, or a concurrent transaction held the item.
pub(crate) fn contended(codes: &[String], index: usize) -> bool {
    codes.get(index).is_some_and(|c| c == "ConditionalCheckFailed" || c == "TransactionConflict")
}

#[async_trait]
impl ConnectionStore for DynamoDbStore {
    async fn put_connection(&self, c: &Connection) -> AppResult<()> {
        let ttl = n(c.expires_at);
        let mut by_id = Self::key(keys::connection(&c.connection_id), keys::CONN);
        by_id.insert("userId".into(), s(&c.user_id));
        by_id.insert("username".into(), s(&c.username));
        if let Some(avatar) = &c.avatar {
            by_id.insert("avatar".into(), s(avatar));
        }
        by_id.insert("connectedAt".into(), s(&c.connected_at));
        by_id.insert("ttl".into(), ttl.clone());
        let mut by_user = Self::key(keys::user(&c.user_id), keys::connection(&c.connection_id));
        by_user.insert("connectionId".into(), s(&c.connection_id));
        by_user.insert("ttl".into(), ttl);
        self.transact(vec![self.put(by_id, false)?, self.put(by_user, false)?]).await.map_err(AppError::internal)
    }

    async fn get_connection(&self, connection_id: &str) -> AppResult<Option<Connection>> {
        let Some(item) = self.get(keys::connection(connection_id), keys::CONN).await? else {
            return Ok(None);
        };
        let connection = Connection {
            connection_id: connection_id.to_owned(),
            user_id: get_s(&item, "userId")?,
            username: get_s(&item, "username")?,
            avatar: get_opt_s(&item, "avatar"),
            connected_at: get_s(&item, "connectedAt")?,
            expires_at: get_n(&item, "ttl")?,
        };
        // TTL deletion can lag by days; an expired record is a dead connection.
        Ok((connection.expires_at > now_epoch_seconds()).then_some(connection))
    }

    async fn delete_connection(&self, connection_id: &str, user_id: &str) -> AppResult<()> {
        let items = vec![
            self.delete(keys::connection(connection_id), keys::CONN)?,
            self.delete(keys::user(user_id), &keys::connection(connection_id))?,
        ];
        self.transact(items).await.map_err(AppError::internal)
    }

    async fn connection_ids_of_user(&self, user_id: &str) -> AppResult<Vec<String>> {
        let mut ids = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .filter_expression("#ttl > :now")
                .expression_attribute_names("#ttl", "ttl")
                .expression_attribute_values(":pk", s(keys::user(user_id)))
                .expression_attribute_values(":prefix", s(keys::CONN_PREFIX))
                .expression_attribute_values(":now", n(now_epoch_seconds()))
                .projection_expression("connectionId")
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(AppError::internal)?;
            for item in out.items.unwrap_or_default() {
                ids.push(get_s(&item, "connectionId")?);
            }
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(ids),
            }
        }
    }
}

pub(crate) fn user_from_item(item: &Item) -> AppResult<User> {
    Ok(User {
        id: get_s(item, "userId")?,
        username: get_s(item, "username")?,
        avatar: get_opt_s(item, "avatar"),
        created_at: get_s(item, "createdAt")?,
    })
}

#[async_trait]
impl UserStore for DynamoDbStore {
    async fn create_user(&self, record: &UserRecord) -> AppResult<()> {
        let user = &record.user;
        let name_key = username_key(&user.username);
        let mut profile = Self::key(keys::user(&user.id), keys::PROFILE);
        profile.insert("userId".into(), s(&user.id));
        profile.insert("username".into(), s(&user.username));
        if let Some(avatar) = &user.avatar {
            profile.insert("avatar".into(), s(avatar));
        }
        profile.insert("createdAt".into(), s(&user.created_at));
        profile.insert("passwordHash".into(), s(&record.password_hash));
        profile.insert("gsi1pk".into(), s(keys::username_shard(&name_key)));
        profile.insert("gsi1sk".into(), s(&name_key));
        let mut claim = Self::key(keys::username(&name_key), keys::UNAME);
        claim.insert("userId".into(), s(&user.id));
        match self.transact(vec![self.put(claim, true)?, self.put(profile, true)?]).await {
            Ok(()) => Ok(()),
            Err(e) if cancellation_codes(&e).is_some_and(|c| failed_condition(&c, 0)) => {
                Err(AppError::Conflict("username is already taken"))
            }
            Err(e) => Err(AppError::internal(e)),
        }
    }

    async fn get_user(&self, user_id: &str) -> AppResult<Option<User>> {
        self.get(keys::user(user_id), keys::PROFILE).await?.map(|item| user_from_item(&item)).transpose()
    }

    async fn get_users(&self, user_ids: &[String]) -> AppResult<Vec<User>> {
        let mut ids: Vec<&String> = user_ids.iter().collect();
        ids.sort();
        ids.dedup();
        let mut users = Vec::with_capacity(ids.len());
        // BatchGetItem takes at most 100 keys per call.
        for chunk in ids.chunks(100) {
            let keys: Vec<Item> = chunk.iter().map(|id| Self::key(keys::user(id), keys::PROFILE)).collect();
            let mut request = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(keys))
                    .consistent_read(true)
                    .projection_expression("userId, username, avatar, createdAt")
                    .build()
                    .map_err(AppError::internal)?,
            );
            let mut attempt = 0u32;
            while let Some(req) = request.take() {
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, req)
                    .send()
                    .await
                    .map_err(AppError::internal)?;
                for item in out.responses.unwrap_or_default().remove(&self.table).unwrap_or_default() {
                    users.push(user_from_item(&item)?);
                }
                request = out.unprocessed_keys.and_then(|mut u| u.remove(&self.table)).filter(|k| !k.keys.is_empty());
                if request.is_some() {
                    attempt += 1;
                    if attempt > 5 {
                        return Err(AppError::internal("BatchGetItem kept returning unprocessed keys"));
                    }
                    tokio::time::sleep(backoff(attempt)).await;
                }
            }
        }
        Ok(users)
    }

    async fn find_by_username(&self, username: &str) -> AppResult<Option<UserRecord>> {
        let Some(claim) = self.get(keys::username(&username_key(username)), keys::UNAME).await? else {
            return Ok(None);
        };
        let user_id = get_s(&claim, "userId")?;
        let Some(item) = self.get(keys::user(&user_id), keys::PROFILE).await? else {
            return Ok(None);
        };
        Ok(Some(UserRecord { user: user_from_item(&item)?, password_hash: get_s(&item, "passwordHash")? }))
    }
}

pub(crate) fn conversation_from_item(item: &Item) -> AppResult<Conversation> {
    let kind = match get_s(item, "type")?.as_str() {
        "private" => ConversationKind::Private,
        "group" => ConversationKind::Group,
        other => {
            return Err(AppError::internal(format!("stored conversation has unknown type {other:?}")));
        }
    };
    let last_message = get_opt_s(item, "lastMessage")
        .map(|json| serde_json::from_str::<Message>(&json).map_err(AppError::internal))
        .transpose()?;
    Ok(Conversation {
        id: get_s(item, "conversationId")?,
        kind,
        name: get_opt_s(item, "name"),
        avatar: get_opt_s(item, "avatar"),
        member_ids: match item.get("members") {
            Some(AttributeValue::Ss(ids)) => ids.iter().cloned().collect(),
            _ => Default::default(),
        },
        created_by: get_s(item, "createdBy")?,
        created_at: get_s(item, "createdAt")?,
        updated_at: get_s(item, "updatedAt")?,
        last_seq: get_n(item, "lastSeq")?,
        last_message,
    })
}

#[async_trait]
impl ConversationStore for DynamoDbStore {
    async fn create_conversation(&self, c: &Conversation) -> AppResult<Created<Conversation>> {
        let kind = match c.kind {
            ConversationKind::Private => "private",
            ConversationKind::Group => "group",
        };
        let mut meta = Self::key(keys::conversation(&c.id), keys::META);
        meta.insert("conversationId".into(), s(&c.id));
        meta.insert("type".into(), s(kind));
        if let Some(name) = &c.name {
            meta.insert("name".into(), s(name));
        }
        if let Some(avatar) = &c.avatar {
            meta.insert("avatar".into(), s(avatar));
        }
        meta.insert("members".into(), AttributeValue::Ss(c.member_ids.iter().cloned().collect()));
        meta.insert("createdBy".into(), s(&c.created_by));
        meta.insert("createdAt".into(), s(&c.created_at));
        meta.insert("updatedAt".into(), s(&c.updated_at));
        meta.insert("lastSeq".into(), n(c.last_seq));

        let pair_key = c.private_pair_key();
        let mut items = Vec::with_capacity(c.member_ids.len() + 2);
        if let Some(pair) = &pair_key {
            let mut claim = Self::key(keys::pair(pair), keys::PAIR);
            claim.insert("conversationId".into(), s(&c.id));
            items.push(self.put(claim, true)?);
        }
        items.push(self.put(meta, true)?);
        for member in &c.member_ids {
            let mut membership = Self::key(keys::user(member), keys::conversation(&c.id));
            membership.insert("conversationId".into(), s(&c.id));
            membership.insert("joinedAt".into(), s(&c.created_at));
            membership.insert("lastReadSeq".into(), n(0));
            items.push(self.put(membership, false)?);
        }
        match self.transact(items).await {
            Ok(()) => Ok(Created::New(c.clone())),
            Err(e) if pair_key.is_some() && cancellation_codes(&e).is_some_and(|codes| failed_condition(&codes, 0)) => {
                let pair = pair_key.expect("checked");
                let claim = self
                    .get(keys::pair(&pair), keys::PAIR)
                    .await?
                    .ok_or_else(|| AppError::internal("pair claim vanished after a failed condition"))?;
                let existing = self
                    .get_conversation(&get_s(&claim, "conversationId")?)
                    .await?
                    .ok_or_else(|| AppError::internal("pair claim points at a missing conversation"))?;
                Ok(Created::Existing(existing))
            }
            Err(e) => Err(AppError::internal(e)),
        }
    }

    async fn get_conversation(&self, conversation_id: &str) -> AppResult<Option<Conversation>> {
        self.get(keys::conversation(conversation_id), keys::META)
            .await?
            .map(|item| conversation_from_item(&item))
            .transpose()
    }
}

pub(crate) fn message_to_item(m: &Message) -> Item {
    let mut item = DynamoDbStore::key(keys::conversation(&m.conversation_id), keys::message(m.seq));
    item.insert("messageId".into(), s(&m.id));
    item.insert("conversationId".into(), s(&m.conversation_id));
    item.insert("seq".into(), n(m.seq));
    item.insert("senderId".into(), s(&m.sender.id));
    item.insert("senderName".into(), s(&m.sender.username));
    if let Some(avatar) = &m.sender.avatar {
        item.insert("senderAvatar".into(), s(avatar));
    }
    item.insert("content".into(), s(&m.content));
    item.insert("type".into(), s(kind_str(m.kind)));
    if let Some(url) = &m.file_url {
        item.insert("fileUrl".into(), s(url));
    }
    if let Some(name) = &m.file_name {
        item.insert("fileName".into(), s(name));
    }
    item.insert("createdAt".into(), s(&m.created_at));
    item.insert("edited".into(), AttributeValue::Bool(m.edited));
    item.insert("deleted".into(), AttributeValue::Bool(m.deleted));
    if let Some(at) = &m.edited_at {
        item.insert("editedAt".into(), s(at));
    }
    if let Some(at) = &m.deleted_at {
        item.insert("deletedAt".into(), s(at));
    }
    if let Some(cmid) = &m.client_message_id {
        item.insert("clientMessageId".into(), s(cmid));
    }
    item
}

pub(crate) fn kind_str(kind: MessageKind) -> &'static str {
    match kind {
        MessageKind::Text => "text",
        MessageKind::Image => "image",
        MessageKind::File => "file",
    }
}

pub(crate) fn message_from_item(item: &Item) -> AppResult<Message> {
    let kind = match get_s(item, "type")?.as_str() {
        "text" => MessageKind::Text,
        "image" => MessageKind::Image,
        "file" => MessageKind::File,
        other => {
            return Err(AppError::internal(format!("stored message has unknown type {other:?}")));
        }
    };
    Ok(Message {
        id: get_s(item, "messageId")?,
        conversation_id: get_s(item, "conversationId")?,
        seq: get_n(item, "seq")?,
        sender: Sender {
            id: get_s(item, "senderId")?,
            username: get_s(item, "senderName")?,
            avatar: get_opt_s(item, "senderAvatar"),
        },
        content: get_s(item, "content")?,
        kind,
        file_url: get_opt_s(item, "fileUrl"),
        file_name: get_opt_s(item, "fileName"),
        status: MessageStatus::Sent,
        created_at: get_s(item, "createdAt")?,
        edited: get_bool(item, "edited"),
        edited_at: get_opt_s(item, "editedAt"),
        deleted: get_bool(item, "deleted"),
        deleted_at: get_opt_s(item, "deletedAt"),
        client_message_id: get_opt_s(item, "clientMessageId"),
        reactions: Default::default(),
    })
}

#[async_trait]
impl MessageStore for DynamoDbStore {
    async fn append_message(&self, new: NewMessage) -> AppResult<Created<Appended>> {
        for attempt in 0..APPEND_ATTEMPTS {
            let conversation = self
                .get_conversation(&new.conversation_id)
                .await?
                .filter(|c| c.is_member(&new.sender.id))
                .ok_or(AppError::NotFound("conversation not found"))?;
            let member_ids: Vec<String> = conversation.member_ids.iter().cloned().collect();
            let seq = conversation.last_seq + 1;
            let message = new.clone().into_message(seq, now_iso());
            let last_message = serde_json::to_string(&message).map_err(AppError::internal)?;

            // Item 0 takes the next seq only if nobody else did and the sender is still a member; item 2 claims
            // the client's idempotency key. Either failing cancels the whole write.
            let advance = Update::builder()
                .table_name(&self.table)
                .set_key(Some(Self::key(keys::conversation(&new.conversation_id), keys::META)))
                .update_expression("SET lastSeq = :seq, updatedAt = :now, lastMessage = :last")
                .condition_expression("lastSeq = :prev AND contains(members, :sender)")
                .expression_attribute_values(":seq", n(seq))
                .expression_attribute_values(":prev", n(conversation.last_seq))
                .expression_attribute_values(":now", s(&message.created_at))
                .expression_attribute_values(":last", s(last_message))
                .expression_attribute_values(":sender", s(&new.sender.id))
                .build()
                .map_err(AppError::internal)?;
            let mut items =
                vec![TransactWriteItem::builder().update(advance).build(), self.put(message_to_item(&message), true)?];
            if let Some(cmid) = &new.client_message_id {
                let mut claim =
                    Self::key(keys::conversation(&new.conversation_id), keys::client_message(&new.sender.id, cmid));
                claim.insert("seq".into(), n(seq));
                items.push(self.put(claim, true)?);
            }
            // Whoever sends has read everything up to their own message.
            let sender_read = Update::builder()
                .table_name(&self.table)
                .set_key(Some(Self::key(keys::user(&new.sender.id), keys::conversation(&new.conversation_id))))
                .update_expression("SET lastReadSeq = :seq")
                .condition_expression("attribute_exists(pk)")
                .expression_attribute_values(":seq", n(seq))
                .build()
                .map_err(AppError::internal)?;
            items.push(TransactWriteItem::builder().update(sender_read).build());

            match self.transact(items).await {
                Ok(()) => {
                    return Ok(Created::New(Appended { message, member_ids }));
                }
                Err(e) => {
                    let Some(codes) = cancellation_codes(&e) else {
                        return Err(AppError::internal(e));
                    };
                    if new.client_message_id.is_some() && failed_condition(&codes, 2) {
                        let cmid = new.client_message_id.as_deref().expect("item 2 exists only with a client id");
                        let claim = self
                            .get(keys::conversation(&new.conversation_id), &keys::client_message(&new.sender.id, cmid))
                            .await?
                            .ok_or_else(|| AppError::internal("client message claim vanished"))?;
                        let original = self
                            .get_message(&new.conversation_id, get_n(&claim, "seq")?)
                            .await?
                            .ok_or_else(|| AppError::internal("client message claim points at a missing message"))?;
                        return Ok(Created::Existing(Appended { message: original, member_ids }));
                    }
                    if !(contended(&codes, 0) || contended(&codes, 1)) {
                        return Err(AppError::internal(e));
                    }
                    tracing::debug!(attempt, conversation_id = %new.conversation_id, "seq contention, retrying");
                    tokio::time::sleep(backoff(attempt + 1)).await;
                }
            }
        }
        // Only a conversation receiving far more messages per second than a person types gets here.
        Err(AppError::RateLimited)
    }
}

/// Exponential backoff with full jitter: 10 ms, 20 ms, 40 ms… capped at 500 ms.
pub(crate) fn backoff(attempt: u32) -> Duration {
    let cap = 10u64.saturating_mul(1 << attempt.min(6)).min(500);
    let jitter = uuid::Uuid::new_v4().as_u128() as u64 % (cap + 1);
    Duration::from_millis(jitter.max(1))
}

pub(crate) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(crate) fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub(crate) fn get_s(item: &Item, name: &str) -> AppResult<String> {
    get_opt_s(item, name).ok_or_else(|| AppError::internal(format!("stored item lacks string attribute {name}")))
}

pub(crate) fn get_opt_s(item: &Item, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v.clone()),
        _ => None,
    }
}

pub(crate) fn get_n(item: &Item, name: &str) -> AppResult<u64> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().map_err(AppError::internal),
        _ => Err(AppError::internal(format!("stored item lacks number attribute {name}"))),
    }
}

pub(crate) fn get_bool(item: &Item, name: &str) -> bool {
    matches!(item.get(name), Some(AttributeValue::Bool(true)))
}
