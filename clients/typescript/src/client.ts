/**
 * `ChatClient`: the one object an app holds. It combines the REST client, the realtime connection, the
 * per-conversation timeline and the presence map, and keeps them consistent across reconnects.
 *
 * Why this module exists: the protocol leaves the hard parts to clients (docs/protocol.md, "Reliability"):
 * resuming after a reconnect, not losing or doubling messages, idempotent retries, presence that crossed on the
 * way. After every (re)connect the connection sends what was queued while offline (and again, with the same
 * `clientMessageId`, the messages whose ack was lost with the previous socket: the server answers those with
 * `duplicate: true`); then the client, all at once,
 *
 * - re-sends `join_conversations` for the conversations the app joined (typing indicators are per socket),
 * - re-sends `set_app_state background` if the app last said it was in the background (a socket starts in front),
 * - asks `get_presence` and reports the presence of every peer,
 * - catches up every followed conversation with `afterSeq` (missed messages arrive as `message` events, in
 *   order, exactly once; a `gap` event says when that was impossible),
 *
 * then emits `synced`.
 */

import { type BackoffOptions, DEFAULT_BACKOFF } from './backoff.js';
import {
  type ConnectionState,
  type RequestOptions,
  type RetryInfo,
  RealtimeConnection,
  type StateChange,
  type WebSocketConstructorLike,
} from './connection.js';
import { ChatConversation } from './conversation.js';
import { ChatError } from './errors.js';
import { Emitter, type Listener } from './emitter.js';
import { isValidClientMessageId, randomToken, sequentialIds } from './ids.js';
import { type PresenceChange, PresenceMap } from './presence.js';
import {
  type AckResult,
  type Action,
  type AppState,
  type ActionPayloads,
  type Conversation,
  type ConversationSummary,
  type BlockOutcome,
  type BlockedUser,
  type FriendOutcome,
  type FriendRequests,
  type Friend,
  type MarkReadPayload,
  type Message,
  type MessageType,
  type Page,
  type PeerPresence,
  type ReadReceipt,
  SERVER_EVENTS,
  type SendMessagePayload,
  type ServerEventName,
  type ServerEvents,
  type ServerFrame,
  type Session,
  type User,
} from './protocol.js';
import { type Credentials, type FetchLike, type ListQuery, RestClient, type TokenSource } from './rest.js';
import { type UploadOptions, type Uploadable, describeFile, postUpload } from './uploads.js';
import { type GapInfo, type MessageDelivery, Timeline } from './timeline.js';

/** The two URLs of a deployment, as in `.local/endpoints.json`. */
export interface Endpoints {
  /** WebSocket API, e.g. `ws://127.0.0.1:4566/_aws/execute-api/<apiId>/prod`. */
  websocket: string;
  /** HTTP API, e.g. `http://127.0.0.1:4566/_aws/execute-api/<apiId>`. */
  http: string;
}

export interface ChatClientOptions extends Endpoints {
  /** A token, or a function returning the current one. `login` and `register` set it too. */
  token?: TokenSource | null;
  /** A stored session's refresh token: access tokens are then renewed when they expire. */
  refreshToken?: string | null;
  /** Told every new session (store it to stay logged in) and `null` when the session ended. */
  onSession?: (session: Session | null) => void;
  /** Default: the global `fetch`. */
  fetch?: FetchLike;
  /** Default: the global `WebSocket` (browsers, Node 22+); on Node 20 pass the `ws` package's. */
  WebSocket?: WebSocketConstructorLike;
  /** Reply timeout of WebSocket requests. Default 10 s. */
  requestTimeoutMs?: number;
  /** Timeout of REST requests. Default 15 s. */
  httpTimeoutMs?: number;
  /** Handshake timeout. Default 15 s. */
  connectTimeoutMs?: number;
  /** Keep-alive `ping` interval; API Gateway closes sockets idle for 10 minutes. Default 5 min; 0 disables. */
  pingIntervalMs?: number;
  /** A `ping` without `pong` within this long closes the socket and reconnects. Default 10 s. */
  pingTimeoutMs?: number;
  /** Reconnect backoff (defaults: 500 ms doubling up to 30 s, half of each delay random). */
  reconnect?: Partial<BackoffOptions>;
  /** Randomness for the backoff jitter, in [0, 1). Default `Math.random`. */
  random?: () => number;
  /** How long a message that arrived ahead of a missing one waits before the gap is fetched. Default 1.5 s. */
  gapWaitMs?: number;
  /** Catch-up tuning: page size (max 100), conversations at once, attempts per page. */
  catchUp?: { pageSize?: number; concurrency?: number; attempts?: number };
  /** A send is given up (with `timeout`) after this many reply timeouts. Default 3. */
  sendTimeouts?: number;
  /** Prefix of generated `clientMessageId`s (default: random). Must match `[A-Za-z0-9_.:-]{1,40}`. */
  instanceId?: string;
}

/** Options of `sendMessage`. */
export interface SendOptions {
  type?: MessageType;
  fileUrl?: string;
  fileName?: string;
  /** An upload id (`uploadFile`); `sendFile` does both steps. */
  attachment?: string;
  /** Reuse one to retry a send yourself; generated otherwise. */
  clientMessageId?: string;
  /** Ids of the members the message mentions (`mentionsIn` finds them in a text). */
  mentions?: string[];
}

export interface SentMessage {
  message: Message;
  /** True when the server already had this `clientMessageId` (a retry after a lost ack). */
  duplicate: boolean;
  clientMessageId: string;
}

export interface SyncInfo {
  /** False after the first connection, true after a reconnect. */
  reconnect: boolean;
}

/** The events of a `ChatClient`: its own, and every server event under its wire name (raw, as received). */
export interface ChatClientEvents extends ServerEvents {
  /** The connection state changed. */
  state: StateChange;
  /** A reconnect was scheduled. */
  retry: RetryInfo;
  /** The next message of a followed conversation: in `seq` order, exactly once, from any source. */
  message: MessageDelivery;
  /** Messages may be missing from a conversation (catch-up failed); reload that history. */
  gap: GapInfo;
  /** A peer's presence is (still) this. */
  presence: PresenceChange;
  /** The re-joins, the presence snapshot and the catch-up after a (re)connect are done. */
  synced: SyncInfo;
  /** An error that belongs to no request: an unsolicited `error` frame, or a refused token. */
  error: ChatError;
}

const SERVER_EVENT_NAMES = new Set<string>(SERVER_EVENTS);
/** `join_conversations` takes at most this many ids per frame. */
const MAX_JOIN_IDS = 100;

/** Actions that are safe to repeat: queued while offline and sent again after a reconnect. */
const DURABLE: RequestOptions = { whenOffline: 'queue', resendOnReconnect: true };

export class ChatClient {
  readonly rest: RestClient;
  readonly presence = new PresenceMap();
  /** The logged-in user, once known (`login`, `register`, `me`, or the token check after a failed handshake). */
  user: User | null = null;

  private readonly events = new Emitter<ChatClientEvents>();
  private readonly connection: RealtimeConnection;
  private readonly timeline: Timeline;
  private readonly WebSocketImpl: WebSocketConstructorLike | undefined;
  private readonly sendTimeouts: number;
  private readonly nextClientMessageId: () => string;
  /** Conversations the app joined: joined again on every new socket. */
  private readonly joined = new Set<string>();
  /** What the app last said of itself: a new socket starts in front, so `background` is said again on it. */
  private appState: AppState = 'foreground';
  /** Conversations with a join request queued or in flight (those need no re-join). */
  private readonly joining = new Map<string, number>();
  private syncGeneration = 0;
  private readonly conversations = new Map<string, ChatConversation>();

  /** A client for a deployment's endpoints (e.g. the contents of `.local/endpoints.json`). */
  static fromEndpoints(endpoints: Endpoints, options: Omit<ChatClientOptions, keyof Endpoints> = {}): ChatClient {
    return new ChatClient({ ...options, websocket: endpoints.websocket, http: endpoints.http });
  }

  constructor(options: ChatClientOptions) {
    this.rest = new RestClient({
      baseUrl: options.http,
      token: options.token ?? null,
      refreshToken: options.refreshToken ?? null,
      ...(options.onSession ? { onSession: options.onSession } : {}),
      ...(options.fetch ? { fetch: options.fetch } : {}),
      ...(options.httpTimeoutMs !== undefined ? { timeoutMs: options.httpTimeoutMs } : {}),
    });
    this.WebSocketImpl =
      options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructorLike }).WebSocket ?? undefined;
    this.sendTimeouts = options.sendTimeouts ?? 3;
    const instanceId = options.instanceId ?? randomToken(10);
    if (!/^[A-Za-z0-9_.:-]{1,40}$/.test(instanceId)) throw new TypeError('instanceId must match [A-Za-z0-9_.:-]{1,40}');
    this.nextClientMessageId = sequentialIds(instanceId);
    const requestIds = sequentialIds(`${instanceId}.r`);
    const random = options.random ?? Math.random;
    const backoff: BackoffOptions = { ...DEFAULT_BACKOFF, ...options.reconnect };

    this.connection = new RealtimeConnection({
      url: options.websocket,
      token: () => {
        const source = this.rest.tokenSource;
        return typeof source === 'function' ? source() : source;
      },
      WebSocket: (this.WebSocketImpl ?? missingWebSocket) as WebSocketConstructorLike,
      requestTimeoutMs: options.requestTimeoutMs ?? 10_000,
      connectTimeoutMs: options.connectTimeoutMs ?? 15_000,
      pingIntervalMs: options.pingIntervalMs ?? 5 * 60_000,
      pingTimeoutMs: options.pingTimeoutMs ?? 10_000,
      backoff,
      random,
      nextRequestId: requestIds,
      checkAuth: () => this.checkAuth(),
    });

    const pageSize = Math.min(100, options.catchUp?.pageSize ?? 100);
    this.timeline = new Timeline({
      fetchAfter: (conversationId, position) =>
        this.rest.history(
          conversationId,
          'cursor' in position ? { cursor: position.cursor, limit: pageSize } : { afterSeq: position.afterSeq, limit: pageSize },
        ),
      deliver: (delivery) => this.events.emit('message', delivery),
      onGap: (gap) => this.events.emit('gap', gap),
      gapWaitMs: options.gapWaitMs ?? 1_500,
      fetchAttempts: options.catchUp?.attempts ?? 3,
      retryDelayMs: (retry) => 500 * 2 ** retry,
      concurrency: options.catchUp?.concurrency ?? 4,
    });

    this.connection.on('state', (change) => this.events.emit('state', change));
    this.connection.on('retry', (info) => this.events.emit('retry', info));
    this.connection.on('error', (error) => this.events.emit('error', error));
    this.connection.on('open', ({ reconnect }) => void this.resync(reconnect));
    this.connection.on('frame', (frame) => this.dispatch(frame));
    this.connection.on('ack', ({ action, data }) => {
      // The sender's own connection gets the ack, not `receive_message`: the ack is how its message arrives.
      if (action === 'send_message') this.timeline.ingest((data as { message: Message }).message, 'ack');
    });
  }

  // ---------------------------------------------------------------- events and state

  get state(): ConnectionState {
    return this.connection.state;
  }

  /** Requests not answered yet plus requests waiting for a connection (queued sends included). */
  get pendingCount(): number {
    return this.connection.pendingCount;
  }

  on<K extends keyof ChatClientEvents>(event: K, listener: Listener<ChatClientEvents[K]>): () => void {
    return this.events.on(event, listener);
  }

  once<K extends keyof ChatClientEvents>(event: K, listener: Listener<ChatClientEvents[K]>): () => void {
    return this.events.once(event, listener);
  }

  off<K extends keyof ChatClientEvents>(event: K, listener: Listener<ChatClientEvents[K]>): void {
    this.events.off(event, listener);
  }

  // ---------------------------------------------------------------- session

  /** Logs in over REST; the token is used for REST and the WebSocket from now on. */
  async login(credentials: Credentials): Promise<Session> {
    const session = await this.rest.login(credentials);
    this.user = session.user;
    return session;
  }

  async register(input: Credentials & { avatar?: string }): Promise<Session> {
    const session = await this.rest.register(input);
    this.user = session.user;
    return session;
  }

  async me(): Promise<User> {
    this.user = await this.rest.me();
    return this.user;
  }

  /**
   * Connects, and keeps reconnecting until `disconnect()`. Resolves once connected; rejects if the client goes
   * offline first (token refused, or `disconnect()`).
   */
  connect(): Promise<void> {
    if (!this.WebSocketImpl) {
      return Promise.reject(new TypeError('no WebSocket implementation: pass options.WebSocket (e.g. the ws package)'));
    }
    if (this.state === 'connected') return Promise.resolve();
    const connected = new Promise<void>((resolve, reject) => {
      const off = this.connection.on('state', (change) => {
        if (change.current === 'connected') {
          off();
          resolve();
        } else if (change.current === 'offline') {
          off();
          reject(change.error ?? ChatError.client('closed', 'the client was disconnected'));
        }
      });
    });
    this.connection.connect();
    return connected;
  }

  /** Closes the connection for good; pending requests and queued sends fail with `closed`. */
  disconnect(): void {
    this.syncGeneration += 1;
    this.connection.disconnect();
    this.timeline.dispose();
  }

  /** While waiting to reconnect, try now (e.g. when the browser reports it is online again). */
  reconnectNow(): void {
    this.connection.reconnectNow();
  }

  // ---------------------------------------------------------------- following conversations

  /** One conversation's actions and events in one object (the same object for the same id). */
  conversation(conversationId: string): ChatConversation {
    let conversation = this.conversations.get(conversationId);
    if (!conversation) {
      conversation = new ChatConversation(this, conversationId);
      this.conversations.set(conversationId, conversation);
    }
    return conversation;
  }

  /**
   * Follows a conversation whose messages up to `lastSeq` the app already has: later ones arrive as `message`
   * events, and are caught up after reconnects. `listConversations`, `getConversation` and the create methods
   * do this for you; a conversation is also followed from its first live message on.
   */
  trackConversation(conversationId: string, lastSeq: number): void {
    this.timeline.track(conversationId, lastSeq);
  }

  untrackConversation(conversationId: string): void {
    this.timeline.untrack(conversationId);
  }

  /** Highest seq delivered (or known to the app) in a conversation; null if not followed. */
  lastSeq(conversationId: string): number | null {
    return this.timeline.lastSeq(conversationId);
  }

  /** Fetches what is missing after the conversation's position now (also done after every reconnect). */
  catchUp(conversationId: string): Promise<void> {
    return this.timeline.catchUp(conversationId);
  }

  /** `GET /conversations`; follows the conversations not followed yet from their current `lastSeq`. */
  async listConversations(query: ListQuery = {}): Promise<Page<ConversationSummary>> {
    const page = await this.rest.listConversations(query);
    for (const conversation of page.items) this.follow(conversation);
    return page;
  }

  async getConversation(conversationId: string): Promise<ConversationSummary> {
    return this.follow(await this.rest.getConversation(conversationId));
  }

  async createPrivate(participantId: string): Promise<Conversation> {
    return this.follow(await this.rest.createPrivate(participantId));
  }

  async createGroup(name: string, participantIds: string[]): Promise<Conversation> {
    return this.follow(await this.rest.createGroup(name, participantIds));
  }

  // ---------------------------------------------------------------- realtime actions

  /** Any action, typed. Prefer the methods below, which pick the right offline behaviour. */
  request<A extends Action>(action: A, payload: ActionPayloads[A], options?: RequestOptions): Promise<AckResult<A>> {
    return this.connection.request(action, payload, options);
  }

  ping(): Promise<AckResult<'ping'>> {
    return this.connection.request('ping', {});
  }

  /**
   * Sends a message. Idempotent: it carries a `clientMessageId`; while offline it is queued, and if the
   * connection drops before the ack it is sent again after the reconnect with the same id. Resolves once, with
   * the stored message (which also arrives as a `message` event).
   */
  async sendMessage(conversationId: string, content: string, options: SendOptions = {}): Promise<SentMessage> {
    const clientMessageId = options.clientMessageId ?? this.nextClientMessageId();
    if (!isValidClientMessageId(clientMessageId)) {
      throw new ChatError(422, 'validation_failed', 'clientMessageId must have 1-64 characters of [A-Za-z0-9_.:-]');
    }
    const payload: SendMessagePayload = { conversationId, content, type: options.type ?? 'text', clientMessageId };
    if (options.fileUrl !== undefined) payload.fileUrl = options.fileUrl;
    if (options.fileName !== undefined) payload.fileName = options.fileName;
    if (options.attachment !== undefined) payload.attachment = options.attachment;
    if (options.mentions !== undefined && options.mentions.length > 0) payload.mentions = options.mentions;
    const data = await this.connection.request('send_message', payload, { ...DURABLE, maxTimeouts: this.sendTimeouts });
    return { message: data.message, duplicate: data.duplicate === true, clientMessageId };
  }

  /**
   * Uploads a file for `conversationId` (members only) straight to storage and returns its upload id, to send
   * with `sendMessage(…, {type, attachment})`. The API refuses types and sizes the deployment does not accept
   * before anything is uploaded.
   */
  async uploadFile(conversationId: string, file: Uploadable, options: UploadOptions = {}): Promise<string> {
    const { fileName, contentType, blob } = describeFile(file, options);
    const issued = await this.rest.createUpload(conversationId, { fileName, contentType, size: blob.size });
    await postUpload(issued.upload, blob, options);
    return issued.uploadId;
  }

  /**
   * Uploads a file and sends it: an `image` message for image types (members see a thumbnail once the server
   * has made it; `attachment_processed` tells them), a `file` message otherwise. `caption` is the message text.
   */
  async sendFile(
    conversationId: string,
    file: Uploadable,
    options: UploadOptions & { caption?: string; clientMessageId?: string } = {},
  ): Promise<SentMessage> {
    const attachment = await this.uploadFile(conversationId, file, options);
    const { contentType } = describeFile(file, options);
    const type = /^image\/(jpeg|png|gif|webp)$/.test(contentType) ? 'image' : 'file';
    const send: SendOptions = { type, attachment };
    if (options.clientMessageId !== undefined) send.clientMessageId = options.clientMessageId;
    return this.sendMessage(conversationId, options.caption ?? '', send);
  }

  async editMessage(messageId: string, newContent: string): Promise<Message> {
    return (await this.connection.request('edit_message', { messageId, newContent })).message;
  }

  async deleteMessage(messageId: string): Promise<{ messageId: string; conversationId: string }> {
    const { messageId: id, conversationId } = await this.connection.request('delete_message', { messageId });
    return { messageId: id, conversationId };
  }

  /** Moves the read pointer (queued while offline: read pointers never move back, so repeating is safe). */
  async markRead(target: MarkReadPayload): Promise<ReadReceipt> {
    const { conversationId, lastReadSeq, messageIds } = await this.connection.request('mark_read', target, DURABLE);
    return { conversationId, lastReadSeq, messageIds };
  }

  /** Typing indicator; returns whether it was broadcast (repeated `true` within 2 s is swallowed). */
  async typing(conversationId: string, isTyping: boolean): Promise<boolean> {
    return (await this.connection.request('typing', { conversationId, isTyping })).broadcast;
  }

  async addReaction(messageId: string, emoji: string): Promise<boolean> {
    return (await this.connection.request('add_reaction', { messageId, emoji })).changed;
  }

  async removeReaction(messageId: string, emoji: string): Promise<boolean> {
    return (await this.connection.request('remove_reaction', { messageId, emoji })).changed;
  }

  /**
   * Joins conversations on the connection (to receive `typing_status`), now or as soon as connected, and again
   * after every reconnect. Ids that are not the user's conversations come back in `rejected`.
   */
  async joinConversations(conversationIds: string[]): Promise<{ joined: string[]; rejected: string[] }> {
    const ids = [...new Set(conversationIds)];
    const joined: string[] = [];
    const rejected: string[] = [];
    for (let i = 0; i < ids.length; i += MAX_JOIN_IDS) {
      const chunk = ids.slice(i, i + MAX_JOIN_IDS);
      const answer = await this.join(chunk, () => this.connection.request('join_conversations', { conversationIds: chunk }, DURABLE));
      joined.push(...answer.joined);
      rejected.push(...answer.rejected);
    }
    return { joined, rejected };
  }

  async joinConversation(conversationId: string): Promise<void> {
    await this.join([conversationId], async () => {
      try {
        await this.connection.request('join_conversation', { conversationId }, DURABLE);
        return { joined: [conversationId], rejected: [] };
      } catch (error) {
        if (error instanceof ChatError && error.code === 'not_found') this.joined.delete(conversationId);
        throw error;
      }
    });
  }

  async leaveConversation(conversationId: string): Promise<void> {
    this.joined.delete(conversationId);
    await this.connection.request('leave_conversation', { conversationId }, DURABLE);
  }

  /** Conversations joined on the connection (re-joined after every reconnect). */
  joinedConversations(): string[] {
    return [...this.joined];
  }

  async setStatus(status: string): Promise<string> {
    return (await this.connection.request('set_status', { status })).status;
  }

  /**
   * Tells the server whether the app is in front of the user: while every connection of theirs is in the
   * background, messages are also pushed to their browsers and phones. Frames keep arriving either way.
   */
  async setAppState(state: AppState): Promise<AppState> {
    this.appState = state;
    return (await this.connection.request('set_app_state', { state })).state;
  }

  async getStatus(): Promise<{ status: string; lastSeen: string | null }> {
    const { status, lastSeen } = await this.connection.request('get_status', {});
    return { status, lastSeen };
  }

  /** Presence of every friend and conversation peer; also refreshes `presence` and emits `presence` events. */
  async getPresence(): Promise<PeerPresence[]> {
    this.presence.beginSnapshot();
    let users: PeerPresence[];
    try {
      users = (await this.connection.request('get_presence', {})).users;
    } catch (error) {
      this.presence.abandonSnapshot();
      throw error;
    }
    for (const change of this.presence.applySnapshot(users)) this.events.emit('presence', change);
    return users;
  }

  async getFriends(): Promise<Friend[]> {
    return (await this.connection.request('get_friends', {})).friends;
  }

  async getFriendRequests(): Promise<FriendRequests> {
    const { incoming, outgoing } = await this.connection.request('get_friend_requests', {});
    return { incoming, outgoing };
  }

  sendFriendRequest(username: string): Promise<FriendOutcome> {
    return this.friendAction('send_friend_request', username);
  }

  cancelFriendRequest(username: string): Promise<FriendOutcome> {
    return this.friendAction('cancel_friend_request', username);
  }

  acceptFriendRequest(username: string): Promise<FriendOutcome> {
    return this.friendAction('accept_friend_request', username);
  }

  rejectFriendRequest(username: string): Promise<FriendOutcome> {
    return this.friendAction('reject_friend_request', username);
  }

  unfriend(username: string): Promise<FriendOutcome> {
    return this.friendAction('unfriend', username);
  }

  /**
   * Blocks a user: neither can write in your private conversation, they cannot befriend you or add you to a
   * group, and the server stops delivering their messages, reactions, typing and presence to you (docs/protocol.md,
   * Blocking). Your other devices get `user_blocked`.
   */
  async blockUser(userId: string): Promise<BlockOutcome> {
    const { user, result } = await this.connection.request('block_user', { userId });
    return { user, result };
  }

  async unblockUser(userId: string): Promise<BlockOutcome> {
    const { user, result } = await this.connection.request('unblock_user', { userId });
    return { user, result };
  }

  /** The users you blocked, newest first. */
  async blockedUsers(): Promise<BlockedUser[]> {
    return (await this.connection.request('get_blocked_users', {})).blocked;
  }

  // ---------------------------------------------------------------- internals

  private async friendAction(
    action: 'send_friend_request' | 'cancel_friend_request' | 'accept_friend_request' | 'reject_friend_request' | 'unfriend',
    username: string,
  ): Promise<FriendOutcome> {
    const { user, result } = await this.connection.request(action, { username });
    return { user, result };
  }

  private follow<C extends Conversation>(conversation: C): C {
    if (!this.timeline.isTracked(conversation._id)) this.timeline.track(conversation._id, conversation.lastSeq);
    return conversation;
  }

  /** Records a join (so reconnects repeat it) around the request that performs it. */
  private async join(
    ids: string[],
    send: () => Promise<{ joined: string[]; rejected: string[] }>,
  ): Promise<{ joined: string[]; rejected: string[] }> {
    for (const id of ids) {
      this.joined.add(id);
      this.joining.set(id, (this.joining.get(id) ?? 0) + 1);
    }
    try {
      const answer = await send();
      for (const id of answer.rejected) this.joined.delete(id);
      return answer;
    } finally {
      for (const id of ids) {
        const count = (this.joining.get(id) ?? 1) - 1;
        if (count > 0) this.joining.set(id, count);
        else this.joining.delete(id);
      }
    }
  }

  /** After every socket opened: re-join, presence snapshot and catch-up, then `synced`. */
  private async resync(reconnect: boolean): Promise<void> {
    const generation = ++this.syncGeneration;
    await Promise.allSettled([
      this.rejoin(),
      this.restoreAppState(),
      this.getPresence(),
      this.timeline.catchUpAll(),
    ]);
    if (generation === this.syncGeneration && this.state === 'connected') this.events.emit('synced', { reconnect });
  }

  private async restoreAppState(): Promise<void> {
    if (this.appState === 'background') await this.connection.request('set_app_state', { state: 'background' });
  }

  private async rejoin(): Promise<void> {
    // Joins still queued or in flight are sent (again) by the connection itself.
    const ids = [...this.joined].filter((id) => !this.joining.has(id));
    for (let i = 0; i < ids.length; i += MAX_JOIN_IDS) {
      const chunk = ids.slice(i, i + MAX_JOIN_IDS);
      const answer = await this.connection.request('join_conversations', { conversationIds: chunk });
      for (const id of answer.rejected) this.joined.delete(id);
    }
  }

  private dispatch(frame: ServerFrame): void {
    if (!SERVER_EVENT_NAMES.has(frame.event)) return;
    const name = frame.event as ServerEventName;
    switch (name) {
      case 'receive_message':
        this.timeline.ingest((frame.data as ServerEvents['receive_message']).message, 'live');
        break;
      case 'user_online':
        this.events.emit('presence', this.presence.applyOnline(frame.data as ServerEvents['user_online']));
        break;
      case 'user_offline':
        this.events.emit('presence', this.presence.applyOffline(frame.data as ServerEvents['user_offline']));
        break;
      case 'status_changed':
        this.events.emit('presence', this.presence.applyStatus(frame.data as ServerEvents['status_changed']));
        break;
      case 'conversation_created':
        this.follow((frame.data as ServerEvents['conversation_created']).conversation);
        break;
      case 'member_left': {
        const data = frame.data as ServerEvents['member_left'];
        if (this.user && data.userId === this.user._id) {
          this.timeline.untrack(data.conversationId);
          this.joined.delete(data.conversationId);
        }
        break;
      }
      default:
        break;
    }
    this.events.emit(name, frame.data as ServerEvents[typeof name]);
  }

  /** After a failed handshake: is the token still good? (false only on a definite 401) */
  private async checkAuth(): Promise<boolean> {
    try {
      this.user = await this.rest.me();
      return true;
    } catch (error) {
      if (error instanceof ChatError && error.status === 401) return false;
      throw error;
    }
  }
}

/** Stands in for a missing WebSocket implementation; `connect()` refuses before it is ever used. */
class missingWebSocket {
  constructor() {
    throw new TypeError('no WebSocket implementation: pass options.WebSocket');
  }
}
