//! The store contract: the same tests against the DynamoDB store (the deployed table on the emulator) and the
//! in-memory store the handler tests use, so a handler test can never pass on behaviour the real store does not
//! have. Each test is a generic function over [`Store`]; `contract!` runs it once per implementation.

use std::collections::BTreeSet;

use chat_e2e::{Stack, unique_name};
use chat_shared::AppError;
use chat_shared::aws::dynamo::DynamoDbStore;
use chat_shared::error::AppResult;
use chat_shared::model::{
    Attachment, AttachmentStatus, AuditAction, AuditEntry, Connection, ConnectionId, ContactableBy, Conversation,
    ConversationId, ConversationKind, ConversationNotifications, DELETED_ACCOUNT, DELETED_CONTENT, LISTED_MEMBERS_MAX,
    MessageId, MessageKind, NewMessage, NotificationPreferences, NotifyLevel, Processed, Report, ReportReason,
    ReportStatus, ReportTarget, Roles, Roster, Sender, SessionId, SessionRecord, Standing, Upload, UploadId, User,
    UserId, UserPresence, UserRecord, now_epoch_seconds, now_iso,
};
use chat_shared::ports::{Appended, AuditKey, Created, RateLimit, Relation, ReportKey, Store};

/// Generous enough never to refuse in these tests (the limit has its own test).
const NO_LIMIT: RateLimit = RateLimit { kind: "contract", max: 1_000_000, window_secs: 60 };

async fn dynamodb() -> DynamoDbStore {
    let stack = Stack::load();
    let config = stack.aws_config().await;
    DynamoDbStore::new(aws_sdk_dynamodb::Client::new(&config), stack.table_name)
}

macro_rules! contract {
    ($($test:ident),* $(,)?) => {
        mod in_memory {
            $( #[tokio::test] async fn $test() { super::$test(&chat_shared::testing::InMemoryStore::new()).await; } )*
        }
        mod dynamodb {
            $( #[tokio::test] async fn $test() { super::$test(&super::dynamodb().await).await; } )*
        }
    };
}

fn new_connection_id() -> ConnectionId {
    ConnectionId::new(UserId::random().to_string())
}

async fn user<S: Store>(store: &S) -> User {
    let user = User { id: UserId::random(), username: unique_name("u"), avatar: None, created_at: now_iso() };
    store
        .create_user(&UserRecord { user: user.clone(), password_hash: "h".into(), standing: Standing::default() })
        .await
        .unwrap();
    user
}

fn private(a: &User, b: &User) -> Conversation {
    Conversation { kind: ConversationKind::Private, ..group(&[a.clone(), b.clone()]) }
}

/// A group of `members` (at most [`LISTED_MEMBERS_MAX`]) created by the first.
fn group(members: &[User]) -> Conversation {
    let a = &members[0];
    Conversation {
        id: ConversationId::random(),
        kind: ConversationKind::Group,
        name: Some("contract".into()),
        avatar: None,
        roster: Roster::Listed(members.iter().map(|u| u.id.clone()).collect()),
        roster_version: 1,
        created_by: a.id.clone(),
        roles: Roles::owned_by(a.id.clone()),
        created_at: now_iso(),
        updated_at: now_iso(),
        last_seq: 0,
        last_message: None,
        blocked: false,
        member_deleted: false,
    }
}

fn draft(conversation: &ConversationId, sender: &User, content: &str, client_message_id: Option<&str>) -> NewMessage {
    NewMessage {
        conversation_id: conversation.clone(),
        sender: Sender { id: sender.id.clone(), username: sender.username.clone(), avatar: None },
        content: content.to_owned(),
        kind: MessageKind::Text,
        file_url: None,
        file_name: None,
        attachment: None,
        client_message_id: client_message_id.map(str::to_owned),
        mentions: Vec::new(),
    }
}

/// Appends as the send use case does: to the conversation as just read. `None`: the sender is not a member.
async fn append<S: Store>(store: &S, message: NewMessage, limit: &RateLimit) -> AppResult<Option<Created<Appended>>> {
    let conversation = store.get_conversation(&message.conversation_id).await?.expect("the conversation exists");
    store.append_message(&conversation, message, limit).await
}

/// [`append`] of a sender who is a member.
async fn append_ok<S: Store>(store: &S, message: NewMessage, limit: &RateLimit) -> AppResult<Created<Appended>> {
    Ok(append(store, message, limit).await?.expect("the sender is a member"))
}

async fn usernames_are_unique_case_insensitively<S: Store>(store: &S) {
    let alice = user(store).await;
    let twin =
        User { id: UserId::random(), username: alice.username.to_uppercase(), avatar: None, created_at: now_iso() };
    let record = UserRecord { user: twin.clone(), password_hash: "h".into(), standing: Standing::default() };
    let err = store.create_user(&record).await.unwrap_err();
    assert!(matches!(err, AppError::Conflict(_)), "{err:?}");
    assert!(store.get_user(&twin.id).await.unwrap().is_none(), "the loser wrote nothing");
    let found = store.find_by_username(&alice.username.to_uppercase()).await.unwrap().unwrap();
    assert_eq!(found.user, alice);
    assert_eq!(found.password_hash, "h");
    let many = store.get_users(&[alice.id.clone(), UserId::parse("missing").unwrap(), alice.id.clone()]).await.unwrap();
    assert_eq!(many, vec![alice]);
}

async fn concurrent_private_creates_yield_one_conversation<S: Store>(store: &S) {
    let (a, b) = (user(store).await, user(store).await);
    let attempts: Vec<Conversation> =
        (0..6).map(|i| if i % 2 == 0 { private(&a, &b) } else { private(&b, &a) }).collect();
    let results = futures_util::future::join_all(attempts.iter().map(|c| store.create_conversation(c))).await;
    let mut ids = BTreeSet::new();
    let mut new = 0;
    for result in results {
        match result.unwrap() {
            Created::New(c) => {
                new += 1;
                ids.insert(c.id);
            }
            Created::Existing(c) => {
                ids.insert(c.id);
            }
        }
    }
    assert_eq!(new, 1, "exactly one create wins");
    assert_eq!(ids.len(), 1, "everyone gets the same conversation");
}

async fn a_block_is_listed_copied_to_the_presence_and_closes_the_pair<S: Store>(store: &S) {
    let (a, b, c) = (user(store).await, user(store).await, user(store).await);
    let Created::New(ab) = store.create_conversation(&private(&a, &b)).await.unwrap() else { panic!() };
    store.create_friend_request(&a.id, &b.id, &now_iso()).await.unwrap();
    assert!(store.block(&b.id, &a.id, &now_iso()).await.unwrap());
    assert!(!store.block(&b.id, &a.id, &now_iso()).await.unwrap(), "a second block changes nothing");
    assert!(store.get_conversation(&ab.id).await.unwrap().unwrap().blocked, "their conversation closed");
    assert_eq!(store.relation(&a.id, &b.id).await.unwrap(), Relation::BlockedBy);
    assert_eq!(store.relation(&b.id, &a.id).await.unwrap(), Relation::Blocking);
    let listed: Vec<UserId> = store.relations(&b.id).await.unwrap().blocked.into_iter().map(|r| r.user_id).collect();
    assert_eq!(listed, vec![a.id.clone()]);
    assert!(
        store.relations(&a.id).await.unwrap().incoming.is_empty()
            && store.relations(&b.id).await.unwrap().incoming.is_empty(),
        "the request ended"
    );
    assert!(store.presences(std::slice::from_ref(&b.id)).await.unwrap()[&b.id].blocks(&a.id));
    assert!(!store.presence(&a.id).await.unwrap().blocks(&b.id), "one way only");
    // Others are unaffected; a block with no conversation yet forbids one, and any request, either way.
    for (x, y) in [(&a, &c), (&c, &b)] {
        assert!(matches!(store.create_conversation(&private(x, y)).await.unwrap(), Created::New(_)));
    }
    let d = user(store).await;
    store.block(&d.id, &c.id, &now_iso()).await.unwrap();
    let err = store.create_conversation(&private(&c, &d)).await.unwrap_err();
    assert!(matches!(err, AppError::Forbidden(_)), "{err:?}");
    assert!(store.create_friend_request(&c.id, &d.id, &now_iso()).await.is_err());

    // Both block each other: the conversation opens only when both have unblocked.
    assert!(store.block(&a.id, &b.id, &now_iso()).await.unwrap());
    assert!(store.unblock(&b.id, &a.id).await.unwrap());
    assert!(!store.unblock(&b.id, &a.id).await.unwrap(), "nothing left to unblock");
    assert!(store.get_conversation(&ab.id).await.unwrap().unwrap().blocked);
    assert!(store.unblock(&a.id, &b.id).await.unwrap());
    assert!(!store.get_conversation(&ab.id).await.unwrap().unwrap().blocked);
    assert!(store.presence(&b.id).await.unwrap().blocked.is_empty());

    // The privacy setting lives on the presence too, and friendships are found among candidates.
    assert_eq!(store.presence(&c.id).await.unwrap().contactable_by, ContactableBy::Everyone);
    store.set_contactable_by(&c.id, ContactableBy::Friends).await.unwrap();
    assert_eq!(
        store.presences(std::slice::from_ref(&c.id)).await.unwrap()[&c.id].contactable_by,
        ContactableBy::Friends
    );
    store.create_friend_request(&a.id, &c.id, &now_iso()).await.unwrap();
    store.accept_friend_request(&a.id, &c.id, &now_iso()).await.unwrap();
    assert_eq!(store.friends_among(&c.id, &[a.id.clone(), b.id.clone()]).await.unwrap(), vec![a.id.clone()]);
}

async fn concurrent_appends_get_gap_free_seqs_and_client_ids_dedupe<S: Store>(store: &S) {
    let (a, b) = (user(store).await, user(store).await);
    let Created::New(conversation) = store.create_conversation(&private(&a, &b)).await.unwrap() else { panic!() };

    let drafts: Vec<NewMessage> =
        (0..8).map(|i| draft(&conversation.id, if i % 2 == 0 { &a } else { &b }, &format!("m{i}"), None)).collect();
    let results = futures_util::future::join_all(drafts.into_iter().map(|d| append_ok(store, d, &NO_LIMIT))).await;
    let mut seqs: Vec<u64> = results
        .into_iter()
        .map(|r| match r.unwrap() {
            Created::New(appended) => appended.message.seq,
            Created::Existing(_) => panic!("no client ids, no duplicates"),
        })
        .collect();
    seqs.sort();
    assert_eq!(seqs, (1..=8).collect::<Vec<_>>());

    let first = append_ok(store, draft(&conversation.id, &a, "once", Some("cm-1")), &NO_LIMIT).await.unwrap();
    let again = append_ok(store, draft(&conversation.id, &a, "once (retry)", Some("cm-1")), &NO_LIMIT).await.unwrap();
    let (Created::New(first), Created::Existing(again)) = (first, again) else { panic!("new then existing") };
    assert_eq!(first.message, again.message);
    assert_eq!(first.message.seq, 9);
    // The same client id from another sender is a different message.
    let Created::New(other) =
        append_ok(store, draft(&conversation.id, &b, "b", Some("cm-1")), &NO_LIMIT).await.unwrap()
    else {
        panic!("another sender's client id is independent")
    };
    assert_eq!(other.message.seq, 10);
    let stored = store.get_conversation(&conversation.id).await.unwrap().unwrap();
    assert_eq!(stored.last_seq, 10);
    assert_eq!(stored.last_message.unwrap().content, "b");
}

async fn non_members_cannot_append<S: Store>(store: &S) {
    let (a, b, c) = (user(store).await, user(store).await, user(store).await);
    let Created::New(conversation) = store.create_conversation(&private(&a, &b)).await.unwrap() else { panic!() };
    assert_eq!(append(store, draft(&conversation.id, &c, "hi", None), &NO_LIMIT).await.unwrap(), None);
    assert_eq!(store.get_conversation(&conversation.id).await.unwrap().unwrap().last_seq, 0);
}

/// Membership is judged before the dedupe, in both stores and both roster kinds: a member removed after a send
/// who retries it (the same `clientMessageId`, against the conversation as read before the removal) is refused,
/// not answered with the original.
async fn a_removed_members_retry_is_refused_before_the_dedupe<S: Store>(store: &S) {
    for size in [3, LISTED_MEMBERS_MAX + 1] {
        let people = users(store, size).await;
        let Created::New(created) = store.create_conversation(&group(&people[..2])).await.unwrap() else { panic!() };
        let conversation = add_all(store, created, &people[2..]).await;
        let sender = &people[1];
        append_ok(store, draft(&conversation.id, sender, "once", Some("cm-1")), &NO_LIMIT).await.unwrap();
        let before_removal = store.get_conversation(&conversation.id).await.unwrap().unwrap();
        store
            .remove_member(&before_removal, &sender.id, &before_removal.roles, &now_iso())
            .await
            .unwrap()
            .expect("removed");
        let retry = draft(&conversation.id, sender, "once (retry)", Some("cm-1"));
        let refused = store.append_message(&before_removal, retry, &NO_LIMIT).await.unwrap();
        assert_eq!(refused, None, "{size} members");
    }
}

async fn connections_by_id_and_in_the_users_presence<S: Store>(store: &S) {
    let a = user(store).await;
    let now = now_epoch_seconds();
    let mk = |id: &ConnectionId, expires_at| Connection {
        connection_id: id.clone(),
        user_id: a.id.clone(),
        username: a.username.clone(),
        avatar: None,
        connected_at: now,
        expires_at,
        session_id: None,
    };
    let (c1, c2, old) = (new_connection_id(), new_connection_id(), new_connection_id());
    let first = store.add_connection(&mk(&c1, now + 600)).await.unwrap();
    assert_eq!(first.connections, vec![mk(&c1, now + 600).live()], "the first connection sees itself alone");
    store.add_connection(&mk(&c2, now + 600)).await.unwrap();
    store.add_connection(&mk(&old, now - 1)).await.unwrap();
    let ids = |p: &UserPresence| {
        let mut ids: Vec<ConnectionId> = p.connections.iter().map(|c| c.connection_id.clone()).collect();
        ids.sort();
        ids
    };
    let mut want = vec![c1.clone(), c2.clone()];
    want.sort();
    assert_eq!(ids(&store.presence(&a.id).await.unwrap()), want, "expired connections are not live before TTL");
    assert_eq!(store.get_connection(&c1).await.unwrap().unwrap().user_id, a.id);
    assert!(store.get_connection(&old).await.unwrap().is_none());

    let after = store.remove_connection(&mk(&c1, now + 600), "2026-01-01T00:00:00.000Z").await.unwrap();
    assert_eq!(ids(&after), vec![c2.clone()]);
    assert_eq!(after.last_seen.as_deref(), Some("2026-01-01T00:00:00.000Z"));
    store.remove_connection(&mk(&c1, now + 600), "2026-01-01T00:00:00.000Z").await.unwrap(); // idempotent
    assert!(store.get_connection(&c1).await.unwrap().is_none());

    // A connection API Gateway reported gone leaves the presence but keeps its record for $disconnect.
    store.drop_gone_connection(&a.id, &mk(&c2, now + 600).live()).await.unwrap();
    assert!(store.presence(&a.id).await.unwrap().connections.is_empty());
    assert!(store.get_connection(&c2).await.unwrap().is_some());
}

async fn simultaneous_connects_and_disconnects_see_the_presence_atomically<S: Store>(store: &S) {
    let a = user(store).await;
    let now = now_epoch_seconds();
    let connections: Vec<Connection> = (0..8)
        .map(|_| Connection {
            connection_id: new_connection_id(),
            user_id: a.id.clone(),
            username: a.username.clone(),
            avatar: None,
            connected_at: now,
            expires_at: now + 600,
            session_id: None,
        })
        .collect();
    let added = futures_util::future::join_all(connections.iter().map(|c| store.add_connection(c))).await;
    let alone = added.iter().filter(|p| p.as_ref().unwrap().connections.len() == 1).count();
    assert_eq!(alone, 1, "exactly one of simultaneous first connections sees itself alone");
    let removed = futures_util::future::join_all(connections.iter().map(|c| store.remove_connection(c, "t"))).await;
    let last = removed.iter().filter(|p| p.as_ref().unwrap().connections.is_empty()).count();
    assert_eq!(last, 1, "exactly one of simultaneous last disconnections sees none left");
}

async fn presences_of_more_users_than_one_batch<S: Store>(store: &S) {
    let (a, b) = (user(store).await, user(store).await);
    let now = now_epoch_seconds();
    for who in [&a, &b] {
        let connection = Connection {
            connection_id: new_connection_id(),
            user_id: who.id.clone(),
            username: who.username.clone(),
            avatar: None,
            connected_at: now,
            expires_at: now + 600,
            session_id: None,
        };
        store.add_connection(&connection).await.unwrap();
    }
    store.set_status(&b.id, "busy").await.unwrap();
    let mut ids: Vec<UserId> = (0..148).map(|_| UserId::random()).collect();
    ids.push(a.id.clone());
    ids.push(b.id.clone());
    let presences = store.presences(&ids).await.unwrap();
    assert_eq!(presences.len(), 150);
    let online: Vec<&UserId> = presences.iter().filter(|(_, p)| p.visible_online()).map(|(id, _)| id).collect();
    assert_eq!(online.len(), 2);
    assert_eq!(presences[&b.id].visible_status(), "busy");
    assert_eq!(presences[&a.id].visible_status(), "online");
}

fn connection_of(user: &User, expires_at: u64) -> Connection {
    Connection {
        connection_id: new_connection_id(),
        user_id: user.id.clone(),
        username: user.username.clone(),
        avatar: None,
        connected_at: now_epoch_seconds(),
        expires_at,
        session_id: None,
    }
}

/// Expired connections are gone for every read, before any TTL sweep; joining needs a registered connection.
async fn expired_and_unregistered_connections<S: Store>(store: &S) {
    let (a, b) = (user(store).await, user(store).await);
    let Created::New(conversation) = store.create_conversation(&private(&a, &b)).await.unwrap() else { panic!() };
    let expired = connection_of(&a, now_epoch_seconds() - 1);
    store.add_connection(&expired).await.unwrap();
    assert!(store.get_connection(&expired.connection_id).await.unwrap().is_none());
    assert!(store.presence(&a.id).await.unwrap().connections.is_empty());
    let never_registered = connection_of(&a, now_epoch_seconds() + 600);
    let err = store.join(&never_registered, &conversation.id).await.unwrap_err();
    assert!(matches!(err, AppError::Unauthorized(_)), "{err:?}");
    let live = connection_of(&a, now_epoch_seconds() + 600);
    store.add_connection(&live).await.unwrap();
    store.join(&live, &conversation.id).await.unwrap();
    let joined = store.joined(&conversation.id).await.unwrap();
    assert_eq!(joined, vec![(a.id.clone(), live.live())]);
    store.forget_member(&conversation.id, &a.id).await.unwrap();
    assert!(store.joined(&conversation.id).await.unwrap().is_empty(), "a removed member's rooms are forgotten");
}

/// Read pointers only move forward, and only for members.
async fn read_pointers_move_forward_for_members_only<S: Store>(store: &S) {
    let (a, b, c) = (user(store).await, user(store).await, user(store).await);
    let Created::New(conversation) = store.create_conversation(&private(&a, &b)).await.unwrap() else { panic!() };
    for n in 0..3 {
        append_ok(store, draft(&conversation.id, &a, &format!("m{n}"), None), &NO_LIMIT).await.unwrap();
    }
    assert_eq!(store.advance_read(&b.id, &conversation.id, 2, &[]).await.unwrap(), Some(0));
    assert_eq!(store.advance_read(&b.id, &conversation.id, 1, &[]).await.unwrap(), None, "never back");
    assert_eq!(store.advance_read(&b.id, &conversation.id, 3, &[]).await.unwrap(), Some(2));
    assert_eq!(store.advance_read(&c.id, &conversation.id, 3, &[]).await.unwrap(), None, "a non-member has no pointer");
    assert!(store.member_conversation(&conversation.id, &c.id).await.unwrap().is_none());
    let (_, membership) = store.member_conversation(&conversation.id, &b.id).await.unwrap().unwrap();
    assert_eq!(membership.last_read_seq, 3);
}

/// Reactions: once per user and emoji, never on a missing or deleted message.
async fn reactions_need_a_live_message<S: Store>(store: &S) {
    let (a, b) = (user(store).await, user(store).await);
    let Created::New(conversation) = store.create_conversation(&private(&a, &b)).await.unwrap() else { panic!() };
    append_ok(store, draft(&conversation.id, &a, "react to me", None), &NO_LIMIT).await.unwrap();
    assert!(store.add_reaction(&conversation.id, 1, &b.id, "👍").await.unwrap());
    assert!(!store.add_reaction(&conversation.id, 1, &b.id, "👍").await.unwrap(), "once");
    let err = store.add_reaction(&conversation.id, 7, &b.id, "👍").await.unwrap_err();
    assert!(matches!(err, AppError::NotFound(_)), "a missing message: {err:?}");
    store.delete_message(&conversation.id, 1, Some(&a.id), &now_iso()).await.unwrap();
    let err = store.add_reaction(&conversation.id, 1, &b.id, "🎉").await.unwrap_err();
    assert!(matches!(err, AppError::Conflict(_)), "a deleted message: {err:?}");
    assert!(store.remove_reaction(&conversation.id, 1, &b.id, "👍").await.unwrap());
    assert!(!store.remove_reaction(&conversation.id, 1, &b.id, "👍").await.unwrap());
}

/// One user's reactions in a range of seqs (an export's page): theirs only, by seq, the range's ends included.
async fn a_users_reactions_are_read_by_seq_range<S: Store>(store: &S) {
    let (a, b) = (user(store).await, user(store).await);
    let Created::New(conversation) = store.create_conversation(&private(&a, &b)).await.unwrap() else { panic!() };
    for n in 1..=4 {
        append_ok(store, draft(&conversation.id, &a, &format!("m{n}"), None), &NO_LIMIT).await.unwrap();
    }
    let reactions = [(1, &b, "👍"), (2, &b, "🎉"), (2, &b, "👍"), (2, &a, "👍"), (3, &a, "🎉"), (4, &b, "❤")];
    for (seq, who, emoji) in reactions {
        assert!(store.add_reaction(&conversation.id, seq, &who.id, emoji).await.unwrap());
    }
    let of = |pairs: &[(u64, &str)]| pairs.iter().map(|(seq, e)| (*seq, (*e).to_owned())).collect::<Vec<_>>();
    let everything = store.reactions_by(&conversation.id, &b.id, 1..=u64::MAX).await.unwrap();
    assert_eq!(everything, of(&[(1, "👍"), (2, "🎉"), (2, "👍"), (4, "❤")]), "b's, by seq then emoji");
    assert_eq!(store.reactions_by(&conversation.id, &b.id, 2..=3).await.unwrap(), of(&[(2, "🎉"), (2, "👍")]));
    assert_eq!(store.reactions_by(&conversation.id, &a.id, 3..=3).await.unwrap(), of(&[(3, "🎉")]));
    assert_eq!(store.reactions_by(&conversation.id, &a.id, 5..=u64::MAX).await.unwrap(), of(&[]));
}

/// A send beyond the window's budget is refused and not stored; a retried send is not counted.
async fn sends_are_counted_against_the_limit_in_the_same_write<S: Store>(store: &S) {
    let (a, b) = (user(store).await, user(store).await);
    let Created::New(conversation) = store.create_conversation(&private(&a, &b)).await.unwrap() else { panic!() };
    let limit = RateLimit { kind: "contract-send", max: 3, window_secs: 3600 };
    append_ok(store, draft(&conversation.id, &a, "1", Some("c1")), &limit).await.unwrap();
    append_ok(store, draft(&conversation.id, &a, "1 again", Some("c1")), &limit).await.unwrap();
    append_ok(store, draft(&conversation.id, &a, "2", None), &limit).await.unwrap();
    append_ok(store, draft(&conversation.id, &a, "3", None), &limit).await.unwrap();
    let err = append_ok(store, draft(&conversation.id, &a, "4", None), &limit).await.unwrap_err();
    assert!(matches!(err, AppError::RateLimited { retry_after } if retry_after >= 1), "{err:?}");
    assert_eq!(
        store.get_conversation(&conversation.id).await.unwrap().unwrap().last_seq,
        3,
        "the refused one is not stored"
    );
    append_ok(store, draft(&conversation.id, &b, "b is not limited by a", None), &limit).await.unwrap();
    for _ in 0..3 {
        store.take(&a.id, &RateLimit { kind: "contract-typing", max: 3, window_secs: 3600 }).await.unwrap();
    }
    let err = store.take(&a.id, &RateLimit { kind: "contract-typing", max: 3, window_secs: 3600 }).await.unwrap_err();
    assert!(matches!(err, AppError::RateLimited { .. }), "{err:?}");
}

async fn users<S: Store>(store: &S, n: usize) -> Vec<User> {
    futures_util::future::join_all((0..n).map(|_| user(store))).await
}

/// Adds every candidate, as many calls as the store needs; returns the conversation after the last.
async fn add_all<S: Store>(store: &S, mut conversation: Conversation, candidates: &[User]) -> Conversation {
    let mut pending: Vec<UserId> = candidates.iter().map(|u| u.id.clone()).collect();
    let mut calls = 0;
    while !pending.is_empty() {
        let (updated, taken) = store.add_members(&conversation, &pending, &now_iso()).await.unwrap().expect("no race");
        assert!(taken > 0, "every call adds someone");
        pending.drain(..taken);
        conversation = updated;
        calls += 1;
        assert!(calls <= candidates.len(), "add_members makes progress");
    }
    conversation
}

/// A group grows past the listed size in as many writes as needed, its member items are exact, and it lists its
/// members again when it shrinks back.
async fn groups_grow_large_in_pages_and_shrink_back_to_listed<S: Store>(store: &S) {
    let people = users(store, 120).await;
    let Created::New(created) = store.create_conversation(&group(&people[..3])).await.unwrap() else { panic!() };
    let grown = add_all(store, created, &people[3..]).await;
    assert_eq!(grown.roster, Roster::Large { count: 120 });
    let mut all: Vec<UserId> = people.iter().map(|u| u.id.clone()).collect();
    all.sort();
    assert_eq!(store.large_members(&grown.id, None, usize::MAX).await.unwrap(), all, "exact, in id order");
    let page = store.large_members(&grown.id, Some(&all[49]), 50).await.unwrap();
    assert_eq!(page, all[50..100], "a page after a member");
    let outsider = user(store).await;
    let asked = [all[3].clone(), outsider.id.clone(), all[100].clone()];
    let mut found = store.members_among(&grown.id, &asked).await.unwrap();
    found.sort();
    let mut expected = vec![all[3].clone(), all[100].clone()];
    expected.sort();
    assert_eq!(found, expected);
    assert!(store.listed_members_of(std::slice::from_ref(&grown.id)).await.unwrap().is_empty(), "no presence audience");

    // Down to the listed size, one removal at a time.
    let mut conversation = grown;
    for gone in &all[LISTED_MEMBERS_MAX..] {
        conversation =
            store.remove_member(&conversation, gone, &conversation.roles, &now_iso()).await.unwrap().expect("no race");
    }
    let kept: BTreeSet<UserId> = all[..LISTED_MEMBERS_MAX].iter().cloned().collect();
    assert_eq!(conversation.roster, Roster::Listed(kept.clone()));
    assert!(store.member_conversation(&conversation.id, &all[LISTED_MEMBERS_MAX]).await.unwrap().is_none());
    let items: BTreeSet<UserId> =
        store.large_members(&conversation.id, None, usize::MAX).await.unwrap().into_iter().collect();
    assert!(items.is_subset(&kept), "member items never name a removed member");
    // And large again: the member items are exact again.
    let regrown = add_all(store, conversation, std::slice::from_ref(&outsider)).await;
    assert_eq!(regrown.roster.count(), 51);
    let items = store.large_members(&regrown.id, None, usize::MAX).await.unwrap();
    assert_eq!(items.len(), 51);
}

/// Two membership changes decided on the same read: one applies, the other is told to read again.
async fn membership_changes_from_the_same_read_cannot_both_apply<S: Store>(store: &S) {
    let people = users(store, 5).await;
    let Created::New(read) = store.create_conversation(&group(&people[..3])).await.unwrap() else { panic!() };
    let (x, y) = (vec![people[3].id.clone()], vec![people[4].id.clone()]);
    let at = now_iso();
    let (first, second) = tokio::join!(store.add_members(&read, &x, &at), store.add_members(&read, &y, &at));
    let applied = [first.unwrap(), second.unwrap()].into_iter().filter(Option::is_some).count();
    assert_eq!(applied, 1, "exactly one of two adds from the same read");
    assert!(store.remove_member(&read, &people[1].id, &read.roles, &now_iso()).await.unwrap().is_none(), "stale read");
    assert!(store.update_conversation(&read, &Default::default(), &now_iso()).await.unwrap().is_none());
    let now = store.get_conversation(&read.id).await.unwrap().unwrap();
    assert_eq!(now.roster.count(), 4);
    assert!(store.remove_member(&now, &people[1].id, &now.roles, &now_iso()).await.unwrap().is_some());
}

/// Roles are stored on the record, change under the roster version like memberships, and leave with a removed
/// admin; `longest_standing` orders members by when they joined.
async fn roles_change_under_the_roster_version<S: Store>(store: &S) {
    let people = users(store, 5).await;
    let Created::New(read) = store.create_conversation(&group(&people[..4])).await.unwrap() else { panic!() };
    let stored = store.get_conversation(&read.id).await.unwrap().unwrap();
    assert_eq!(stored.roles, Roles::owned_by(people[0].id.clone()));
    let ids = |range: std::ops::Range<usize>| people[range].iter().map(|p| p.id.clone()).collect::<Vec<_>>();
    let roles = Roles { owner: people[0].id.clone(), admins: ids(1..3).into_iter().collect() };
    let updated = store.set_roles(&read, &roles, &now_iso()).await.unwrap().expect("no race");
    assert_eq!(updated.roles, roles);
    assert_eq!(updated.roster_version, read.roster_version + 1, "a role change moves the version");
    assert!(store.set_roles(&read, &Roles::owned_by(people[1].id.clone()), &now_iso()).await.unwrap().is_none());
    assert!(store.remove_member(&read, &people[3].id, &read.roles, &now_iso()).await.unwrap().is_none(), "stale");

    let without = Roles { owner: people[0].id.clone(), admins: ids(2..3).into_iter().collect() };
    let after = store.remove_member(&updated, &people[1].id, &without, &now_iso()).await.unwrap().expect("no race");
    assert_eq!(store.get_conversation(&read.id).await.unwrap().unwrap().roles, without);
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let later = add_all(store, after, &people[4..5]).await;
    let first = store.longest_standing(&read.id, &[people[4].id.clone(), people[3].id.clone()]).await.unwrap();
    assert_eq!(first, Some(people[3].id.clone()), "joined at creation, before the one added later");
    let gone = store.longest_standing(&read.id, &[people[1].id.clone()]).await.unwrap();
    assert_eq!(gone, None, "a removed member is no candidate");
    let cleared = store.set_roles(&later, &Roles::owned_by(people[2].id.clone()), &now_iso()).await.unwrap().unwrap();
    assert_eq!(cleared.roles, Roles::owned_by(people[2].id.clone()), "no admins left");
}

/// Sessions: read with their user in one call, rotated only from their current generation, gone once deleted
/// or expired; a user's connections carry the session that opened them.
async fn sessions_rotate_from_their_generation_and_end<S: Store>(store: &S) {
    let alice = user(store).await;
    let now = now_epoch_seconds();
    let session = |expires_at| SessionRecord {
        id: SessionId::random(),
        user_id: alice.id.clone(),
        generation: 0,
        created_at: now_iso(),
        refreshed_at: now_iso(),
        expires_at,
    };
    let (live, expired) = (session(now + 600), session(now - 1));
    store.create_session(&live).await.unwrap();
    store.create_session(&expired).await.unwrap();
    assert_eq!(store.session_user(&alice.id, &live.id).await.unwrap(), Some((alice.clone(), Standing::default())));
    assert_eq!(store.session_user(&alice.id, &expired.id).await.unwrap(), None, "expired is over");
    assert_eq!(store.session_user(&UserId::random(), &live.id).await.unwrap(), None, "someone else's id");
    let listed: Vec<SessionId> = store.sessions(&alice.id).await.unwrap().into_iter().map(|s| s.id).collect();
    assert_eq!(listed, std::slice::from_ref(&live.id));

    assert!(store.rotate_session(&alice.id, &live.id, 0, &now_iso(), now + 900).await.unwrap());
    assert!(!store.rotate_session(&alice.id, &live.id, 0, &now_iso(), now + 900).await.unwrap(), "an old generation");
    assert!(!store.rotate_session(&alice.id, &expired.id, 0, &now_iso(), now + 900).await.unwrap());
    let at = now_iso();
    let (a, b) = tokio::join!(
        store.rotate_session(&alice.id, &live.id, 1, &at, now + 900),
        store.rotate_session(&alice.id, &live.id, 1, &at, now + 900)
    );
    assert_eq!(u8::from(a.unwrap()) + u8::from(b.unwrap()), 1, "one of two rotations from the same generation");
    assert_eq!(store.sessions(&alice.id).await.unwrap()[0].generation, 2);

    let connection = Connection { session_id: Some(live.id.clone()), ..connection_of(&alice, now + 600) };
    store.add_connection(&connection).await.unwrap();
    let connections = store.user_connections(&alice.id).await.unwrap();
    assert_eq!(connections, [connection]);

    assert!(store.delete_session(&alice.id, &live.id).await.unwrap());
    assert!(!store.delete_session(&alice.id, &live.id).await.unwrap());
    assert_eq!(store.session_user(&alice.id, &live.id).await.unwrap(), None);

    let record = store.user_record(&alice.id).await.unwrap().unwrap();
    assert_eq!(record.password_hash, "h");
    store.set_password_hash(&alice.id, "h2").await.unwrap();
    assert_eq!(store.find_by_username(&alice.username).await.unwrap().unwrap().password_hash, "h2");
}

/// Read counts follow the members' read pointers (the index may lag a moment: polled briefly).
async fn read_counts_follow_read_pointers<S: Store>(store: &S) {
    let people = users(store, 4).await;
    let Created::New(conversation) = store.create_conversation(&group(&people)).await.unwrap() else { panic!() };
    for n in 0..2 {
        append_ok(store, draft(&conversation.id, &people[0], &format!("m{n}"), None), &NO_LIMIT).await.unwrap();
    }
    store.advance_read(&people[1].id, &conversation.id, 2, &[]).await.unwrap();
    store.advance_read(&people[2].id, &conversation.id, 1, &[]).await.unwrap();
    let expected = [(1, 3), (2, 2)];
    let mut counts = Vec::new();
    for _ in 0..20 {
        counts = Vec::new();
        for (seq, _) in expected {
            counts.push((seq, store.readers(&conversation.id, seq).await.unwrap()));
        }
        if counts == expected {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("read counts {counts:?}, expected {expected:?}");
}

/// In a large group the append itself checks the sender's membership.
async fn large_groups_check_the_sender_in_the_append<S: Store>(store: &S) {
    let people = users(store, LISTED_MEMBERS_MAX + 2).await;
    let Created::New(created) = store.create_conversation(&group(&people[..2])).await.unwrap() else { panic!() };
    let large = add_all(store, created, &people[2..LISTED_MEMBERS_MAX + 1]).await;
    assert!(large.roster.is_large());
    let outsider = &people[LISTED_MEMBERS_MAX + 1];
    assert_eq!(append(store, draft(&large.id, outsider, "let me in", None), &NO_LIMIT).await.unwrap(), None);
    let Created::New(appended) =
        append_ok(store, draft(&large.id, &people[30], "hello all", None), &NO_LIMIT).await.unwrap()
    else {
        panic!()
    };
    assert_eq!((appended.message.seq, appended.roster.count()), (1, LISTED_MEMBERS_MAX as u64 + 1));
}

fn mentioning(mut message: NewMessage, mentioned: &[&User]) -> NewMessage {
    message.mentions = mentioned.iter().map(|user| user.id.clone()).collect();
    message.mentions.sort();
    message
}

/// A mention is kept on the mentioned member's membership in the send's own write, never for a non-member
/// (the whole message is refused); a read pointer forgets exactly the mentions it was given, a deletion its
/// message's.
async fn mentions_are_kept_per_member_and_forgotten_as_read<S: Store>(store: &S) {
    let people = users(store, 4).await;
    let (a, b, c, outsider) = (&people[0], &people[1], &people[2], &people[3]);
    let Created::New(conversation) = store.create_conversation(&group(&people[..3])).await.unwrap() else { panic!() };
    let err =
        append(store, mentioning(draft(&conversation.id, a, "hi", None), &[b, outsider]), &NO_LIMIT).await.unwrap_err();
    assert!(matches!(err, AppError::Validation(_)), "{err:?}");
    assert_eq!(store.get_conversation(&conversation.id).await.unwrap().unwrap().last_seq, 0, "nothing stored");
    for (n, mentioned) in [vec![b], vec![b, c], vec![a, c]].into_iter().enumerate() {
        let sent =
            append_ok(store, mentioning(draft(&conversation.id, a, &format!("m{n}"), None), &mentioned), &NO_LIMIT);
        let (appended, _) = sent.await.unwrap().into_parts();
        assert_eq!(appended.message.mentions.len(), mentioned.len());
    }
    let stored = store.get_message(&conversation.id, 2).await.unwrap().unwrap();
    assert_eq!(stored.mentions, mentioning(draft(&conversation.id, a, "", None), &[b, c]).mentions);
    let id = &conversation.id;
    let membership = |user: &User| {
        let user = user.id.clone();
        async move { store.member_conversation(id, &user).await.unwrap().unwrap().1 }
    };
    assert_eq!(membership(b).await.mention_seqs, [1, 2]);
    assert_eq!(membership(c).await.mention_seqs, [2, 3]);
    assert!(membership(a).await.mention_seqs.is_empty(), "the sender's own mention is read");
    assert_eq!(store.advance_read(&c.id, &conversation.id, 2, &[2]).await.unwrap(), Some(0));
    let read = membership(c).await;
    assert_eq!((read.mention_seqs.as_slice(), read.unread_mentions()), ([3].as_slice(), 1));
    let listed = store.memberships(&b.id).await.unwrap();
    assert_eq!(listed[0].mention_seqs, [1, 2], "the list reads them too");
    let everyone = [b.id.clone(), c.id.clone(), outsider.id.clone()];
    store.forget_mention(id, 2, &everyone).await.unwrap();
    store.forget_mention(id, 2, &everyone[..1]).await.unwrap();
    assert_eq!(membership(b).await.mention_seqs, [1], "a deleted message's mention is forgotten, twice alike");
    assert_eq!(membership(c).await.mention_seqs, [3]);
    assert!(store.member_conversation(id, &outsider.id).await.unwrap().is_none(), "no membership for a non-member");
}

/// A notification setting is a member's own, and goes with the membership.
async fn notification_settings_belong_to_the_membership_and_presence<S: Store>(store: &S) {
    let people = users(store, 3).await;
    let Created::New(conversation) = store.create_conversation(&group(&people[..2])).await.unwrap() else { panic!() };
    let quiet =
        ConversationNotifications { level: NotifyLevel::Mentions, until: Some("2099-01-01T00:00:00.000Z".into()) };
    assert!(store.set_notifications(&conversation.id, &people[1].id, &quiet).await.unwrap());
    assert!(!store.set_notifications(&conversation.id, &people[2].id, &quiet).await.unwrap(), "not a member");
    let listed = store.memberships(&people[1].id).await.unwrap();
    assert_eq!(listed[0].notifications, quiet);
    let (_, other) = store.member_conversation(&conversation.id, &people[0].id).await.unwrap().unwrap();
    assert_eq!(other.notifications, ConversationNotifications::default(), "one member's setting only");
    let forever = ConversationNotifications { level: NotifyLevel::None, until: None };
    assert!(store.set_notifications(&conversation.id, &people[1].id, &forever).await.unwrap());
    let (_, changed) = store.member_conversation(&conversation.id, &people[1].id).await.unwrap().unwrap();
    assert_eq!(changed.notifications, forever, "a new setting without until drops the old until");
    store.remove_member(&conversation, &people[1].id, &conversation.roles, &now_iso()).await.unwrap().expect("no race");
    assert!(store.memberships(&people[1].id).await.unwrap().is_empty());

    assert_eq!(store.presence(&people[0].id).await.unwrap().notifications, NotificationPreferences::default());
    let dnd =
        NotificationPreferences { do_not_disturb_until: Some("2099-01-01T00:00:00.000Z".into()), previews: false };
    store.set_notification_preferences(&people[0].id, &dnd).await.unwrap();
    let presences = store.presences(&[people[0].id.clone()]).await.unwrap();
    assert_eq!(presences[&people[0].id].notifications, dnd, "read with the presence that delivery reads");
    let plain = NotificationPreferences { do_not_disturb_until: None, previews: true };
    store.set_notification_preferences(&people[0].id, &plain).await.unwrap();
    assert_eq!(store.presence(&people[0].id).await.unwrap().notifications, plain);
}

fn upload_by(uploader: &User, conversation: &ConversationId, content_type: &str) -> Upload {
    Upload {
        id: UploadId::random(),
        conversation_id: conversation.clone(),
        uploader: uploader.id.clone(),
        file_name: "file".into(),
        content_type: content_type.into(),
        size: 10,
        created_at: now_iso(),
        message_id: None,
        processed: None,
    }
}

fn with_attachment(mut message: NewMessage, attachment: Attachment) -> NewMessage {
    message.kind = if attachment.is_image() { MessageKind::Image } else { MessageKind::File };
    message.attachment = Some(attachment);
    message
}

/// An upload is attached once, by its uploader, in its conversation; a retry of the same send is the original.
async fn uploads_are_attached_once_by_their_uploader_where_made<S: Store>(store: &S) {
    let (a, b, c) = (user(store).await, user(store).await, user(store).await);
    let Created::New(conversation) = store.create_conversation(&group(&[a.clone(), b.clone()])).await.unwrap() else {
        panic!()
    };
    let Created::New(other) = store.create_conversation(&group(&[a.clone(), c])).await.unwrap() else { panic!() };
    let upload = upload_by(&a, &conversation.id, "application/pdf");
    store.create_upload(&upload).await.unwrap();
    assert_eq!(store.get_upload(&upload.id).await.unwrap().as_ref(), Some(&upload));

    let conflict = |result: AppResult<Option<Created<Appended>>>| matches!(result, Err(AppError::Conflict(_)));
    let by_b = with_attachment(draft(&conversation.id, &b, "", None), upload.attachment());
    assert!(conflict(append(store, by_b, &NO_LIMIT).await), "another member's send");
    let other = store.get_conversation(&other.id).await.unwrap().unwrap();
    let elsewhere = with_attachment(draft(&other.id, &a, "", None), upload.attachment());
    assert!(conflict(store.append_message(&other, elsewhere, &NO_LIMIT).await), "another conversation");

    let send = with_attachment(draft(&conversation.id, &a, "", Some("with-file")), upload.attachment());
    let Created::New(first) = append_ok(store, send.clone(), &NO_LIMIT).await.unwrap() else { panic!("new") };
    assert_eq!(first.message.attachment.as_ref().map(|x| &x.id), Some(&upload.id));
    let stored = store.get_upload(&upload.id).await.unwrap().unwrap();
    assert_eq!(stored.message_id, Some(first.message.id.clone()));
    let Created::Existing(retry) = append_ok(store, send, &NO_LIMIT).await.unwrap() else { panic!("a retry") };
    assert_eq!(retry.message.id, first.message.id);
    let again = with_attachment(draft(&conversation.id, &a, "", None), upload.attachment());
    assert!(conflict(append(store, again, &NO_LIMIT).await), "attached twice");
    assert_eq!(store.get_conversation(&conversation.id).await.unwrap().unwrap().last_seq, 1, "nothing else stored");
}

/// A send built while an image was processing fails once the processor recorded its outcome (the sender reads
/// again); the processor's outcome names the message that attached the upload meanwhile.
async fn a_send_and_the_processor_never_lose_each_others_write<S: Store>(store: &S) {
    let (a, b) = (user(store).await, user(store).await);
    let Created::New(conversation) = store.create_conversation(&private(&a, &b)).await.unwrap() else { panic!() };
    let upload = upload_by(&a, &conversation.id, "image/png");
    store.create_upload(&upload).await.unwrap();
    let stale = upload.attachment();
    assert_eq!(stale.status, AttachmentStatus::Processing);

    let processed = Processed::Image { width: 4, height: 3 };
    let after = store.record_processed(&upload.id, &processed).await.unwrap().unwrap();
    assert_eq!((after.processed.as_ref(), after.message_id.as_ref()), (Some(&processed), None));
    let stale_send = with_attachment(draft(&conversation.id, &a, "", None), stale);
    assert!(matches!(append(store, stale_send, &NO_LIMIT).await, Err(AppError::Conflict(_))));
    let fresh = with_attachment(draft(&conversation.id, &a, "", None), after.attachment());
    let Created::New(sent) = append_ok(store, fresh, &NO_LIMIT).await.unwrap() else { panic!("new") };
    assert_eq!(sent.message.attachment.as_ref().map(|x| (x.status, x.width)), Some((AttachmentStatus::Ready, Some(4))));

    // The other order: sent while processing, then processed; the outcome names the message to update.
    let second = upload_by(&a, &conversation.id, "image/png");
    store.create_upload(&second).await.unwrap();
    let send = with_attachment(draft(&conversation.id, &a, "", None), second.attachment());
    let Created::New(sent) = append_ok(store, send, &NO_LIMIT).await.unwrap() else { panic!("new") };
    let rejected = Processed::Rejected { reason: "not an image".into() };
    let after = store.record_processed(&second.id, &rejected).await.unwrap().unwrap();
    assert_eq!(after.message_id.as_ref(), Some(&sent.message.id));
    let updated = store.set_attachment(&conversation.id, sent.message.seq, &after.attachment()).await.unwrap().unwrap();
    assert_eq!(updated.attachment.map(|x| x.status), Some(AttachmentStatus::Rejected));
    let read = store.get_message(&conversation.id, sent.message.seq).await.unwrap().unwrap();
    assert_eq!(read.attachment.map(|x| x.status), Some(AttachmentStatus::Rejected));
    assert_eq!(store.record_processed(&UploadId::random(), &rejected).await.unwrap(), None, "no such upload");
    store.delete_upload(&second.id).await.unwrap();
    assert_eq!(store.get_upload(&second.id).await.unwrap(), None);
}

/// Reports: one per reporter and target (a second changes and counts nothing), counted against the limit in
/// the same write, listed open oldest first in pages, closed together per target, each once; the flags on the
/// profile read with the session; the audit record newest first in pages.
async fn reports_dedupe_list_and_resolve_and_flags_and_audit_are_kept<S: Store>(store: &S) {
    let (alice, bob, carol) = (user(store).await, user(store).await, user(store).await);
    let message = ReportTarget::Message { message_id: MessageId::new(ConversationId::random(), 3) };
    let report = |reporter: &User, target: &ReportTarget, at: &str| Report {
        target: target.clone(),
        reporter_id: reporter.id.clone(),
        reason: ReportReason::Spam,
        details: Some("details".into()),
        created_at: at.to_owned(),
        subject_id: carol.id.clone(),
        excerpt: Some("buy now".into()),
        status: ReportStatus::Open,
    };
    let two = RateLimit { kind: "contract-report", max: 2, window_secs: 3600 };
    let at = now_iso();
    assert!(store.create_report(&report(&alice, &message, &at), &two).await.unwrap());
    assert!(!store.create_report(&report(&alice, &message, &now_iso()), &two).await.unwrap(), "a second report");
    let about_carol = ReportTarget::User { user_id: carol.id.clone() };
    assert!(
        store.create_report(&report(&alice, &about_carol, &now_iso()), &two).await.unwrap(),
        "the duplicate counted nothing"
    );
    let third = ReportTarget::User { user_id: bob.id.clone() };
    let refused = store.create_report(&report(&alice, &third, &now_iso()), &two).await.unwrap_err();
    assert!(matches!(refused, AppError::RateLimited { .. }), "{refused:?}");
    assert!(store.create_report(&report(&bob, &message, &now_iso()), &two).await.unwrap());

    // Every open report, in pages of two, oldest first; ours are among them.
    let mut open = Vec::new();
    let mut after: Option<ReportKey> = None;
    loop {
        let page = store.open_reports(after.as_ref(), 2).await.unwrap();
        assert!(page.len() <= 2);
        let Some(last) = page.last() else { break };
        after = Some(ReportKey::of(last));
        open.extend(page);
    }
    let ours: Vec<&Report> = open.iter().filter(|r| r.target == message || r.target == about_carol).collect();
    assert_eq!(ours.len(), 3, "{ours:?}");
    assert!(ours.contains(&&report(&alice, &message, &at)), "stored as given: {ours:?}");
    let keys: Vec<ReportKey> = open.iter().map(ReportKey::of).collect();
    let order = |k: &ReportKey| (k.created_at.clone(), k.target.clone(), k.reporter_id.clone());
    assert!(keys.windows(2).all(|w| order(&w[0]) < order(&w[1])), "oldest first, no repeats");

    let resolved_at = now_iso();
    let (first, second) = tokio::join!(
        store.resolve_reports(&message, ReportStatus::Actioned, &carol.id, &resolved_at),
        store.resolve_reports(&message, ReportStatus::Dismissed, &carol.id, &resolved_at),
    );
    assert_eq!(first.unwrap() + second.unwrap(), 2, "two operators at once close each report once");
    let open = store.open_reports(None, 1000).await.unwrap();
    assert!(!open.iter().any(|r| r.target == message) && open.iter().any(|r| r.target == about_carol));

    // Flags, read with the session.
    assert!(store.set_operator(&alice.id, true).await.unwrap());
    assert!(store.set_suspended(&bob.id, true).await.unwrap());
    assert!(!store.set_suspended(&UserId::random(), true).await.unwrap(), "no such user");
    assert_eq!(
        store.user_record(&alice.id).await.unwrap().unwrap().standing,
        Standing { operator: true, ..Standing::default() }
    );
    assert_eq!(
        store.user_record(&bob.id).await.unwrap().unwrap().standing,
        Standing { suspended: true, ..Standing::default() }
    );
    let session = SessionRecord {
        id: SessionId::random(),
        user_id: bob.id.clone(),
        generation: 0,
        created_at: now_iso(),
        refreshed_at: now_iso(),
        expires_at: now_epoch_seconds() + 600,
    };
    store.create_session(&session).await.unwrap();
    let (_, standing) = store.session_user(&bob.id, &session.id).await.unwrap().unwrap();
    assert!(standing.suspended);

    // The audit record of a month long past (earlier runs on the same table may have written to it too), newest
    // first, in pages.
    let month = format!("1999-{:02}", now_epoch_seconds() % 12 + 1);
    let entries: Vec<AuditEntry> = (0..3)
        .map(|n| AuditEntry {
            id: UserId::random().to_string(),
            at: format!("{month}-0{}T00:00:00.000Z", n + 1),
            operator_id: alice.id.clone(),
            action: AuditAction::Suspend,
            target: ReportTarget::User { user_id: bob.id.clone() },
            note: (n == 0).then(|| "first".to_owned()),
        })
        .collect();
    for entry in &entries {
        store.record_audit(entry).await.unwrap();
    }
    let mut read = Vec::new();
    let mut before: Option<AuditKey> = None;
    loop {
        let page = store.audit_entries(&month, before.as_ref(), 2).await.unwrap();
        assert!(page.len() <= 2);
        let Some(last) = page.last() else { break };
        before = Some(AuditKey { at: last.at.clone(), id: last.id.clone() });
        read.extend(page);
    }
    assert!(read.windows(2).all(|w| (&w[0].at, &w[0].id) > (&w[1].at, &w[1].id)), "newest first, no repeats");
    let mine: Vec<AuditEntry> = read.into_iter().filter(|e| e.operator_id == alice.id).collect();
    assert_eq!(mine, [entries[2].clone(), entries[1].clone(), entries[0].clone()]);
}

/// Closing an account frees its username and makes the profile a tombstone, once; erasing pages through one
/// sender's messages only, keeps the preview in step, and is idempotent.
async fn an_account_closes_once_and_its_messages_are_erased_in_pages<S: Store>(store: &S) {
    let (alice, bob) = (user(store).await, user(store).await);
    let Created::New(conversation) = store.create_conversation(&group(&[alice.clone(), bob.clone()])).await.unwrap()
    else {
        panic!("a new group")
    };
    for n in 0..5 {
        let sender = if n % 2 == 0 { &alice } else { &bob };
        append_ok(store, draft(&conversation.id, sender, &format!("m{n}"), None), &NO_LIMIT).await.unwrap();
    }
    // Reading one sender's messages in pages of two looked at changes nothing.
    let (mut after, mut read) = (0, Vec::new());
    loop {
        let page = store.sent_messages(&conversation.id, &alice.id, after, 2).await.unwrap();
        read.extend(page.messages.iter().map(|m| (m.seq, m.content.clone())));
        match page.scanned_through {
            Some(seq) => after = seq,
            None => break,
        }
    }
    assert_eq!(read, [(1, "m0".to_owned()), (3, "m2".to_owned()), (5, "m4".to_owned())]);
    assert!(store.tombstone_user(&alice.id, &alice.username, &now_iso()).await.unwrap());
    assert!(!store.tombstone_user(&alice.id, &alice.username, &now_iso()).await.unwrap(), "closed once");
    assert!(store.find_by_username(&alice.username).await.unwrap().is_none(), "the username is free");
    let record = store.user_record(&alice.id).await.unwrap().unwrap();
    assert_eq!((record.user.username.as_str(), record.standing.deleted), (DELETED_ACCOUNT, true));
    assert!(store.search_users(&alice.username.to_lowercase(), None, 10).await.unwrap().is_empty());

    // Pages of two messages looked at: alice's are 1, 3 and 5 (the newest, so the preview follows).
    let conversation = store.get_conversation(&conversation.id).await.unwrap().unwrap();
    let mut after = 0;
    let mut erased = Vec::new();
    loop {
        let page = store.erase_messages(&conversation, &alice.id, after, 2).await.unwrap();
        erased.extend(page.messages.iter().map(|m| m.seq));
        match page.scanned_through {
            Some(seq) => after = seq,
            None => break,
        }
    }
    assert_eq!(erased, [1, 3, 5]);
    let messages = store.messages(&conversation.id, chat_shared::ports::SeqRange::After(0), 10).await.unwrap();
    for message in &messages {
        let hers = message.sender.id == alice.id;
        assert_eq!(message.deleted, hers, "{message:?}");
        assert_eq!(message.sender.username == DELETED_ACCOUNT, hers);
        assert_eq!(message.content == DELETED_CONTENT, hers);
    }
    let preview = store.get_conversation(&conversation.id).await.unwrap().unwrap().last_message.unwrap();
    assert_eq!((preview.seq, preview.content.as_str()), (5, DELETED_CONTENT));
    let again = store.erase_messages(&conversation, &alice.id, 0, 10).await.unwrap();
    assert_eq!(again.messages.len(), 3, "erasing again finds them and changes nothing");
    store.close_for_deleted_member(&conversation.id, &alice.id).await.unwrap();
    store.close_for_deleted_member(&conversation.id, &alice.id).await.unwrap();
    let closed = store.get_conversation(&conversation.id).await.unwrap().unwrap();
    assert!(closed.member_deleted && closed.refuse_if_closed().is_err(), "closed, twice without harm");
    let nowhere = ConversationId::parse("no-such-conversation").unwrap();
    store.close_for_deleted_member(&nowhere, &alice.id).await.unwrap();
    assert!(store.get_conversation(&nowhere).await.unwrap().is_none(), "closing creates nothing");
    store.delete_presence(&alice.id).await.unwrap();
    assert_eq!(store.presence(&alice.id).await.unwrap(), UserPresence::default());
}

/// One export per user at a time: a request while one is fresh gets that one; finishing names the export it
/// finishes; forgetting answers what was forgotten.
async fn an_export_starts_once_while_fresh_and_finishes_by_its_id<S: Store>(store: &S) {
    use chat_shared::model::{ExportId, ExportRecord, ReadyExport};
    let alice = user(store).await;
    let record = |requested_at: &str| ExportRecord {
        user_id: alice.id.clone(),
        export_id: ExportId::random(),
        requested_at: requested_at.to_owned(),
        ready: None,
    };
    let first = record("2026-12-04T10:00:00.000Z");
    assert_eq!(store.start_export(&first, "2026-12-04T09:30:00.000Z").await.unwrap(), Created::New(first.clone()));
    let second = record("2026-12-04T10:20:00.000Z");
    assert_eq!(
        store.start_export(&second, "2026-12-04T09:20:00.000Z").await.unwrap(),
        Created::Existing(first.clone()),
        "the first is fresh"
    );
    let ready = ReadyExport { ready_at: "2026-12-04T10:00:05.000Z".into(), size: 42 };
    assert!(!store.finish_export(&alice.id, &second.export_id, &ready).await.unwrap(), "not the user's export");
    assert!(store.finish_export(&alice.id, &first.export_id, &ready).await.unwrap());
    let finished = ExportRecord { ready: Some(ready), ..first.clone() };
    assert_eq!(store.export_record(&alice.id).await.unwrap(), Some(finished.clone()));
    let third = record("2026-12-04T11:30:00.000Z");
    assert_eq!(
        store.start_export(&third, "2026-12-04T10:30:00.000Z").await.unwrap(),
        Created::New(third.clone()),
        "an hour later the first is stale"
    );
    assert_eq!(store.forget_export(&alice.id).await.unwrap(), Some(third));
    assert_eq!(store.forget_export(&alice.id).await.unwrap(), None);
    assert_eq!(store.export_record(&alice.id).await.unwrap(), None);
}

contract!(
    mentions_are_kept_per_member_and_forgotten_as_read,
    notification_settings_belong_to_the_membership_and_presence,
    an_export_starts_once_while_fresh_and_finishes_by_its_id,
    an_account_closes_once_and_its_messages_are_erased_in_pages,
    reports_dedupe_list_and_resolve_and_flags_and_audit_are_kept,
    uploads_are_attached_once_by_their_uploader_where_made,
    a_send_and_the_processor_never_lose_each_others_write,
    groups_grow_large_in_pages_and_shrink_back_to_listed,
    membership_changes_from_the_same_read_cannot_both_apply,
    roles_change_under_the_roster_version,
    sessions_rotate_from_their_generation_and_end,
    read_counts_follow_read_pointers,
    large_groups_check_the_sender_in_the_append,
    usernames_are_unique_case_insensitively,
    concurrent_private_creates_yield_one_conversation,
    a_block_is_listed_copied_to_the_presence_and_closes_the_pair,
    concurrent_appends_get_gap_free_seqs_and_client_ids_dedupe,
    non_members_cannot_append,
    a_removed_members_retry_is_refused_before_the_dedupe,
    connections_by_id_and_in_the_users_presence,
    simultaneous_connects_and_disconnects_see_the_presence_atomically,
    presences_of_more_users_than_one_batch,
    expired_and_unregistered_connections,
    read_pointers_move_forward_for_members_only,
    reactions_need_a_live_message,
    a_users_reactions_are_read_by_seq_range,
    sends_are_counted_against_the_limit_in_the_same_write,
);
