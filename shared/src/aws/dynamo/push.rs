//! [`PushStore`] over DynamoDB: one item per subscription under the user (`USER#<id>` / `PUSH#<subscription id>`,
//! pattern #66) and their number on the presence item (`pushCount`), both written in one transaction so the count
//! never drifts and the limit holds when a user's browsers subscribe at the same moment. Those concurrent
//! transactions on one presence item cancel each other (`TransactionConflict`) on DynamoDB, so they are tried
//! again for a moment before the client is told to (429).

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;

use super::{
    DynamoDbStore, Item, cancellation_codes, failed_condition, get_named, get_opt_s, get_s,
    held_by_another_transaction, keys, n, name_of, s,
};
use crate::error::{AppError, AppResult};
use crate::model::{MAX_PUSH_SUBSCRIPTIONS, PushKeys, PushSubscription, UserId};
use crate::ports::{PushStore, SubscriptionAdded};

fn subscription_item(user_id: &UserId, subscription: &PushSubscription) -> AppResult<Item> {
    let mut item = DynamoDbStore::key(keys::user(user_id), keys::push(&subscription.id));
    item.insert("platform".into(), name_of(&subscription.platform)?);
    item.insert("endpoint".into(), s(&subscription.endpoint));
    if let Some(keys) = &subscription.keys {
        item.insert("p256dh".into(), s(&keys.p256dh));
        item.insert("auth".into(), s(&keys.auth));
    }
    item.insert("createdAt".into(), s(&subscription.created_at));
    Ok(item)
}

fn subscription_from_item(item: &Item) -> AppResult<PushSubscription> {
    let sk = get_s(item, "sk")?;
    Ok(PushSubscription {
        id: sk.strip_prefix(keys::PUSH_PREFIX).unwrap_or(&sk).to_owned(),
        platform: get_named(item, "platform")?,
        endpoint: get_s(item, "endpoint")?,
        keys: match (get_opt_s(item, "p256dh"), get_opt_s(item, "auth")) {
            (Some(p256dh), Some(auth)) => Some(PushKeys { p256dh, auth }),
            _ => None,
        },
        created_at: get_opt_s(item, "createdAt").unwrap_or_default(),
    })
}

#[async_trait]
impl PushStore for DynamoDbStore {
    /// Puts the subscription if absent and counts it on the presence item if the user has room; an endpoint
    /// registered already gets its keys replaced (browsers rotate them) without counting again.
    async fn add_push_subscription(
        &self,
        user_id: &UserId,
        subscription: &PushSubscription,
    ) -> AppResult<SubscriptionAdded> {
        let counted = self.update(
            keys::user(user_id),
            keys::PRESENCE,
            "ADD pushCount :one",
            Some("attribute_not_exists(pushCount) OR pushCount < :max"),
            &[(":one", n(1)), (":max", n(u64::from(MAX_PUSH_SUBSCRIPTIONS)))],
        )?;
        let put = self.put(subscription_item(user_id, subscription)?, true)?;
        match self.transact_patiently(vec![put, counted]).await {
            Ok(()) => Ok(SubscriptionAdded::New),
            Err(e) => match cancellation_codes(&e) {
                Some(codes) if failed_condition(&codes, 0) => {
                    let replaced = self
                        .client
                        .put_item()
                        .table_name(&self.table)
                        .set_item(Some(subscription_item(user_id, subscription)?))
                        .condition_expression("attribute_exists(pk)")
                        .send()
                        .await;
                    match super::unless_refused(replaced)? {
                        Some(_) => Ok(SubscriptionAdded::Existing),
                        // Removed in between: the caller may register it again.
                        None => Err(AppError::Conflict("the subscription changed meanwhile; try again")),
                    }
                }
                Some(codes) if failed_condition(&codes, 1) => Ok(SubscriptionAdded::Full),
                Some(codes) if held_by_another_transaction(&codes) => Err(AppError::BUSY),
                _ => Err(e.into()),
            },
        }
    }

    async fn remove_push_subscription(&self, user_id: &UserId, subscription_id: &str) -> AppResult<bool> {
        let delete = self.delete_if_exists(keys::user(user_id), &keys::push(subscription_id))?;
        let uncounted = self.update(
            keys::user(user_id),
            keys::PRESENCE,
            "ADD pushCount :minus",
            Some("pushCount > :zero"),
            &[(":minus", AttributeValue::N("-1".into())), (":zero", n(0))],
        )?;
        match self.transact_patiently(vec![delete, uncounted]).await {
            Ok(()) => Ok(true),
            Err(e) => match cancellation_codes(&e) {
                Some(codes) if failed_condition(&codes, 0) => Ok(false),
                Some(codes) if held_by_another_transaction(&codes) => Err(AppError::BUSY),
                _ => Err(e.into()),
            },
        }
    }

    async fn push_subscriptions(&self, user_id: &UserId) -> AppResult<Vec<PushSubscription>> {
        let query = self
            .client
            .query()
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", s(keys::user(user_id)))
            .expression_attribute_values(":prefix", s(keys::PUSH_PREFIX))
            .consistent_read(true);
        self.query_all(query, None, None).await?.iter().map(subscription_from_item).collect()
    }
}
