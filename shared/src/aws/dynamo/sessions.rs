//! [`SessionStore`] over DynamoDB: one item per login under its user (`USER#<id>`, `SESSION#<id>`), with the
//! current refresh-token generation and a TTL (patterns #47-#50).

use async_trait::async_trait;

use super::items::{standing_from_item, user_from_item};
use super::{DynamoDbStore, get_id, get_n, get_s, id, keys, n, s, unless_refused};
use crate::error::AppResult;
use crate::model::{SessionId, SessionRecord, Standing, User, UserId, now_epoch_seconds};
use crate::ports::SessionStore;

fn session_from_item(item: &super::Item) -> AppResult<SessionRecord> {
    Ok(SessionRecord {
        id: get_id(item, "sessionId")?,
        user_id: get_id(item, "userId")?,
        generation: get_n(item, "generation")?,
        created_at: get_s(item, "createdAt")?,
        refreshed_at: get_s(item, "refreshedAt")?,
        expires_at: get_n(item, "ttl")?,
    })
}

#[async_trait]
impl SessionStore for DynamoDbStore {
    async fn create_session(&self, session: &SessionRecord) -> AppResult<()> {
        let mut item = Self::key(keys::user(&session.user_id), keys::session(&session.id));
        item.insert("sessionId".into(), id(&session.id));
        item.insert("userId".into(), id(&session.user_id));
        item.insert("generation".into(), n(session.generation));
        item.insert("createdAt".into(), s(&session.created_at));
        item.insert("refreshedAt".into(), s(&session.refreshed_at));
        item.insert("ttl".into(), n(session.expires_at));
        self.client.put_item().table_name(&self.table).set_item(Some(item)).send().await?;
        Ok(())
    }

    /// The profile and the session in one `BatchGetItem`.
    async fn session_user(&self, user_id: &UserId, session_id: &SessionId) -> AppResult<Option<(User, Standing)>> {
        let wanted = vec![
            Self::key(keys::user(user_id), keys::PROFILE),
            Self::key(keys::user(user_id), keys::session(session_id)),
        ];
        let (mut user, mut live) = (None, false);
        for item in self.batch_get(wanted, None).await? {
            if get_s(&item, "sk")? == keys::PROFILE {
                user = Some((user_from_item(&item)?, standing_from_item(&item)));
            } else {
                // TTL deletion can lag by days: an expired session is over.
                live = session_from_item(&item)?.expires_at > now_epoch_seconds();
            }
        }
        Ok(user.filter(|_| live))
    }

    async fn rotate_session(
        &self,
        user_id: &UserId,
        session_id: &SessionId,
        generation: u64,
        refreshed_at: &str,
        expires_at: u64,
    ) -> AppResult<bool> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(keys::user(user_id), keys::session(session_id))))
            .update_expression("SET generation = :next, refreshedAt = :at, #ttl = :expires")
            .condition_expression("generation = :generation AND #ttl > :now")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":generation", n(generation))
            .expression_attribute_values(":next", n(generation + 1))
            .expression_attribute_values(":at", s(refreshed_at))
            .expression_attribute_values(":expires", n(expires_at))
            .expression_attribute_values(":now", n(now_epoch_seconds()))
            .send()
            .await;
        Ok(unless_refused(result)?.is_some())
    }

    async fn delete_session(&self, user_id: &UserId, session_id: &SessionId) -> AppResult<bool> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(keys::user(user_id), keys::session(session_id))))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await?;
        Ok(out.attributes.is_some_and(|old| !old.is_empty()))
    }

    async fn sessions(&self, user_id: &UserId) -> AppResult<Vec<SessionRecord>> {
        let query = self
            .client
            .query()
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", s(keys::user(user_id)))
            .expression_attribute_values(":prefix", s(keys::SESSION_PREFIX))
            .consistent_read(true);
        let now = now_epoch_seconds();
        let sessions =
            self.query_all(query, None, None).await?.iter().map(session_from_item).collect::<AppResult<Vec<_>>>()?;
        Ok(sessions.into_iter().filter(|session| session.expires_at > now).collect())
    }
}
