//! Deleting one's account (`DELETE /users/me`, app stores and GDPR require it): the request closes the account at
//! once, so it is over from the user's point of view when the answer comes, and leaves the erasure of what they
//! left behind to the account queue ([`crate::usecases::erasure`]).
//!
//! The username is freed, not kept: it is personal data, and the tombstone that stays under the user's id is
//! shown as "Deleted account", which no one can register. The erasure job is enqueued before the account is
//! closed, so a closed account always has a job; a job that finds the account still open waits for it, and is
//! dropped if it never closes.

use serde::{Deserialize, Serialize};

use super::{Accounts, Authenticated};
use crate::auth;
use crate::error::{AppError, AppResult};
use crate::model::{ErasureJob, now_iso};

/// How long the erasure job waits before the worker sees it: time for the request to close the account (a job
/// that still finds it open is retried after the queue's visibility timeout).
const CLOSING_SECS: u32 = 5;

/// `DELETE /users/me` body: the password proves it is the owner, not a stolen token.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeleteAccount {
    pub password: String,
}

/// What deleting did now; the erasure follows in the background.
#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AccountDeleted {
    /// Always `erasing`: messages, memberships and relations are being erased.
    pub status: &'static str,
    pub ended_sessions: usize,
    pub closed_connections: usize,
}

impl Accounts {
    pub async fn delete_account(&self, who: &Authenticated, input: DeleteAccount) -> AppResult<AccountDeleted> {
        const GONE: AppError = AppError::Unauthorized("account no longer exists");
        let record = self.users.user_record(&who.user.id).await?.ok_or(GONE)?;
        if !auth::verify_password(&input.password, &record.password_hash).await {
            return Err(AppError::Forbidden("the password is wrong"));
        }
        let at = now_iso();
        self.erasures.enqueue(&ErasureJob::new(who.user.id.clone(), at.clone()).into(), CLOSING_SECS).await?;
        if !self.erasure.tombstone_user(&who.user.id, &record.user.username, &at).await? {
            // Deleted by a request of another session a moment ago: that one closed it.
            return Err(GONE);
        }
        let ended = self.closer.end_all(&who.user.id).await?;
        tracing::warn!(user_id = %who.user.id, "account deleted; erasure queued");
        Ok(AccountDeleted {
            status: "erasing",
            ended_sessions: ended.ended_sessions,
            closed_connections: ended.closed_connections,
        })
    }
}
