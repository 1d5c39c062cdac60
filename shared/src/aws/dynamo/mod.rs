//! The store ports over one DynamoDB table; every key and access pattern is in docs/data-model.md.
//!
//! Multi-item invariants (unique usernames, one private conversation per pair, gap-free `seq`, idempotent sends)
//! are enforced with conditional transactions, never with read-then-write races. No operation scans. Each
//! port's implementation has its own file; this one holds the table, the key layout and the request helpers
//! they share.

mod connections;
mod conversations;
mod erasure;
mod exports;
mod friends;
mod items;
mod messages;
mod moderation;
mod push;
mod rates;
mod rooms;
mod sessions;
pub mod table_stream;
mod uploads;
mod users;

use std::collections::HashMap;
use std::fmt::Display;
use std::str::FromStr;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, DeleteRequest, KeysAndAttributes, Put, ReturnValue, TransactWriteItem,
    Update, WriteRequest,
};
use futures_util::{StreamExt, TryStreamExt, stream};

use crate::error::{AppError, AppResult};
use crate::model::now_epoch_seconds;
use crate::retry;

pub(crate) type Item = HashMap<String, AttributeValue>;

/// Index over the memberships by conversation and read pointer (keys only): how many members have read up to a
/// message is one `Query` with `lastReadSeq >= :seq`.
pub(crate) const READERS_INDEX: &str = "readers";
/// `BatchGetItem` calls one read keeps in flight (a room of 5,000 members is 50 calls).
const BATCH_GETS_IN_FLIGHT: usize = 8;
/// Tries of a write while another transaction holds its item; the jittered pauses between them add up to 1.6 s at most.
const CONTENDED_ATTEMPTS: u32 = 8;

/// Key builders: the only place that knows how entities map to `pk`/`sk`.
pub(crate) mod keys {
    use std::fmt::Display;

    pub fn user(user_id: impl Display) -> String {
        format!("USER#{user_id}")
    }
    pub const USER_PREFIX: &str = "USER#";
    pub const PROFILE: &str = "PROFILE";
    /// A user's presence: live connections, chosen status, last seen.
    pub const PRESENCE: &str = "PRESENCE";
    pub fn username(key: &str) -> String {
        format!("UNAME#{key}")
    }
    pub const UNAME: &str = "UNAME";
    /// Partition of the username search index, sharded by first character so no single key gets every user.
    pub fn username_shard(key: &str) -> String {
        format!("UNAME#{}", key.chars().next().unwrap_or('_'))
    }
    pub fn connection(connection_id: impl Display) -> String {
        format!("CONN#{connection_id}")
    }
    pub const CONN: &str = "CONN";
    pub fn conversation(conversation_id: impl Display) -> String {
        format!("CONV#{conversation_id}")
    }
    pub const CONV_PREFIX: &str = "CONV#";
    pub const META: &str = "META";
    /// A member of a large group, under the conversation (the membership under the user holds the read pointer).
    pub fn member(user_id: impl Display) -> String {
        format!("MEMBER#{user_id}")
    }
    pub const MEMBER_PREFIX: &str = "MEMBER#";
    pub fn pair(pair_key: &str) -> String {
        format!("PAIR#{pair_key}")
    }
    pub const PAIR: &str = "PAIR";
    /// Zero-padded so that string order is numeric order.
    pub fn message(seq: u64) -> String {
        format!("MSG#{seq:020}")
    }
    pub const MESSAGE_PREFIX: &str = "MSG#";
    pub fn client_message(sender_id: impl Display, client_message_id: &str) -> String {
        format!("CMID#{sender_id}#{client_message_id}")
    }
    /// Reactions sort by message, so the reactions of a page of messages are one range.
    pub fn reaction(seq: u64, emoji: &str, user_id: impl Display) -> String {
        format!("RX#{seq:020}#{emoji}#{user_id}")
    }
    pub const REACTION_PREFIX: &str = "RX#";
    pub fn joined(connection_id: impl Display) -> String {
        format!("JOIN#{connection_id}")
    }
    pub const JOIN_PREFIX: &str = "JOIN#";
    /// A user's request counter of one kind for the window starting at `start` (epoch seconds).
    pub fn upload(upload_id: impl Display) -> String {
        format!("UPLOAD#{upload_id}")
    }
    pub const UPLOAD: &str = "UPLOAD";
    /// One of a user's push subscriptions, under the user.
    pub fn push(subscription_id: &str) -> String {
        format!("PUSH#{subscription_id}")
    }
    pub const PUSH_PREFIX: &str = "PUSH#";
    pub fn rate(kind: &str, start: u64) -> String {
        format!("RATE#{kind}#{start}")
    }
    pub fn typing(user_id: impl Display) -> String {
        format!("TYPING#{user_id}")
    }
    pub fn friend(other_id: impl Display) -> String {
        format!("FRIEND#{other_id}")
    }
    pub fn request_out(to: impl Display) -> String {
        format!("FREQ#OUT#{to}")
    }
    pub fn request_in(from: impl Display) -> String {
        format!("FREQ#IN#{from}")
    }
    pub fn block(blocked: impl Display) -> String {
        format!("BLOCK#{blocked}")
    }
    pub const BLOCK_PREFIX: &str = "BLOCK#";
    /// A login of the user (outside the graph range: `SESSION#` > `FRIEND$`).
    pub fn session(session_id: impl Display) -> String {
        format!("SESSION#{session_id}")
    }
    pub const SESSION_PREFIX: &str = "SESSION#";
    /// The reports of one target (`message:<id>` or `user:<id>`), one item per reporter.
    pub fn report(target: &str) -> String {
        format!("REPORT#{target}")
    }
    pub fn reporter(reporter_id: impl Display) -> String {
        format!("BY#{reporter_id}")
    }
    /// The `gsi1` partition listing open reports; resolving a report removes it from the index.
    pub const OPEN_REPORTS: &str = "REPORTS#OPEN";
    /// The audit record of one month (`YYYY-MM`).
    pub fn audit(month: &str) -> String {
        format!("AUDIT#{month}")
    }
    /// Bounds of the range of a user's partition holding blocks, memberships, requests and friends
    /// (`BLOCK#` < `CONV#` < `FREQ#` < `FRIEND#` < `FRIEND$`), which excludes the profile and the presence.
    /// The user's latest export of their data (after `PROFILE`, outside the graph range).
    pub const EXPORT: &str = "PROFILE#EXPORT";
    pub const GRAPH_START: &str = "BLOCK#";
    pub const GRAPH_END: &str = "FRIEND$";
}

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

    /// One item by key, strongly consistent.
    pub(crate) async fn get(&self, pk: String, sk: &str) -> AppResult<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(pk, sk)))
            .consistent_read(true)
            .send()
            .await?;
        Ok(out.item)
    }

    pub(crate) fn put(&self, item: Item, if_absent: bool) -> AppResult<TransactWriteItem> {
        let mut put = Put::builder().table_name(&self.table).set_item(Some(item));
        if if_absent {
            put = put.condition_expression("attribute_not_exists(pk)");
        }
        Ok(TransactWriteItem::builder().put(put.build()?).build())
    }

    pub(crate) fn delete(&self, pk: String, sk: &str) -> AppResult<TransactWriteItem> {
        let delete = Delete::builder().table_name(&self.table).set_key(Some(Self::key(pk, sk))).build()?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    pub(crate) fn delete_if_exists(&self, pk: String, sk: &str) -> AppResult<TransactWriteItem> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(pk, sk)))
            .condition_expression("attribute_exists(pk)")
            .build()?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    pub(crate) fn update(
        &self,
        pk: String,
        sk: &str,
        expression: &str,
        condition: Option<&str>,
        values: &[(&str, AttributeValue)],
    ) -> AppResult<TransactWriteItem> {
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(pk, sk)))
            .update_expression(expression)
            .set_condition_expression(condition.map(str::to_owned));
        for (name, value) in values {
            update = update.expression_attribute_values(*name, value.clone());
        }
        Ok(TransactWriteItem::builder().update(update.build()?).build())
    }

    pub(crate) fn condition_check(
        &self,
        pk: String,
        sk: &str,
        condition: &str,
        values: &[(&str, AttributeValue)],
    ) -> AppResult<TransactWriteItem> {
        let mut check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(pk, sk)))
            .condition_expression(condition);
        for (name, value) in values {
            check = check.expression_attribute_values(*name, value.clone());
        }
        Ok(TransactWriteItem::builder().condition_check(check.build()?).build())
    }

    pub(crate) async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
    ) -> Result<(), SdkError<TransactWriteItemsError>> {
        self.client.transact_write_items().set_transact_items(Some(items)).send().await.map(|_| ())
    }

    /// Runs a conditional `UpdateItem` (key, expressions) and answers the item after it; `None` when its condition
    /// failed.
    pub(crate) async fn update_if(&self, update: UpdateItemFluentBuilder) -> AppResult<Option<Item>> {
        self.update_if_returning(update, ReturnValue::AllNew).await
    }

    /// [`Self::update_if`] answering `returning`, and tried again (after a pause) while a transaction holds the
    /// item: membership items are written by sends (the sender's read pointer, the mentioned members' mentions).
    pub(crate) async fn update_if_returning(
        &self,
        update: UpdateItemFluentBuilder,
        returning: ReturnValue,
    ) -> AppResult<Option<Item>> {
        let update = update.table_name(&self.table).return_values(returning);
        let result = retry::while_contended(
            CONTENDED_ATTEMPTS,
            || update.clone().send(),
            |e| e.as_service_error().is_some_and(UpdateItemError::is_transaction_conflict_exception),
        )
        .await;
        Ok(unless_refused(result)?.and_then(|out| out.attributes))
    }

    /// [`Self::transact`], tried again (after a pause) while another transaction holds one of its items: for a
    /// user's counters that the user's own requests may write at the same moment.
    pub(crate) async fn transact_patiently(
        &self,
        items: Vec<TransactWriteItem>,
    ) -> Result<(), SdkError<TransactWriteItemsError>> {
        retry::while_contended(
            CONTENDED_ATTEMPTS,
            || self.transact(items.clone()),
            |e| cancellation_codes(e).is_some_and(|codes| held_by_another_transaction(&codes)),
        )
        .await
    }

    /// Runs a conditional transaction; `false` when a condition failed or another transaction held an item,
    /// i.e. when the caller should re-read and decide again.
    pub(crate) async fn transact_unless_raced(&self, items: Vec<TransactWriteItem>) -> AppResult<bool> {
        match self.transact(items).await {
            Ok(()) => Ok(true),
            Err(e) => match cancellation_codes(&e) {
                Some(codes)
                    if codes.iter().any(|c| c == "ConditionalCheckFailed") || held_by_another_transaction(&codes) =>
                {
                    Ok(false)
                }
                _ => Err(e.into()),
            },
        }
    }

    /// `BatchGetItem` over any number of keys (100 per call, [`BATCH_GETS_IN_FLIGHT`] calls at once), retrying
    /// unprocessed keys. Strongly consistent.
    pub(crate) async fn batch_get(&self, keys: Vec<Item>, projection: Option<&str>) -> AppResult<Vec<Item>> {
        let chunks: Vec<Vec<Item>> = keys.chunks(100).map(<[Item]>::to_vec).collect();
        let pages: Vec<Vec<Item>> = stream::iter(chunks)
            .map(|chunk| self.batch_get_page(chunk, projection))
            .buffer_unordered(BATCH_GETS_IN_FLIGHT)
            .try_collect()
            .await?;
        Ok(pages.into_iter().flatten().collect())
    }

    async fn batch_get_page(&self, keys: Vec<Item>, projection: Option<&str>) -> AppResult<Vec<Item>> {
        let mut items = Vec::with_capacity(keys.len());
        let mut request = Some(
            KeysAndAttributes::builder()
                .set_keys(Some(keys))
                .consistent_read(true)
                .set_projection_expression(projection.map(str::to_owned))
                .build()?,
        );
        let mut attempt = 0u32;
        while let Some(req) = request.take() {
            let out = self.client.batch_get_item().request_items(&self.table, req).send().await?;
            items.extend(out.responses.unwrap_or_default().remove(&self.table).unwrap_or_default());
            request = out.unprocessed_keys.and_then(|mut u| u.remove(&self.table)).filter(|k| !k.keys.is_empty());
            if request.is_some() {
                attempt += 1;
                if attempt > 5 {
                    return Err(AppError::internal("BatchGetItem kept returning unprocessed keys"));
                }
                retry::pause(attempt).await;
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
            let out = request.send().await?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() && limit.is_none_or(|l| items.len() < l) => start = Some(key),
                _ => return Ok(items),
            }
        }
    }

    /// Live (not yet expired) items of a partition whose sort key starts with `prefix`.
    pub(crate) async fn live_items(&self, pk: String, prefix: &str) -> AppResult<Vec<Item>> {
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
                    let delete = DeleteRequest::builder().set_key(Some(key.clone())).build()?;
                    Ok(WriteRequest::builder().delete_request(delete).build())
                })
                .collect::<AppResult<_>>()?;
            let mut attempt = 0u32;
            while !requests.is_empty() {
                let out = self.client.batch_write_item().request_items(&self.table, requests).send().await?;
                requests = out.unprocessed_items.and_then(|mut u| u.remove(&self.table)).unwrap_or_default();
                if !requests.is_empty() {
                    attempt += 1;
                    if attempt > 5 {
                        return Err(AppError::internal("BatchWriteItem kept returning unprocessed items"));
                    }
                    retry::pause(attempt).await;
                }
            }
        }
        Ok(())
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

/// A transaction was cancelled because another one held one of its items at that moment.
pub(crate) fn held_by_another_transaction(codes: &[String]) -> bool {
    codes.iter().any(|c| c == "TransactionConflict")
}

pub(crate) fn failed_condition(codes: &[String], index: usize) -> bool {
    codes.get(index).is_some_and(|c| c == "ConditionalCheckFailed")
}

/// Contention that is worth retrying: another writer won the condition, or a concurrent transaction held the item.
pub(crate) fn contended(codes: &[String], index: usize) -> bool {
    codes.get(index).is_some_and(|c| c == "ConditionalCheckFailed" || c == "TransactionConflict")
}

pub(crate) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// An id (or anything displayed) as a string attribute.
pub(crate) fn id(value: impl Display) -> AttributeValue {
    AttributeValue::S(value.to_string())
}

pub(crate) fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// A conditional write's outcome: `Some` with its output when written, `None` when its condition refused it.
pub(crate) fn unless_refused<T, E, R>(result: Result<T, SdkError<E, R>>) -> AppResult<Option<T>>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match result {
        Ok(out) => Ok(Some(out)),
        Err(e)
            if e.as_service_error().and_then(ProvideErrorMetadata::code) == Some("ConditionalCheckFailedException") =>
        {
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// A unit enum as a string attribute under its wire (serde) name, so the table and clients use one name.
pub(crate) fn name_of(value: &impl serde::Serialize) -> AppResult<AttributeValue> {
    match serde_json::to_value(value).map_err(AppError::internal)? {
        serde_json::Value::String(name) => Ok(s(name)),
        other => Err(AppError::internal(format!("{other} is not a name"))),
    }
}

/// A unit enum from its wire name in `item[name]`; `None` if absent or not one of its names.
pub(crate) fn get_opt_named<T: serde::de::DeserializeOwned>(item: &Item, name: &str) -> Option<T> {
    serde_json::from_value(serde_json::Value::String(get_opt_s(item, name)?)).ok()
}

pub(crate) fn get_named<T: serde::de::DeserializeOwned>(item: &Item, name: &str) -> AppResult<T> {
    get_opt_named(item, name).ok_or_else(|| AppError::internal(format!("stored item has no known {name}")))
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

/// A typed id stored as a string attribute.
pub(crate) fn get_id<T: FromStr<Err = AppError>>(item: &Item, name: &str) -> AppResult<T> {
    get_s(item, name)?.parse().map_err(|_| AppError::internal(format!("stored item has an invalid {name}")))
}

pub(crate) fn get_n(item: &Item, name: &str) -> AppResult<u64> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().map_err(AppError::internal),
        _ => Err(AppError::internal(format!("stored item lacks number attribute {name}"))),
    }
}

/// A number attribute that older items may lack (a membership written before read pointers existed reads 0).
pub(crate) fn get_n_or_zero(item: &Item, name: &str) -> u64 {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().unwrap_or(0),
        _ => 0,
    }
}

pub(crate) fn get_bool(item: &Item, name: &str) -> bool {
    matches!(item.get(name), Some(AttributeValue::Bool(true)))
}

/// A string set of ids.
pub(crate) fn id_set<T: Display>(ids: impl IntoIterator<Item = T>) -> AttributeValue {
    AttributeValue::Ss(ids.into_iter().map(|id| id.to_string()).collect())
}
