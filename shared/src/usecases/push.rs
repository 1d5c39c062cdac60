//! Push notifications for members who are not connected, in three steps that never touch the send path:
//! [`PushSubscriptions`] registers a user's browsers and phones (REST); [`PushPlanner`] turns a new message from the table's
//! stream into one [`PushJob`] per subscription of each member who should hear of it (offline, not in do not
//! disturb, the conversation not muted, or muted to mentions and mentioned, the sender not blocked);
//! [`PushSender`] sends one job (a browser's encrypted and posted to its push service, a phone's published through
//! SNS), forgets a subscription the service calls gone, and puts a job the service could not take back on the
//! queue with a growing delay (a retry is sent as the message reads then: edited, or not at all once deleted).

use std::sync::Arc;
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt, stream};
use serde::Serialize;

use crate::error::{AppError, AppResult};
use crate::model::{
    Actor, Conversation, ConversationKind, Message, NewPushSubscription, NotifyLevel, PushNotification, PushPlatform,
    PushSubscription, PushSubscriptionView, UserId, UserPresence, ValidSubscription, is_subscription_id,
    now_epoch_seconds, now_iso, subscription_id,
};
use crate::ports::{
    ConnectionStore, ConversationStore, Created, MessageStore, MobilePush, PushJob, PushQueue, PushRequest,
    PushResponse, PushService, PushStore, Store, SubscriptionAdded,
};
use crate::webpush::{self, VapidKey};

/// The answer to `GET /push/server-key`: what browsers subscribe with (`applicationServerKey`).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerKey {
    pub public_key: String,
}

/// Registering, listing and removing the actor's push subscriptions.
pub struct PushSubscriptions {
    store: Arc<dyn PushStore>,
    mobile: Arc<dyn MobilePush>,
    server_key: String,
    allow_http: bool,
}

impl PushSubscriptions {
    /// `allow_http`: whether `http` endpoints are accepted (a push service on a private network; never on the
    /// internet, where browsers' push services are all https).
    pub fn new(store: &Arc<dyn Store>, mobile: Arc<dyn MobilePush>, server_key: String, allow_http: bool) -> Self {
        PushSubscriptions { store: store.clone(), mobile, server_key, allow_http }
    }

    pub fn server_key(&self) -> ServerKey {
        ServerKey { public_key: self.server_key.clone() }
    }

    pub async fn register(
        &self,
        actor: &Actor,
        input: NewPushSubscription,
    ) -> AppResult<Created<PushSubscriptionView>> {
        let subscription = match input.validated(self.allow_http, now_iso())? {
            ValidSubscription::Web(subscription) => subscription,
            ValidSubscription::Device { platform, token } => PushSubscription {
                id: subscription_id(&format!("{}:{token}", platform.as_str())),
                platform,
                endpoint: self.mobile.register(platform, &token).await?,
                keys: None,
                created_at: now_iso(),
            },
        };
        let view = PushSubscriptionView::from(&subscription);
        match self.store.add_push_subscription(actor.id(), &subscription).await? {
            SubscriptionAdded::New => Ok(Created::New(view)),
            SubscriptionAdded::Existing => Ok(Created::Existing(view)),
            SubscriptionAdded::Full => {
                Err(AppError::Conflict("at most 10 push subscriptions per user; remove one first"))
            }
        }
    }

    pub async fn list(&self, actor: &Actor) -> AppResult<Vec<PushSubscriptionView>> {
        let mut views: Vec<_> =
            self.store.push_subscriptions(actor.id()).await?.iter().map(PushSubscriptionView::from).collect();
        views.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        Ok(views)
    }

    pub async fn remove(&self, actor: &Actor, subscription_id: &str) -> AppResult<()> {
        const NOT_FOUND: AppError = AppError::NotFound("push subscription not found");
        if !is_subscription_id(subscription_id) {
            return Err(NOT_FOUND);
        }
        if self.store.remove_push_subscription(actor.id(), subscription_id).await? { Ok(()) } else { Err(NOT_FOUND) }
    }
}

/// Members read per page of a large group.
const MEMBER_PAGE: usize = 1000;
/// Subscription reads kept in flight.
const READS_IN_FLIGHT: usize = 16;

/// Decides who hears of a new message by push.
pub struct PushPlanner {
    conversations: Arc<dyn ConversationStore>,
    connections: Arc<dyn ConnectionStore>,
    push: Arc<dyn PushStore>,
    queue: Arc<dyn PushQueue>,
}

impl PushPlanner {
    pub fn new(store: &Arc<dyn Store>, queue: Arc<dyn PushQueue>) -> Self {
        PushPlanner { conversations: store.clone(), connections: store.clone(), push: store.clone(), queue }
    }

    /// Enqueues the pushes `message` calls for; how many.
    pub async fn plan(&self, message: &Message) -> AppResult<usize> {
        let Some(conversation) = self.conversations.get_conversation(&message.conversation_id).await? else {
            return Ok(0);
        };
        let mut planned = 0;
        match conversation.roster.listed() {
            Some(members) => {
                let members: Vec<UserId> = members.iter().filter(|id| **id != message.sender.id).cloned().collect();
                planned += self.plan_for(&conversation, message, &members).await?;
            }
            None => {
                let mut after = None;
                loop {
                    let page = self.conversations.large_members(&conversation.id, after.as_ref(), MEMBER_PAGE).await?;
                    let members: Vec<UserId> = page.iter().filter(|id| **id != message.sender.id).cloned().collect();
                    planned += self.plan_for(&conversation, message, &members).await?;
                    if page.len() < MEMBER_PAGE {
                        break;
                    }
                    after = page.last().cloned();
                }
            }
        }
        Ok(planned)
    }

    async fn plan_for(&self, conversation: &Conversation, message: &Message, members: &[UserId]) -> AppResult<usize> {
        if members.is_empty() {
            return Ok(0);
        }
        let now = now_iso();
        let presences = self.connections.presences(members).await?;
        let reachable: Vec<UserId> = presences
            .iter()
            .filter(|(_, presence)| wants_push(presence, &message.sender.id, &now))
            .map(|(id, _)| id.clone())
            .collect();
        if reachable.is_empty() {
            return Ok(0);
        }
        let settings = self.conversations.notification_settings(&conversation.id, &reachable).await?;
        let name = (conversation.kind == ConversationKind::Group).then(|| conversation.name.clone()).flatten();
        let notified: Vec<(UserId, PushNotification)> = settings
            .into_iter()
            .filter_map(|(user_id, setting)| {
                let mentioned = message.mentions.contains(&user_id);
                let notify = match setting.effective(&now).level {
                    NotifyLevel::All => true,
                    NotifyLevel::Mentions => mentioned,
                    NotifyLevel::None => false,
                };
                let previews = presences.get(&user_id).is_none_or(|p| p.notifications.previews);
                notify.then(|| (user_id, PushNotification::of(message, name.clone(), previews, mentioned)))
            })
            .collect();
        let jobs: Vec<Vec<PushJob>> = stream::iter(notified)
            .map(|(user_id, notification)| async move {
                let subscriptions = self.push.push_subscriptions(&user_id).await?;
                Ok::<_, AppError>(
                    subscriptions
                        .into_iter()
                        .map(|subscription| PushJob {
                            user_id: user_id.clone(),
                            subscription,
                            notification: notification.clone(),
                            attempt: 1,
                        })
                        .collect(),
                )
            })
            .buffer_unordered(READS_IN_FLIGHT)
            .try_collect()
            .await?;
        let jobs: Vec<PushJob> = jobs.into_iter().flatten().collect();
        if !jobs.is_empty() {
            self.queue.enqueue(&jobs, 0).await?;
        }
        Ok(jobs.len())
    }
}

/// Whether a member with this presence is one to push to at all: no live connection with the app in front, a
/// subscription, not in do not disturb, and not blocking the sender.
fn wants_push(presence: &UserPresence, sender: &UserId, now: &str) -> bool {
    presence.away_from_every_app()
        && presence.push_subscriptions > 0
        && !presence.blocks(sender)
        && presence.notifications.do_not_disturb_until.as_deref().is_none_or(|until| until <= now)
}

/// How long a push service keeps a notification for a browser that is offline.
pub const PUSH_TTL_SECONDS: u32 = 24 * 3600;
/// Tries of one job before it is given up (about seven minutes of retries).
pub const PUSH_ATTEMPTS: u32 = 5;

/// What became of one push job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushOutcome {
    Delivered,
    /// The push service said the subscription is gone; it was removed.
    Removed,
    /// Put back on the queue to be tried after this delay.
    Retrying(Duration),
    /// Refused for good (the status), or failed [`PUSH_ATTEMPTS`] times (`None`).
    Dropped(Option<u16>),
    /// A retry of a message deleted since: not sent.
    Withdrawn,
}

/// Sends push jobs: browsers' through their push services, phones' through SNS.
pub struct PushSender {
    push: Arc<dyn PushStore>,
    messages: Arc<dyn MessageStore>,
    service: Arc<dyn PushService>,
    mobile: Arc<dyn MobilePush>,
    queue: Arc<dyn PushQueue>,
    vapid: VapidKey,
}

impl PushSender {
    pub fn new(
        store: &Arc<dyn Store>,
        service: Arc<dyn PushService>,
        mobile: Arc<dyn MobilePush>,
        queue: Arc<dyn PushQueue>,
        vapid: VapidKey,
    ) -> Self {
        PushSender { push: store.clone(), messages: store.clone(), service, mobile, queue, vapid }
    }

    async fn deliver(&self, job: &PushJob) -> AppResult<PushResponse> {
        let subscription = &job.subscription;
        if subscription.platform != PushPlatform::Web {
            return Ok(self.mobile.send(&subscription.endpoint, &job.notification).await);
        }
        let payload = serde_json::to_vec(&job.notification).map_err(AppError::internal)?;
        let request = PushRequest {
            endpoint: subscription.endpoint.clone(),
            authorization: self.vapid.authorization(&subscription.endpoint, now_epoch_seconds())?,
            ttl: PUSH_TTL_SECONDS,
            urgency: if job.notification.mentioned { "high" } else { "normal" },
            body: webpush::encrypt(subscription, &payload)?,
        };
        Ok(self.service.send(&request).await)
    }

    /// The job as its message reads now, `None` if it was deleted. Only a retry looks (a read per retry): a first
    /// try is sent about a second after the message, as planned.
    async fn current(&self, job: PushJob) -> AppResult<Option<PushJob>> {
        if job.attempt == 1 {
            return Ok(Some(job));
        }
        let planned = &job.notification;
        match self.messages.get_message(&planned.conversation_id, planned.seq).await? {
            Some(message) if !message.deleted => Ok(Some(PushJob { notification: planned.as_of(&message), ..job })),
            _ => Ok(None),
        }
    }

    pub async fn send(&self, job: PushJob) -> AppResult<PushOutcome> {
        let Some(job) = self.current(job).await? else { return Ok(PushOutcome::Withdrawn) };
        let outcome = match self.deliver(&job).await? {
            PushResponse::Accepted => PushOutcome::Delivered,
            PushResponse::Gone => {
                self.push.remove_push_subscription(&job.user_id, &job.subscription.id).await?;
                if job.subscription.platform != PushPlatform::Web {
                    self.mobile.forget(&job.subscription.endpoint).await;
                }
                PushOutcome::Removed
            }
            PushResponse::Refused(status) => PushOutcome::Dropped(Some(status)),
            PushResponse::Retry { .. } if job.attempt >= PUSH_ATTEMPTS => PushOutcome::Dropped(None),
            PushResponse::Retry { retry_after } => {
                let delay = retry_after.unwrap_or_else(|| backoff(job.attempt)).min(Duration::from_secs(900));
                let again = PushJob { attempt: job.attempt + 1, ..job.clone() };
                self.queue.enqueue(std::slice::from_ref(&again), delay.as_secs() as u32).await?;
                PushOutcome::Retrying(delay)
            }
        };
        match outcome {
            PushOutcome::Dropped(status) => {
                tracing::warn!(user_id = %job.user_id, subscription = %job.subscription.id, ?status, attempt = job.attempt, "push dropped")
            }
            _ => tracing::debug!(subscription = %job.subscription.id, ?outcome, "push sent"),
        }
        Ok(outcome)
    }
}

/// 5 s, 20 s, 80 s, 320 s: a push service that is down for minutes is not hammered.
fn backoff(attempt: u32) -> Duration {
    Duration::from_secs(5 * 4u64.pow(attempt.saturating_sub(1).min(4)))
}
