//! [`ConnectionStore`] over DynamoDB: a record per connection (who sent a frame) and one presence item per user
//! whose `conns` set lists their live connections (fan-out reads 100 users per `BatchGetItem`; patterns #5-#8,
//! #27).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;

use super::items::{connection_entry, presence_from_item};
use super::{DynamoDbStore, get_id, get_n, get_opt_s, get_s, id, keys, n, name_of, s};
use crate::error::AppResult;
use crate::model::{
    Connection, ConnectionId, ContactableBy, LiveConnection, NotificationPreferences, UserId, UserPresence,
    now_epoch_seconds,
};
use crate::ports::ConnectionStore;

fn connection_from_item(item: &super::Item) -> AppResult<Connection> {
    let pk = get_s(item, "pk")?;
    Ok(Connection {
        connection_id: ConnectionId::new(pk.strip_prefix("CONN#").unwrap_or(&pk)),
        user_id: get_id(item, "userId")?,
        username: get_s(item, "username")?,
        avatar: get_opt_s(item, "avatar"),
        connected_at: get_n(item, "connectedAt")?,
        expires_at: get_n(item, "ttl")?,
        session_id: get_opt_s(item, "sessionId").map(|s| s.parse()).transpose()?,
    })
}

impl DynamoDbStore {
    /// Applies `update` to the user's presence item (creating it) and returns the item as it is afterwards. Tried
    /// again while a transaction holds the item (blocks and push subscriptions write it in transactions).
    async fn update_presence(
        &self,
        user_id: &UserId,
        update: &str,
        values: Vec<(&str, AttributeValue)>,
    ) -> AppResult<(UserPresence, Vec<String>)> {
        let mut request = self
            .client
            .update_item()
            .set_key(Some(Self::key(keys::user(user_id), keys::PRESENCE)))
            .update_expression(update);
        for (name, value) in values {
            request = request.expression_attribute_values(name, value);
        }
        let item = self.update_if(request).await?.unwrap_or_default();
        Ok(presence_from_item(&item))
    }

    async fn remove_entries(&self, user_id: &UserId, entries: Vec<String>) -> AppResult<()> {
        self.update_presence(user_id, "DELETE conns :gone", vec![(":gone", AttributeValue::Ss(entries))]).await?;
        Ok(())
    }
}

#[async_trait]
impl ConnectionStore for DynamoDbStore {
    async fn add_connection(&self, c: &Connection) -> AppResult<UserPresence> {
        let mut record = Self::key(keys::connection(&c.connection_id), keys::CONN);
        record.insert("userId".into(), id(&c.user_id));
        record.insert("username".into(), s(&c.username));
        if let Some(avatar) = &c.avatar {
            record.insert("avatar".into(), s(avatar));
        }
        record.insert("connectedAt".into(), n(c.connected_at));
        if let Some(session_id) = &c.session_id {
            record.insert("sessionId".into(), id(session_id));
        }
        record.insert("ttl".into(), n(c.expires_at));
        self.client.put_item().table_name(&self.table).set_item(Some(record)).send().await?;
        let entry = AttributeValue::Ss(vec![connection_entry(&c.live())]);
        let (presence, _) = self.update_presence(&c.user_id, "ADD conns :c", vec![(":c", entry)]).await?;
        Ok(presence)
    }

    async fn get_connection(&self, connection_id: &ConnectionId) -> AppResult<Option<Connection>> {
        let Some(item) = self.get(keys::connection(connection_id), keys::CONN).await? else {
            return Ok(None);
        };
        let connection = connection_from_item(&item)?;
        // TTL deletion can lag by days; an expired record is a dead connection.
        Ok((connection.expires_at > now_epoch_seconds()).then_some(connection))
    }

    /// The presence's connections, then their records in one `BatchGetItem` per 100.
    async fn user_connections(&self, user_id: &UserId) -> AppResult<Vec<Connection>> {
        let live = self.presence(user_id).await?.connections;
        let keys = live.iter().map(|c| Self::key(keys::connection(&c.connection_id), keys::CONN)).collect();
        self.batch_get(keys, None).await?.iter().map(connection_from_item).collect()
    }

    async fn remove_connection(&self, c: &Connection, last_seen: &str) -> AppResult<UserPresence> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(keys::connection(&c.connection_id), keys::CONN)))
            .send()
            .await?;
        let (presence, expired) = self
            .update_presence(
                &c.user_id,
                "DELETE conns :c, bgConns :id SET lastSeen = :at",
                vec![
                    (":c", AttributeValue::Ss(vec![connection_entry(&c.live())])),
                    (":id", AttributeValue::Ss(vec![c.connection_id.to_string()])),
                    (":at", s(last_seen)),
                ],
            )
            .await?;
        if !expired.is_empty() {
            // Connections whose `$disconnect` never came; tidying them is not this request's business to fail.
            if let Err(e) = self.remove_entries(&c.user_id, expired).await {
                e.log();
            }
        }
        Ok(presence)
    }

    async fn drop_gone_connection(&self, user_id: &UserId, connection: &LiveConnection) -> AppResult<()> {
        self.remove_entries(user_id, vec![connection_entry(connection)]).await
    }

    async fn presence(&self, user_id: &UserId) -> AppResult<UserPresence> {
        let item = self.get(keys::user(user_id), keys::PRESENCE).await?.unwrap_or_default();
        Ok(presence_from_item(&item).0)
    }

    async fn presences(&self, user_ids: &[UserId]) -> AppResult<HashMap<UserId, UserPresence>> {
        let ids: std::collections::BTreeSet<&UserId> = user_ids.iter().collect();
        let keys = ids.iter().map(|id| Self::key(keys::user(id), keys::PRESENCE)).collect();
        let mut found: HashMap<UserId, UserPresence> =
            ids.into_iter().map(|id| (id.clone(), UserPresence::default())).collect();
        for item in self
            .batch_get(
                keys,
                Some("pk, conns, userStatus, lastSeen, blocked, contactableBy, dndUntil, previews, pushCount, bgConns"),
            )
            .await?
        {
            let pk = get_s(&item, "pk")?;
            if let Some(user_id) = pk.strip_prefix("USER#").and_then(|id| UserId::parse(id).ok()) {
                found.insert(user_id, presence_from_item(&item).0);
            }
        }
        Ok(found)
    }

    async fn set_status(&self, user_id: &UserId, status: &str) -> AppResult<()> {
        self.update_presence(user_id, "SET userStatus = :s", vec![(":s", s(status))]).await.map(drop)
    }

    async fn set_background(&self, user_id: &UserId, connection_id: &ConnectionId, background: bool) -> AppResult<()> {
        let update = if background { "ADD bgConns :c" } else { "DELETE bgConns :c" };
        let connection = AttributeValue::Ss(vec![connection_id.to_string()]);
        self.update_presence(user_id, update, vec![(":c", connection)]).await.map(drop)
    }

    async fn set_contactable_by(&self, user_id: &UserId, setting: ContactableBy) -> AppResult<()> {
        self.update_presence(user_id, "SET contactableBy = :c", vec![(":c", name_of(&setting)?)]).await.map(drop)
    }

    async fn set_notification_preferences(
        &self,
        user_id: &UserId,
        preferences: &NotificationPreferences,
    ) -> AppResult<()> {
        let previews = (":p", AttributeValue::Bool(preferences.previews));
        let update = match &preferences.do_not_disturb_until {
            Some(until) => {
                self.update_presence(user_id, "SET previews = :p, dndUntil = :d", vec![previews, (":d", s(until))])
            }
            None => self.update_presence(user_id, "SET previews = :p REMOVE dndUntil", vec![previews]),
        };
        update.await.map(drop)
    }
}
