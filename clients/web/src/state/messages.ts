/**
 * Messages of the conversations: live arrivals, optimistic sends reconciled by `clientMessageId`, edits,
 * deletions and reactions (applied at once, undone if the server refuses).
 */

import { type Attachment, type Message, mentionsIn } from '@chat/sdk';

import type { Conversations, PendingSend } from './conversations';
import { type Core, describe, seqOf } from './core';
import type { Typing } from './typing';

export class Messages {
  private sendCounter = 0;
  private readonly instance = Math.random().toString(36).slice(2, 10);

  constructor(
    private readonly core: Core,
    private readonly conversations: Conversations,
    private readonly typing: Typing,
  ) {}

  /** A stored message: a live one, the ack of my send, or one caught up after a reconnect. */
  arrived(conversationId: string, message: Message): void {
    const view = this.conversations.get(conversationId);
    if (!view) {
      // A conversation we did not know yet (created while we were away): load it.
      void this.conversations.refresh(conversationId);
      return;
    }
    view.messages.set(message.seq, message);
    if (message.clientMessageId) {
      view.pending = view.pending.filter((p) => p.clientMessageId !== message.clientMessageId);
    }
    const mine = message.sender._id === this.core.me?._id;
    view.typing.delete(message.sender._id);
    const summary = view.summary;
    if (message.seq >= summary.lastSeq) {
      view.summary = {
        ...summary,
        lastSeq: message.seq,
        lastMessage: message,
        updatedAt: message.createdAt,
        unreadCount: mine ? summary.unreadCount : summary.unreadCount + 1,
        unreadMentionCount:
          !mine && this.mentionsMe(message) ? summary.unreadMentionCount + 1 : summary.unreadMentionCount,
      };
    }
    if (mine) view.markedUpTo = Math.max(view.markedUpTo, message.seq);
    // Sending moves the sender's read pointer to their message without a `messages_read` event: whoever
    // wrote seq n has read everything up to n.
    else this.conversations.setReader(conversationId, message.sender._id, message.seq);
    if (!mine && this.conversations.activeId === conversationId) void this.conversations.markRead(conversationId);
    this.core.changed();
  }

  mentionsMe(message: Message): boolean {
    return this.core.me !== null && message.mentions.includes(this.core.me._id);
  }

  /** Shows the message at once; the ack (or its `message` event) replaces it with the stored one. */
  send(conversationId: string, content: string, retryOf?: PendingSend): void {
    const client = this.core.client;
    const view = this.conversations.get(conversationId);
    const text = content.trim();
    if (!client || !view || text === '') return;
    this.typing.stop();
    this.sendCounter += 1;
    const pending: PendingSend = retryOf
      ? { ...retryOf, failed: null }
      : {
          clientMessageId: `web-${this.instance}-${Date.now().toString(36)}-${this.sendCounter}`,
          content: text,
          createdAt: new Date().toISOString(),
          failed: null,
        };
    view.pending = [...view.pending.filter((p) => p.clientMessageId !== pending.clientMessageId), pending];
    this.core.changed();
    client
      .conversation(conversationId)
      .send(pending.content, { clientMessageId: pending.clientMessageId, mentions: mentionsIn(pending.content, view.summary.members ?? []) })
      .then(({ message }) => this.arrived(conversationId, message))
      .catch((error: unknown) => {
        const entry = this.conversations.get(conversationId)?.pending.find((p) => p.clientMessageId === pending.clientMessageId);
        if (entry) entry.failed = describe(error);
        this.core.changed();
      });
  }

  /**
   * Uploads a file (attach button, paste, drop) and sends it: shown at once with its upload progress; images
   * appear inline once the server has made their thumbnail.
   */
  sendFile(conversationId: string, file: File, retryOf?: PendingSend): void {
    const client = this.core.client;
    const view = this.conversations.get(conversationId);
    if (!client || !view) return;
    this.sendCounter += 1;
    const pending: PendingSend = retryOf
      ? { ...retryOf, failed: null, file: { source: file, loaded: 0 } }
      : {
          clientMessageId: `web-${this.instance}-${Date.now().toString(36)}-${this.sendCounter}`,
          content: file.name,
          createdAt: new Date().toISOString(),
          failed: null,
          file: { source: file, loaded: 0 },
        };
    view.pending = [...view.pending.filter((p) => p.clientMessageId !== pending.clientMessageId), pending];
    this.core.changed();
    const entry = () => this.conversations.get(conversationId)?.pending.find((p) => p.clientMessageId === pending.clientMessageId);
    client
      .conversation(conversationId)
      .sendFile(file, {
        clientMessageId: pending.clientMessageId,
        onProgress: ({ loaded }) => {
          const current = entry();
          if (current?.file) current.file.loaded = loaded;
          this.core.changed();
        },
      })
      .then(({ message }) => this.arrived(conversationId, message))
      .catch((error: unknown) => {
        const current = entry();
        if (current) current.failed = describe(error);
        this.core.changed();
      });
  }

  /** An image sent while it was processed is ready (or rejected): its URLs and size arrive. */
  attachmentProcessed(conversationId: string, messageId: string, attachment: Attachment): void {
    this.patch(conversationId, messageId, (m) => ({ ...m, attachment }));
  }

  discard(conversationId: string, clientMessageId: string): void {
    const view = this.conversations.get(conversationId);
    if (!view) return;
    view.pending = view.pending.filter((p) => p.clientMessageId !== clientMessageId);
    this.core.changed();
  }

  async edit(message: Message, newContent: string): Promise<void> {
    const client = this.core.client;
    if (!client || newContent.trim() === '' || newContent === message.content) return;
    try {
      const stored = await client.conversation(message.conversationId).editMessage(message._id, newContent.trim());
      this.patch(message.conversationId, message._id, (m) => ({ ...stored, reactions: m.reactions }));
    } catch (error) {
      this.core.notify(`Could not edit: ${describe(error)}`);
    }
  }

  async remove(message: Message): Promise<void> {
    const client = this.core.client;
    if (!client) return;
    try {
      await client.conversation(message.conversationId).deleteMessage(message._id);
      this.deleted(message.conversationId, message._id);
    } catch (error) {
      this.core.notify(`Could not delete: ${describe(error)}`);
    }
  }

  /** Adds my reaction, or removes it if I had already reacted with this emoji (optimistic). */
  async toggleReaction(message: Message, emoji: string): Promise<void> {
    const client = this.core.client;
    const me = this.core.me?._id;
    if (!client || !me) return;
    const had = (message.reactions[emoji] ?? []).includes(me);
    this.reacted(message.conversationId, message._id, emoji, me, !had);
    const conversation = client.conversation(message.conversationId);
    try {
      if (had) await conversation.removeReaction(message._id, emoji);
      else await conversation.addReaction(message._id, emoji);
    } catch (error) {
      this.reacted(message.conversationId, message._id, emoji, me, had);
      this.core.notify(`Could not react: ${describe(error)}`);
    }
  }

  edited(conversationId: string, messageId: string, newContent: string, editedAt: string): void {
    this.patch(conversationId, messageId, (m) => ({ ...m, content: newContent, edited: true, editedAt }));
  }

  deleted(conversationId: string, messageId: string): void {
    const view = this.conversations.get(conversationId);
    const message = view?.messages.get(seqOf(messageId));
    // The server stops counting a deleted message's mentions; the badge follows when it was an unread one.
    const unreadMention =
      message && !message.deleted && message.sender._id !== this.core.me?._id && this.mentionsMe(message);
    if (view && unreadMention && message.seq > view.markedUpTo) {
      view.summary = { ...view.summary, unreadMentionCount: Math.max(0, view.summary.unreadMentionCount - 1) };
    }
    this.patch(conversationId, messageId, (m) => deletedCopy(m, new Date().toISOString()));
  }

  reacted(conversationId: string, messageId: string, emoji: string, userId: string, present: boolean): void {
    this.patch(conversationId, messageId, (m) => withReaction(m, emoji, userId, present));
  }

  private patch(conversationId: string, messageId: string, change: (message: Message) => Message): void {
    const view = this.conversations.get(conversationId);
    if (!view) return;
    const seq = seqOf(messageId);
    const message = view.messages.get(seq);
    if (message) view.messages.set(seq, change(message));
    const last = view.summary.lastMessage;
    if (last && last._id === messageId) view.summary = { ...view.summary, lastMessage: change(last) };
    this.core.changed();
  }
}

function deletedCopy(message: Message, deletedAt: string): Message {
  return { ...message, deleted: true, deletedAt, content: 'This message was deleted', reactions: {} };
}

function withReaction(message: Message, emoji: string, userId: string, present: boolean): Message {
  const users = new Set(message.reactions[emoji] ?? []);
  if (present) users.add(userId);
  else users.delete(userId);
  const reactions = { ...message.reactions };
  if (users.size > 0) reactions[emoji] = [...users];
  else delete reactions[emoji];
  return { ...message, reactions };
}
