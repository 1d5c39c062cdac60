/**
 * Conversations: the list with unread counts, which one is open, its history (newest page, older pages on
 * scroll), read and delivery receipts, and creating private chats and groups.
 */

import {
  ChatError,
  type ChatClient,
  type Conversation,
  type ConversationNotifications,
  type ConversationSummary,
  type Message,
  type NotifyLevel,
  type PresenceState,
  type User,
} from '@chat/sdk';

import { type Core, describe } from './core';
import { withdrawNotification } from './security';
import type { Typing } from './typing';

/** A message typed here whose ack has not arrived yet (or whose send failed). */
export interface PendingSend {
  clientMessageId: string;
  content: string;
  createdAt: string;
  /** Why the send failed; null while in flight. */
  failed: string | null;
  /** A file being uploaded with this send, and how far it got. */
  file?: { source: File; loaded: number };
}

export interface TypingPeer {
  username: string;
  /** Epoch ms after which the indicator is dropped if no `isTyping: false` came. */
  until: number;
}

export interface ConversationView {
  summary: ConversationSummary;
  /** Loaded and live messages, by seq. */
  messages: Map<number, Message>;
  pending: PendingSend[];
  historyLoaded: boolean;
  historyCursor: string | null;
  reachedStart: boolean;
  loadingOlder: boolean;
  /** The highest seq of mine some other member has received (`message_status: delivered`). */
  deliveredUpTo: number;
  /** Other members' read positions. */
  readers: Map<string, number>;
  typing: Map<string, TypingPeer>;
  /** The highest seq this client asked the server to mark read. */
  markedUpTo: number;
}

export type MessageState = 'sending' | 'failed' | 'sent' | 'delivered' | 'read';

export type Panel = 'none' | 'private' | 'group';

const HISTORY_PAGE = 30;

function activity(conversation: ConversationSummary): string {
  return conversation.lastMessage?.createdAt ?? conversation.updatedAt;
}

export class Conversations {
  all = new Map<string, ConversationView>();
  activeId: string | null = null;
  panel: Panel = 'none';
  tab: 'chats' | 'friends' | 'settings' = 'chats';

  constructor(
    private readonly core: Core,
    private readonly typing: Typing,
  ) {}

  clear(): void {
    this.all.clear();
    this.activeId = null;
    this.panel = 'none';
  }

  get(conversationId: string): ConversationView | undefined {
    return this.all.get(conversationId);
  }

  upsert(summary: ConversationSummary): ConversationView {
    const existing = this.all.get(summary._id);
    if (existing) {
      existing.summary = summary;
      existing.markedUpTo = Math.max(existing.markedUpTo, summary.lastSeq - summary.unreadCount);
      return existing;
    }
    const view: ConversationView = {
      summary,
      messages: new Map(),
      pending: [],
      historyLoaded: false,
      historyCursor: null,
      reachedStart: false,
      loadingOlder: false,
      deliveredUpTo: 0,
      readers: new Map(),
      typing: new Map(),
      markedUpTo: summary.lastSeq - summary.unreadCount,
    };
    this.all.set(summary._id, view);
    return view;
  }

  /** Forgets a conversation the user left or lost access to. */
  forget(conversationId: string): void {
    this.all.delete(conversationId);
    if (this.activeId === conversationId) this.activeId = null;
  }

  async refresh(conversationId: string): Promise<void> {
    const client = this.core.client;
    if (!client) return;
    try {
      this.upsert(await client.getConversation(conversationId));
      if (!client.joinedConversations().includes(conversationId)) {
        await client.joinConversation(conversationId).catch(() => undefined);
      }
    } catch (error) {
      if (error instanceof ChatError && error.status === 404) this.forget(conversationId);
    }
    this.core.changed();
  }

  /** Which messages of the conversation notify me; `hours` makes a quieter level end after that long. */
  async setNotifications(conversationId: string, level: NotifyLevel, hours: number | null): Promise<void> {
    const client = this.core.client;
    if (!client) return;
    const until = level !== 'all' && hours !== null ? new Date(Date.now() + hours * 3_600_000).toISOString() : undefined;
    try {
      const { conversationId: id, ...setting } = await client.rest.setConversationNotifications(conversationId, level, until);
      this.notificationsChanged(id, setting);
    } catch (error) {
      this.core.notify(`Could not change notifications: ${describe(error)}`);
    }
  }

  /** A setting made here or on another device of mine. */
  notificationsChanged(conversationId: string, notifications: ConversationNotifications): void {
    const view = this.all.get(conversationId);
    if (!view) return;
    view.summary = { ...view.summary, notifications };
    this.core.changed();
  }

  /** Conversations, most recent activity first. */
  sorted(): ConversationView[] {
    return [...this.all.values()].sort((a, b) => activity(b.summary).localeCompare(activity(a.summary)));
  }

  active(): ConversationView | null {
    return this.activeId ? (this.all.get(this.activeId) ?? null) : null;
  }

  /** The other member of a private conversation. */
  peer(conversation: Conversation): User | null {
    if (conversation.type !== 'private') return null;
    return conversation.members?.find((m) => m._id !== this.core.me?._id) ?? null;
  }

  title(conversation: Conversation): string {
    if (conversation.type === 'group') return conversation.name ?? 'Group';
    return this.peer(conversation)?.username ?? 'Private chat';
  }

  presenceOf(userId: string): PresenceState | undefined {
    return this.core.client?.presence.get(userId);
  }

  async open(conversationId: string): Promise<void> {
    const client = this.core.client;
    const view = this.all.get(conversationId);
    if (!client || !view) return;
    if (this.activeId && this.activeId !== conversationId) this.typing.stop();
    this.activeId = conversationId;
    this.panel = 'none';
    this.core.changed();
    if (!client.joinedConversations().includes(conversationId)) {
      void client.joinConversation(conversationId).catch((error) => this.core.notify(describe(error)));
    }
    if (!view.historyLoaded) await this.reloadHistory(conversationId);
    await this.markRead(conversationId);
  }

  /** Loads the newest page of history (again), keeping older pages already loaded. */
  async reloadHistory(conversationId: string): Promise<void> {
    const client = this.core.client;
    const view = this.all.get(conversationId);
    if (!client || !view) return;
    try {
      const page = await client.conversation(conversationId).history({ limit: HISTORY_PAGE });
      for (const message of page.items) view.messages.set(message.seq, message);
      if (!view.historyLoaded) {
        view.historyCursor = page.nextCursor;
        // Seqs start at 1 and have no gaps: with message 1 loaded (live, say) there is nothing older.
        view.reachedStart = page.nextCursor === null || view.messages.has(1);
      }
      view.historyLoaded = true;
      const newest = page.items[0];
      if (newest) {
        const seen = client.lastSeq(conversationId);
        if (seen === null || seen < newest.seq) client.trackConversation(conversationId, newest.seq);
      }
      this.core.changed();
      await this.loadReceipts(view);
    } catch (error) {
      this.core.notify(`Could not load messages: ${describe(error)}`);
    }
  }

  async loadOlder(conversationId: string): Promise<void> {
    const client = this.core.client;
    const view = this.all.get(conversationId);
    if (!client || !view || view.loadingOlder || view.reachedStart || !view.historyCursor) return;
    view.loadingOlder = true;
    this.core.changed();
    try {
      const page = await client.conversation(conversationId).history({ cursor: view.historyCursor, limit: HISTORY_PAGE });
      for (const message of page.items) if (!view.messages.has(message.seq)) view.messages.set(message.seq, message);
      view.historyCursor = page.nextCursor;
      view.reachedStart = page.nextCursor === null || view.messages.has(1);
    } catch (error) {
      this.core.notify(`Could not load older messages: ${describe(error)}`);
    } finally {
      view.loadingOlder = false;
      this.core.changed();
    }
  }

  /** Whether my newest message has been read: read counts include the sender, so more than one means a reader. */
  private async loadReceipts(view: ConversationView): Promise<void> {
    const client = this.core.client;
    const mine = [...view.messages.values()].filter((m) => m.sender._id === this.core.me?._id && !m.deleted);
    const newest = mine.reduce<Message | null>((best, m) => (best && best.seq > m.seq ? best : m), null);
    if (!client || !newest) return;
    try {
      const { readCount } = await client.conversation(view.summary._id).readCount(newest._id);
      if (readCount > 1) {
        view.readers.set('*', Math.max(view.readers.get('*') ?? 0, newest.seq));
        view.deliveredUpTo = Math.max(view.deliveredUpTo, newest.seq);
        this.core.changed();
      }
    } catch {
      // Receipts are decoration: the message list is there without them.
    }
  }

  async markRead(conversationId: string): Promise<void> {
    const client = this.core.client;
    const view = this.all.get(conversationId);
    if (!client || !view || document.visibilityState === 'hidden') return;
    const newest = Math.max(view.summary.lastSeq, ...view.messages.keys());
    void withdrawNotification(conversationId, (shown) => (shown.seq ?? 0) <= newest);
    if (newest <= view.markedUpTo && view.summary.unreadCount === 0) return;
    view.markedUpTo = Math.max(view.markedUpTo, newest);
    view.summary = { ...view.summary, unreadCount: 0, unreadMentionCount: 0 };
    this.core.changed();
    if (newest <= 0) return;
    try {
      await client.conversation(conversationId).markReadUpTo(newest);
    } catch (error) {
      this.core.notify(`Could not mark as read: ${describe(error)}`);
    }
  }

  /** Read on another tab or device of mine. */
  markedElsewhere(conversationId: string, upToSeq: number): void {
    const view = this.all.get(conversationId);
    if (!view) return;
    view.markedUpTo = Math.max(view.markedUpTo, upToSeq);
    const unreadCount = Math.max(0, view.summary.lastSeq - view.markedUpTo);
    // Which of the unread mentioned me is not known here: the count is exact again at the next refresh.
    const unreadMentionCount = unreadCount === 0 ? 0 : Math.min(view.summary.unreadMentionCount, unreadCount);
    view.summary = { ...view.summary, unreadCount, unreadMentionCount };
  }

  setReader(conversationId: string, userId: string, upToSeq: number): void {
    const view = this.all.get(conversationId);
    if (!view) return;
    view.readers.set(userId, Math.max(view.readers.get(userId) ?? 0, upToSeq));
    view.deliveredUpTo = Math.max(view.deliveredUpTo, upToSeq);
  }

  delivered(conversationId: string, seq: number): void {
    const view = this.all.get(conversationId);
    if (view) view.deliveredUpTo = Math.max(view.deliveredUpTo, seq);
  }

  /** What the sender sees under one of their messages. */
  messageState(view: ConversationView, message: Message): MessageState {
    for (const seq of view.readers.values()) if (seq >= message.seq) return 'read';
    return view.deliveredUpTo >= message.seq ? 'delivered' : 'sent';
  }

  /** How many other members read up to this message (for groups). */
  readersOf(view: ConversationView, message: Message): number {
    let count = 0;
    for (const [user, seq] of view.readers) if (user !== '*' && seq >= message.seq) count += 1;
    return count;
  }

  /** The stored messages in seq order (the view shows `pending` after them). */
  timeline(view: ConversationView): Message[] {
    return [...view.messages.values()].sort((a, b) => a.seq - b.seq);
  }

  async createPrivate(userId: string): Promise<void> {
    const client = this.core.client;
    if (!client) return;
    try {
      await this.openCreated(await client.createPrivate(userId));
    } catch (error) {
      this.core.notify(`Could not start the chat: ${describe(error)}`);
    }
  }

  async createGroup(name: string, userIds: string[]): Promise<boolean> {
    const client = this.core.client;
    if (!client) return false;
    try {
      await this.openCreated(await client.createGroup(name, userIds));
      return true;
    } catch (error) {
      this.core.notify(`Could not create the group: ${describe(error)}`);
      return false;
    }
  }

  private async openCreated(conversation: Conversation): Promise<void> {
    const view = this.all.get(conversation._id) ?? this.upsert(summaryOf(conversation, 0));
    this.tab = 'chats';
    await this.open(view.summary._id);
  }

  async searchUsers(prefix: string): Promise<User[]> {
    const client = this.core.client;
    if (!client || prefix.trim() === '') return [];
    try {
      const page = await client.rest.searchUsers(prefix.trim(), { limit: 10 });
      return page.items.filter((u) => u._id !== this.core.me?._id);
    } catch (error) {
      this.core.notify(`Search failed: ${describe(error)}`);
      return [];
    }
  }
}

/** Every conversation of the user, page by page (50 per page, the API's maximum; at most 20 pages). */
export async function listAll(client: ChatClient): Promise<ConversationSummary[]> {
  const all: ConversationSummary[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < 20; page += 1) {
    const answer = await client.listConversations(cursor ? { limit: 50, cursor } : { limit: 50 });
    all.push(...answer.items);
    if (!answer.nextCursor) break;
    cursor = answer.nextCursor;
  }
  return all;
}

/** A conversation as my list shows it before the server has counted anything for me. */
export function summaryOf(conversation: Conversation, unreadCount: number): ConversationSummary {
  return { ...conversation, unreadCount, unreadMentionCount: 0, notifications: { level: 'all', until: null } };
}
