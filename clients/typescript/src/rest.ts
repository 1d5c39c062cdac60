/**
 * Typed client of the HTTP API (docs/openapi.yaml): accounts, users, conversations, history, messages and
 * friends.
 *
 * Why this module exists: apps need the REST routes for everything that is not live (sign-in, lists, history),
 * and the realtime client needs history with `afterSeq` to catch up after a reconnect. It uses an injectable
 * `fetch` (tests pass a fake; browsers and Node 18+ have one built in), sends `Authorization: Bearer`, and turns
 * every failure into a `ChatError` (`{"error": {"code", "message"}}` bodies keep their code).
 */

import { ChatError } from './errors.js';
import type {
  AccountDeleted,
  ExportStatus,
  BlockOutcome,
  BlockedUser,
  ContactableBy,
  Conversation,
  ConversationSummary,
  Friend,
  FriendOutcome,
  FriendRequests,
  IssuedUpload,
  Member,
  MemberLeft,
  Message,
  MessageType,
  Page,
  Privacy,
  NotificationPreferences,
  PushSubscriptionRecord,
  NotifyLevel,
  ConversationNotifications,
  ReadReceipt,
  Report,
  ReportOutcome,
  ReportReason,
  ReportTarget,
  Role,
  Session,
  SessionInfo,
  SessionsEnded,
  Suspension,
  User,
  AuditEntry,
} from './protocol.js';

/** The part of a `fetch` Response the client reads. */
export interface FetchResponseLike {
  readonly ok: boolean;
  readonly status: number;
  text(): Promise<string>;
}

export interface FetchInitLike {
  method: string;
  headers: Record<string, string>;
  body?: string;
  signal?: AbortSignal;
}

/** `fetch`, or anything with its calling convention (tests pass a fake). */
export type FetchLike = (url: string, init: FetchInitLike) => Promise<FetchResponseLike>;

/** A token, or a function that returns the current one (called before every request, may refresh it). */
export type TokenSource = string | (() => string | Promise<string>);

export interface RestClientOptions {
  /** Base URL of the HTTP API, e.g. `http://127.0.0.1:4566/_aws/execute-api/<apiId>` (from endpoints.json). */
  baseUrl: string;
  token?: TokenSource | null;
  /** A refresh token: an expired access token is then renewed once per 401, and the request retried. */
  refreshToken?: string | null;
  /**
   * Told every new session (login, register, refresh: store it to stay logged in across restarts) and `null`
   * when the session ended (refresh refused, logout).
   */
  onSession?: (session: Session | null) => void;
  fetch?: FetchLike;
  /** Abort a request after this long (ms). Default 15 s; 0 disables. */
  timeoutMs?: number;
}

export interface Credentials {
  username: string;
  password: string;
}

export interface ListQuery {
  limit?: number;
  cursor?: string;
  /** 1-based page number instead of a cursor. */
  page?: number;
}

/** History query: at most one of `cursor`, `page` and `afterSeq`. */
export interface HistoryQuery {
  limit?: number;
  /** The `nextCursor` of the previous page (continues in that page's direction). */
  cursor?: string;
  /** 1-based page, newest first. */
  page?: number;
  /** Catch-up: the messages after this seq, oldest first. */
  afterSeq?: number;
}

export interface PostMessageInput {
  content?: string;
  type?: MessageType;
  fileUrl?: string;
  fileName?: string;
  /** An upload id (`createUpload`). */
  attachment?: string;
  clientMessageId?: string;
}

export type MarkReadTarget = { lastMessageId: string } | { messageIds: string[] };

type Query = Record<string, string | number | undefined>;

interface RequestSpec {
  query?: Query;
  body?: unknown;
  /** Send the bearer token (every route except register, login and refresh). */
  auth?: boolean;
  /** On a 401, renew the access token and try once more (default: when a refresh token is held). */
  retry?: boolean;
}

export class RestClient {
  readonly baseUrl: string;
  private token: TokenSource | null;
  private refreshToken: string | null;
  private readonly onSession: ((session: Session | null) => void) | undefined;
  /** The refresh in flight: concurrent 401s wait for the same one (a refresh token works once). */
  private refreshing: Promise<boolean> | null = null;
  private readonly fetchImpl: FetchLike;
  private readonly timeoutMs: number;

  constructor(options: RestClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.token = options.token ?? null;
    this.refreshToken = options.refreshToken ?? null;
    this.onSession = options.onSession;
    this.timeoutMs = options.timeoutMs ?? 15_000;
    const globalFetch = (globalThis as { fetch?: FetchLike }).fetch;
    const fetchImpl = options.fetch ?? (globalFetch ? globalFetch.bind(globalThis) : undefined);
    if (!fetchImpl) throw new TypeError('no fetch implementation: pass options.fetch');
    this.fetchImpl = fetchImpl;
  }

  /** Uses `token` for the following requests (`register` and `login` do this themselves). */
  setToken(token: TokenSource | null): void {
    this.token = token;
  }

  /** Uses a stored session's tokens (an app restarting): its access token, renewed with its refresh token. */
  setSession(session: Pick<Session, 'token' | 'refreshToken'>): void {
    this.token = session.token;
    this.refreshToken = session.refreshToken;
  }

  /** The token as given (a string or a function), null when there is none. */
  get tokenSource(): TokenSource | null {
    return this.token;
  }

  /** The current token, resolved if it is a function; null when there is none. */
  async currentToken(): Promise<string | null> {
    if (this.token === null) return null;
    return typeof this.token === 'function' ? await this.token() : this.token;
  }

  // ---------------------------------------------------------------- accounts

  /** Creates an account and uses its session from now on. */
  async register(input: Credentials & { avatar?: string }): Promise<Session> {
    return this.adopt(await this.call<Session>('POST', '/auth/register', { body: input, auth: false }));
  }

  /** Logs in and uses the session from now on. */
  async login(input: Credentials): Promise<Session> {
    return this.adopt(await this.call<Session>('POST', '/auth/login', { body: input, auth: false }));
  }

  /**
   * The next tokens for the refresh token held (done by itself on a 401; call it to renew ahead of time). A
   * refused refresh means the session ended: the tokens are dropped and `onSession(null)` is told.
   */
  async refresh(): Promise<Session> {
    const refreshToken = this.refreshToken;
    if (!refreshToken) {
      throw new ChatError(401, 'unauthorized', 'no refresh token: log in again', { operation: 'POST /auth/refresh' });
    }
    try {
      return this.adopt(await this.call<Session>('POST', '/auth/refresh', { body: { refreshToken }, auth: false }));
    } catch (error) {
      if (error instanceof ChatError && error.status === 401) this.forget();
      throw error;
    }
  }

  /** Ends this session (its sockets close); the client forgets its tokens. */
  async logout(): Promise<SessionsEnded> {
    const ended = await this.call<SessionsEnded>('POST', '/auth/logout', { retry: false });
    this.forget();
    return ended;
  }

  /** Ends every session of the user, this one included. */
  async logoutEverywhere(): Promise<SessionsEnded> {
    const ended = await this.call<SessionsEnded>('POST', '/auth/logout-all', { retry: false });
    this.forget();
    return ended;
  }

  async sessions(): Promise<SessionInfo[]> {
    return (await this.call<{ items: SessionInfo[] }>('GET', '/users/me/sessions')).items;
  }

  /** Ends another session of the user (a lost device). */
  endSession(sessionId: string): Promise<SessionsEnded> {
    return this.call('DELETE', `/users/me/sessions/${seg(sessionId)}`);
  }

  /**
   * Deletes the account (the password confirms it): it closes now (every session, every socket) and its messages,
   * memberships and relations are erased in the background. The client forgets its tokens.
   */
  async deleteAccount(password: string): Promise<AccountDeleted> {
    const deleted = await this.call<AccountDeleted>('DELETE', '/users/me', { body: { password }, retry: false });
    this.forget();
    return deleted;
  }

  /**
   * Asks for a copy of the user's data (profile, conversations, relations, messages sent), made in the
   * background. One per hour: within an hour of the last request this answers that one, pending or ready.
   */
  requestExport(): Promise<ExportStatus> {
    return this.call('POST', '/users/me/export');
  }

  /** The latest export, with a fresh download link once ready; `null` if none was ever asked for. */
  async exportStatus(): Promise<ExportStatus | null> {
    try {
      return await this.call<ExportStatus>('GET', '/users/me/export');
    } catch (error) {
      if (error instanceof ChatError && error.status === 404) return null;
      throw error;
    }
  }

  /** Changes the password; every other session ends, this one stays. */
  changePassword(currentPassword: string, newPassword: string): Promise<SessionsEnded> {
    return this.call('PUT', '/users/me/password', { body: { currentPassword, newPassword } });
  }

  private adopt(session: Session): Session {
    this.token = session.token;
    this.refreshToken = session.refreshToken;
    this.onSession?.(session);
    return session;
  }

  private forget(): void {
    this.token = null;
    this.refreshToken = null;
    this.onSession?.(null);
  }

  /** One refresh for every request that got a 401 meanwhile; whether a new access token came. */
  private renew(): Promise<boolean> {
    this.refreshing ??= this.refresh()
      .then(() => true, () => false)
      .finally(() => {
        this.refreshing = null;
      });
    return this.refreshing;
  }

  me(): Promise<User> {
    return this.call('GET', '/users/me');
  }

  /** Case-insensitive username prefix search. */
  searchUsers(search: string, query: { limit?: number; cursor?: string } = {}): Promise<Page<User>> {
    return this.call('GET', '/users', { query: { search, ...query } });
  }

  // ---------------------------------------------------------------- conversations

  /** The caller's conversations, newest activity first, with unread counts. */
  listConversations(query: ListQuery = {}): Promise<Page<ConversationSummary>> {
    return this.call('GET', '/conversations', { query: { ...query } });
  }

  getConversation(conversationId: string): Promise<ConversationSummary> {
    return this.call('GET', `/conversations/${seg(conversationId)}`);
  }

  /** The private conversation with `participantId` (the existing one if the pair already has one). */
  createPrivate(participantId: string): Promise<Conversation> {
    return this.call('POST', '/conversations', { body: { type: 'private', participantId } });
  }

  createGroup(name: string, participantIds: string[]): Promise<Conversation> {
    return this.call('POST', '/conversations', { body: { type: 'group', name, participantIds } });
  }

  /** Renames a group and/or changes its avatar. */
  updateGroup(conversationId: string, changes: { name?: string; avatar?: string }): Promise<Conversation> {
    return this.call('PATCH', `/conversations/${seg(conversationId)}`, { body: changes });
  }

  addMembers(conversationId: string, userIds: string[]): Promise<Conversation> {
    return this.call('POST', `/conversations/${seg(conversationId)}/members`, { body: { userIds } });
  }

  /** A page of a conversation's members with their roles, in user-id order (the way to list a large group). */
  members(conversationId: string, query: { limit?: number; cursor?: string } = {}): Promise<Page<Member>> {
    return this.call('GET', `/conversations/${seg(conversationId)}/members`, { query: { ...query } });
  }

  /** How many members have read up to `messageId` (read receipts of large groups are counts). */
  readCount(conversationId: string, messageId: string): Promise<{ messageId: string; readCount: number; memberCount: number }> {
    return this.call('GET', `/conversations/${seg(conversationId)}/messages/${seg(messageId)}/reads`);
  }

  /** Leaves a group (your own id) or removes a member: the owner anyone, an admin members only. */
  removeMember(conversationId: string, userId: string): Promise<MemberLeft> {
    return this.call('DELETE', `/conversations/${seg(conversationId)}/members/${seg(userId)}`);
  }

  /** Makes a member an admin or a member again (the group's owner only). */
  setRole(conversationId: string, userId: string, role: Exclude<Role, 'owner'>): Promise<Conversation> {
    return this.call('PUT', `/conversations/${seg(conversationId)}/members/${seg(userId)}/role`, { body: { role } });
  }

  /** Hands the group over to another member (the owner only); the caller stays on as an admin. */
  transferOwnership(conversationId: string, userId: string): Promise<Conversation> {
    return this.call('PUT', `/conversations/${seg(conversationId)}/owner`, { body: { userId } });
  }

  // ---------------------------------------------------------------- messages

  /** A page of history: newest first, or with `afterSeq` oldest first (catch-up). */
  history(conversationId: string, query: HistoryQuery = {}): Promise<Page<Message>> {
    return this.call('GET', `/conversations/${seg(conversationId)}/messages`, { query: { ...query } });
  }

  /** Sends a message over HTTP (every member's connections get `receive_message`, the sender's included). */
  postMessage(conversationId: string, input: PostMessageInput): Promise<Message> {
    return this.call('POST', `/conversations/${seg(conversationId)}/messages`, { body: input });
  }

  /**
   * A signed form for one file (members only). Refused before signing when the type or size is not one the
   * deployment accepts (`validation_failed`, `payload_too_large`). Post the file with `postUpload`.
   */
  createUpload(conversationId: string, file: { fileName: string; contentType: string; size: number }): Promise<IssuedUpload> {
    return this.call('POST', `/conversations/${seg(conversationId)}/uploads`, { body: file });
  }

  editMessage(conversationId: string, messageId: string, newContent: string): Promise<Message> {
    return this.call('PUT', `/conversations/${seg(conversationId)}/messages/${seg(messageId)}`, {
      body: { newContent },
    });
  }

  deleteMessage(conversationId: string, messageId: string): Promise<Message> {
    return this.call('DELETE', `/conversations/${seg(conversationId)}/messages/${seg(messageId)}`);
  }

  markRead(conversationId: string, target: MarkReadTarget): Promise<ReadReceipt> {
    return this.call('POST', `/conversations/${seg(conversationId)}/read`, { body: target });
  }

  // ---------------------------------------------------------------- friends

  async listFriends(): Promise<Friend[]> {
    const answer = await this.call<{ items: Friend[] }>('GET', '/friends');
    return answer.items;
  }

  listFriendRequests(): Promise<FriendRequests> {
    return this.call('GET', '/friend-requests');
  }

  /** Asks `username` to be friends; accepts their request instead if they had asked you. */
  sendFriendRequest(username: string): Promise<FriendOutcome> {
    return this.call('POST', '/friend-requests', { body: { username } });
  }

  cancelFriendRequest(username: string): Promise<FriendOutcome> {
    return this.call('DELETE', `/friend-requests/${seg(username)}`);
  }

  acceptFriendRequest(username: string): Promise<FriendOutcome> {
    return this.call('POST', `/friend-requests/${seg(username)}/accept`);
  }

  rejectFriendRequest(username: string): Promise<FriendOutcome> {
    return this.call('POST', `/friend-requests/${seg(username)}/reject`);
  }

  unfriend(username: string): Promise<FriendOutcome> {
    return this.call('DELETE', `/friends/${seg(username)}`);
  }

  blockUser(userId: string): Promise<BlockOutcome> {
    return this.call('POST', `/users/${seg(userId)}/block`);
  }

  unblockUser(userId: string): Promise<BlockOutcome> {
    return this.call('DELETE', `/users/${seg(userId)}/block`);
  }

  privacy(): Promise<Privacy> {
    return this.call('GET', '/users/me/privacy');
  }

  /** Who may start a conversation with you or add you to a group; existing conversations stay. */
  setPrivacy(contactableBy: ContactableBy): Promise<Privacy> {
    return this.call('PUT', '/users/me/privacy', { body: { contactableBy } });
  }

  /** Which messages of a conversation notify you; with `until` (ISO-8601) a quieter level ends then. */
  setConversationNotifications(
    conversationId: string,
    level: NotifyLevel,
    until?: string,
  ): Promise<ConversationNotifications & { conversationId: string }> {
    const body = until === undefined ? { level } : { level, until };
    return this.call('PUT', `/conversations/${seg(conversationId)}/notifications`, { body });
  }

  notificationPreferences(): Promise<NotificationPreferences> {
    return this.call('GET', '/users/me/notifications');
  }

  /** Do not disturb until a time (`null`: off) and whether notifications show the message's text. */
  setNotificationPreferences(preferences: Partial<NotificationPreferences>): Promise<NotificationPreferences> {
    return this.call('PUT', '/users/me/notifications', { body: preferences });
  }

  // ---------------------------------------------------------------- push notifications

  /** The VAPID public key (base64url) to subscribe with: `pushManager.subscribe({applicationServerKey})`. */
  async pushServerKey(): Promise<string> {
    return (await this.call<{ publicKey: string }>('GET', '/push/server-key')).publicKey;
  }

  /**
   * Registers a browser's push subscription (`subscription.toJSON()`): while none of your sockets is open, the
   * messages you would be notified of arrive there. Registering the same browser again replaces its keys.
   */
  registerPushSubscription(subscription: {
    endpoint: string;
    keys: { p256dh: string; auth: string };
    expirationTime?: number | null;
  }): Promise<PushSubscriptionRecord> {
    const body = { endpoint: subscription.endpoint, keys: subscription.keys, expirationTime: subscription.expirationTime ?? null };
    return this.call('POST', '/users/me/push-subscriptions', { body });
  }

  /**
   * Registers a phone's device token (`fcm` for Firebase, `apns` for Apple): notifications reach the app through
   * the deployment's SNS platform application. Register again after each app start (tokens change).
   */
  registerDevice(platform: 'fcm' | 'apns', token: string): Promise<PushSubscriptionRecord> {
    return this.call('POST', '/users/me/push-subscriptions', { body: { platform, token } });
  }

  async pushSubscriptions(): Promise<PushSubscriptionRecord[]> {
    return (await this.call<{ items: PushSubscriptionRecord[] }>('GET', '/users/me/push-subscriptions')).items;
  }

  removePushSubscription(id: string): Promise<{ id: string; removed: true }> {
    return this.call('DELETE', `/users/me/push-subscriptions/${seg(id)}`);
  }

  async blockedUsers(): Promise<BlockedUser[]> {
    return (await this.call<{ items: BlockedUser[] }>('GET', '/users/me/blocked')).items;
  }

  // ---------------------------------------------------------------- reports and moderation

  /**
   * Reports a message you can see, or a user, to the operators (docs/protocol.md, Reports and moderation).
   * `unchanged` when you already reported it; 10 reports an hour (a `rate_limited` error beyond).
   */
  report(target: ReportTarget, reason: ReportReason, details?: string): Promise<ReportOutcome> {
    return this.call('POST', '/reports', { body: { target, reason, details: details ?? null } });
  }

  /** Operators: one page of open reports, oldest first. */
  openReports(query: { limit?: number; cursor?: string } = {}): Promise<Page<Report>> {
    return this.call('GET', '/moderation/reports', { query: { ...query } });
  }

  /** Operators: closes every open report of `target`. */
  resolveReports(target: ReportTarget, outcome: 'dismissed' | 'actioned', note?: string): Promise<{ resolved: number }> {
    return this.call('POST', '/moderation/reports/resolve', { body: { target, outcome, note: note ?? null } });
  }

  /** Operators: deletes any message; its members get `message_deleted`. */
  moderateMessage(messageId: string): Promise<Message> {
    return this.call('DELETE', `/moderation/messages/${seg(messageId)}`);
  }

  /** Operators: suspends a user (their sockets close now, their tokens and logins are refused) or lifts it. */
  setSuspended(userId: string, suspended: boolean, reason?: string): Promise<Suspension> {
    const path = `/moderation/users/${seg(userId)}/suspension`;
    return suspended ? this.call('PUT', path, { body: { reason: reason ?? null } }) : this.call('DELETE', path);
  }

  /** Operators: one month (`YYYY-MM`, this one by default) of the audit record, newest first. */
  auditRecord(query: { month?: string; limit?: number; cursor?: string } = {}): Promise<Page<AuditEntry>> {
    return this.call('GET', '/moderation/audit', { query: { ...query } });
  }

  // ---------------------------------------------------------------- transport

  /**
   * Performs one request; resolves with the parsed JSON body of a 2xx answer, throws `ChatError` otherwise. An
   * authenticated request answered 401 is tried once more after renewing the access token, if that works.
   */
  async call<T>(method: string, path: string, spec: RequestSpec = {}): Promise<T> {
    const sentWith = (spec.auth ?? true) ? await this.currentToken() : null;
    try {
      return await this.once<T>(method, path, spec, sentWith);
    } catch (error) {
      const renewable = sentWith !== null && (spec.retry ?? true) && typeof this.token !== 'function';
      if (!(error instanceof ChatError) || error.status !== 401 || !renewable || !this.refreshToken) throw error;
      // Another request may have renewed it already.
      if (this.token === sentWith && !(await this.renew())) throw error;
      return this.once<T>(method, path, spec, await this.currentToken());
    }
  }

  private async once<T>(method: string, path: string, spec: RequestSpec, token: string | null): Promise<T> {
    const operation = `${method} ${path}`;
    const headers: Record<string, string> = { accept: 'application/json' };
    if (token) headers.authorization = `Bearer ${token}`;
    const init: FetchInitLike = { method, headers };
    if (spec.body !== undefined) {
      headers['content-type'] = 'application/json';
      init.body = JSON.stringify(spec.body);
    }
    const controller = this.timeoutMs > 0 && typeof AbortController === 'function' ? new AbortController() : null;
    const timer = controller ? setTimeout(() => controller.abort(), this.timeoutMs) : undefined;
    if (controller) init.signal = controller.signal;

    let response: FetchResponseLike;
    let text: string;
    try {
      response = await this.fetchImpl(this.baseUrl + path + queryString(spec.query), init);
      text = await response.text();
    } catch (cause) {
      if (controller?.signal.aborted) {
        throw ChatError.client('timeout', `${operation}: no answer within ${this.timeoutMs} ms`, { operation, cause });
      }
      throw ChatError.client('network', `${operation}: ${describe(cause)}`, { operation, cause });
    } finally {
      if (timer !== undefined) clearTimeout(timer);
    }
    if (!response.ok) throw ChatError.fromHttp(response.status, text, { operation });
    try {
      return JSON.parse(text) as T;
    } catch (cause) {
      throw new ChatError(response.status, 'invalid_response', `${operation}: the answer is not JSON`, {
        operation,
        cause,
      });
    }
  }
}

/** One URL path segment, escaped. */
function seg(value: string): string {
  return encodeURIComponent(value);
}

function queryString(query: Query | undefined): string {
  if (!query) return '';
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined) params.set(name, String(value));
  }
  const text = params.toString();
  return text ? `?${text}` : '';
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
