/**
 * The realtime connection: requests matched to replies, timeouts, error frames, reconnects with backoff,
 * connection states, the token check after a refused handshake, and the keep-alive ping.
 */

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { ChatError, type ConnectionState, frameBytes, MAX_CONTENT_CHARS, MAX_FRAME_BYTES } from '../src/index.js';
import { settle } from './fakes.js';
import { connected, defaultRoute, harness, reconnect } from './harness.js';

const advance = (ms: number) => vi.advanceTimersByTimeAsync(ms);

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

describe('requests', () => {
  it('match replies by requestId, whatever their order', async () => {
    const h = harness();
    const socket = await connected(h);
    const status = h.client.request('get_status', {});
    const set = h.client.request('set_status', { status: 'away' });
    const [getFrame, setFrame] = [socket.last('get_status'), socket.last('set_status')];
    expect(setFrame).toEqual({ action: 'set_status', requestId: expect.any(String), status: 'away' });
    expect(getFrame.requestId).not.toEqual(setFrame.requestId);

    socket.ack(setFrame, { status: 'away' });
    socket.receive({ event: 'ack', requestId: 'unknown', data: { success: true } }); // ignored
    socket.ack(getFrame, { status: 'online', lastSeen: null });

    await expect(set).resolves.toEqual({ success: true, status: 'away' });
    await expect(status).resolves.toEqual({ success: true, status: 'online', lastSeen: null });
    expect(h.client.pendingCount).toBe(0);
  });

  it('reject with a timeout when no reply comes', async () => {
    const h = harness({ requestTimeoutMs: 2_000 });
    const socket = await connected(h);
    const pending = h.client.request('get_friends', {});
    const outcome = expect(pending).rejects.toMatchObject({ name: 'ChatError', code: 'timeout', status: 0 });
    await advance(1_999);
    expect(h.client.pendingCount).toBe(1);
    await advance(1);
    await outcome;
    // A late reply changes nothing.
    socket.ack(socket.last('get_friends'), { friends: [] });
    expect(h.client.pendingCount).toBe(0);
  });

  it('turn error frames into ChatErrors; errors without a request are events', async () => {
    const h = harness();
    const socket = await connected(h);
    const edit = h.client.editMessage('c-7', 'fixed');
    const frame = socket.last('edit_message');
    socket.error(frame, 'forbidden', 'only the sender can edit a message');
    const error = await edit.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ChatError);
    expect(error).toMatchObject({
      status: 403,
      code: 'forbidden',
      message: 'only the sender can edit a message',
      requestId: frame.requestId,
      operation: 'edit_message',
      fromServer: true,
    });

    socket.receive({ event: 'error', data: { success: false, code: 'unknown_action', message: 'unknown action `fly`' } });
    expect(h.values('error')).toEqual([expect.objectContaining({ code: 'unknown_action', status: 400 })]);
    expect(h.client.state).toBe('connected');
  });

  it('refuse a frame over 32 KB before sending it, as API Gateway would close the connection', async () => {
    const h = harness();
    const socket = await connected(h);
    // The longest content the server accepts fits: 4,000 characters of 4-byte UTF-8 are 16,000 bytes.
    void h.client.request('send_message', { conversationId: 'c', content: '😀'.repeat(MAX_CONTENT_CHARS) });
    expect(frameBytes(socket.last('send_message'))).toBeGreaterThan(16_000);

    const before = socket.sent.length;
    const huge = h.client.request('set_status', { status: 'x'.repeat(MAX_FRAME_BYTES) });
    await expect(huge).rejects.toMatchObject({ code: 'payload_too_large', status: 413, operation: 'set_status' });
    expect(socket.sent.length).toBe(before);
    expect(h.client.state).toBe('connected');
  });

  it('fail fast without a connection, except queued actions', async () => {
    const h = harness();
    await expect(h.client.getFriends()).rejects.toMatchObject({ code: 'not_connected' });
    await expect(h.client.typing('c', true)).rejects.toMatchObject({ code: 'not_connected' });
    void h.client.sendMessage('c', 'queued');
    expect(h.client.pendingCount).toBe(1);
  });

  it('reject requests in flight with connection_lost when the socket drops', async () => {
    const h = harness();
    const socket = await connected(h);
    const friends = h.client.getFriends();
    socket.serverClose();
    await expect(friends).rejects.toMatchObject({ code: 'connection_lost' });
  });

  it('reconnect on `unauthorized` (the server forgot the connection)', async () => {
    const h = harness();
    const socket = await connected(h);
    const status = h.client.getStatus();
    socket.error(socket.last('get_status'), 'unauthorized', 'connection is not registered, reconnect');
    await expect(status).rejects.toMatchObject({ code: 'unauthorized', status: 401 });
    expect(socket.closedByClient).not.toBeNull();
    expect(h.client.state).toBe('reconnecting');
    await advance(375);
    expect(h.sockets).toHaveLength(2);
  });
});

describe('reconnects', () => {
  it('connect with the token in the query and go through the states', async () => {
    const h = harness();
    const socket = await connected(h);
    expect(new URL(socket.url).searchParams.get('token')).toBe('tok');
    expect(socket.url.startsWith('ws://ws.test/_aws/execute-api/abc/prod?')).toBe(true);

    socket.serverClose(1001);
    expect(h.client.state).toBe('reconnecting');
    const states = h.values('state').map((change) => change.current);
    expect(states).toEqual<ConnectionState[]>(['connecting', 'connected', 'reconnecting']);
    expect(h.values('state')[2]?.error).toMatchObject({ code: 'connection_lost' });
  });

  it('back off exponentially with jitter, and start over after a success', async () => {
    // random() = 0.5 with 50 % jitter: each delay is 75 % of its cap (500, 1000, 2000, … ms).
    const h = harness();
    const first = await connected(h);
    first.serverClose();

    await advance(374);
    expect(h.sockets).toHaveLength(1);
    await advance(1);
    expect(h.sockets).toHaveLength(2);
    h.latest().refuse(); // the handshake fails; the token check (GET /users/me) says the token is fine
    await settle();
    expect(h.calls.map((call) => call.path)).toEqual(['/_aws/execute-api/abc/users/me']);

    await advance(749);
    expect(h.sockets).toHaveLength(2);
    await advance(1);
    expect(h.sockets).toHaveLength(3);
    h.latest().refuse();
    await settle();
    await advance(1_500);
    expect(h.sockets).toHaveLength(4);
    expect(h.values('retry').map((retry) => [retry.attempt, retry.delayMs])).toEqual([
      [1, 375],
      [2, 750],
      [3, 1_500],
    ]);
    expect(h.client.state).toBe('reconnecting');

    h.latest().open();
    expect(h.client.state).toBe('connected');
    h.latest().serverClose();
    await advance(375);
    expect(h.sockets).toHaveLength(5);
    expect(h.values('state').map((change) => change.current)).toEqual([
      'connecting',
      'connected',
      'reconnecting',
      'connected',
      'reconnecting',
    ]);
  });

  it('cap the delay', async () => {
    const h = harness({ reconnect: { initialDelayMs: 1_000, maxDelayMs: 4_000, jitter: 0 } });
    h.client.connect().catch(() => undefined);
    for (let i = 0; i < 5; i++) {
      h.latest().refuse();
      await settle();
      await advance(4_000);
    }
    expect(h.values('retry').map((retry) => retry.delayMs)).toEqual([1_000, 2_000, 4_000, 4_000, 4_000]);
  });

  it('give up when the token is refused', async () => {
    const h = harness({}, (call) =>
      call.path.endsWith('/users/me')
        ? { status: 401, body: { error: { code: 'unauthorized', message: 'invalid or expired token' } } }
        : defaultRoute(call),
    );
    const connecting = h.client.connect();
    h.latest().refuse();
    await expect(connecting).rejects.toMatchObject({ code: 'unauthorized', status: 401 });
    expect(h.client.state).toBe('offline');
    expect(h.values('error')).toEqual([expect.objectContaining({ code: 'unauthorized' })]);
    await advance(60_000);
    expect(h.sockets).toHaveLength(1);
  });

  it('try again now on reconnectNow(), and stop for good on disconnect()', async () => {
    const h = harness();
    const socket = await connected(h);
    socket.serverClose();
    h.client.reconnectNow();
    expect(h.sockets).toHaveLength(2);
    h.latest().open();
    await settle();
    const queued = h.client.getFriends();
    h.client.disconnect();
    await expect(queued).rejects.toMatchObject({ code: 'closed' });
    expect(h.client.state).toBe('offline');
    expect(h.latest().closedByClient).toMatchObject({ code: 1000 });
    await advance(60_000);
    expect(h.sockets).toHaveLength(2);
  });

  it('give up on a handshake that hangs', async () => {
    const h = harness({ connectTimeoutMs: 5_000 });
    h.client.connect().catch(() => undefined);
    await advance(5_000);
    expect(h.sockets[0]?.closedByClient).not.toBeNull();
    expect(h.client.state).toBe('reconnecting');
  });

  it('take a token from a function before every attempt', async () => {
    let n = 0;
    const h = harness({ token: () => `token-${++n}` });
    const socket = await connected(h);
    const next = await reconnect(h, socket, advance);
    expect([socket.url, next.url].map((url) => new URL(url).searchParams.get('token'))).toEqual(['token-1', 'token-2']);
  });
});

describe('keep-alive', () => {
  it('pings every 5 minutes and reconnects when no pong comes', async () => {
    const h = harness();
    const socket = await connected(h);
    await advance(5 * 60_000 - 1);
    expect(socket.frames('ping')).toHaveLength(0);
    await advance(1);
    expect(socket.frames('ping')).toEqual([{ action: 'ping', requestId: expect.any(String) }]);
    socket.pong(socket.last('ping'));

    await advance(5 * 60_000);
    expect(socket.frames('ping')).toHaveLength(2);
    await advance(9_999);
    expect(h.client.state).toBe('connected');
    await advance(1); // 10 s without pong: the socket is dead
    expect(socket.closedByClient).not.toBeNull();
    expect(h.client.state).toBe('reconnecting');
  });

  it('uses the configured interval, or none', async () => {
    const h = harness({ pingIntervalMs: 60_000 });
    const socket = await connected(h);
    for (let i = 0; i < 3; i++) {
      await advance(60_000);
      socket.pong(socket.last('ping'));
    }
    expect(socket.frames('ping')).toHaveLength(3);
    expect(h.client.state).toBe('connected');

    const quiet = harness({ pingIntervalMs: 0 });
    const other = await connected(quiet);
    await advance(3_600_000);
    expect(other.frames('ping')).toHaveLength(0);
  });

  it('resolves ping() on pong', async () => {
    const h = harness();
    const socket = await connected(h);
    const ping = h.client.ping();
    socket.pong(socket.last('ping'));
    await expect(ping).resolves.toEqual({});
  });
});
