//! [`FriendStore`] over DynamoDB: both sides of every request and friendship under each user's partition,
//! written together so duplicates and races fail cleanly (patterns #20-#22); blocks under the blocker's
//! partition, copied onto their presence and closing the pair's private conversation in the same transaction
//! (patterns #41-#44).

use async_trait::async_trait;

use aws_sdk_dynamodb::types::TransactWriteItem;

use super::{DynamoDbStore, cancellation_codes, contended, failed_condition, get_id, get_s, id, id_set, keys, n, s};
use crate::error::{AppError, AppResult};
use crate::model::{Conversation, UserId};
use crate::ports::{FriendStore, MAX_BLOCKED, PendingRequest, Relation, Relations};

/// Tries of a block or unblock whose transaction met a concurrent one (a private conversation created meanwhile).
const BLOCK_ATTEMPTS: u32 = 4;

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
            if sk.starts_with(keys::BLOCK_PREFIX) {
                relations.blocked.push(pending()?);
            } else if sk.starts_with(keys::CONV_PREFIX) {
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
            Self::key(pk.clone(), keys::block(other_id)),
            Self::key(keys::user(other_id), keys::block(user_id)),
            Self::key(pk.clone(), keys::friend(other_id)),
            Self::key(pk.clone(), keys::request_out(other_id)),
            Self::key(pk, keys::request_in(other_id)),
        ];
        // Each side's block item has the other's id in its sort key, so the sort keys alone tell them apart.
        let found: Vec<String> =
            self.batch_get(wanted, Some("sk")).await?.iter().map(|i| get_s(i, "sk")).collect::<AppResult<_>>()?;
        Ok(if found.contains(&keys::block(other_id)) {
            Relation::Blocking
        } else if found.contains(&keys::block(user_id)) {
            Relation::BlockedBy
        } else if found.contains(&keys::friend(other_id)) {
            Relation::Friends
        } else if found.contains(&keys::request_out(other_id)) {
            Relation::RequestSent
        } else if found.contains(&keys::request_in(other_id)) {
            Relation::RequestReceived
        } else {
            Relation::None
        })
    }

    async fn friends_among(&self, user_id: &UserId, others: &[UserId]) -> AppResult<Vec<UserId>> {
        let keys = others.iter().map(|other| Self::key(keys::user(user_id), keys::friend(other))).collect();
        self.batch_get(keys, Some("otherId")).await?.iter().map(|item| get_id(item, "otherId")).collect()
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
            self.condition_check(keys::user(from), &keys::block(to), "attribute_not_exists(pk)", &[])?,
            self.condition_check(keys::user(to), &keys::block(from), "attribute_not_exists(pk)", &[])?,
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

    async fn block(&self, blocker: &UserId, blocked: &UserId, at: &str) -> AppResult<bool> {
        let mut block = Self::key(keys::user(blocker), keys::block(blocked));
        block.insert("otherId".into(), id(blocked));
        block.insert("createdAt".into(), s(at));
        for _ in 0..BLOCK_ATTEMPTS {
            let (a, b) = (keys::user(blocker), keys::user(blocked));
            let mut items = vec![
                self.put(block.clone(), true)?,
                self.update(
                    keys::user(blocker),
                    keys::PRESENCE,
                    "ADD blocked :blocked",
                    Some("attribute_not_exists(blocked) OR size(blocked) < :max"),
                    &[(":blocked", id_set([blocked])), (":max", n(MAX_BLOCKED as u64))],
                )?,
                self.delete(a.clone(), &keys::friend(blocked))?,
                self.delete(b.clone(), &keys::friend(blocker))?,
                self.delete(a.clone(), &keys::request_out(blocked))?,
                self.delete(a, &keys::request_in(blocked))?,
                self.delete(b.clone(), &keys::request_out(blocker))?,
                self.delete(b, &keys::request_in(blocker))?,
            ];
            items.push(self.close_private_conversation(blocker, blocked, "ADD").await?);
            match self.transact(items).await {
                Ok(()) => return Ok(true),
                Err(e) => match cancellation_codes(&e) {
                    Some(codes) if failed_condition(&codes, 0) => return Ok(false),
                    Some(codes) if failed_condition(&codes, 1) => {
                        return Err(AppError::Validation(format!("you can block at most {MAX_BLOCKED} users")));
                    }
                    Some(codes) if (0..codes.len()).any(|i| contended(&codes, i)) => continue,
                    _ => return Err(e.into()),
                },
            }
        }
        Err(AppError::internal("a block kept meeting concurrent writes"))
    }

    async fn unblock(&self, blocker: &UserId, blocked: &UserId) -> AppResult<bool> {
        for _ in 0..BLOCK_ATTEMPTS {
            let items = vec![
                self.delete_if_exists(keys::user(blocker), &keys::block(blocked))?,
                self.update(
                    keys::user(blocker),
                    keys::PRESENCE,
                    "DELETE blocked :blocked",
                    None,
                    &[(":blocked", id_set([blocked]))],
                )?,
                self.close_private_conversation(blocker, blocked, "DELETE").await?,
            ];
            match self.transact(items).await {
                Ok(()) => return Ok(true),
                Err(e) => match cancellation_codes(&e) {
                    Some(codes) if failed_condition(&codes, 0) => return Ok(false),
                    Some(codes) if (0..codes.len()).any(|i| contended(&codes, i)) => continue,
                    _ => return Err(e.into()),
                },
            }
        }
        Err(AppError::internal("an unblock kept meeting concurrent writes"))
    }
}

impl DynamoDbStore {
    /// The part of a block (`ADD`) or unblock (`DELETE`) about the pair's private conversation: the blocker
    /// joins (or leaves) its `blockedBy` set; if there is none, the transaction requires that none is created
    /// meanwhile (a creation checks the block items in its own transaction, so one of the two sees the other).
    async fn close_private_conversation(
        &self,
        blocker: &UserId,
        blocked: &UserId,
        operation: &str,
    ) -> AppResult<TransactWriteItem> {
        let pair = keys::pair(&Conversation::pair_key_of(blocker, blocked));
        match self.get(pair.clone(), keys::PAIR).await? {
            Some(claim) => {
                let conversation_id: crate::model::ConversationId = get_id(&claim, "conversationId")?;
                self.update(
                    keys::conversation(&conversation_id),
                    keys::META,
                    &format!("{operation} blockedBy :blocker"),
                    Some("attribute_exists(pk)"),
                    &[(":blocker", id_set([blocker]))],
                )
            }
            None => self.condition_check(pair, keys::PAIR, "attribute_not_exists(pk)", &[]),
        }
    }
}
