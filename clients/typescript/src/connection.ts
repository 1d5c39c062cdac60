/**
 * One logical realtime connection that survives the loss of any number of WebSockets.
 *
 * Why this module exists: API Gateway closes idle sockets after 10 minutes and every socket after 2 hours,
 * deploys and network changes drop them at any time, and a request sent just before a drop may or may not have
 * been handled. This module owns the socket lifecycle and the request/reply bookkeeping so the rest of the SDK
 * can treat the connection as always there:
 *
 * - a visible state (`connecting`, `connected`, `reconnecting`, `offline`) with change events;
 * - automatic reconnects with jittered exponential backoff; a handshake that fails is followed by a token
 *   check (`checkAuth`), so a refused token stops the retries instead of looping;
 * - every request carries a `requestId` and resolves on its `ack`/`pong` or rejects with a `ChatError` on its
 *   `error` or after a timeout;
 * - requests marked `whenOffline: 'queue'` wait for the next connection; requests marked `resendOnReconnect`
 *   (idempotent ones, like `send_message` with a `clientMessageId`) are sent again after a reconnect or a
 *   timeout instead of failing, and settle exactly once, on whichever answer comes first;
 * - `ping` every few minutes keeps the socket alive, and a missing `pong` reveals a dead one.
 */

import { type BackoffOptions, backoffDelay } from './backoff.js';
import { ChatError, STATUS_BY_CODE } from './errors.js';
import { Emitter } from './emitter.js';
import {
  type AckResult,
  type Action,
  type ActionPayloads,
  frameBytes,
  MAX_FRAME_BYTES,
  MAX_REQUEST_ID_LENGTH,
  parseServerFrame,
  type ServerFrame,
} from './protocol.js';

export type ConnectionState = 'connecting' | 'connected' | 'reconnecting' | 'offline';

export interface StateChange {
  previous: ConnectionState;
  current: ConnectionState;
  /** Why the connection left `connected` or went `offline`, when known. */
  error?: unknown;
}

/** A reconnect was scheduled. */
export interface RetryInfo {
  /** 1 for the first retry after a loss. */
  attempt: number;
  delayMs: number;
  error?: unknown;
}

/**
 * The part of the WebSocket API the client uses: the browser's `WebSocket`, the `ws` package's, Node 22's global
 * one, or a test fake. Event parameters are `any` so that all of those fit without casts.
 */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  onopen: ((event: any) => void) | null;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  onclose: ((event: any) => void) | null;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  onerror: ((event: any) => void) | null;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  onmessage: ((event: any) => void) | null;
}

export type WebSocketConstructorLike = new (url: string) => WebSocketLike;

export interface RequestOptions {
  /** Reply timeout in ms (default: the connection's `requestTimeoutMs`). */
  timeoutMs?: number;
  /** Without a connection: wait for the next one (`queue`) or fail with `not_connected` (`reject`, default). */
  whenOffline?: 'queue' | 'reject';
  /**
   * Send again after a reconnect (and after a timeout) instead of failing with `connection_lost`. Only for
   * idempotent requests.
   */
  resendOnReconnect?: boolean;
  /** For `resendOnReconnect` requests: give up (with `timeout`) after this many timeouts. Default 3. */
  maxTimeouts?: number;
}

export interface ConnectionOptions {
  /** The WebSocket endpoint, without the token. */
  url: string;
  /** The current token; null means there is none (the connection goes offline with `unauthorized`). */
  token: () => string | null | Promise<string | null>;
  WebSocket: WebSocketConstructorLike;
  requestTimeoutMs: number;
  /** Give up on a handshake after this long. */
  connectTimeoutMs: number;
  /** Send `ping` this often while connected (API Gateway closes sockets idle for 10 minutes); 0 disables. */
  pingIntervalMs: number;
  /** A `ping` without `pong` within this long means the socket is dead. */
  pingTimeoutMs: number;
  backoff: BackoffOptions;
  random: () => number;
  /** Makes `requestId`s. */
  nextRequestId: () => string;
  /**
   * Called after a handshake failed: resolves false if the token is refused (then the connection goes
   * offline), true otherwise. Browsers cannot see a refused handshake's HTTP status, so this asks the REST API.
   */
  checkAuth?: () => Promise<boolean>;
}

export interface ConnectionEvents {
  state: StateChange;
  retry: RetryInfo;
  /** A socket opened; `reconnect` is false for the first one. Listeners may send requests right away. */
  open: { reconnect: boolean };
  /** A request succeeded; emitted before its promise resolves. */
  ack: { action: Action; requestId: string; data: unknown };
  /** A server frame that is not the reply to a pending request. */
  frame: ServerFrame;
  /** An `error` frame that answers no pending request, or a permanent failure of the connection. */
  error: ChatError;
}

interface PendingRequest {
  /** Creation order: queued requests are sent in this order. */
  seq: number;
  action: Action;
  payload: object;
  timeoutMs: number;
  whenOffline: 'queue' | 'reject';
  resend: boolean;
  maxTimeouts: number;
  timeouts: number;
  /** Every requestId this request was sent with; a reply to any of them settles it. */
  requestIds: string[];
  timer: ReturnType<typeof setTimeout> | null;
  resolve: (data: unknown) => void;
  reject: (error: unknown) => void;
}

const REPLY_EVENTS = new Set(['ack', 'pong', 'error']);

export class RealtimeConnection {
  private readonly events = new Emitter<ConnectionEvents>();
  private readonly options: ConnectionOptions;
  private currentState: ConnectionState = 'offline';
  private socket: WebSocketLike | null = null;
  /** Increases with every socket (and on disconnect), so late callbacks of an old one are ignored. */
  private generation = 0;
  private everOpened = false;
  /** Failed attempts since the last successful open. */
  private failures = 0;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private connectTimer: ReturnType<typeof setTimeout> | null = null;
  private pingTimer: ReturnType<typeof setInterval> | null = null;
  private nextSeq = 0;
  /** Requests sent on the current socket, by every requestId they were sent with. */
  private readonly byRequestId = new Map<string, PendingRequest>();
  private readonly inFlight = new Set<PendingRequest>();
  /** Requests waiting for a connection, in creation order. */
  private queue: PendingRequest[] = [];

  constructor(options: ConnectionOptions) {
    this.options = options;
  }

  get state(): ConnectionState {
    return this.currentState;
  }

  /** Requests sent and not answered yet, plus requests waiting for a connection. */
  get pendingCount(): number {
    return this.inFlight.size + this.queue.length;
  }

  on<K extends keyof ConnectionEvents>(event: K, listener: (value: ConnectionEvents[K]) => void): () => void {
    return this.events.on(event, listener);
  }

  /** Starts connecting (no-op unless offline). */
  connect(): void {
    if (this.currentState !== 'offline') return;
    this.failures = 0;
    this.setState('connecting');
    this.openSocket();
  }

  /** Closes the connection for good: no reconnects; pending and queued requests fail with `closed`. */
  disconnect(): void {
    this.shutDown(ChatError.client('closed', 'the client was disconnected'));
  }

  /** While waiting to reconnect: try now instead of at the end of the backoff delay. */
  reconnectNow(): void {
    if (this.currentState !== 'reconnecting' || this.retryTimer === null) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.openSocket();
  }

  /**
   * Sends `action` and resolves with the `data` of its `ack` (or `pong`), or rejects with a `ChatError`:
   * the server's `error`, `timeout`, `connection_lost`, `not_connected` or `closed`.
   */
  request<A extends Action>(action: A, payload: ActionPayloads[A], options: RequestOptions = {}): Promise<AckResult<A>> {
    return new Promise<AckResult<A>>((resolve, reject) => {
      // API Gateway closes the connection on a frame over 32 KB: refuse it here, with the server's code.
      const bytes = frameBytes({ action, requestId: '', ...payload }) + MAX_REQUEST_ID_LENGTH;
      if (bytes > MAX_FRAME_BYTES) {
        const message = `${action}: the frame would be ${bytes} bytes; frames are limited to ${MAX_FRAME_BYTES} bytes`;
        reject(new ChatError(STATUS_BY_CODE.payload_too_large, 'payload_too_large', message, { operation: action }));
        return;
      }
      const entry: PendingRequest = {
        seq: ++this.nextSeq,
        action,
        payload,
        timeoutMs: options.timeoutMs ?? this.options.requestTimeoutMs,
        whenOffline: options.whenOffline ?? 'reject',
        resend: options.resendOnReconnect ?? false,
        maxTimeouts: options.maxTimeouts ?? 3,
        timeouts: 0,
        requestIds: [],
        timer: null,
        resolve: resolve as (data: unknown) => void,
        reject,
      };
      if (this.currentState === 'connected' && this.socket) {
        this.transmit(entry);
      } else if (entry.whenOffline === 'queue') {
        this.queue.push(entry);
      } else {
        reject(ChatError.client('not_connected', `${action}: not connected (${this.currentState})`, { operation: action }));
      }
    });
  }

  // ---------------------------------------------------------------- socket lifecycle

  private setState(next: ConnectionState, error?: unknown): void {
    const previous = this.currentState;
    if (previous === next) return;
    this.currentState = next;
    this.events.emit('state', error === undefined ? { previous, current: next } : { previous, current: next, error });
  }

  private openSocket(): void {
    const generation = ++this.generation;
    let token: string | null | Promise<string | null>;
    try {
      token = this.options.token();
    } catch (error) {
      this.afterFailure(generation, false, error);
      return;
    }
    if (token instanceof Promise) {
      token.then(
        (value) => this.openWithToken(generation, value),
        (error: unknown) => this.afterFailure(generation, false, error),
      );
    } else {
      this.openWithToken(generation, token);
    }
  }

  private openWithToken(generation: number, token: string | null): void {
    if (generation !== this.generation || this.currentState === 'offline') return;
    if (!token) {
      this.shutDown(new ChatError(401, 'unauthorized', 'no token: log in first'), true);
      return;
    }
    let socket: WebSocketLike;
    try {
      socket = new this.options.WebSocket(withToken(this.options.url, token));
    } catch (error) {
      this.afterFailure(generation, false, error);
      return;
    }
    this.socket = socket;
    this.connectTimer = setTimeout(() => {
      this.drop(socket, ChatError.client('timeout', `no handshake within ${this.options.connectTimeoutMs} ms`));
    }, this.options.connectTimeoutMs);
    socket.onopen = () => {
      if (this.socket === socket) this.onOpen();
    };
    socket.onmessage = (event: { data?: unknown }) => {
      if (this.socket === socket) this.onFrame(event.data);
    };
    socket.onclose = (event: { code?: number; reason?: string }) => {
      const detail = event?.code === undefined ? '' : ` (code ${event.code}${event.reason ? `: ${event.reason}` : ''})`;
      this.socketGone(socket, ChatError.client('connection_lost', `the connection closed${detail}`));
    };
    socket.onerror = () => {
      // The close event follows and carries what there is to know.
    };
  }

  private onOpen(): void {
    this.clearConnectTimer();
    const reconnect = this.everOpened;
    this.everOpened = true;
    this.failures = 0;
    this.setState('connected');
    this.startKeepalive();
    this.events.emit('open', { reconnect });
    // Listeners of `open` sent their requests first (re-joins, presence); now what waited, in order.
    const waiting = this.queue;
    this.queue = [];
    for (const entry of waiting) {
      if (this.currentState !== 'connected') {
        this.queue.push(entry);
      } else {
        this.transmit(entry);
      }
    }
  }

  /** Closes `socket` on our side (dead, timed out, refused) and handles it like a close. */
  private drop(socket: WebSocketLike, error: unknown): void {
    if (this.socket !== socket) return;
    this.socketGone(socket, error);
    try {
      socket.close(4000, 'client gave up on this connection');
    } catch {
      // already closed
    }
  }

  private socketGone(socket: WebSocketLike, error: unknown): void {
    if (this.socket !== socket) return;
    detach(socket);
    this.socket = null;
    this.clearConnectTimer();
    this.stopKeepalive();
    const wasOpen = this.currentState === 'connected';
    this.abandonInFlight();
    if (this.currentState === 'offline') return;
    this.afterFailure(this.generation, !wasOpen, error, wasOpen);
  }

  /** In-flight requests: idempotent ones go back to the queue, the others fail with `connection_lost`. */
  private abandonInFlight(): void {
    for (const entry of this.inFlight) {
      this.forget(entry);
      if (entry.resend) {
        this.queue.push(entry);
      } else {
        entry.reject(
          ChatError.client('connection_lost', `${entry.action}: the connection closed before the answer`, {
            operation: entry.action,
            requestId: entry.requestIds.at(-1),
          }),
        );
      }
    }
    this.inFlight.clear();
    this.queue.sort((a, b) => a.seq - b.seq);
  }

  /** After a lost socket or a failed attempt: check the token if the handshake failed, then back off. */
  private afterFailure(generation: number, handshakeFailed: boolean, error: unknown, wasOpen = false): void {
    if (generation !== this.generation || this.currentState === 'offline') return;
    this.setState('reconnecting', wasOpen ? error : undefined);
    const checkAuth = this.options.checkAuth;
    if (!handshakeFailed || !checkAuth) {
      this.scheduleRetry(error);
      return;
    }
    checkAuth().then(
      (ok) => {
        if (generation !== this.generation || this.currentState === 'offline') return;
        if (ok) {
          this.scheduleRetry(error);
        } else {
          this.shutDown(new ChatError(401, 'unauthorized', 'the server refused the token', { cause: error }), true);
        }
      },
      () => {
        if (generation === this.generation && this.currentState !== 'offline') this.scheduleRetry(error);
      },
    );
  }

  private scheduleRetry(error: unknown): void {
    if (this.retryTimer !== null) return;
    const delayMs = backoffDelay(this.failures, this.options.backoff, this.options.random);
    this.failures += 1;
    this.events.emit('retry', error === undefined ? { attempt: this.failures, delayMs } : { attempt: this.failures, delayMs, error });
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (this.currentState === 'reconnecting') this.openSocket();
    }, delayMs);
  }

  /** Goes offline for good; `report` also emits the error (a failure rather than a requested disconnect). */
  private shutDown(error: ChatError, report = false): void {
    this.generation += 1;
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.clearConnectTimer();
    this.stopKeepalive();
    const socket = this.socket;
    this.socket = null;
    if (socket) {
      detach(socket);
      try {
        socket.close(1000, 'client disconnected');
      } catch {
        // already closed
      }
    }
    const abandoned = [...this.inFlight, ...this.queue];
    this.inFlight.clear();
    this.queue = [];
    for (const entry of abandoned) {
      this.forget(entry);
      entry.reject(error);
    }
    this.setState('offline', report ? error : undefined);
    if (report) this.events.emit('error', error);
  }

  private clearConnectTimer(): void {
    if (this.connectTimer !== null) clearTimeout(this.connectTimer);
    this.connectTimer = null;
  }

  // ---------------------------------------------------------------- keep-alive

  private startKeepalive(): void {
    this.stopKeepalive();
    if (this.options.pingIntervalMs <= 0) return;
    this.pingTimer = setInterval(() => this.ping(), this.options.pingIntervalMs);
  }

  private stopKeepalive(): void {
    if (this.pingTimer !== null) clearInterval(this.pingTimer);
    this.pingTimer = null;
  }

  private ping(): void {
    const socket = this.socket;
    if (!socket) return;
    this.request('ping', {}, { timeoutMs: this.options.pingTimeoutMs }).catch((error: unknown) => {
      if (error instanceof ChatError && error.code === 'timeout') {
        this.drop(socket, ChatError.client('timeout', 'no pong: the connection is dead'));
      }
    });
  }

  // ---------------------------------------------------------------- requests and frames

  private transmit(entry: PendingRequest): void {
    const socket = this.socket;
    if (!socket) {
      this.queue.push(entry);
      return;
    }
    const requestId = this.options.nextRequestId();
    entry.requestIds.push(requestId);
    this.byRequestId.set(requestId, entry);
    this.inFlight.add(entry);
    if (entry.timer !== null) clearTimeout(entry.timer);
    entry.timer = setTimeout(() => this.onTimeout(entry), entry.timeoutMs);
    try {
      socket.send(JSON.stringify({ action: entry.action, requestId, ...entry.payload }));
    } catch (error) {
      this.drop(socket, error);
    }
  }

  private onTimeout(entry: PendingRequest): void {
    entry.timer = null;
    if (!this.inFlight.has(entry)) return;
    entry.timeouts += 1;
    if (entry.resend && entry.timeouts < entry.maxTimeouts && this.currentState === 'connected') {
      this.transmit(entry); // same payload, so the same clientMessageId; earlier requestIds still count
      return;
    }
    this.forget(entry);
    this.inFlight.delete(entry);
    entry.reject(
      ChatError.client('timeout', `${entry.action}: no answer within ${entry.timeoutMs} ms`, {
        operation: entry.action,
        requestId: entry.requestIds.at(-1),
      }),
    );
  }

  /** Removes a request's requestIds and timer (not its place in `inFlight`). */
  private forget(entry: PendingRequest): void {
    if (entry.timer !== null) clearTimeout(entry.timer);
    entry.timer = null;
    for (const id of entry.requestIds) this.byRequestId.delete(id);
    entry.requestIds = [];
  }

  private onFrame(raw: unknown): void {
    const frame = parseServerFrame(decode(raw));
    if (!frame) return;
    const entry = frame.requestId !== undefined && REPLY_EVENTS.has(frame.event) ? this.byRequestId.get(frame.requestId) : undefined;
    if (!entry) {
      if (frame.event === 'error') {
        const error = ChatError.fromFrame(frame.data, frame.requestId === undefined ? {} : { requestId: frame.requestId });
        this.events.emit('error', error);
        if (error.code === 'unauthorized') this.renewSocket(error);
      }
      this.events.emit('frame', frame);
      return;
    }
    const requestId = frame.requestId as string;
    this.forget(entry);
    this.inFlight.delete(entry);
    if (frame.event === 'error') {
      const error = ChatError.fromFrame(frame.data, { requestId, operation: entry.action });
      if (error.code === 'unauthorized') {
        // The server no longer knows this connection (expired or cleaned up): reconnect, and send again what
        // may be sent again.
        if (entry.resend) this.queue.push(entry);
        else entry.reject(error);
        this.renewSocket(error);
      } else {
        entry.reject(error);
      }
      return;
    }
    this.events.emit('ack', { action: entry.action, requestId, data: frame.data });
    entry.resolve(frame.data ?? {});
  }

  /** Replaces the current socket with a new one (after the usual backoff). */
  private renewSocket(error: unknown): void {
    if (this.socket) this.drop(this.socket, error);
  }
}

/** `url` with `token` as its `token` query parameter. */
export function withToken(url: string, token: string): string {
  const parsed = new URL(url);
  parsed.searchParams.set('token', token);
  return parsed.toString();
}

function detach(socket: WebSocketLike): void {
  socket.onopen = null;
  socket.onmessage = null;
  socket.onclose = null;
  socket.onerror = null;
}

function decode(data: unknown): string {
  if (typeof data === 'string') return data;
  if (data instanceof ArrayBuffer || ArrayBuffer.isView(data)) return new TextDecoder().decode(data);
  return String(data);
}
