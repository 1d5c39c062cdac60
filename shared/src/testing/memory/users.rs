//! [`UserStore`] in memory: users by id, usernames unique regardless of case.

use std::collections::BTreeSet;

use async_trait::async_trait;

use crate::error::{AppError, AppResult};
use crate::model::{User, UserId, UserRecord};
use crate::ports::{UserKey, UserStore, username_key};

use super::InMemoryStore;

#[async_trait]
impl UserStore for InMemoryStore {
    async fn create_user(&self, record: &UserRecord) -> AppResult<()> {
        let mut state = self.lock();
        let key = username_key(&record.user.username);
        if state.usernames.contains_key(&key) {
            return Err(AppError::Conflict("username is already taken"));
        }
        state.usernames.insert(key, record.user.id.clone());
        state.users.insert(record.user.id.clone(), record.clone());
        Ok(())
    }

    async fn get_user(&self, user_id: &UserId) -> AppResult<Option<User>> {
        Ok(self.lock().users.get(user_id).map(|r| r.user.clone()))
    }

    async fn get_users(&self, user_ids: &[UserId]) -> AppResult<Vec<User>> {
        let state = self.lock();
        let ids: BTreeSet<&UserId> = user_ids.iter().collect();
        Ok(ids.into_iter().filter_map(|id| state.users.get(id).map(|r| r.user.clone())).collect())
    }

    async fn find_by_username(&self, username: &str) -> AppResult<Option<UserRecord>> {
        let state = self.lock();
        Ok(state.usernames.get(&username_key(username)).and_then(|id| state.users.get(id)).cloned())
    }

    async fn search_users(&self, prefix: &str, after: Option<&UserKey>, limit: usize) -> AppResult<Vec<User>> {
        let state = self.lock();
        let mut found: Vec<(UserKey, User)> = state
            .users
            .values()
            .map(|r| (UserKey { name: username_key(&r.user.username), id: r.user.id.clone() }, r.user.clone()))
            .filter(|(key, _)| key.name.starts_with(prefix))
            .filter(|(key, _)| after.is_none_or(|a| (&key.name, &key.id) > (&a.name, &a.id)))
            .collect();
        found.sort_by(|(a, _), (b, _)| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
        Ok(found.into_iter().take(limit).map(|(_, user)| user).collect())
    }

    async fn user_record(&self, user_id: &UserId) -> AppResult<Option<UserRecord>> {
        Ok(self.lock().users.get(user_id).cloned())
    }

    async fn set_password_hash(&self, user_id: &UserId, password_hash: &str) -> AppResult<()> {
        let mut state = self.lock();
        let record = state.users.get_mut(user_id).ok_or(AppError::NotFound("user not found"))?;
        record.password_hash = password_hash.to_owned();
        Ok(())
    }
}
