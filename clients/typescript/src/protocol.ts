/**
 * Wire types of the chat backend: the objects of the REST API and the frames of the WebSocket API.
 *
 * Why this module exists: every other module (and every app) should speak in these names, which mirror
 * docs/protocol.md, docs/asyncapi.yaml and docs/openapi.yaml one to one (`_id`, camelCase, `type`). The contract
 * test (test/contract.test.ts) checks the lists below against docs/asyncapi.yaml, so a renamed event or a new
 * action cannot drift silently.
 */

// ------------------------------------------------------------------ domain objects

/** A user reference as it appears in messages and friend events (`sender`, `from`, `by`, `friend`). */
export interface Sender {
  _id: string;
  username: string;
  avatar: string | null;
}

/** A public profile. */
export interface User extends Sender {
  createdAt: string;
}

export type MessageType = 'text' | 'image' | 'file';

/** A stored message. `seq` is per conversation, strictly increasing and gap-free; `_id` is `<conversationId>-<seq>`. */
export interface Message {
  _id: string;
  conversationId: string;
  seq: number;
  sender: Sender;
  content: string;
  type: MessageType;
  /** Present only when set. */
  fileUrl?: string;
  /** Present only when set. */
  fileName?: string;
  /** An uploaded file (`ChatClient.sendFile`); its URLs are short-lived, so take them from the newest copy. */
  attachment?: Attachment;
  /** Always `sent` on the wire; delivery and reads arrive as `message_status` events. */
  status: 'sent';
  createdAt: string;
  edited: boolean;
  editedAt: string | null;
  deleted: boolean;
  deletedAt: string | null;
  /** Present only when the sender gave one. */
  clientMessageId?: string;
  /** Emoji → ids of the users who reacted with it. */
  reactions: Record<string, string[]>;
  /** The members the sender mentioned, in id order: you are mentioned when your user id is here. */
  mentions: string[];
}

/**
 * A file attached to a message. `url` (and for images `thumbnailUrl`, a JPEG of at most 320 px) work for minutes
 * and only while `status` is `ready`; an image is `processing` until the server has made its thumbnail and a copy
 * without location metadata (an `attachment_processed` event follows), and `rejected` if it is no valid image.
 */
export interface Attachment {
  id: string;
  conversationId: string;
  fileName: string;
  contentType: string;
  size: number;
  status: 'processing' | 'ready' | 'rejected';
  width?: number;
  height?: number;
  url?: string;
  thumbnailUrl?: string;
}

/** A signed form: POST `url` as multipart/form-data with `fields`, then the file as `file`. */
export interface UploadForm {
  url: string;
  fields: Record<string, string>;
  expiresAt: string;
}

export interface IssuedUpload {
  uploadId: string;
  upload: UploadForm;
}

export type ConversationType = 'private' | 'group';

/**
 * A conversation with its members resolved to profiles. A large group (more than 50 members) has `large: true`
 * and no `members`: page them with `RestClient.members`.
 */
export interface Conversation {
  _id: string;
  type: ConversationType;
  name: string | null;
  avatar: string | null;
  /** Present for conversations of up to 50 members. */
  members?: User[];
  memberCount: number;
  large?: true;
  lastMessage: Message | null;
  /** Seq of the newest message; 0 before the first. */
  lastSeq: number;
  createdBy: string;
  /** Groups only: the owner (docs/protocol.md, "Group roles"). */
  ownerId?: string;
  /** Groups only: the admins' ids. */
  admins?: string[];
  createdAt: string;
  updatedAt: string;
}

/** What a member may do in a group: owner and admins manage it, the owner alone changes roles. */
export type Role = 'owner' | 'admin' | 'member';

/** A member as the member list shows them; `role` in groups only. */
export interface Member extends User {
  role?: Role;
}

/** Which messages of a conversation notify a member: every one, only those that mention them, or none. */
export type NotifyLevel = 'all' | 'mentions' | 'none';

/** A member's notification setting for one conversation; with `until`, a quieter level falls back to `all` then. */
export interface ConversationNotifications {
  level: NotifyLevel;
  until: string | null;
}

/** Notification preferences across conversations (`GET`/`PUT /users/me/notifications`). */
export interface NotificationPreferences {
  /** No notification at all until then (ISO-8601); `null`: not set. */
  doNotDisturbUntil: string | null;
  /** `false`: notifications leave the message's text out. */
  previews: boolean;
}

/** Whether this connection's app is in front of its user (`set_app_state`). */
export type AppState = 'foreground' | 'background';

/** A registered browser or phone (a browser's keys stay on the server). */
export interface PushSubscriptionRecord {
  id: string;
  platform: 'web' | 'fcm' | 'apns';
  /** A browser's push service URL, or a phone's SNS endpoint ARN. */
  endpoint: string;
  createdAt: string;
}

/**
 * What a push notification carries to the service worker (decrypted by the browser): who wrote where, and the
 * text unless the user turned previews off.
 */
export interface PushNotificationPayload {
  type: 'message';
  conversationId: string;
  /** A group's name; `null` for a private conversation. */
  conversationName: string | null;
  messageId: string;
  seq: number;
  sender: { _id: string; username: string; avatar: string | null };
  /** The first 140 characters (or the file's name); `null` when previews are off. */
  preview: string | null;
  /** Whether the message mentions the recipient. */
  mentioned: boolean;
  sentAt: string;
}

/** A conversation in the caller's list, with the caller's unread counts and notification setting. */
export interface ConversationSummary extends Conversation {
  unreadCount: number;
  /** Unread messages that mention the caller. */
  unreadMentionCount: number;
  /** The caller's setting in force now. */
  notifications: ConversationNotifications;
}

/** A peer's presence as the caller may see it (invisible users look offline). */
export interface PeerPresence {
  userId: string;
  online: boolean;
  /** The chosen status while online, else `offline`. */
  status: string;
  lastSeen: string | null;
}

/** A friend's profile with their visible presence. */
export interface Friend extends User {
  online: boolean;
  status: string;
  lastSeen: string | null;
}

export interface FriendRequest {
  user: User;
  createdAt: string;
}

export interface FriendRequests {
  incoming: FriendRequest[];
  outgoing: FriendRequest[];
}

export type FriendResult = 'requested' | 'cancelled' | 'accepted' | 'rejected' | 'unfriended';

/** What `block_user` / `unblock_user` did; `unchanged` when it already was so. */
export interface BlockOutcome {
  user: User;
  result: 'blocked' | 'unblocked' | 'unchanged';
}

/** Who may start a private conversation with a user or add them to a group (`GET`/`PUT /users/me/privacy`). */
export type ContactableBy = 'everyone' | 'friends' | 'nobody';

export interface Privacy {
  contactableBy: ContactableBy;
}

/** `DELETE /users/me`: the account is closed; its erasure is under way. */
export interface AccountDeleted extends SessionsEnded {
  status: 'erasing';
}

/**
 * An export of one's data (`POST`/`GET /users/me/export`). Once `ready`, `url` downloads the JSON document with a
 * plain GET (no token) until `urlExpiresAt`; ask again for a fresh link. The document is kept until
 * `availableUntil`, then `expired`.
 */
export interface ExportStatus {
  exportId: string;
  status: 'pending' | 'ready' | 'expired';
  requestedAt: string;
  readyAt?: string;
  /** Bytes of the document. */
  size?: number;
  url?: string;
  urlExpiresAt?: string;
  availableUntil?: string;
}

/** What a report is about. */
export type ReportTarget = { type: 'message'; messageId: string } | { type: 'user'; userId: string };

export type ReportReason = 'spam' | 'harassment' | 'hate' | 'sexual' | 'violence' | 'self_harm' | 'other';

/** `POST /reports`: `unchanged` when the caller had already reported this target. */
export interface ReportOutcome {
  result: 'reported' | 'unchanged';
}

/** A report as operators see it (`GET /moderation/reports`). */
export interface Report {
  target: ReportTarget;
  reporterId: string;
  reason: ReportReason;
  details: string | null;
  createdAt: string;
  /** The reported user, or the message's sender. */
  subjectId: string;
  /** The message's text when it was reported. */
  excerpt: string | null;
  status: 'open' | 'dismissed' | 'actioned';
}

/** What suspending (or lifting it) did. */
export interface Suspension extends SessionsEnded {
  userId: string;
  suspended: boolean;
}

/** One operator action (`GET /moderation/audit`). */
export interface AuditEntry {
  id: string;
  at: string;
  operatorId: string;
  action: 'resolve_reports' | 'delete_message' | 'suspend' | 'unsuspend';
  target: ReportTarget;
  note: string | null;
}

/** A user the caller blocked, and since when. */
export interface BlockedUser {
  user: User;
  blockedAt: string;
}

/** What a friend action did; `user` is the other user. */
export interface FriendOutcome {
  user: Sender;
  result: FriendResult;
}

export interface ReadReceipt {
  conversationId: string;
  /** The read pointer after the call. */
  lastReadSeq: number;
  /** The messages newly marked read (empty when the pointer did not move). */
  messageIds: string[];
}

export interface MemberLeft {
  conversationId: string;
  userId: string;
  removedBy: string;
}

/** One page of a REST list. `nextCursor` is null on the last page. */
export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

/** What register, login and refresh answer: a short-lived access token and the refresh token for the next one. */
export interface Session {
  token: string;
  /** Works once (`POST /auth/refresh`); a second use ends the whole session. */
  refreshToken: string;
  /** Seconds the access token lives. */
  expiresIn: number;
  user: User;
}

/** What ending sessions did. */
export interface SessionsEnded {
  endedSessions: number;
  closedConnections: number;
}

/** One of the user's logins (`GET /users/me/sessions`). */
export interface SessionInfo {
  sessionId: string;
  createdAt: string;
  refreshedAt: string;
  /** The session of the token that asked. */
  current: boolean;
}

// ------------------------------------------------------------------ errors

/** The machine-readable codes of `error` frames and of REST error bodies. */
export const ERROR_CODES = [
  'bad_request',
  'validation_failed',
  'unauthorized',
  'forbidden',
  'not_found',
  'conflict',
  'payload_too_large',
  'rate_limited',
  'unknown_action',
  'internal',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

// ------------------------------------------------------------------ client actions

export interface SendMessagePayload {
  conversationId: string;
  /** Required (not blank) for text messages; at most 4,000 characters. */
  content?: string;
  type?: MessageType;
  /** An http(s) URL of a file hosted elsewhere (image and file messages need this or `attachment`). */
  fileUrl?: string;
  fileName?: string;
  /** An upload id (`RestClient.createUpload`, then the file posted with its form). */
  attachment?: string;
  /** Idempotency key: 1–64 characters of `[A-Za-z0-9_.:-]`, unique per sender and conversation. */
  clientMessageId?: string;
  /** Ids of members the message mentions (at most 50); a non-member refuses the message. */
  mentions?: string[];
}

export type MarkReadPayload =
  | { conversationId: string; messageIds: string[] }
  | { conversationId: string; lastMessageId: string };

interface UsernamePayload {
  username: string;
}

type Empty = Record<never, never>;

/** The payload fields of each client action (sent at top level, next to `action` and `requestId`). */
export interface ActionPayloads {
  ping: Empty;
  join_conversations: { conversationIds: string[] };
  join_conversation: { conversationId: string };
  leave_conversation: { conversationId: string };
  send_message: SendMessagePayload;
  edit_message: { messageId: string; newContent: string };
  delete_message: { messageId: string };
  mark_read: MarkReadPayload;
  typing: { conversationId: string; isTyping: boolean };
  add_reaction: { messageId: string; emoji: string };
  remove_reaction: { messageId: string; emoji: string };
  send_friend_request: UsernamePayload;
  cancel_friend_request: UsernamePayload;
  accept_friend_request: UsernamePayload;
  reject_friend_request: UsernamePayload;
  unfriend: UsernamePayload;
  block_user: { userId: string };
  unblock_user: { userId: string };
  get_blocked_users: Empty;
  set_status: { status: string };
  set_app_state: { state: AppState };
  get_friends: Empty;
  get_friend_requests: Empty;
  get_status: Empty;
  get_presence: Empty;
}

export type Action = keyof ActionPayloads;

/**
 * The largest frame a client may send: API Gateway closes the connection on a WebSocket frame over 32 KB, and
 * the server refuses a bigger message with `payload_too_large` (docs/protocol.md, Limits).
 */
export const MAX_FRAME_BYTES = 32 * 1024;
/** `requestId` is 1-128 characters. */
export const MAX_REQUEST_ID_LENGTH = 128;
/** Message `content` is limited to 4,000 characters (Unicode code points). */
export const MAX_CONTENT_CHARS = 4000;

/** The size of `frame` on the wire: its JSON in UTF-8. */
export function frameBytes(frame: object): number {
  return new TextEncoder().encode(JSON.stringify(frame)).length;
}

/** Every action the WebSocket API understands, in the order of docs/protocol.md. */
export const ACTIONS = [
  'ping',
  'join_conversations',
  'join_conversation',
  'leave_conversation',
  'send_message',
  'edit_message',
  'delete_message',
  'mark_read',
  'typing',
  'add_reaction',
  'remove_reaction',
  'send_friend_request',
  'cancel_friend_request',
  'accept_friend_request',
  'reject_friend_request',
  'unfriend',
  'block_user',
  'unblock_user',
  'get_blocked_users',
  'set_status',
  'set_app_state',
  'get_friends',
  'get_friend_requests',
  'get_status',
  'get_presence',
] as const satisfies readonly Action[];

/** A client frame: `{action, requestId?, ...payload}`. */
export type ClientFrame<A extends Action = Action> = { action: A; requestId?: string } & ActionPayloads[A];

// ------------------------------------------------------------------ replies

/** The `data` of the `ack` of each action, besides `success: true` (for `ping`: the `pong` data, `{}`). */
export interface AckData {
  ping: Empty;
  join_conversations: { joined: string[]; rejected: string[] };
  join_conversation: { conversationId: string };
  leave_conversation: { conversationId: string };
  /** `duplicate: true` only on a retry with an already used `clientMessageId`. */
  send_message: { message: Message; duplicate?: true };
  edit_message: { message: Message };
  delete_message: { messageId: string; conversationId: string };
  mark_read: ReadReceipt;
  /** `broadcast: false` when a repeated `isTyping: true` was swallowed by the 2 s throttle. */
  typing: { conversationId: string; broadcast: boolean };
  add_reaction: { messageId: string; emoji: string; changed: boolean };
  remove_reaction: { messageId: string; emoji: string; changed: boolean };
  send_friend_request: FriendOutcome;
  cancel_friend_request: FriendOutcome;
  accept_friend_request: FriendOutcome;
  reject_friend_request: FriendOutcome;
  unfriend: FriendOutcome;
  block_user: BlockOutcome;
  unblock_user: BlockOutcome;
  get_blocked_users: { blocked: BlockedUser[] };
  set_status: { status: string };
  set_app_state: { state: AppState };
  get_friends: { friends: Friend[] };
  get_friend_requests: FriendRequests;
  get_status: { status: string; lastSeen: string | null };
  get_presence: { users: PeerPresence[] };
}

/** What a request resolves with: the ack's `data` (with `success: true`), or `{}` for `ping`. */
export type AckResult<A extends Action> = A extends 'ping' ? Empty : { success: true } & AckData[A];

export interface ErrorData {
  success: false;
  code: ErrorCode;
  message: string;
}

/** The replies to a request: `ack`, `pong` (for `ping`) and `error`. */
export const REPLY_EVENTS = ['ack', 'error', 'pong'] as const;
export type ReplyEventName = (typeof REPLY_EVENTS)[number];

// ------------------------------------------------------------------ server events

export interface MessageDeliveredStatus {
  conversationId: string;
  messageId: string;
  status: 'delivered';
  /** The other members at least one of whose connections accepted the message. */
  userIds: string[];
}

export interface MessageReadStatus {
  conversationId: string;
  /** The newest message read. */
  messageId: string;
  status: 'read';
  userId: string;
}

export interface ReactionChange {
  messageId: string;
  conversationId: string;
  emoji: string;
  userId: string;
}

/** The `data` of each server event that is not a reply. */
export interface ServerEvents {
  receive_message: { message: Message; conversationId: string };
  message_edited: { messageId: string; newContent: string; editedAt: string; conversationId: string };
  message_deleted: { messageId: string; conversationId: string };
  attachment_processed: { conversationId: string; messageId: string; attachment: Attachment };
  messages_read: { conversationId: string; messageIds: string[]; readBy: string; readAt: string; upToSeq: number };
  message_status: MessageDeliveredStatus | MessageReadStatus;
  typing_status: { userId: string; username: string; conversationId: string; isTyping: boolean };
  reaction_added: ReactionChange;
  reaction_removed: ReactionChange;
  user_online: { userId: string; username: string };
  user_offline: { userId: string; username: string; lastSeen: string | null };
  status_changed: { userId: string; username: string; status: string };
  conversation_created: { conversation: Conversation };
  conversation_updated: { conversation: Conversation };
  member_joined: { conversationId: string; members: User[]; addedBy: string };
  member_left: MemberLeft;
  member_role_changed: { conversationId: string; userId: string; role: Role; changedBy: string };
  friend_request_received: { from: Sender; createdAt: string };
  friend_request_cancelled: { from: Sender };
  friend_request_accepted: { by: Sender };
  friend_request_rejected: { by: Sender };
  friendship_created: { friend: Sender };
  friendship_deleted: { userId: string; username: string };
  user_blocked: { user: Sender };
  user_unblocked: { user: Sender };
  conversation_notifications_changed: ConversationNotifications & { conversationId: string };
  notification_preferences_changed: NotificationPreferences;
}

export type ServerEventName = keyof ServerEvents;

/** The events that change a user's friends or friend requests (an app reloads its friend list on any of them). */
export const FRIEND_EVENTS = [
  'friend_request_received',
  'friend_request_cancelled',
  'friend_request_accepted',
  'friend_request_rejected',
  'friendship_created',
  'friendship_deleted',
] as const satisfies readonly ServerEventName[];

/** Every server event that is not a reply, in the order of docs/protocol.md. */
export const SERVER_EVENTS = [
  'receive_message',
  'message_edited',
  'message_deleted',
  'attachment_processed',
  'messages_read',
  'message_status',
  'typing_status',
  'reaction_added',
  'reaction_removed',
  'user_online',
  'user_offline',
  'status_changed',
  'conversation_created',
  'conversation_updated',
  'member_joined',
  'member_left',
  'member_role_changed',
  ...FRIEND_EVENTS,
  'user_blocked',
  'user_unblocked',
  'conversation_notifications_changed',
  'notification_preferences_changed',
] as const satisfies readonly ServerEventName[];

/** Any server frame, before it is told apart: `{event, data, requestId?}`. */
export interface ServerFrame {
  event: string;
  requestId?: string;
  data: unknown;
}

/** Parses one WebSocket text frame; `null` if it is not a server frame. */
export function parseServerFrame(text: string): ServerFrame | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null) return null;
  const frame = value as Record<string, unknown>;
  if (typeof frame.event !== 'string') return null;
  const requestId = typeof frame.requestId === 'string' ? frame.requestId : undefined;
  return requestId === undefined
    ? { event: frame.event, data: frame.data }
    : { event: frame.event, requestId, data: frame.data };
}
