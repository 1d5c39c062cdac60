/**
 * `@chat/sdk`: a TypeScript client for the serverless chat backend (browsers and Node 20+).
 *
 * Start with `ChatClient` (REST + realtime with reconnect, catch-up, idempotent sends and presence) and
 * `client.conversation(id)` for one conversation's actions and events; the building blocks are exported for
 * apps and tests that need only part of it.
 */

export { ChatClient } from './client.js';
export type { ChatClientEvents, ChatClientOptions, Endpoints, SendOptions, SentMessage, SyncInfo } from './client.js';

export { ChatConversation } from './conversation.js';
export type { ConversationEvents } from './conversation.js';

export { RestClient } from './rest.js';
export { describeFile, postUpload } from './uploads.js';
export type { UploadOptions, UploadProgress, Uploadable } from './uploads.js';
export type {
  Credentials,
  FetchInitLike,
  FetchLike,
  FetchResponseLike,
  HistoryQuery,
  ListQuery,
  MarkReadTarget,
  PostMessageInput,
  RestClientOptions,
  TokenSource,
} from './rest.js';

export { RealtimeConnection, withToken } from './connection.js';
export type {
  ConnectionEvents,
  ConnectionOptions,
  ConnectionState,
  RequestOptions,
  RetryInfo,
  StateChange,
  WebSocketConstructorLike,
  WebSocketLike,
} from './connection.js';

export { Timeline } from './timeline.js';
export type { FetchAfter, GapInfo, MessageDelivery, MessageSource, TimelineOptions } from './timeline.js';

export { PresenceMap } from './presence.js';
export type { PresenceChange, PresenceState } from './presence.js';

export { ChatError, isChatError, STATUS_BY_CODE } from './errors.js';
export type { ChatErrorCode, ChatErrorDetails, ClientErrorCode } from './errors.js';

export { backoffDelay, DEFAULT_BACKOFF } from './backoff.js';
export type { BackoffOptions } from './backoff.js';

export { Emitter } from './emitter.js';
export type { Listener } from './emitter.js';

export { isValidClientMessageId, randomToken, sequentialIds } from './ids.js';

export { mentionsIn } from './mentions.js';

export * from './protocol.js';
