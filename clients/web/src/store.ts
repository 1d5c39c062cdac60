/**
 * The app's state and everything that changes it: one `ChatClient` (from the SDK) and what the screens show.
 *
 * Why this module exists: the views stay dumb (they read `store` and call its methods), and every rule of the
 * protocol the UI depends on lives here in one place: optimistic sends reconciled by `clientMessageId`, unread
 * counts, read and delivery receipts, typing expiry, presence from the SDK's presence map, and what to reload
 * after a reconnect (the SDK catches up new messages; edits, deletions and reactions made meanwhile need the
 * visible history reloaded).
 */

import {
  ChatClient,
  ChatError,
  type ConnectionState,
  type Conversation,
  type ConversationSummary,
  type Friend,
  type FriendRequests,
  type Message,
  type PresenceState,
  type User,
} from '@chat/sdk';

export interface Config {
  http: string;
  websocket: string;
}

/** A message typed here whose ack has not arrived yet (or whose send failed). */
export interface PendingSend {
  clientMessageId: string;
  content: string;
  createdAt: string;
  /** Why the send failed; null while in flight. */
  failed: string | null;
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

const SESSION_KEY = 'chat.session';
const HISTORY_PAGE = 30;
/** A typing indicator without a refresh disappears after this long. */
const TYPING_TTL_MS = 6_000;
/** While typing, `isTyping: true` is repeated this often (the server swallows repeats within 2 s). */
const TYPING_REPEAT_MS = 3_000;
/** After this long without a keystroke, `isTyping: false` is sent. */
const TYPING_IDLE_MS = 3_000;

export function seqOf(messageId: string): number {
  return Number(messageId.slice(messageId.lastIndexOf('-') + 1));
}

function describe(error: unknown): string {
  if (error instanceof ChatError) return error.message;
  return error instanceof Error ? error.message : String(error);
}

function activity(conversation: ConversationSummary): string {
  return conversation.lastMessage?.createdAt ?? conversation.updatedAt;
}

export class Store {
  config: Config | null = null;
  configError: string | null = null;
  client: ChatClient | null = null;
  me: User | null = null;
  connection: ConnectionState = 'offline';
  /** Set while logging in or registering. */
  busy = false;
  authError: string | null = null;
  toast: string | null = null;

  conversations = new Map<string, ConversationView>();
  activeId: string | null = null;
  friends: Friend[] = [];
  requests: FriendRequests = { incoming: [], outgoing: [] };
  myStatus = 'online';
  panel: Panel = 'none';
  tab: 'chats' | 'friends' = 'chats';

  private listeners = new Set<() => void>();
  private scheduled = false;
  private toastTimer: ReturnType<typeof setTimeout> | undefined;
  private typingSweep: ReturnType<typeof setInterval> | undefined;
  private presenceRefresh: ReturnType<typeof setTimeout> | undefined;
  private typingSentAt = 0;
  private typingIdle: ReturnType<typeof setTimeout> | undefined;
  private typingConversation: string | null = null;
  private sendCounter = 0;
  private readonly instance = Math.random().toString(36).slice(2, 10);
  private offs: (() => void)[] = [];

  // ------------------------------------------------------------------ change notification

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Batches re-renders: many events in one tick render once. */
  changed(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      for (const listener of this.listeners) listener();
    });
  }

  notify(message: string): void {
    this.toast = message;
    clearTimeout(this.toastTimer);
    this.toastTimer = setTimeout(() => {
      this.toast = null;
      this.changed();
    }, 6_000);
    this.changed();
  }

  // ------------------------------------------------------------------ boot and session

  async boot(): Promise<void> {
    try {
      const response = await fetch('./config.json', { cache: 'no-store' });
      if (!response.ok) throw new Error(`config.json: HTTP ${response.status}`);
      const config = (await response.json()) as Partial<Config>;
      if (typeof config.http !== 'string' || typeof config.websocket !== 'string') {
        throw new Error('config.json needs "http" and "websocket"');
      }
      this.config = { http: config.http, websocket: config.websocket };
    } catch (error) {
      this.configError = describe(error);
      this.changed();
      return;
    }
    window.addEventListener('online', () => this.client?.reconnectNow());
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible' && this.activeId) void this.markRead(this.activeId);
    });
    const saved = sessionStorage.getItem(SESSION_KEY);
    if (saved) {
      try {
        const { token, user } = JSON.parse(saved) as { token: string; user: User };
        this.start(token, user);
      } catch {
        sessionStorage.removeItem(SESSION_KEY);
      }
    }
    this.changed();
  }

  async authenticate(mode: 'login' | 'register', username: string, password: string): Promise<void> {
    if (!this.config || this.busy) return;
    this.busy = true;
    this.authError = null;
    this.changed();
    try {
      const client = new ChatClient({ ...this.config });
      const session = mode === 'login' ? await client.login({ username, password }) : await client.register({ username, password });
      sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
      this.start(session.token, session.user);
    } catch (error) {
      this.authError = describe(error);
    } finally {
      this.busy = false;
      this.changed();
    }
  }

  logout(): void {
    sessionStorage.removeItem(SESSION_KEY);
    this.stop();
    this.changed();
  }

  private stop(): void {
    for (const off of this.offs) off();
    this.offs = [];
    this.client?.disconnect();
    this.client = null;
    this.me = null;
    this.connection = 'offline';
    this.conversations.clear();
    this.activeId = null;
    this.friends = [];
    this.requests = { incoming: [], outgoing: [] };
    this.panel = 'none';
    clearInterval(this.typingSweep);
    clearTimeout(this.presenceRefresh);
    this.presenceRefresh = undefined;
  }

  private start(token: string, user: User): void {
    if (!this.config) return;
    this.stop();
    const client = new ChatClient({ ...this.config, token, reconnect: { maxDelayMs: 10_000 } });
    client.user = user;
    this.client = client;
    this.me = user;
    this.wire(client);
    this.typingSweep = setInterval(() => this.sweepTyping(), 1_000);
    void this.load(client);
  }

  private async load(client: ChatClient): Promise<void> {
    try {
      const conversations = await listAll(client);
      for (const summary of conversations) this.upsert(summary);
      this.changed();
      await client.connect();
      await client.joinConversations(conversations.map((c) => c._id));
      await Promise.all([this.refreshFriends(), this.refreshStatus()]);
    } catch (error) {
      if (client !== this.client) return;
      if (error instanceof ChatError && error.status === 401) {
        this.authError = 'Your session has expired: log in again.';
        this.logout();
        return;
      }
      this.notify(`Could not load: ${describe(error)}`);
    }
  }

  // ------------------------------------------------------------------ server events

  private wire(client: ChatClient): void {
    const on = this.offs;
    const me = () => this.me?._id;
    on.push(
      client.on('state', ({ current, error }) => {
        this.connection = current;
        if (current === 'offline' && error instanceof ChatError && error.status === 401) {
          this.authError = 'Your session has expired: log in again.';
          this.logout();
        }
        this.changed();
      }),
      client.on('synced', ({ reconnect }) => {
        if (reconnect) void this.afterReconnect();
      }),
      client.on('message', ({ conversationId, message }) => this.onMessage(conversationId, message)),
      client.on('gap', ({ conversationId }) => void this.reloadHistory(conversationId)),
      client.on('presence', ({ source, previous, current }) => {
        // `user_online` does not say which status the user came back with: ask for it.
        if (source === 'event' && current.online && !previous?.online) this.refreshPresenceSoon();
        this.changed();
      }),
      client.on('message_edited', ({ conversationId, messageId, newContent, editedAt }) =>
        this.patchMessage(conversationId, messageId, (m) => ({ ...m, content: newContent, edited: true, editedAt })),
      ),
      client.on('message_deleted', ({ conversationId, messageId }) =>
        this.patchMessage(conversationId, messageId, (m) => deletedCopy(m, new Date().toISOString())),
      ),
      client.on('reaction_added', ({ conversationId, messageId, emoji, userId }) =>
        this.patchMessage(conversationId, messageId, (m) => withReaction(m, emoji, userId, true)),
      ),
      client.on('reaction_removed', ({ conversationId, messageId, emoji, userId }) =>
        this.patchMessage(conversationId, messageId, (m) => withReaction(m, emoji, userId, false)),
      ),
      client.on('messages_read', ({ conversationId, readBy, upToSeq }) => {
        if (readBy === me()) {
          // Read on another tab or device.
          const view = this.conversations.get(conversationId);
          if (view) {
            view.markedUpTo = Math.max(view.markedUpTo, upToSeq);
            view.summary = { ...view.summary, unreadCount: Math.max(0, view.summary.lastSeq - view.markedUpTo) };
          }
        } else {
          this.setReader(conversationId, readBy, upToSeq);
        }
        this.changed();
      }),
      client.on('message_status', (status) => {
        const view = this.conversations.get(status.conversationId);
        if (!view) return;
        const seq = seqOf(status.messageId);
        if (status.status === 'delivered') {
          if (status.userIds.length > 0) view.deliveredUpTo = Math.max(view.deliveredUpTo, seq);
        } else if (status.userId !== me()) {
          this.setReader(status.conversationId, status.userId, seq);
        }
        this.changed();
      }),
      client.on('typing_status', ({ conversationId, userId, username, isTyping }) => {
        const view = this.conversations.get(conversationId);
        if (!view || userId === me()) return;
        if (isTyping) view.typing.set(userId, { username, until: Date.now() + TYPING_TTL_MS });
        else view.typing.delete(userId);
        this.changed();
      }),
      client.on('conversation_created', ({ conversation }) => {
        this.upsert({ ...conversation, unreadCount: conversation.lastSeq });
        void client.joinConversation(conversation._id).catch(() => undefined);
        this.changed();
      }),
      client.on('conversation_updated', ({ conversation }) => void this.refreshConversation(conversation._id)),
      client.on('member_joined', ({ conversationId }) => void this.refreshConversation(conversationId)),
      client.on('member_left', ({ conversationId, userId }) => {
        if (userId === me()) {
          this.conversations.delete(conversationId);
          if (this.activeId === conversationId) this.activeId = null;
          this.changed();
        } else {
          void this.refreshConversation(conversationId);
        }
      }),
      client.on('status_changed', () => this.changed()),
    );
    for (const event of [
      'friend_request_received',
      'friend_request_cancelled',
      'friend_request_accepted',
      'friend_request_rejected',
      'friendship_created',
      'friendship_deleted',
    ] as const) {
      on.push(client.on(event, () => void this.refreshFriends()));
    }
  }

  private onMessage(conversationId: string, message: Message): void {
    const view = this.conversations.get(conversationId);
    if (!view) {
      // A conversation we did not know yet (created while we were away): load it.
      void this.refreshConversation(conversationId);
      return;
    }
    view.messages.set(message.seq, message);
    if (message.clientMessageId) {
      view.pending = view.pending.filter((p) => p.clientMessageId !== message.clientMessageId);
    }
    const mine = message.sender._id === this.me?._id;
    view.typing.delete(message.sender._id);
    const summary = view.summary;
    if (message.seq >= summary.lastSeq) {
      view.summary = {
        ...summary,
        lastSeq: message.seq,
        lastMessage: message,
        updatedAt: message.createdAt,
        unreadCount: mine ? summary.unreadCount : summary.unreadCount + 1,
      };
    }
    if (mine) view.markedUpTo = Math.max(view.markedUpTo, message.seq);
    // Sending moves the sender's read pointer to their message without a `messages_read` event: whoever
    // wrote seq n has read everything up to n.
    else this.setReader(conversationId, message.sender._id, message.seq);
    if (!mine && this.activeId === conversationId) void this.markRead(conversationId);
    this.changed();
  }

  private async afterReconnect(): Promise<void> {
    const client = this.client;
    if (!client) return;
    // Edits, deletions and reactions made while we were away are not replayed: reload what is on screen.
    for (const [id, view] of this.conversations) {
      if (id !== this.activeId) {
        view.historyLoaded = false;
        view.messages.clear();
      }
    }
    try {
      for (const summary of await listAll(client)) this.upsert(summary);
      if (this.activeId) {
        await this.reloadHistory(this.activeId);
        await this.markRead(this.activeId);
      }
      await Promise.all([this.refreshFriends(), this.refreshStatus()]);
    } catch (error) {
      this.notify(`Could not refresh after reconnecting: ${describe(error)}`);
    }
    this.changed();
  }

  /** One `get_presence` for a burst of `user_online` events (they carry no status). */
  private refreshPresenceSoon(): void {
    if (this.presenceRefresh !== undefined) return;
    this.presenceRefresh = setTimeout(() => {
      this.presenceRefresh = undefined;
      if (this.client?.state === 'connected') void this.client.getPresence().catch(() => undefined);
    }, 300);
  }

  // ------------------------------------------------------------------ conversations

  private upsert(summary: ConversationSummary): ConversationView {
    const existing = this.conversations.get(summary._id);
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
    this.conversations.set(summary._id, view);
    return view;
  }

  private async refreshConversation(conversationId: string): Promise<void> {
    const client = this.client;
    if (!client) return;
    try {
      this.upsert(await client.getConversation(conversationId));
      if (!client.joinedConversations().includes(conversationId)) {
        await client.joinConversation(conversationId).catch(() => undefined);
      }
    } catch (error) {
      if (error instanceof ChatError && error.status === 404) {
        this.conversations.delete(conversationId);
        if (this.activeId === conversationId) this.activeId = null;
      }
    }
    this.changed();
  }

  /** Conversations, most recent activity first. */
  sortedConversations(): ConversationView[] {
    return [...this.conversations.values()].sort((a, b) => activity(b.summary).localeCompare(activity(a.summary)));
  }

  active(): ConversationView | null {
    return this.activeId ? (this.conversations.get(this.activeId) ?? null) : null;
  }

  /** The other member of a private conversation. */
  peer(conversation: Conversation): User | null {
    if (conversation.type !== 'private') return null;
    return conversation.members?.find((m) => m._id !== this.me?._id) ?? null;
  }

  title(conversation: Conversation): string {
    if (conversation.type === 'group') return conversation.name ?? 'Group';
    return this.peer(conversation)?.username ?? 'Private chat';
  }

  presenceOf(userId: string): PresenceState | undefined {
    return this.client?.presence.get(userId);
  }

  async open(conversationId: string): Promise<void> {
    const client = this.client;
    const view = this.conversations.get(conversationId);
    if (!client || !view) return;
    if (this.activeId && this.activeId !== conversationId) this.stopTyping();
    this.activeId = conversationId;
    this.panel = 'none';
    this.changed();
    if (!client.joinedConversations().includes(conversationId)) {
      void client.joinConversation(conversationId).catch((error) => this.notify(describe(error)));
    }
    if (!view.historyLoaded) await this.reloadHistory(conversationId);
    await this.markRead(conversationId);
  }

  /** Loads the newest page of history (again), keeping older pages already loaded. */
  async reloadHistory(conversationId: string): Promise<void> {
    const client = this.client;
    const view = this.conversations.get(conversationId);
    if (!client || !view) return;
    try {
      const page = await client.rest.history(conversationId, { limit: HISTORY_PAGE });
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
      this.changed();
      await this.loadReceipts(view);
    } catch (error) {
      this.notify(`Could not load messages: ${describe(error)}`);
    }
  }

  async loadOlder(conversationId: string): Promise<void> {
    const client = this.client;
    const view = this.conversations.get(conversationId);
    if (!client || !view || view.loadingOlder || view.reachedStart || !view.historyCursor) return;
    view.loadingOlder = true;
    this.changed();
    try {
      const page = await client.rest.history(conversationId, { cursor: view.historyCursor, limit: HISTORY_PAGE });
      for (const message of page.items) if (!view.messages.has(message.seq)) view.messages.set(message.seq, message);
      view.historyCursor = page.nextCursor;
      view.reachedStart = page.nextCursor === null || view.messages.has(1);
    } catch (error) {
      this.notify(`Could not load older messages: ${describe(error)}`);
    } finally {
      view.loadingOlder = false;
      this.changed();
    }
  }

  /** Whether my newest message has been read: read counts include the sender, so more than one means a reader. */
  private async loadReceipts(view: ConversationView): Promise<void> {
    const client = this.client;
    const mine = [...view.messages.values()].filter((m) => m.sender._id === this.me?._id && !m.deleted);
    const newest = mine.reduce<Message | null>((best, m) => (best && best.seq > m.seq ? best : m), null);
    if (!client || !newest) return;
    try {
      const { readCount } = await client.rest.readCount(view.summary._id, newest._id);
      if (readCount > 1) {
        view.readers.set('*', Math.max(view.readers.get('*') ?? 0, newest.seq));
        view.deliveredUpTo = Math.max(view.deliveredUpTo, newest.seq);
        this.changed();
      }
    } catch {
      // Receipts are decoration: the message list is there without them.
    }
  }

  async markRead(conversationId: string): Promise<void> {
    const client = this.client;
    const view = this.conversations.get(conversationId);
    if (!client || !view || document.visibilityState === 'hidden') return;
    const newest = Math.max(view.summary.lastSeq, ...view.messages.keys());
    if (newest <= view.markedUpTo && view.summary.unreadCount === 0) return;
    view.markedUpTo = Math.max(view.markedUpTo, newest);
    view.summary = { ...view.summary, unreadCount: 0 };
    this.changed();
    if (newest <= 0) return;
    try {
      await client.markRead({ conversationId, lastMessageId: `${conversationId}-${newest}` });
    } catch (error) {
      this.notify(`Could not mark as read: ${describe(error)}`);
    }
  }

  private setReader(conversationId: string, userId: string, upToSeq: number): void {
    const view = this.conversations.get(conversationId);
    if (!view) return;
    view.readers.set(userId, Math.max(view.readers.get(userId) ?? 0, upToSeq));
    view.deliveredUpTo = Math.max(view.deliveredUpTo, upToSeq);
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
    const client = this.client;
    if (!client) return;
    try {
      const conversation = await client.createPrivate(userId);
      const view = this.conversations.get(conversation._id) ?? this.upsert({ ...conversation, unreadCount: 0 });
      this.tab = 'chats';
      await this.open(view.summary._id);
    } catch (error) {
      this.notify(`Could not start the chat: ${describe(error)}`);
    }
  }

  async createGroup(name: string, userIds: string[]): Promise<boolean> {
    const client = this.client;
    if (!client) return false;
    try {
      const conversation = await client.createGroup(name, userIds);
      const view = this.conversations.get(conversation._id) ?? this.upsert({ ...conversation, unreadCount: 0 });
      this.tab = 'chats';
      await this.open(view.summary._id);
      return true;
    } catch (error) {
      this.notify(`Could not create the group: ${describe(error)}`);
      return false;
    }
  }

  async searchUsers(prefix: string): Promise<User[]> {
    const client = this.client;
    if (!client || prefix.trim() === '') return [];
    try {
      const page = await client.rest.searchUsers(prefix.trim(), { limit: 10 });
      return page.items.filter((u) => u._id !== this.me?._id);
    } catch (error) {
      this.notify(`Search failed: ${describe(error)}`);
      return [];
    }
  }

  // ------------------------------------------------------------------ messages

  /** Shows the message at once; the ack (or its `message` event) replaces it with the stored one. */
  send(conversationId: string, content: string, retryOf?: PendingSend): void {
    const client = this.client;
    const view = this.conversations.get(conversationId);
    const text = content.trim();
    if (!client || !view || text === '') return;
    this.stopTyping();
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
    this.changed();
    client
      .sendMessage(conversationId, pending.content, { clientMessageId: pending.clientMessageId })
      .then(({ message }) => this.onMessage(conversationId, message))
      .catch((error: unknown) => {
        const current = this.conversations.get(conversationId);
        const entry = current?.pending.find((p) => p.clientMessageId === pending.clientMessageId);
        if (entry) entry.failed = describe(error);
        this.changed();
      });
  }

  discard(conversationId: string, clientMessageId: string): void {
    const view = this.conversations.get(conversationId);
    if (!view) return;
    view.pending = view.pending.filter((p) => p.clientMessageId !== clientMessageId);
    this.changed();
  }

  async edit(message: Message, newContent: string): Promise<void> {
    const client = this.client;
    if (!client || newContent.trim() === '' || newContent === message.content) return;
    try {
      const stored = await client.editMessage(message._id, newContent.trim());
      this.patchMessage(message.conversationId, message._id, (m) => ({ ...stored, reactions: m.reactions }));
    } catch (error) {
      this.notify(`Could not edit: ${describe(error)}`);
    }
  }

  async remove(message: Message): Promise<void> {
    const client = this.client;
    if (!client) return;
    try {
      await client.deleteMessage(message._id);
      this.patchMessage(message.conversationId, message._id, (m) => deletedCopy(m, new Date().toISOString()));
    } catch (error) {
      this.notify(`Could not delete: ${describe(error)}`);
    }
  }

  /** Adds my reaction, or removes it if I had already reacted with this emoji (optimistic). */
  async toggleReaction(message: Message, emoji: string): Promise<void> {
    const client = this.client;
    const me = this.me?._id;
    if (!client || !me) return;
    const had = (message.reactions[emoji] ?? []).includes(me);
    this.patchMessage(message.conversationId, message._id, (m) => withReaction(m, emoji, me, !had));
    try {
      if (had) await client.removeReaction(message._id, emoji);
      else await client.addReaction(message._id, emoji);
    } catch (error) {
      this.patchMessage(message.conversationId, message._id, (m) => withReaction(m, emoji, me, had));
      this.notify(`Could not react: ${describe(error)}`);
    }
  }

  private patchMessage(conversationId: string, messageId: string, change: (message: Message) => Message): void {
    const view = this.conversations.get(conversationId);
    if (!view) return;
    const seq = seqOf(messageId);
    const message = view.messages.get(seq);
    if (message) view.messages.set(seq, change(message));
    const last = view.summary.lastMessage;
    if (last && last._id === messageId) view.summary = { ...view.summary, lastMessage: change(last) };
    this.changed();
  }

  // ------------------------------------------------------------------ typing

  /** Called on every keystroke in the composer. */
  typing(conversationId: string): void {
    const client = this.client;
    if (!client || this.connection !== 'connected') return;
    const now = Date.now();
    if (this.typingConversation !== conversationId || now - this.typingSentAt > TYPING_REPEAT_MS) {
      if (this.typingConversation && this.typingConversation !== conversationId) this.stopTyping();
      this.typingConversation = conversationId;
      this.typingSentAt = now;
      void client.typing(conversationId, true).catch(() => undefined);
    }
    clearTimeout(this.typingIdle);
    this.typingIdle = setTimeout(() => this.stopTyping(), TYPING_IDLE_MS);
  }

  stopTyping(): void {
    clearTimeout(this.typingIdle);
    const conversationId = this.typingConversation;
    this.typingConversation = null;
    this.typingSentAt = 0;
    if (conversationId && this.client?.state === 'connected') {
      void this.client.typing(conversationId, false).catch(() => undefined);
    }
  }

  private sweepTyping(): void {
    const now = Date.now();
    let changed = false;
    for (const view of this.conversations.values()) {
      for (const [userId, peer] of view.typing) {
        if (peer.until < now) {
          view.typing.delete(userId);
          changed = true;
        }
      }
    }
    if (changed) this.changed();
  }

  // ------------------------------------------------------------------ friends and status

  async refreshFriends(): Promise<void> {
    const client = this.client;
    if (!client) return;
    try {
      const [friends, requests] = await Promise.all([client.getFriends(), client.getFriendRequests()]);
      this.friends = friends;
      this.requests = requests;
      this.changed();
    } catch (error) {
      this.notify(`Could not load friends: ${describe(error)}`);
    }
  }

  private async refreshStatus(): Promise<void> {
    const client = this.client;
    if (!client) return;
    this.myStatus = (await client.getStatus()).status;
    this.changed();
  }

  async setStatus(status: string): Promise<void> {
    const client = this.client;
    if (!client || status.trim() === '') return;
    try {
      this.myStatus = await client.setStatus(status.trim());
      this.changed();
    } catch (error) {
      this.notify(`Could not set the status: ${describe(error)}`);
    }
  }

  async friendAction(
    action: 'send' | 'cancel' | 'accept' | 'reject' | 'unfriend',
    username: string,
  ): Promise<boolean> {
    const client = this.client;
    if (!client || username.trim() === '') return false;
    const name = username.trim();
    try {
      const outcome =
        action === 'send'
          ? await client.sendFriendRequest(name)
          : action === 'cancel'
            ? await client.cancelFriendRequest(name)
            : action === 'accept'
              ? await client.acceptFriendRequest(name)
              : action === 'reject'
                ? await client.rejectFriendRequest(name)
                : await client.unfriend(name);
      await this.refreshFriends();
      if (action === 'send') {
        this.notify(outcome.result === 'accepted' ? `You and ${name} are now friends` : `Friend request sent to ${name}`);
      }
      return true;
    } catch (error) {
      this.notify(describe(error));
      return false;
    }
  }

  /** A friend's live presence: the presence map when it knows them, else what `get_friends` said. */
  friendPresence(friend: Friend): { online: boolean; status: string } {
    const live = this.presenceOf(friend._id);
    return live ? { online: live.online, status: live.status } : { online: friend.online, status: friend.status };
  }
}

/** Every conversation of the user, page by page (50 per page, the API's maximum; at most 20 pages). */
async function listAll(client: ChatClient): Promise<ConversationSummary[]> {
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

export const store = new Store();
