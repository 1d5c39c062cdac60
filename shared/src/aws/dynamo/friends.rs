//! [`FriendStore`] over DynamoDB: both sides of every request and friendship under each user's partition,
//! written together so duplicates and races fail cleanly (patterns #20-#22).

use async_trait::async_trait;

use super::{DynamoDbStore, get_id, get_s, id, keys, s};
use crate::error::{AppError, AppResult};
use crate::model::UserId;
use crate::ports::{FriendStore, PendingRequest, Relation, Relations};

impl DynamoDbStore {
    /// Every item of a user's partition between memberships and friends, page by page.
    async fn graph_items(&self, user_id: &UserId) -> AppResult<Vec<super::Item>> {
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
impl FriendStore for DynamoDbStore {
    async fn relations(&self, user_id: &UserId) -> AppResult<Relations> {
        let mut relations = Relations::default();
        for item in self.graph_items(user_id).await? {
            let sk = get_s(&item, "sk")?;
            let pending = || -> AppResult<PendingRequest> {
                Ok(PendingRequest { user_id: get_id(&item, "otherId")?, created_at: get_s(&item, "createdAt")? })
            };
            if sk.starts_with(keys::CONV_PREFIX) {
                relations.conversation_ids.push(get_id(&item, "conversationId")?);
            } else if sk.starts_with("FREQ#IN#") {
                relations.incoming.push(pending()?);
            } else if sk.starts_with("FREQ#OUT#") {
                relations.outgoing.push(pending()?);
            } else if sk.starts_with("FRIEND#") {
                relations.friend_ids.push(get_id(&item, "otherId")?);
            }
        }
        Ok(relations)
    }

    async fn relation(&self, user_id: &UserId, other_id: &UserId) -> AppResult<Relation> {
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

    async fn create_friend_request(&self, from: &UserId, to: &UserId, at: &str) -> AppResult<()> {
        let side = |pk: String, sk: String, other: &UserId| {
            let mut item = Self::key(pk, sk);
            item.insert("otherId".into(), id(other));
            item.insert("createdAt".into(), s(at));
            item
        };
        let items = vec![
            self.put(side(keys::user(from), keys::request_out(to), to), true)?,
            self.put(side(keys::user(to), keys::request_in(from), from), true)?,
            self.condition_check(keys::user(from), &keys::friend(to), "attribute_not_exists(pk)", &[])?,
            self.condition_check(keys::user(from), &keys::request_in(to), "attribute_not_exists(pk)", &[])?,
        ];
        if self.transact_unless_raced(items).await? {
            Ok(())
        } else {
            Err(AppError::Conflict("already friends or a request is pending"))
        }
    }

    async fn delete_friend_request(&self, from: &UserId, to: &UserId) -> AppResult<bool> {
        let items = vec![
            self.delete_if_exists(keys::user(from), &keys::request_out(to))?,
            self.delete(keys::user(to), &keys::request_in(from))?,
        ];
        self.transact_unless_raced(items).await
    }

    async fn accept_friend_request(&self, from: &UserId, to: &UserId, at: &str) -> AppResult<bool> {
        let friend = |owner: &UserId, other: &UserId| {
            let mut item = Self::key(keys::user(owner), keys::friend(other));
            item.insert("otherId".into(), id(other));
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

    async fn delete_friendship(&self, a: &UserId, b: &UserId) -> AppResult<bool> {
        let items = vec![
            self.delete_if_exists(keys::user(a), &keys::friend(b))?,
            self.delete(keys::user(b), &keys::friend(a))?,
        ];
        self.transact_unless_raced(items).await
    }
}
