/**
 * Server events → state: which slice each event of the SDK changes. One place to read when asking "what does
 * the app do when X arrives".
 */

import { ChatError, type ChatClient, FRIEND_EVENTS } from '@chat/sdk';

import type { Slices } from './session';
import { summaryOf } from './conversations';
import { seqOf } from './core';
import { withdrawNotification } from './security';

/** Subscribes every handler; returns the unsubscribe functions. */
export function wire(client: ChatClient, slices: Slices, expired: () => void, reconnected: () => void): (() => void)[] {
  const { core, conversations, messages, typing, friends, members, security } = slices;
  const me = () => core.me?._id;
  const offs = [
    client.on('state', ({ current, error }) => {
      core.connection = current;
      if (current === 'offline' && error instanceof ChatError && error.status === 401) expired();
      core.changed();
    }),
    client.on('synced', ({ reconnect }) => {
      if (reconnect) reconnected();
    }),
    client.on('message', ({ conversationId, message }) => messages.arrived(conversationId, message)),
    client.on('gap', ({ conversationId }) => void conversations.reloadHistory(conversationId)),
    client.on('presence', ({ source, previous, current }) => {
      // `user_online` does not say which status the user came back with: ask for it.
      if (source === 'event' && current.online && !previous?.online) refreshPresenceSoon(client);
      core.changed();
    }),
    client.on('message_edited', ({ conversationId, messageId, newContent, editedAt }) =>
      messages.edited(conversationId, messageId, newContent, editedAt),
    ),
    client.on('message_deleted', ({ conversationId, messageId }) => {
      messages.deleted(conversationId, messageId);
      void withdrawNotification(conversationId, (shown) => shown.messageId === messageId);
    }),
    client.on('attachment_processed', ({ conversationId, messageId, attachment }) =>
      messages.attachmentProcessed(conversationId, messageId, attachment),
    ),
    client.on('reaction_added', ({ conversationId, messageId, emoji, userId }) =>
      messages.reacted(conversationId, messageId, emoji, userId, true),
    ),
    client.on('reaction_removed', ({ conversationId, messageId, emoji, userId }) =>
      messages.reacted(conversationId, messageId, emoji, userId, false),
    ),
    client.on('messages_read', ({ conversationId, readBy, upToSeq }) => {
      if (readBy === me()) {
        conversations.markedElsewhere(conversationId, upToSeq);
        void withdrawNotification(conversationId, (shown) => (shown.seq ?? 0) <= upToSeq);
      }
      else conversations.setReader(conversationId, readBy, upToSeq);
      core.changed();
    }),
    client.on('message_status', (status) => {
      const seq = seqOf(status.messageId);
      if (status.status === 'delivered') {
        if (status.userIds.length > 0) conversations.delivered(status.conversationId, seq);
      } else if (status.userId !== me()) {
        conversations.setReader(status.conversationId, status.userId, seq);
      }
      core.changed();
    }),
    client.on('typing_status', ({ conversationId, userId, username, isTyping }) => {
      const view = conversations.get(conversationId);
      if (!view || userId === me()) return;
      typing.peer(view, userId, username, isTyping);
      core.changed();
    }),
    client.on('conversation_created', ({ conversation }) => {
      conversations.upsert(summaryOf(conversation, conversation.lastSeq));
      void client.joinConversation(conversation._id).catch(() => undefined);
      core.changed();
    }),
    client.on('conversation_updated', ({ conversation }) => void conversations.refresh(conversation._id)),
    client.on('member_joined', ({ conversationId }) => {
      void conversations.refresh(conversationId);
      members.changed(conversationId);
    }),
    client.on('member_left', ({ conversationId, userId }) => {
      if (userId === me()) {
        conversations.forget(conversationId);
        if (members.shownFor === conversationId) members.clear();
        core.changed();
      } else {
        void conversations.refresh(conversationId);
        members.changed(conversationId);
      }
    }),
    client.on('member_role_changed', ({ conversationId }) => {
      void conversations.refresh(conversationId);
      members.changed(conversationId);
    }),
    client.on('status_changed', () => core.changed()),
    client.on('conversation_notifications_changed', ({ conversationId, level, until }) =>
      conversations.notificationsChanged(conversationId, { level, until }),
    ),
    client.on('notification_preferences_changed', (preferences) => security.notificationsChanged(preferences)),
  ];
  for (const event of [...FRIEND_EVENTS, 'user_blocked', 'user_unblocked'] as const) {
    offs.push(client.on(event, () => void friends.refresh()));
  }
  return offs;
}

const presenceRefreshes = new WeakMap<ChatClient, ReturnType<typeof setTimeout>>();

/** One `get_presence` for a burst of `user_online` events (they carry no status). */
function refreshPresenceSoon(client: ChatClient): void {
  if (presenceRefreshes.has(client)) return;
  presenceRefreshes.set(
    client,
    setTimeout(() => {
      presenceRefreshes.delete(client);
      if (client.state === 'connected') void client.getPresence().catch(() => undefined);
    }, 300),
  );
}
