//! [`UserStore`] over DynamoDB: a profile per user, a claim per lowercased username (uniqueness), and the
//! username search index `gsi1` (access patterns #1-#4).

use async_trait::async_trait;

use super::items::{standing_from_item, user_from_item};
use super::{DynamoDbStore, cancellation_codes, failed_condition, get_id, id, keys, s};
use crate::error::{AppError, AppResult};
use crate::model::{User, UserId, UserRecord};
use crate::ports::{UserKey, UserStore, username_key};

const USER_INDEX: &str = "gsi1";
/// Profile attributes a client may see; the index projects everything, including the password hash.
const PUBLIC_PROFILE: &str = "userId, username, avatar, createdAt";

#[async_trait]
impl UserStore for DynamoDbStore {
    async fn create_user(&self, record: &UserRecord) -> AppResult<()> {
        let user = &record.user;
        let name_key = username_key(&user.username);
        let mut profile = Self::key(keys::user(&user.id), keys::PROFILE);
        profile.insert("userId".into(), id(&user.id));
        profile.insert("username".into(), s(&user.username));
        if let Some(avatar) = &user.avatar {
            profile.insert("avatar".into(), s(avatar));
        }
        profile.insert("createdAt".into(), s(&user.created_at));
        profile.insert("passwordHash".into(), s(&record.password_hash));
        profile.insert("gsi1pk".into(), s(keys::username_shard(&name_key)));
        profile.insert("gsi1sk".into(), s(&name_key));
        let mut claim = Self::key(keys::username(&name_key), keys::UNAME);
        claim.insert("userId".into(), id(&user.id));
        match self.transact(vec![self.put(claim, true)?, self.put(profile, true)?]).await {
            Ok(()) => Ok(()),
            Err(e) if cancellation_codes(&e).is_some_and(|c| failed_condition(&c, 0)) => {
                Err(AppError::Conflict("username is already taken"))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn get_user(&self, user_id: &UserId) -> AppResult<Option<User>> {
        self.get(keys::user(user_id), keys::PROFILE).await?.map(|item| user_from_item(&item)).transpose()
    }

    async fn get_users(&self, user_ids: &[UserId]) -> AppResult<Vec<User>> {
        let ids: std::collections::BTreeSet<&UserId> = user_ids.iter().collect();
        let keys = ids.into_iter().map(|id| Self::key(keys::user(id), keys::PROFILE)).collect();
        let items = self.batch_get(keys, Some(PUBLIC_PROFILE)).await?;
        items.iter().map(user_from_item).collect()
    }

    async fn find_by_username(&self, username: &str) -> AppResult<Option<UserRecord>> {
        let Some(claim) = self.get(keys::username(&username_key(username)), keys::UNAME).await? else {
            return Ok(None);
        };
        self.user_record(&get_id(&claim, "userId")?).await
    }

    async fn search_users(&self, prefix: &str, after: Option<&UserKey>, limit: usize) -> AppResult<Vec<User>> {
        let shard = keys::username_shard(prefix);
        // The start key of an index query names the index key and the table key of the last item.
        let start = after.map(|a| {
            let mut key = Self::key(keys::user(&a.id), keys::PROFILE);
            key.insert("gsi1pk".into(), s(&shard));
            key.insert("gsi1sk".into(), s(&a.name));
            key
        });
        let query = self
            .client
            .query()
            .index_name(USER_INDEX)
            .key_condition_expression("gsi1pk = :shard AND begins_with(gsi1sk, :prefix)")
            .expression_attribute_values(":shard", s(&shard))
            .expression_attribute_values(":prefix", s(prefix))
            .projection_expression(PUBLIC_PROFILE);
        self.query_all(query, start, Some(limit)).await?.iter().map(user_from_item).collect()
    }

    async fn user_record(&self, user_id: &UserId) -> AppResult<Option<UserRecord>> {
        let Some(item) = self.get(keys::user(user_id), keys::PROFILE).await? else {
            return Ok(None);
        };
        Ok(Some(UserRecord {
            user: user_from_item(&item)?,
            password_hash: super::get_s(&item, "passwordHash")?,
            standing: standing_from_item(&item),
        }))
    }

    async fn set_password_hash(&self, user_id: &UserId, password_hash: &str) -> AppResult<()> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(keys::user(user_id), keys::PROFILE)))
            .update_expression("SET passwordHash = :hash")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":hash", s(password_hash))
            .send()
            .await?;
        Ok(())
    }
}
