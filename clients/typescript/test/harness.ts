/**
 * A `ChatClient` wired to the fakes, with every event it emits recorded.
 *
 * Why this module exists: most tests need the same setup (a client, a scripted socket, a fake REST API) and
 * the same first steps (connect, answer `get_presence`); keeping them here keeps each test about one behaviour.
 */

import { ChatClient, type ChatClientEvents, type ChatClientOptions } from '../src/index.js';
import { fakeFetch, fakeWebSocket, type FakeSocket, type RecordedCall, type Route, settle } from './fakes.js';

export const HTTP = 'http://api.test/_aws/execute-api/abc';
export const WS = 'ws://ws.test/_aws/execute-api/abc/prod';

export interface Harness {
  client: ChatClient;
  sockets: FakeSocket[];
  latest: () => FakeSocket;
  calls: RecordedCall[];
  seen: Array<{ [K in keyof ChatClientEvents]: { name: K; value: ChatClientEvents[K] } }[keyof ChatClientEvents]>;
  /** The values of every recorded event called `name`. */
  values: <K extends keyof ChatClientEvents>(name: K) => ChatClientEvents[K][];
}

const RECORDED: Array<keyof ChatClientEvents> = ['state', 'retry', 'message', 'gap', 'presence', 'synced', 'error'];

/** By default the REST API knows the token (`/users/me` answers) and has no history. */
export const defaultRoute: Route = (call) => {
  if (call.path.endsWith('/users/me')) {
    return { status: 200, body: { _id: 'a11ce000000000000000000000000001', username: 'alice', avatar: null, createdAt: '2026-11-20T08:00:00.000Z' } };
  }
  if (call.path.endsWith('/messages')) return { status: 200, body: { items: [], nextCursor: null } };
  return { status: 404, body: { error: { code: 'not_found', message: 'no such route' } } };
};

export function harness(options: Partial<ChatClientOptions> = {}, route: Route = defaultRoute): Harness {
  const ws = fakeWebSocket();
  const net = fakeFetch(route);
  const client = new ChatClient({
    http: HTTP,
    websocket: WS,
    token: 'tok',
    WebSocket: ws.WebSocket,
    fetch: net.fetch,
    random: () => 0.5,
    instanceId: 'tab1',
    ...options,
  });
  const seen: Harness['seen'] = [];
  for (const name of RECORDED) {
    client.on(name, (value: unknown) => {
      seen.push({ name, value } as Harness['seen'][number]);
    });
  }
  return {
    client,
    sockets: ws.sockets,
    latest: ws.latest,
    calls: net.calls,
    seen,
    values: <K extends keyof ChatClientEvents>(name: K) =>
      seen.filter((event) => event.name === name).map((event) => event.value as ChatClientEvents[K]),
  };
}

/** Connects and answers the first `get_presence`; returns the open socket. */
export async function connected(h: Harness): Promise<FakeSocket> {
  const done = h.client.connect();
  const socket = h.latest();
  socket.open();
  await done;
  socket.presence([]);
  await settle();
  return socket;
}

/** Drops `socket` from the server side and opens the next one after the backoff (375 ms with random 0.5). */
export async function reconnect(h: Harness, socket: FakeSocket, advance: (ms: number) => Promise<unknown>): Promise<FakeSocket> {
  const before = h.sockets.length;
  socket.serverClose();
  await advance(375);
  if (h.sockets.length !== before + 1) throw new Error(`expected a new socket, have ${h.sockets.length - before}`);
  const next = h.latest();
  next.open();
  await settle();
  return next;
}
