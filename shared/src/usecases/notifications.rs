//! Notification preferences: per conversation (all messages, mentions only, or none, for good or until a time) on
//! the user's membership item, and overall (do not disturb until, previews) on their presence item. Whoever
//! decides to notify an offline member reads both anyway (the membership for its mentions, the presence to know
//! they are offline), so honouring them costs no request. Every device of the user is told of a change.

use std::sync::Arc;

use serde::Serialize;

use crate::delivery::Delivery;
use crate::error::{AppError, AppResult};
use crate::events::Event;
use crate::model::{Actor, ConversationId, ConversationNotifications, NotificationPreferences, now_iso};
use crate::ports::{ConnectionStore, ConversationStore, Store};

/// The answer to `PUT /conversations/:id/notifications`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationNotificationsSet {
    pub conversation_id: ConversationId,
    #[serde(flatten)]
    pub notifications: ConversationNotifications,
}

pub struct Notifications {
    conversations: Arc<dyn ConversationStore>,
    connections: Arc<dyn ConnectionStore>,
    delivery: Delivery,
}

impl Notifications {
    pub fn new(store: &Arc<dyn Store>, delivery: Delivery) -> Self {
        Notifications { conversations: store.clone(), connections: store.clone(), delivery }
    }

    /// Replaces the actor's setting for a conversation they are a member of (`NotFound` otherwise, like every
    /// conversation they cannot see).
    pub async fn set_for_conversation(
        &self,
        actor: &Actor,
        conversation_id: &ConversationId,
        input: ConversationNotifications,
    ) -> AppResult<ConversationNotificationsSet> {
        let notifications = input.validated(chrono::Utc::now())?;
        if !self.conversations.set_notifications(conversation_id, actor.id(), &notifications).await? {
            return Err(AppError::NotFound("conversation not found"));
        }
        let changed = Event::ConversationNotificationsChanged {
            conversation_id: conversation_id.clone(),
            notifications: notifications.clone(),
        };
        self.tell_own_devices(actor, changed).await;
        Ok(ConversationNotificationsSet { conversation_id: conversation_id.clone(), notifications })
    }

    /// The actor's preferences in force now.
    pub async fn preferences(&self, actor: &Actor) -> AppResult<NotificationPreferences> {
        Ok(self.connections.presence(actor.id()).await?.notifications.effective(&now_iso()))
    }

    pub async fn set_preferences(
        &self,
        actor: &Actor,
        input: NotificationPreferences,
    ) -> AppResult<NotificationPreferences> {
        let preferences = input.validated(chrono::Utc::now())?;
        self.connections.set_notification_preferences(actor.id(), &preferences).await?;
        self.tell_own_devices(actor, Event::NotificationPreferencesChanged { preferences: preferences.clone() }).await;
        Ok(preferences)
    }

    async fn tell_own_devices(&self, actor: &Actor, event: Event) {
        self.delivery.to_users(std::slice::from_ref(actor.id()), &[event.frame()], actor.origin()).await;
    }
}
