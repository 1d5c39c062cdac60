//! [`RateStore`] over DynamoDB: a counter item per user, kind and window, moved by a conditional `ADD` that
//! fails once the window's budget is spent; the counter expires with TTL after its window (pattern #32). The
//! same update counts a send inside the message's append transaction.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Update};

use super::{DynamoDbStore, Item, keys, n, unless_refused};
use crate::error::AppResult;
use crate::model::{UserId, now_epoch_seconds};
use crate::ports::{RateLimit, RateStore};

const COUNT: &str = "SET #ttl = :ttl ADD hits :one";
const WITHIN_BUDGET: &str = "attribute_not_exists(hits) OR hits < :max";

/// Key and values of the counter update for `limit` at `now`.
fn counter(user_id: &UserId, limit: &RateLimit, now: u64) -> (Item, HashMap<String, AttributeValue>) {
    let start = limit.window_start(now);
    let key = DynamoDbStore::key(keys::user(user_id), keys::rate(limit.kind, start));
    let values = HashMap::from([
        (":ttl".to_owned(), n(start + 2 * limit.window_secs)),
        (":one".to_owned(), n(1)),
        (":max".to_owned(), n(u64::from(limit.max))),
    ]);
    (key, values)
}

impl DynamoDbStore {
    /// The conditional update that counts one request of `limit` for `user_id` at `now`, for a transaction.
    pub(crate) fn rate_update(&self, user_id: &UserId, limit: &RateLimit, now: u64) -> AppResult<Update> {
        let (key, values) = counter(user_id, limit, now);
        Ok(Update::builder()
            .table_name(&self.table)
            .set_key(Some(key))
            .update_expression(COUNT)
            .condition_expression(WITHIN_BUDGET)
            .expression_attribute_names("#ttl", "ttl")
            .set_expression_attribute_values(Some(values))
            .build()?)
    }
}

#[async_trait]
impl RateStore for DynamoDbStore {
    async fn take(&self, user_id: &UserId, limit: &RateLimit) -> AppResult<()> {
        let now = now_epoch_seconds();
        let (key, values) = counter(user_id, limit, now);
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .update_expression(COUNT)
            .condition_expression(WITHIN_BUDGET)
            .expression_attribute_names("#ttl", "ttl")
            .set_expression_attribute_values(Some(values))
            .send()
            .await;
        unless_refused(result)?.map(drop).ok_or_else(|| limit.exceeded(now))
    }
}
