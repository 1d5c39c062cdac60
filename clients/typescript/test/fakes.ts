/**
 * Test doubles: a scripted WebSocket, a routed fake `fetch`, and builders for the backend's objects.
 *
 * Why this module exists: the SDK's hard parts (reconnects, catch-up, retries) are about timing and ordering,
 * which a real server cannot reproduce on demand. The fakes let each test play the server frame by frame.
 */

import type { FetchInitLike, FetchLike, FetchResponseLike } from '../src/rest.js';
import type { Message, PeerPresence } from '../src/protocol.js';
import type { WebSocketLike } from '../src/connection.js';

export const CONVERSATION = 'c0000000000000000000000000000042';
export const ALICE = { _id: 'a11ce000000000000000000000000001', username: 'alice', avatar: null };
export const BOB = { _id: 'b0b00000000000000000000000000002', username: 'bob', avatar: null };

/** A message as the backend serialises it. */
export function message(seq: number, overrides: Partial<Message> = {}): Message {
  const conversationId = overrides.conversationId ?? CONVERSATION;
  return {
    _id: `${conversationId}-${seq}`,
    conversationId,
    seq,
    sender: BOB,
    content: `message ${seq}`,
    type: 'text',
    status: 'sent',
    createdAt: `2026-11-21T10:30:${String(seq % 60).padStart(2, '0')}.000Z`,
    edited: false,
    editedAt: null,
    deleted: false,
    deletedAt: null,
    reactions: {},
    mentions: [],
    ...overrides,
  };
}

export interface SentFrame {
  action: string;
  requestId?: string;
  [field: string]: unknown;
}

/** One fake socket; the test plays the server through `open`, `receive`, `ack`, `serverClose`. */
export class FakeSocket implements WebSocketLike {
  readyState = 0;
  readonly sent: SentFrame[] = [];
  closedByClient: { code?: number; reason?: string } | null = null;
  onopen: ((event: unknown) => void) | null = null;
  onclose: ((event: unknown) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;
  onmessage: ((event: unknown) => void) | null = null;

  constructor(readonly url: string) {}

  send(data: string): void {
    if (this.readyState !== 1) throw new Error('socket is not open');
    this.sent.push(JSON.parse(data) as SentFrame);
  }

  close(code?: number, reason?: string): void {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.closedByClient = { code, reason };
    this.onclose?.({ code, reason });
  }

  // ---- the server's side

  open(): void {
    this.readyState = 1;
    this.onopen?.({});
  }

  /** The handshake is refused (HTTP 401) or the network is down: the socket closes without opening. */
  refuse(): void {
    this.readyState = 3;
    this.onerror?.({});
    this.onclose?.({ code: 1006, reason: '' });
  }

  serverClose(code = 1001): void {
    this.readyState = 3;
    this.onclose?.({ code, reason: 'going away' });
  }

  receive(frame: object): void {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }

  event(event: string, data: object): void {
    this.receive({ event, data });
  }

  /** The frames sent with `action` (all of them when omitted). */
  frames(action?: string): SentFrame[] {
    return action === undefined ? this.sent : this.sent.filter((frame) => frame.action === action);
  }

  last(action: string): SentFrame {
    const frames = this.frames(action);
    const frame = frames[frames.length - 1];
    if (!frame) throw new Error(`no ${action} frame was sent; sent: ${JSON.stringify(this.sent)}`);
    return frame;
  }

  ack(request: SentFrame, data: object = {}): void {
    this.receive({ event: 'ack', requestId: request.requestId, data: { success: true, ...data } });
  }

  pong(request: SentFrame): void {
    this.receive({ event: 'pong', requestId: request.requestId, data: {} });
  }

  error(request: SentFrame, code: string, message: string): void {
    this.receive({ event: 'error', requestId: request.requestId, data: { success: false, code, message } });
  }

  /** Answers the `get_presence` of a fresh connection. */
  presence(users: PeerPresence[] = []): void {
    this.ack(this.last('get_presence'), { users });
  }
}

/** A WebSocket constructor whose instances are recorded in `sockets`. */
export function fakeWebSocket(): { WebSocket: new (url: string) => FakeSocket; sockets: FakeSocket[]; latest: () => FakeSocket } {
  const sockets: FakeSocket[] = [];
  class RecordedSocket extends FakeSocket {
    constructor(url: string) {
      super(url);
      sockets.push(this);
    }
  }
  return {
    WebSocket: RecordedSocket,
    sockets,
    latest: () => {
      const socket = sockets[sockets.length - 1];
      if (!socket) throw new Error('no socket was created');
      return socket;
    },
  };
}

export interface RecordedCall {
  method: string;
  url: URL;
  path: string;
  headers: Record<string, string>;
  body: unknown;
}

export type Route = (call: RecordedCall) => { status: number; body?: unknown; text?: string } | Promise<{ status: number; body?: unknown; text?: string }>;

/** A fake `fetch` that answers with `route` and records every call. */
export function fakeFetch(route: Route): { fetch: FetchLike; calls: RecordedCall[] } {
  const calls: RecordedCall[] = [];
  const fetch: FetchLike = async (input: string, init: FetchInitLike): Promise<FetchResponseLike> => {
    const url = new URL(input);
    const call: RecordedCall = {
      method: init.method,
      url,
      path: url.pathname,
      headers: init.headers,
      body: init.body === undefined ? undefined : JSON.parse(init.body),
    };
    calls.push(call);
    const answer = await route(call);
    const text = answer.text ?? (answer.body === undefined ? '' : JSON.stringify(answer.body));
    return { ok: answer.status >= 200 && answer.status < 300, status: answer.status, text: async () => text };
  };
  return { fetch, calls };
}

/** Lets pending promise callbacks run (several rounds, for chains of awaits). */
export async function settle(rounds = 10): Promise<void> {
  for (let i = 0; i < rounds; i++) await Promise.resolve();
}
