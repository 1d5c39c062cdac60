//! [`ConversationStore`] over DynamoDB: `META` per conversation (member count, roster version and, for up to
//! [`LISTED_MEMBERS_MAX`] members, the member set), a membership item per member under the user (read pointer),
//! a member item per member under a large group, and a claim per private pair (patterns #9-#11, #17, #29-#31,
//! #33-#36).
//!
//! A listed conversation's `MEMBER#` items may be incomplete (adds do not write them) but never name a
//! non-member (removes always delete them); the write that makes a group large writes them for every member,
//! so a large group's are exact.

use std::collections::{BTreeSet, HashMap};

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, Select, TransactWriteItem, Update};

use super::items::{MEMBERSHIP_ATTRIBUTES, conversation_from_item, kind_str, membership_from_item};
use super::{
    DynamoDbStore, Item, READERS_INDEX, cancellation_codes, failed_condition, get_id, get_opt_s, get_s, id, id_set,
    keys, n, name_of, s, unless_refused,
};
use crate::error::{AppError, AppResult};
use crate::model::{
    Conversation, ConversationId, ConversationKind, ConversationNotifications, LISTED_MEMBERS_MAX, Roles, Roster,
    UserId,
};
use crate::ports::{ConversationChanges, ConversationStore, Created, Membership};

/// Items one `TransactWriteItems` may hold.
const TRANSACTION_ITEMS: usize = 100;

/// What a membership write does to the `members` set on `META`.
enum SetChange {
    Add(AttributeValue),
    Delete(AttributeValue),
    Replace(AttributeValue),
    Remove,
    Keep,
}

/// How one add treats the roster.
enum RosterWrite {
    /// Stays listed: the set changes with the members.
    Listed,
    /// Becomes large: the set goes, and every member (old and new) gets a `MEMBER#` item.
    Crossing,
    /// Large before and after: only `MEMBER#` items change.
    Large,
}

/// Condition that `META`'s roster is still at `version` (conversations stored before versions existed have
/// none, which reads as 0), and the value it uses.
fn roster_unchanged(version: u64) -> (&'static str, Option<AttributeValue>) {
    if version == 0 {
        ("attribute_not_exists(rosterVersion)", None)
    } else {
        ("rosterVersion = :version", Some(n(version)))
    }
}

/// The user a membership item (`USER#<id>`, `CONV#<id>`) belongs to.
fn membership_user(item: &Item) -> AppResult<UserId> {
    get_s(item, "pk")?
        .strip_prefix("USER#")
        .and_then(|id| UserId::parse(id).ok())
        .ok_or_else(|| AppError::internal("stored membership has an invalid user"))
}

impl DynamoDbStore {
    /// The `META` update of a membership or role change: count, version, `updatedAt`, the change to the set and,
    /// when given, the roles, on condition the roster is unchanged.
    fn roster_update(
        &self,
        conversation: &Conversation,
        count: usize,
        members: SetChange,
        roles: Option<&Roles>,
        now: &str,
    ) -> AppResult<TransactWriteItem> {
        let (condition, version) = roster_unchanged(conversation.roster_version);
        let mut set = vec!["memberCount = :count", "rosterVersion = :next", "updatedAt = :now"];
        let mut remove = Vec::new();
        let mut other = "";
        let (mut owner, mut admins) = (None, None);
        let value = match members {
            SetChange::Add(value) => {
                other = " ADD members :members";
                Some(value)
            }
            SetChange::Delete(value) => {
                other = " DELETE members :members";
                Some(value)
            }
            SetChange::Replace(value) => {
                set.push("members = :members");
                Some(value)
            }
            SetChange::Remove => {
                remove.push("members");
                None
            }
            SetChange::Keep => None,
        };
        if let Some(roles) = roles {
            set.push("ownerId = :owner");
            owner = Some(id(&roles.owner));
            // DynamoDB has no empty sets: no admins is no attribute.
            if roles.admins.is_empty() {
                remove.push("admins");
            } else {
                set.push("admins = :admins");
                admins = Some(id_set(&roles.admins));
            }
        }
        let mut expression = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        expression.push_str(other);
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(keys::conversation(&conversation.id), keys::META)))
            .update_expression(expression)
            .condition_expression(condition)
            .set_expression_attribute_values(Some(
                [
                    (":count", Some(n(count as u64))),
                    (":next", Some(n(conversation.roster_version + 1))),
                    (":now", Some(s(now))),
                    (":version", version),
                    (":members", value),
                    (":owner", owner),
                    (":admins", admins),
                ]
                .into_iter()
                .filter_map(|(name, value)| Some((name.to_owned(), value?)))
                .collect(),
            ))
            .build()?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    fn member_item(&self, conversation_id: &ConversationId, user_id: &UserId) -> AppResult<TransactWriteItem> {
        self.put(Self::key(keys::conversation(conversation_id), keys::member(user_id)), false)
    }

    fn membership_key(conversation_id: &ConversationId, user_id: &UserId) -> Item {
        Self::key(keys::user(user_id), keys::conversation(conversation_id))
    }
}

#[async_trait]
impl ConversationStore for DynamoDbStore {
    async fn create_conversation(&self, c: &Conversation) -> AppResult<Created<Conversation>> {
        let Some(members) = c.roster.listed() else {
            return Err(AppError::internal("a conversation is created with its members listed"));
        };
        let mut meta = Self::key(keys::conversation(&c.id), keys::META);
        meta.insert("conversationId".into(), id(&c.id));
        meta.insert("type".into(), s(kind_str(c.kind)));
        if let Some(name) = &c.name {
            meta.insert("name".into(), s(name));
        }
        if let Some(avatar) = &c.avatar {
            meta.insert("avatar".into(), s(avatar));
        }
        meta.insert("members".into(), id_set(members));
        meta.insert("memberCount".into(), n(members.len() as u64));
        meta.insert("rosterVersion".into(), n(c.roster_version));
        meta.insert("createdBy".into(), id(&c.created_by));
        if c.kind == ConversationKind::Group {
            meta.insert("ownerId".into(), id(&c.roles.owner));
            if !c.roles.admins.is_empty() {
                meta.insert("admins".into(), id_set(&c.roles.admins));
            }
        }
        meta.insert("createdAt".into(), s(&c.created_at));
        meta.insert("updatedAt".into(), s(&c.updated_at));
        meta.insert("lastSeq".into(), n(c.last_seq));

        let pair_key = c.private_pair_key();
        let mut items = Vec::with_capacity(members.len() + 2);
        if let Some(pair) = &pair_key {
            let mut claim = Self::key(keys::pair(pair), keys::PAIR);
            claim.insert("conversationId".into(), id(&c.id));
            items.push(self.put(claim, true)?);
        }
        items.push(self.put(meta, true)?);
        for member in members {
            let mut membership = Self::membership_key(&c.id, member);
            membership.insert("conversationId".into(), id(&c.id));
            membership.insert("joinedAt".into(), s(&c.created_at));
            membership.insert("lastReadSeq".into(), n(0));
            items.push(self.put(membership, false)?);
        }
        // Two users of whom one blocked the other cannot start a private conversation; a block made meanwhile
        // checks this pair's claim in its own transaction.
        let block_checks = items.len();
        if pair_key.is_some() {
            let pair: Vec<&UserId> = members.iter().collect();
            for (owner, other) in [(pair[0], pair[1]), (pair[1], pair[0])] {
                items.push(self.condition_check(
                    keys::user(owner),
                    &keys::block(other),
                    "attribute_not_exists(pk)",
                    &[],
                )?);
            }
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
                    .get_conversation(&get_id(&claim, "conversationId")?)
                    .await?
                    .ok_or_else(|| AppError::internal("pair claim points at a missing conversation"))?;
                Ok(Created::Existing(existing))
            }
            Err(e)
                if cancellation_codes(&e)
                    .is_some_and(|codes| (block_checks..codes.len()).any(|i| failed_condition(&codes, i))) =>
            {
                Err(AppError::Forbidden("one of you blocked the other: you cannot start a conversation"))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn get_conversation(&self, conversation_id: &ConversationId) -> AppResult<Option<Conversation>> {
        self.get(keys::conversation(conversation_id), keys::META)
            .await?
            .map(|item| conversation_from_item(&item))
            .transpose()
    }

    async fn find_private(&self, a: &UserId, b: &UserId) -> AppResult<Option<Conversation>> {
        match self.get(keys::pair(&Conversation::pair_key_of(a, b)), keys::PAIR).await? {
            Some(claim) => self.get_conversation(&get_id(&claim, "conversationId")?).await,
            None => Ok(None),
        }
    }

    async fn get_conversations(&self, ids: &[ConversationId]) -> AppResult<Vec<Conversation>> {
        let ids: BTreeSet<&ConversationId> = ids.iter().collect();
        let keys = ids.into_iter().map(|id| Self::key(keys::conversation(id), keys::META)).collect();
        self.batch_get(keys, None).await?.iter().map(conversation_from_item).collect()
    }

    /// `META` and the membership in one consistent `BatchGetItem`.
    async fn member_conversation(
        &self,
        conversation_id: &ConversationId,
        user_id: &UserId,
    ) -> AppResult<Option<(Conversation, Membership)>> {
        let meta = Self::key(keys::conversation(conversation_id), keys::META);
        let items = self.batch_get(vec![meta, Self::membership_key(conversation_id, user_id)], None).await?;
        let (mut conversation, mut membership) = (None, None);
        for item in &items {
            if get_s(item, "sk")? == keys::META {
                conversation = Some(conversation_from_item(item)?);
            } else {
                membership = Some(membership_from_item(conversation_id.clone(), item));
            }
        }
        Ok(conversation.zip(membership))
    }

    async fn memberships(&self, user_id: &UserId) -> AppResult<Vec<Membership>> {
        let query = self
            .client
            .query()
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", s(keys::user(user_id)))
            .expression_attribute_values(":prefix", s(keys::CONV_PREFIX))
            .projection_expression(MEMBERSHIP_ATTRIBUTES)
            .consistent_read(true);
        self.query_all(query, None, None)
            .await?
            .iter()
            .map(|item| Ok(membership_from_item(get_id(item, "conversationId")?, item)))
            .collect()
    }

    async fn set_notifications(
        &self,
        conversation_id: &ConversationId,
        user_id: &UserId,
        setting: &ConversationNotifications,
    ) -> AppResult<bool> {
        let level = (":level", name_of(&setting.level)?);
        let update = self
            .client
            .update_item()
            .set_key(Some(Self::membership_key(conversation_id, user_id)))
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(level.0, level.1);
        let update = match &setting.until {
            Some(until) => update
                .update_expression("SET notifyLevel = :level, notifyUntil = :until")
                .expression_attribute_values(":until", s(until)),
            None => update.update_expression("SET notifyLevel = :level REMOVE notifyUntil"),
        };
        Ok(self.update_if(update).await?.is_some())
    }

    async fn listed_members_of(&self, conversation_ids: &[ConversationId]) -> AppResult<Vec<UserId>> {
        let keys = conversation_ids.iter().map(|id| Self::key(keys::conversation(id), keys::META)).collect();
        let mut members = BTreeSet::new();
        // A large group's META has no `members`: it contributes nobody.
        for item in self.batch_get(keys, Some("members")).await? {
            if let Some(AttributeValue::Ss(ids)) = item.get("members") {
                members.extend(ids.iter().filter_map(|id| UserId::parse(id).ok()));
            }
        }
        Ok(members.into_iter().collect())
    }

    async fn large_members(
        &self,
        conversation_id: &ConversationId,
        after: Option<&UserId>,
        limit: usize,
    ) -> AppResult<Vec<UserId>> {
        let pk = keys::conversation(conversation_id);
        let query = self
            .client
            .query()
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", s(&pk))
            .expression_attribute_values(":prefix", s(keys::MEMBER_PREFIX))
            .projection_expression("sk")
            .consistent_read(true);
        let start = after.map(|user_id| Self::key(pk, keys::member(user_id)));
        let items = self.query_all(query, start, (limit != usize::MAX).then_some(limit)).await?;
        items
            .iter()
            .map(|item| {
                let sk = get_s(item, "sk")?;
                sk.strip_prefix(keys::MEMBER_PREFIX)
                    .and_then(|id| UserId::parse(id).ok())
                    .ok_or_else(|| AppError::internal("stored member item has an invalid id"))
            })
            .collect()
    }

    async fn notification_settings(
        &self,
        conversation_id: &ConversationId,
        user_ids: &[UserId],
    ) -> AppResult<HashMap<UserId, ConversationNotifications>> {
        let keys = user_ids.iter().map(|user_id| Self::membership_key(conversation_id, user_id)).collect();
        let items = self.batch_get(keys, Some("pk, conversationId, notifyLevel, notifyUntil")).await?;
        items
            .iter()
            .map(|item| {
                let membership = membership_from_item(conversation_id.clone(), item);
                Ok((membership_user(item)?, membership.notifications))
            })
            .collect()
    }

    async fn members_among(&self, conversation_id: &ConversationId, user_ids: &[UserId]) -> AppResult<Vec<UserId>> {
        let keys = user_ids.iter().map(|user_id| Self::membership_key(conversation_id, user_id)).collect();
        self.batch_get(keys, Some("pk")).await?.iter().map(membership_user).collect()
    }

    /// Counted on the `readers` index: `conversationId = :id AND lastReadSeq >= :seq`, keys only, paged.
    async fn readers(&self, conversation_id: &ConversationId, seq: u64) -> AppResult<u64> {
        let mut total = 0u64;
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(READERS_INDEX)
                .key_condition_expression("conversationId = :id AND lastReadSeq >= :seq")
                .expression_attribute_values(":id", id(conversation_id))
                .expression_attribute_values(":seq", n(seq))
                .select(Select::Count)
                .set_exclusive_start_key(start)
                .send()
                .await?;
            total += out.count.max(0) as u64;
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(total),
            }
        }
    }

    async fn update_conversation(
        &self,
        conversation: &Conversation,
        changes: &ConversationChanges,
        updated_at: &str,
    ) -> AppResult<Option<Conversation>> {
        let (unchanged, version) = roster_unchanged(conversation.roster_version);
        let mut set = vec!["updatedAt = :now"];
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(keys::conversation(&conversation.id), keys::META)))
            .condition_expression(format!("#type = :group AND {unchanged}"))
            .expression_attribute_names("#type", "type")
            .expression_attribute_values(":group", s("group"))
            .expression_attribute_values(":now", s(updated_at))
            .return_values(ReturnValue::AllNew);
        if let Some(version) = version {
            update = update.expression_attribute_values(":version", version);
        }
        if let Some(name) = &changes.name {
            set.push("#name = :name");
            update = update.expression_attribute_names("#name", "name").expression_attribute_values(":name", s(name));
        }
        if let Some(avatar) = &changes.avatar {
            set.push("avatar = :avatar");
            update = update.expression_attribute_values(":avatar", s(avatar));
        }
        let written = unless_refused(update.update_expression(format!("SET {}", set.join(", "))).send().await)?;
        written.map(|out| conversation_from_item(&out.attributes.unwrap_or_default())).transpose()
    }

    /// One transaction: `META` (count, version, the set while listed) and, per added member, the membership and
    /// (in a large group) the member item. The write that makes the group large also writes the member items of
    /// everyone already in it, so it takes fewer new members.
    async fn add_members(
        &self,
        conversation: &Conversation,
        candidates: &[UserId],
        now: &str,
    ) -> AppResult<Option<(Conversation, usize)>> {
        let count = conversation.roster.count() as usize;
        let (mode, taken) = match &conversation.roster {
            Roster::Listed(listed) => {
                let fits_listed = LISTED_MEMBERS_MAX.saturating_sub(count);
                let crossing = candidates.len().min((TRANSACTION_ITEMS - 1 - listed.len()) / 2);
                if candidates.len() <= fits_listed || count + crossing <= LISTED_MEMBERS_MAX {
                    (RosterWrite::Listed, candidates.len().min(fits_listed))
                } else {
                    (RosterWrite::Crossing, crossing)
                }
            }
            Roster::Large { .. } => (RosterWrite::Large, candidates.len().min((TRANSACTION_ITEMS - 1) / 2)),
        };
        let new_ids = &candidates[..taken];
        if new_ids.is_empty() {
            return Ok(Some((conversation.clone(), 0)));
        }
        let change = match mode {
            RosterWrite::Listed => SetChange::Add(id_set(new_ids)),
            RosterWrite::Crossing => SetChange::Remove,
            RosterWrite::Large => SetChange::Keep,
        };
        let mut items = vec![self.roster_update(conversation, count + taken, change, None, now)?];
        if let (RosterWrite::Crossing, Some(listed)) = (&mode, conversation.roster.listed()) {
            for member in listed {
                items.push(self.member_item(&conversation.id, member)?);
            }
        }
        for user_id in new_ids {
            let mut membership = Self::membership_key(&conversation.id, user_id);
            membership.insert("conversationId".into(), id(&conversation.id));
            membership.insert("joinedAt".into(), s(now));
            membership.insert("lastReadSeq".into(), n(conversation.last_seq));
            // A concurrent add of the same user fails here instead of resetting their read pointer.
            items.push(self.put(membership, true)?);
            if !matches!(mode, RosterWrite::Listed) {
                items.push(self.member_item(&conversation.id, user_id)?);
            }
        }
        if !self.transact_unless_raced(items).await? {
            return Ok(None);
        }
        Ok(self.get_conversation(&conversation.id).await?.map(|updated| (updated, taken)))
    }

    /// One transaction: `META` (with the roles after), the membership (which must exist) and the member item. A
    /// large group that shrinks to [`LISTED_MEMBERS_MAX`] gets its set back, read from the member items under the
    /// same version condition.
    async fn remove_member(
        &self,
        conversation: &Conversation,
        user_id: &UserId,
        roles: &Roles,
        now: &str,
    ) -> AppResult<Option<Conversation>> {
        let count = (conversation.roster.count() as usize).saturating_sub(1);
        let change = match &conversation.roster {
            Roster::Listed(_) => SetChange::Delete(id_set([user_id])),
            Roster::Large { .. } if count <= LISTED_MEMBERS_MAX => {
                let rest: Vec<UserId> = self
                    .large_members(&conversation.id, None, usize::MAX)
                    .await?
                    .into_iter()
                    .filter(|member| member != user_id)
                    .collect();
                if rest.is_empty() { SetChange::Remove } else { SetChange::Replace(id_set(&rest)) }
            }
            Roster::Large { .. } => SetChange::Keep,
        };
        let roles = (conversation.kind == ConversationKind::Group).then_some(roles);
        let items = vec![
            self.roster_update(conversation, count, change, roles, now)?,
            self.delete_if_exists(keys::user(user_id), &keys::conversation(&conversation.id))?,
            self.delete(keys::conversation(&conversation.id), &keys::member(user_id))?,
        ];
        if !self.transact_unless_raced(items).await? {
            return Ok(None);
        }
        self.get_conversation(&conversation.id).await
    }

    /// `META` alone, under the same version condition as membership writes (a transaction of one item, so a race
    /// reads like theirs).
    async fn set_roles(
        &self,
        conversation: &Conversation,
        roles: &Roles,
        now: &str,
    ) -> AppResult<Option<Conversation>> {
        let count = conversation.roster.count() as usize;
        let items = vec![self.roster_update(conversation, count, SetChange::Keep, Some(roles), now)?];
        if !self.transact_unless_raced(items).await? {
            return Ok(None);
        }
        self.get_conversation(&conversation.id).await
    }

    /// The candidates' memberships (`BatchGetItem`, 100 keys per call), compared by `joinedAt`.
    async fn longest_standing(
        &self,
        conversation_id: &ConversationId,
        candidates: &[UserId],
    ) -> AppResult<Option<UserId>> {
        let keys = candidates.iter().map(|user_id| Self::membership_key(conversation_id, user_id)).collect();
        let mut joined = Vec::with_capacity(candidates.len());
        for item in self.batch_get(keys, Some("pk, joinedAt")).await? {
            joined.push((get_opt_s(&item, "joinedAt").unwrap_or_default(), membership_user(&item)?));
        }
        Ok(joined.into_iter().min().map(|(_, user_id)| user_id))
    }
}
