//! The DynamoDB [`Store`](super::Store): one table, keys as listed in docs/data-model.md.
//!
//! Multi-item invariants (unique usernames, one private conversation per pair, gap-free `seq`, idempotent sends)
//! are enforced with conditional transactions, never with read-then-write races. No operation scans.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, DeleteRequest, KeysAndAttributes, Put, ReturnValue, TransactWriteItem,
    Update, WriteRequest,
};

use super::{
    Appended, ConnectionStore, ConversationStore, Created, MessageStore, PendingRequest, Relation, RoomStore,
    SocialStore, UserGraph, UserStore, username_key,
};
use crate::error::{AppError, AppResult};
use crate::model::{
    Connection, Conversation, ConversationKind, DELETED_CONTENT, Message, MessageKind, MessageStatus, NewMessage,
    Sender, User, UserRecord, now_epoch_seconds, now_iso,
};
use crate::model::{LiveConnection, Presence};

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
    /// A user's presence: live connections, chosen status, last seen.
    pub const PRESENCE: &str = "PRESENCE";
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
    /// Reactions sort by message, so the reactions of a page of messages are one range.
    pub fn reaction(seq: u64, emoji: &str, user_id: &str) -> String {
        format!("RX#{seq:020}#{emoji}#{user_id}")
    }
    pub fn joined(connection_id: &str) -> String {
        format!("JOIN#{connection_id}")
    }
    pub const JOIN_PREFIX: &str = "JOIN#";
    pub fn typing(user_id: &str) -> String {
        format!("TYPING#{user_id}")
    }
    pub fn friend(other_id: &str) -> String {
        format!("FRIEND#{other_id}")
    }
    pub fn request_out(to: &str) -> String {
        format!("FREQ#OUT#{to}")
    }
    pub fn request_in(from: &str) -> String {
        format!("FREQ#IN#{from}")
    }
    /// Bounds of the range of a user's partition holding memberships, requests and friends
    /// (`CONV#` < `FREQ#` < `FRIEND#` < `FRIEND$`), which excludes the profile and the presence.
    pub const GRAPH_START: &str = "CONV#";
    pub const GRAPH_END: &str = "FRIEND$";
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

    /// `BatchGetItem` over any number of keys (100 per call), retrying unprocessed keys. Strongly consistent.
    pub(crate) async fn batch_get(&self, keys: Vec<Item>, projection: Option<&str>) -> AppResult<Vec<Item>> {
        let mut items = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(100) {
            let mut request = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(chunk.to_vec()))
                    .consistent_read(true)
                    .set_projection_expression(projection.map(str::to_owned))
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
                items.extend(out.responses.unwrap_or_default().remove(&self.table).unwrap_or_default());
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
        Ok(items)
    }

    /// Runs `query` from `start` to the end, or until `limit` items, following `LastEvaluatedKey` (DynamoDB
    /// stops each response at 1 MB).
    pub(crate) async fn query_all(
        &self,
        query: QueryFluentBuilder,
        mut start: Option<Item>,
        limit: Option<usize>,
    ) -> AppResult<Vec<Item>> {
        let mut items = Vec::new();
        loop {
            let mut request = query.clone().table_name(&self.table).set_exclusive_start_key(start.take());
            if let Some(limit) = limit {
                let remaining = limit.saturating_sub(items.len());
                request = request.limit(i32::try_from(remaining).unwrap_or(i32::MAX));
            }
            let out = request.send().await.map_err(AppError::internal)?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() && limit.is_none_or(|l| items.len() < l) => start = Some(key),
                _ => return Ok(items),
            }
        }
    }

    /// Live (not yet expired) items of a partition whose sort key starts with `prefix`.
    async fn live_items(&self, pk: String, prefix: &str) -> AppResult<Vec<Item>> {
        let query = self
            .client
            .query()
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .filter_expression("#ttl > :now")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":pk", s(pk))
            .expression_attribute_values(":prefix", s(prefix))
            .expression_attribute_values(":now", n(now_epoch_seconds()))
            .consistent_read(true);
        self.query_all(query, None, None).await
    }

    /// `BatchWriteItem` deletes (25 per call), retrying unprocessed items.
    pub(crate) async fn batch_delete(&self, keys: Vec<Item>) -> AppResult<()> {
        for chunk in keys.chunks(25) {
            let mut requests: Vec<WriteRequest> = chunk
                .iter()
                .map(|key| {
                    let delete =
                        DeleteRequest::builder().set_key(Some(key.clone())).build().map_err(AppError::internal)?;
                    Ok(WriteRequest::builder().delete_request(delete).build())
                })
                .collect::<AppResult<_>>()?;
            let mut attempt = 0u32;
            while !requests.is_empty() {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, requests)
                    .send()
                    .await
                    .map_err(AppError::internal)?;
                requests = out.unprocessed_items.and_then(|mut u| u.remove(&self.table)).unwrap_or_default();
                if !requests.is_empty() {
                    attempt += 1;
                    if attempt > 5 {
                        return Err(AppError::internal("BatchWriteItem kept returning unprocessed items"));
                    }
                    tokio::time::sleep(backoff(attempt)).await;
                }
            }
        }
        Ok(())
    }

    fn condition_check(&self, pk: String, sk: &str, condition: &str) -> AppResult<TransactWriteItem> {
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(pk, sk)))
            .condition_expression(condition)
            .build()
            .map_err(AppError::internal)?;
        Ok(TransactWriteItem::builder().condition_check(check).build())
    }

    fn delete_if_exists(&self, pk: String, sk: &str) -> AppResult<TransactWriteItem> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(pk, sk)))
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(AppError::internal)?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    /// Runs a conditional transaction; `false` when a condition failed or another transaction held an item,
    /// i.e. when the caller should re-read and decide again.
    pub(crate) async fn transact_unless_raced(&self, items: Vec<TransactWriteItem>) -> AppResult<bool> {
        match self.transact(items).await {
            Ok(()) => Ok(true),
            Err(e) => match cancellation_codes(&e) {
                Some(codes) if codes.iter().any(|c| c == "ConditionalCheckFailed" || c == "TransactionConflict") => {
                    Ok(false)
                }
                _ => Err(AppError::internal(e)),
            },
        }
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

/// A connection's entry in its user's `conns` string set: `<connectionId> <connectedAt> <expiresAt>`. The entry
/// carries what fan-out needs (where to post, whether a 410 can be trusted, whether it expired), so
/// fan-out reads nothing but the set.
fn connection_entry(c: &LiveConnection) -> String {
    format!("{} {} {}", c.connection_id, c.connected_at, c.expires_at)
}

fn parse_connection_entry(entry: &str) -> Option<LiveConnection> {
    let mut parts = entry.split(' ');
    let connection = LiveConnection {
        connection_id: parts.next()?.to_owned(),
        connected_at: parts.next()?.parse().ok()?,
        expires_at: parts.next()?.parse().ok()?,
    };
    parts.next().is_none().then_some(connection)
}

/// The presence in an item, and the entries that expired (whose `$disconnect` never came).
fn presence_from_item(item: &Item) -> (Presence, Vec<String>) {
    let now = now_epoch_seconds();
    let mut presence = Presence {
        connections: Vec::new(),
        status: get_opt_s(item, "userStatus"),
        last_seen: get_opt_s(item, "lastSeen"),
    };
    let mut expired = Vec::new();
    if let Some(AttributeValue::Ss(entries)) = item.get("conns") {
        for entry in entries {
            match parse_connection_entry(entry) {
                Some(c) if c.expires_at > now => presence.connections.push(c),
                _ => expired.push(entry.clone()),
            }
        }
    }
    (presence, expired)
}

impl DynamoDbStore {
    /// Applies `update` to the user's presence item (creating it) and returns the item as it is afterwards.
    async fn update_presence(
        &self,
        user_id: &str,
        update: &str,
        values: Vec<(&str, AttributeValue)>,
    ) -> AppResult<(Presence, Vec<String>)> {
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(keys::user(user_id), keys::PRESENCE)))
            .update_expression(update)
            .return_values(ReturnValue::AllNew);
        for (name, value) in values {
            request = request.expression_attribute_values(name, value);
        }
        let out = request.send().await.map_err(AppError::internal)?;
        Ok(presence_from_item(&out.attributes.unwrap_or_default()))
    }

    async fn remove_entries(&self, user_id: &str, entries: Vec<String>) -> AppResult<()> {
        self.update_presence(user_id, "DELETE conns :gone", vec![(":gone", AttributeValue::Ss(entries))]).await?;
        Ok(())
    }
}

#[async_trait]
impl ConnectionStore for DynamoDbStore {
    async fn add_connection(&self, c: &Connection) -> AppResult<Presence> {
        let mut record = Self::key(keys::connection(&c.connection_id), keys::CONN);
        record.insert("userId".into(), s(&c.user_id));
        record.insert("username".into(), s(&c.username));
        if let Some(avatar) = &c.avatar {
            record.insert("avatar".into(), s(avatar));
        }
        record.insert("connectedAt".into(), n(c.connected_at));
        record.insert("ttl".into(), n(c.expires_at));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(record))
            .send()
            .await
            .map_err(AppError::internal)?;
        let entry = AttributeValue::Ss(vec![connection_entry(&c.live())]);
        let (presence, _) = self.update_presence(&c.user_id, "ADD conns :c", vec![(":c", entry)]).await?;
        Ok(presence)
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
            connected_at: get_n(&item, "connectedAt")?,
            expires_at: get_n(&item, "ttl")?,
        };
        // TTL deletion can lag by days; an expired record is a dead connection.
        Ok((connection.expires_at > now_epoch_seconds()).then_some(connection))
    }

    async fn remove_connection(&self, c: &Connection, last_seen: &str) -> AppResult<Presence> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(keys::connection(&c.connection_id), keys::CONN)))
            .send()
            .await
            .map_err(AppError::internal)?;
        let (presence, expired) = self
            .update_presence(
                &c.user_id,
                "DELETE conns :c SET lastSeen = :at",
                vec![(":c", AttributeValue::Ss(vec![connection_entry(&c.live())])), (":at", s(last_seen))],
            )
            .await?;
        if !expired.is_empty() {
            // Connections whose `$disconnect` never came; tidying them is not this request's business to fail.
            if let Err(e) = self.remove_entries(&c.user_id, expired).await {
                e.log();
            }
        }
        Ok(presence)
    }

    async fn drop_gone_connection(&self, user_id: &str, connection: &LiveConnection) -> AppResult<()> {
        self.remove_entries(user_id, vec![connection_entry(connection)]).await
    }

    async fn presence(&self, user_id: &str) -> AppResult<Presence> {
        let item = self.get(keys::user(user_id), keys::PRESENCE).await?.unwrap_or_default();
        Ok(presence_from_item(&item).0)
    }

    async fn presences(&self, user_ids: &[String]) -> AppResult<HashMap<String, Presence>> {
        let ids: std::collections::BTreeSet<&String> = user_ids.iter().collect();
        let keys = ids.iter().map(|id| Self::key(keys::user(id), keys::PRESENCE)).collect();
        let mut found: HashMap<String, Presence> =
            ids.into_iter().map(|id| (id.clone(), Presence::default())).collect();
        for item in self.batch_get(keys, Some("pk, conns, userStatus, lastSeen")).await? {
            let pk = get_s(&item, "pk")?;
            if let Some(user_id) = pk.strip_prefix("USER#") {
                found.insert(user_id.to_owned(), presence_from_item(&item).0);
            }
        }
        Ok(found)
    }

    async fn set_status(&self, user_id: &str, status: &str) -> AppResult<()> {
        self.update_presence(user_id, "SET userStatus = :s", vec![(":s", s(status))]).await.map(drop)
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
        let ids: std::collections::BTreeSet<&String> = user_ids.iter().collect();
        let keys = ids.into_iter().map(|id| Self::key(keys::user(id), keys::PROFILE)).collect();
        let items = self.batch_get(keys, Some("userId, username, avatar, createdAt")).await?;
        items.iter().map(user_from_item).collect()
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
                    // Another writer took this seq, or held one of the items (the sender's read pointer included).
                    let raced = contended(&codes, 0)
                        || contended(&codes, 1)
                        || codes.iter().any(|code| code == "TransactionConflict");
                    if !raced {
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

    async fn get_message(&self, conversation_id: &str, seq: u64) -> AppResult<Option<Message>> {
        self.get(keys::conversation(conversation_id), &keys::message(seq))
            .await?
            .map(|item| message_from_item(&item))
            .transpose()
    }

    async fn edit_message(
        &self,
        conversation_id: &str,
        seq: u64,
        editor_id: &str,
        content: &str,
        at: &str,
    ) -> AppResult<Message> {
        self.change_message(
            conversation_id,
            seq,
            editor_id,
            "SET content = :content, edited = :true, editedAt = :at",
            &[(":content", s(content)), (":at", s(at))],
        )
        .await
    }

    async fn delete_message(&self, conversation_id: &str, seq: u64, user_id: &str, at: &str) -> AppResult<Message> {
        self.change_message(
            conversation_id,
            seq,
            user_id,
            "SET content = :content, deleted = :true, deletedAt = :at REMOVE fileUrl, fileName",
            &[(":content", s(DELETED_CONTENT)), (":at", s(at))],
        )
        .await
    }

    async fn add_reaction(&self, conversation_id: &str, seq: u64, user_id: &str, emoji: &str) -> AppResult<bool> {
        let mut item = Self::key(keys::conversation(conversation_id), keys::reaction(seq, emoji, user_id));
        item.insert("seq".into(), n(seq));
        item.insert("emoji".into(), s(emoji));
        item.insert("userId".into(), s(user_id));
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(false),
            Err(e) => Err(AppError::internal(e)),
        }
    }

    async fn remove_reaction(&self, conversation_id: &str, seq: u64, user_id: &str, emoji: &str) -> AppResult<bool> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(keys::conversation(conversation_id), keys::reaction(seq, emoji, user_id))))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(AppError::internal)?;
        Ok(out.attributes.is_some_and(|a| !a.is_empty()))
    }

    async fn advance_read(&self, user_id: &str, conversation_id: &str, seq: u64) -> AppResult<Option<u64>> {
        let mut attempt = 0;
        loop {
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(Self::key(keys::user(user_id), keys::conversation(conversation_id))))
                .update_expression("SET lastReadSeq = :seq")
                .condition_expression("attribute_exists(pk) AND lastReadSeq < :seq")
                .expression_attribute_values(":seq", n(seq))
                .return_values(ReturnValue::UpdatedOld)
                .send()
                .await;
            match result {
                Ok(out) => {
                    return Ok(Some(
                        out.attributes.as_ref().map(|a| get_n(a, "lastReadSeq")).transpose()?.unwrap_or(0),
                    ));
                }
                Err(e) if e.as_service_error().is_some_and(UpdateItemError::is_conditional_check_failed_exception) => {
                    return Ok(None);
                }
                // The sender's own append moves this pointer in a transaction; wait for it and try again.
                Err(e)
                    if attempt < APPEND_ATTEMPTS
                        && e.as_service_error().is_some_and(UpdateItemError::is_transaction_conflict_exception) =>
                {
                    attempt += 1;
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Err(e) => return Err(AppError::internal(e)),
            }
        }
    }
}

impl DynamoDbStore {
    /// Applies `update` to a message the user sent and has not deleted; keeps the conversation's `lastMessage`
    /// copy in step when it is the newest message.
    async fn change_message(
        &self,
        conversation_id: &str,
        seq: u64,
        user_id: &str,
        update: &str,
        values: &[(&str, AttributeValue)],
    ) -> AppResult<Message> {
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(keys::conversation(conversation_id), keys::message(seq))))
            .update_expression(update)
            .condition_expression("attribute_exists(pk) AND senderId = :me AND deleted = :false")
            .expression_attribute_values(":me", s(user_id))
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .return_values(ReturnValue::AllNew);
        for (name, value) in values {
            request = request.expression_attribute_values(*name, value.clone());
        }
        let message = match request.send().await {
            Ok(out) => message_from_item(&out.attributes.unwrap_or_default())?,
            Err(e) if e.as_service_error().is_some_and(UpdateItemError::is_conditional_check_failed_exception) => {
                return Err(AppError::Conflict("message cannot be changed"));
            }
            Err(e) => return Err(AppError::internal(e)),
        };
        let last = serde_json::to_string(&message).map_err(AppError::internal)?;
        let refreshed = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(keys::conversation(conversation_id), keys::META)))
            .update_expression("SET lastMessage = :last")
            .condition_expression("lastSeq = :seq")
            .expression_attribute_values(":last", s(last))
            .expression_attribute_values(":seq", n(seq))
            .send()
            .await;
        match refreshed {
            Ok(_) => {}
            Err(e) if e.as_service_error().is_some_and(UpdateItemError::is_conditional_check_failed_exception) => {}
            Err(e) => return Err(AppError::internal(e)),
        }
        Ok(message)
    }

    /// Every item of a user's partition between connections and friends, page by page.
    async fn graph_items(&self, user_id: &str) -> AppResult<Vec<Item>> {
        let query = self
            .client
            .query()
            .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
            .expression_attribute_values(":pk", s(keys::user(user_id)))
            .expression_attribute_values(":from", s(keys::GRAPH_START))
            .expression_attribute_values(":to", s(keys::GRAPH_END))
            .consistent_read(true);
        self.query_all(query, None, None).await
    }
}

#[async_trait]
impl RoomStore for DynamoDbStore {
    async fn join(&self, connection: &Connection, conversation_id: &str) -> AppResult<()> {
        let connection_id = &connection.connection_id;
        let mut item = Self::key(keys::conversation(conversation_id), keys::joined(connection_id));
        item.insert("connectionId".into(), s(connection_id));
        item.insert("userId".into(), s(&connection.user_id));
        item.insert("connectedAt".into(), n(connection.connected_at));
        item.insert("ttl".into(), n(connection.expires_at));
        // The connection remembers its rooms so that closing it can clean them up.
        let remember = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(keys::connection(connection_id), keys::CONN)))
            .update_expression("ADD rooms :room")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":room", AttributeValue::Ss(vec![conversation_id.to_owned()]))
            .build()
            .map_err(AppError::internal)?;
        let items = vec![self.put(item, false)?, TransactWriteItem::builder().update(remember).build()];
        if self.transact_unless_raced(items).await? {
            Ok(())
        } else {
            Err(AppError::Unauthorized("connection is not registered, reconnect"))
        }
    }

    async fn leave(&self, connection_id: &str, conversation_id: &str) -> AppResult<()> {
        let forget = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(keys::connection(connection_id), keys::CONN)))
            .update_expression("DELETE rooms :room")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":room", AttributeValue::Ss(vec![conversation_id.to_owned()]))
            .build()
            .map_err(AppError::internal)?;
        let items = vec![
            self.delete(keys::conversation(conversation_id), &keys::joined(connection_id))?,
            TransactWriteItem::builder().update(forget).build(),
        ];
        self.transact_unless_raced(items).await.map(|_| ())
    }

    async fn leave_all(&self, connection_id: &str) -> AppResult<()> {
        let Some(item) = self.get(keys::connection(connection_id), keys::CONN).await? else { return Ok(()) };
        let rooms = match item.get("rooms") {
            Some(AttributeValue::Ss(rooms)) => rooms.clone(),
            _ => return Ok(()),
        };
        let keys = rooms.iter().map(|room| Self::key(keys::conversation(room), keys::joined(connection_id))).collect();
        self.batch_delete(keys).await
    }

    async fn joined(&self, conversation_id: &str) -> AppResult<Vec<(String, LiveConnection)>> {
        self.live_items(keys::conversation(conversation_id), keys::JOIN_PREFIX)
            .await?
            .iter()
            .map(|item| {
                let connection = LiveConnection {
                    connection_id: get_s(item, "connectionId")?,
                    connected_at: get_n(item, "connectedAt")?,
                    expires_at: get_n(item, "ttl")?,
                };
                Ok((get_s(item, "userId")?, connection))
            })
            .collect()
    }

    async fn claim_typing(&self, conversation_id: &str, user_id: &str, now_ms: u64, window_ms: u64) -> AppResult<bool> {
        let mut item = Self::key(keys::conversation(conversation_id), keys::typing(user_id));
        item.insert("at".into(), n(now_ms));
        item.insert("ttl".into(), n(now_ms / 1000 + 60));
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR #at <= :cutoff")
            .expression_attribute_names("#at", "at")
            .expression_attribute_values(":cutoff", n(now_ms.saturating_sub(window_ms)))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(false),
            Err(e) => Err(AppError::internal(e)),
        }
    }

    async fn release_typing(&self, conversation_id: &str, user_id: &str) -> AppResult<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(keys::conversation(conversation_id), keys::typing(user_id))))
            .send()
            .await
            .map_err(AppError::internal)?;
        Ok(())
    }
}

#[async_trait]
impl SocialStore for DynamoDbStore {
    async fn user_graph(&self, user_id: &str) -> AppResult<UserGraph> {
        let mut graph = UserGraph::default();
        for item in self.graph_items(user_id).await? {
            let sk = get_s(&item, "sk")?;
            let pending = || -> AppResult<PendingRequest> {
                Ok(PendingRequest { user_id: get_s(&item, "otherId")?, created_at: get_s(&item, "createdAt")? })
            };
            if let Some(id) = sk.strip_prefix("CONV#") {
                graph.conversation_ids.push(id.to_owned());
            } else if sk.starts_with("FREQ#IN#") {
                graph.incoming.push(pending()?);
            } else if sk.starts_with("FREQ#OUT#") {
                graph.outgoing.push(pending()?);
            } else if let Some(id) = sk.strip_prefix("FRIEND#") {
                graph.friend_ids.push(id.to_owned());
            }
        }
        Ok(graph)
    }

    async fn relation(&self, user_id: &str, other_id: &str) -> AppResult<Relation> {
        let pk = keys::user(user_id);
        let wanted = vec![
            Self::key(pk.clone(), keys::friend(other_id)),
            Self::key(pk.clone(), keys::request_out(other_id)),
            Self::key(pk, keys::request_in(other_id)),
        ];
        let found: Vec<String> =
            self.batch_get(wanted, Some("sk")).await?.iter().map(|i| get_s(i, "sk")).collect::<AppResult<_>>()?;
        Ok(if found.contains(&keys::friend(other_id)) {
            Relation::Friends
        } else if found.contains(&keys::request_out(other_id)) {
            Relation::RequestSent
        } else if found.contains(&keys::request_in(other_id)) {
            Relation::RequestReceived
        } else {
            Relation::None
        })
    }

    async fn create_friend_request(&self, from: &str, to: &str, at: &str) -> AppResult<()> {
        let side = |pk: String, sk: String, other: &str| {
            let mut item = Self::key(pk, sk);
            item.insert("otherId".into(), s(other));
            item.insert("createdAt".into(), s(at));
            item
        };
        let items = vec![
            self.put(side(keys::user(from), keys::request_out(to), to), true)?,
            self.put(side(keys::user(to), keys::request_in(from), from), true)?,
            self.condition_check(keys::user(from), &keys::friend(to), "attribute_not_exists(pk)")?,
            self.condition_check(keys::user(from), &keys::request_in(to), "attribute_not_exists(pk)")?,
        ];
        if self.transact_unless_raced(items).await? {
            Ok(())
        } else {
            Err(AppError::Conflict("already friends or a request is pending"))
        }
    }

    async fn delete_friend_request(&self, from: &str, to: &str) -> AppResult<bool> {
        let items = vec![
            self.delete_if_exists(keys::user(from), &keys::request_out(to))?,
            self.delete(keys::user(to), &keys::request_in(from))?,
        ];
        self.transact_unless_raced(items).await
    }

    async fn accept_friend_request(&self, from: &str, to: &str, at: &str) -> AppResult<bool> {
        let friend = |owner: &str, other: &str| {
            let mut item = Self::key(keys::user(owner), keys::friend(other));
            item.insert("otherId".into(), s(other));
            item.insert("createdAt".into(), s(at));
            item
        };
        let items = vec![
            self.delete_if_exists(keys::user(to), &keys::request_in(from))?,
            self.delete(keys::user(from), &keys::request_out(to))?,
            self.put(friend(from, to), false)?,
            self.put(friend(to, from), false)?,
        ];
        self.transact_unless_raced(items).await
    }

    async fn delete_friendship(&self, a: &str, b: &str) -> AppResult<bool> {
        let items = vec![
            self.delete_if_exists(keys::user(a), &keys::friend(b))?,
            self.delete(keys::user(b), &keys::friend(a))?,
        ];
        self.transact_unless_raced(items).await
    }

    async fn members_of(&self, conversation_ids: &[String]) -> AppResult<Vec<String>> {
        let keys = conversation_ids.iter().map(|id| Self::key(keys::conversation(id), keys::META)).collect();
        let mut members = std::collections::BTreeSet::new();
        for item in self.batch_get(keys, Some("members")).await? {
            if let Some(AttributeValue::Ss(ids)) = item.get("members") {
                members.extend(ids.iter().cloned());
            }
        }
        Ok(members.into_iter().collect())
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
