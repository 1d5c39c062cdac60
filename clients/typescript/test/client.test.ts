/**
 * What happens around reconnects: catch-up with `afterSeq` (in order, without duplicates), the `gap` signal,
 * the offline queue and idempotent retries of sends, presence snapshots, and re-joins.
 */

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { ChatError, type Message, type Page } from '../src/index.js';
import { ALICE, BOB, CONVERSATION, type RecordedCall, message, settle } from './fakes.js';
import { connected, defaultRoute, harness, reconnect } from './harness.js';

const advance = (ms: number) => vi.advanceTimersByTimeAsync(ms);

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (value: T) => void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** A REST API whose history answers are supplied by the test, one per call, in order. */
function scriptedHistory() {
  const answers: Array<Deferred<{ status: number; body: unknown }>> = [];
  const historyCalls: RecordedCall[] = [];
  const route = (call: RecordedCall) => {
    if (!call.path.endsWith('/messages')) return defaultRoute(call);
    historyCalls.push(call);
    const answer = deferred<{ status: number; body: unknown }>();
    answers.push(answer);
    return answer.promise;
  };
  const page = (items: Message[], nextCursor: string | null = null): { status: number; body: Page<Message> } => ({
    status: 200,
    body: { items, nextCursor },
  });
  /** Answers the n-th history call (0-based). */
  const answer = async (n: number, value: { status: number; body: unknown }) => {
    const pending = answers[n];
    if (!pending) throw new Error(`history call #${n} was not made (made: ${answers.length})`);
    pending.resolve(value);
    await settle(30);
  };
  return { route, historyCalls, page, answer };
}

const seqs = (messages: Array<{ message: Message }>) => messages.map((delivery) => delivery.message.seq);

describe('catch-up after a reconnect', () => {
  it('fetches afterSeq (all pages) and delivers missed messages in order, each once', async () => {
    const history = scriptedHistory();
    const h = harness({}, history.route);
    h.client.trackConversation(CONVERSATION, 5);
    const first = await connected(h);
    await history.answer(0, history.page([])); // the catch-up of the first connection: nothing new
    expect(h.values('synced')).toEqual([{ reconnect: false }]);

    const second = await reconnect(h, first, advance);
    second.presence([]);
    // A message sent while we were away arrives live before the history answers: it must wait its turn.
    second.event('receive_message', { message: message(9), conversationId: CONVERSATION });
    expect(h.values('message')).toEqual([]);

    await history.answer(1, history.page([message(6), message(7)], 'cursor-1'));
    expect(seqs(h.values('message'))).toEqual([6, 7]);
    await history.answer(2, history.page([message(8), message(9)]));
    expect(seqs(h.values('message'))).toEqual([6, 7, 8, 9]);
    expect(h.values('message').map((delivery) => delivery.source)).toEqual(['catch_up', 'catch_up', 'catch_up', 'live']);

    // Live delivery resumes; repeats are dropped.
    second.event('receive_message', { message: message(9), conversationId: CONVERSATION });
    second.event('receive_message', { message: message(10), conversationId: CONVERSATION });
    expect(seqs(h.values('message'))).toEqual([6, 7, 8, 9, 10]);
    expect(h.client.lastSeq(CONVERSATION)).toBe(10);
    expect(h.values('synced')).toEqual([{ reconnect: false }, { reconnect: true }]);
    expect(h.values('gap')).toEqual([]);

    const queries = history.historyCalls.map((call) => Object.fromEntries(call.url.searchParams));
    expect(queries).toEqual([
      { afterSeq: '5', limit: '100' },
      { afterSeq: '5', limit: '100' },
      { cursor: 'cursor-1', limit: '100' },
    ]);
    expect(history.historyCalls[1]?.path).toBe(`/_aws/execute-api/abc/conversations/${CONVERSATION}/messages`);
    expect(history.historyCalls[1]?.headers.authorization).toBe('Bearer tok');
  });

  it('follows the conversations it loaded over REST from their lastSeq', async () => {
    const conversation = {
      _id: CONVERSATION,
      type: 'private',
      name: null,
      avatar: null,
      members: [],
      lastMessage: null,
      lastSeq: 3,
      createdBy: ALICE._id,
      createdAt: '2026-11-21T10:00:00.000Z',
      updatedAt: '2026-11-21T10:00:00.000Z',
      unreadCount: 0,
    };
    const h = harness({}, (call) =>
      call.path.endsWith('/conversations') ? { status: 200, body: { items: [conversation], nextCursor: null } } : defaultRoute(call),
    );
    await h.client.listConversations();
    expect(h.client.lastSeq(CONVERSATION)).toBe(3);
    await connected(h);
    const catchUp = h.calls.find((call) => call.path.endsWith('/messages'));
    expect(catchUp?.url.searchParams.get('afterSeq')).toBe('3');
  });

  it('signals a gap when the history cannot be fetched, then resumes live delivery', async () => {
    const history = scriptedHistory();
    const h = harness({ catchUp: { attempts: 2 } }, history.route);
    h.client.trackConversation(CONVERSATION, 5);
    await connected(h);
    await history.answer(0, { status: 500, body: { error: { code: 'internal', message: 'internal error' } } });
    await advance(500); // one retry after 500 ms
    expect(history.historyCalls).toHaveLength(2);
    await history.answer(1, { status: 503, body: { message: 'Service Unavailable' } });

    expect(h.values('gap')).toEqual([
      { conversationId: CONVERSATION, afterSeq: 5, beforeSeq: null, reason: expect.any(ChatError) },
    ]);
    expect(h.values('gap')[0]?.reason).toMatchObject({ status: 503 });
    expect(h.values('synced')).toHaveLength(1);

    // The next live message is ahead of what we have: after a short wait the hole is fetched again…
    const socket = h.latest();
    socket.event('receive_message', { message: message(8), conversationId: CONVERSATION });
    expect(h.values('message')).toEqual([]);
    await advance(1_500);
    expect(history.historyCalls).toHaveLength(3);
    await history.answer(2, { status: 500, body: { error: { code: 'internal', message: 'internal error' } } });
    await advance(500);
    await history.answer(3, { status: 500, body: { error: { code: 'internal', message: 'internal error' } } });
    // …and when that fails too, the hole is reported precisely and delivery moves past it.
    expect(h.values('gap')[1]).toMatchObject({ conversationId: CONVERSATION, afterSeq: 5, beforeSeq: 8 });
    expect(seqs(h.values('message'))).toEqual([8]);
    socket.event('receive_message', { message: message(9), conversationId: CONVERSATION });
    expect(seqs(h.values('message'))).toEqual([8, 9]);
  });

  it('does not retry a 4xx; a conversation we are no longer in stops being followed', async () => {
    const history = scriptedHistory();
    const h = harness({}, history.route);
    h.client.trackConversation(CONVERSATION, 5);
    await connected(h);
    await history.answer(0, { status: 404, body: { error: { code: 'not_found', message: 'conversation not found' } } });
    expect(history.historyCalls).toHaveLength(1);
    expect(h.values('gap')[0]?.reason).toMatchObject({ code: 'not_found' });
    expect(h.client.lastSeq(CONVERSATION)).toBeNull();
  });
});

describe('live ordering', () => {
  it('holds a message that overtook another and delivers both in order', async () => {
    const history = scriptedHistory();
    const h = harness({}, history.route);
    h.client.trackConversation(CONVERSATION, 5);
    const socket = await connected(h);
    await history.answer(0, history.page([]));

    socket.event('receive_message', { message: message(6), conversationId: CONVERSATION });
    socket.event('receive_message', { message: message(8), conversationId: CONVERSATION });
    expect(seqs(h.values('message'))).toEqual([6]);
    await advance(1_000);
    socket.event('receive_message', { message: message(7), conversationId: CONVERSATION });
    expect(seqs(h.values('message'))).toEqual([6, 7, 8]);
    await advance(5_000);
    expect(history.historyCalls).toHaveLength(1); // no fetch was needed
  });

  it('fetches a hole that live frames do not fill', async () => {
    const history = scriptedHistory();
    const h = harness({}, history.route);
    h.client.trackConversation(CONVERSATION, 5);
    const socket = await connected(h);
    await history.answer(0, history.page([]));

    socket.event('receive_message', { message: message(6), conversationId: CONVERSATION });
    socket.event('receive_message', { message: message(9), conversationId: CONVERSATION });
    await advance(1_500);
    expect(history.historyCalls[1]?.url.searchParams.get('afterSeq')).toBe('6');
    await history.answer(1, history.page([message(7), message(8), message(9)]));
    expect(seqs(h.values('message'))).toEqual([6, 7, 8, 9]);
  });

  it('starts following an unknown conversation at its first live message', async () => {
    const h = harness();
    const socket = await connected(h);
    const other = 'c0000000000000000000000000000099';
    socket.event('receive_message', { message: message(12, { conversationId: other }), conversationId: other });
    socket.event('receive_message', { message: message(12, { conversationId: other }), conversationId: other });
    expect(seqs(h.values('message'))).toEqual([12]);
    expect(h.client.lastSeq(other)).toBe(12);
  });
});

describe('sending', () => {
  it('queues sends while offline and sends them, in order, after reconnecting', async () => {
    const h = harness();
    const first = await connected(h);
    first.serverClose();
    const one = h.client.sendMessage(CONVERSATION, 'one');
    const two = h.client.sendMessage(CONVERSATION, 'two');
    expect(h.client.pendingCount).toBe(2);

    await advance(375);
    const second = h.latest();
    expect(second.sent).toEqual([]);
    second.open();
    expect(second.sent.map((frame) => frame.action)).toEqual(['get_presence', 'send_message', 'send_message']);
    const [frameOne, frameTwo] = second.frames('send_message');
    expect(frameOne).toEqual({
      action: 'send_message',
      requestId: expect.any(String),
      conversationId: CONVERSATION,
      content: 'one',
      type: 'text',
      clientMessageId: 'tab1-1',
    });
    expect(frameTwo?.clientMessageId).toBe('tab1-2');

    second.ack(frameOne!, { message: message(1, { sender: ALICE, content: 'one', clientMessageId: 'tab1-1' }) });
    second.ack(frameTwo!, { message: message(2, { sender: ALICE, content: 'two', clientMessageId: 'tab1-2' }) });
    await expect(one).resolves.toMatchObject({ duplicate: false, clientMessageId: 'tab1-1', message: { seq: 1 } });
    await expect(two).resolves.toMatchObject({ duplicate: false, clientMessageId: 'tab1-2', message: { seq: 2 } });
    expect(h.values('message').map((delivery) => [delivery.message.seq, delivery.source])).toEqual([
      [1, 'ack'],
      [2, 'ack'],
    ]);
  });

  it('retries a send whose ack was lost with the same clientMessageId and resolves it once', async () => {
    const history = scriptedHistory();
    const h = harness({}, history.route);
    h.client.trackConversation(CONVERSATION, 0);
    const first = await connected(h);
    await history.answer(0, history.page([]));

    const resolved = vi.fn();
    const sending = h.client.sendMessage(CONVERSATION, 'hello').then((sent) => {
      resolved(sent);
      return sent;
    });
    const original = first.last('send_message');
    expect(original.clientMessageId).toBe('tab1-1');

    // The server stored it (seq 1) but the socket dies before the ack arrives.
    const second = await reconnect(h, first, advance);
    const retry = second.last('send_message');
    expect(retry).toEqual({ ...original, requestId: expect.any(String) });
    expect(retry.requestId).not.toBe(original.requestId);

    // The catch-up finds the message in the history, and the retry is acked as a duplicate.
    const stored = message(1, { sender: ALICE, content: 'hello', clientMessageId: 'tab1-1' });
    second.presence([]);
    await history.answer(1, history.page([stored]));
    second.ack(retry, { message: stored, duplicate: true });
    await settle();

    await expect(sending).resolves.toEqual({ message: stored, duplicate: true, clientMessageId: 'tab1-1' });
    expect(resolved).toHaveBeenCalledTimes(1);
    expect(h.values('message').map((delivery) => [delivery.message._id, delivery.source])).toEqual([
      [stored._id, 'catch_up'],
    ]);
  });

  it('resends after a reply timeout and settles on the first answer to any attempt', async () => {
    const h = harness({ requestTimeoutMs: 1_000 });
    const socket = await connected(h);
    const sending = h.client.sendMessage(CONVERSATION, 'slow');
    await advance(1_000);
    const [first, second] = socket.frames('send_message');
    expect(second).toEqual({ ...first, requestId: expect.any(String) });
    expect(second?.requestId).not.toBe(first?.requestId);

    const stored = message(1, { sender: ALICE, content: 'slow', clientMessageId: first?.clientMessageId as string });
    socket.ack(first!, { message: stored }); // the first attempt's ack was only slow
    socket.ack(second!, { message: stored, duplicate: true });
    await expect(sending).resolves.toMatchObject({ duplicate: false, message: { seq: 1 } });
    expect(seqs(h.values('message'))).toEqual([1]);
  });

  it('gives up after the configured number of timeouts', async () => {
    const h = harness({ requestTimeoutMs: 1_000, sendTimeouts: 2 });
    const socket = await connected(h);
    const sending = h.client.sendMessage(CONVERSATION, 'lost');
    const outcome = expect(sending).rejects.toMatchObject({ code: 'timeout' });
    await advance(2_000);
    await outcome;
    expect(socket.frames('send_message')).toHaveLength(2);
  });

  it('rejects a send the server refuses, without retrying', async () => {
    const h = harness();
    const socket = await connected(h);
    const sending = h.client.sendMessage(CONVERSATION, ' ');
    socket.error(socket.last('send_message'), 'validation_failed', 'content must not be empty');
    await expect(sending).rejects.toMatchObject({ code: 'validation_failed', status: 422 });
    expect(h.client.pendingCount).toBe(0);
  });

  it('sends files and caller-chosen clientMessageIds', async () => {
    const h = harness();
    const socket = await connected(h);
    void h.client.sendMessage(CONVERSATION, '', {
      type: 'image',
      fileUrl: 'https://cdn.example.com/a.png',
      fileName: 'a.png',
      clientMessageId: 'mine:1',
    });
    expect(socket.last('send_message')).toMatchObject({ type: 'image', fileUrl: 'https://cdn.example.com/a.png', fileName: 'a.png', clientMessageId: 'mine:1' });
    await expect(h.client.sendMessage(CONVERSATION, 'x', { clientMessageId: 'has space' })).rejects.toMatchObject({
      code: 'validation_failed',
    });
  });
});

describe('presence', () => {
  it('asks get_presence after connecting and treats events as states, not toggles', async () => {
    const h = harness();
    h.client.connect().catch(() => undefined);
    const socket = h.latest();
    socket.open();
    socket.presence([
      { userId: BOB._id, online: true, status: 'away', lastSeen: null },
      { userId: 'ca401000000000000000000000000003', online: false, status: 'offline', lastSeen: '2026-11-21T09:00:00.000Z' },
    ]);
    await settle();
    expect(h.client.presence.get(BOB._id)).toMatchObject({ online: true, status: 'away' });
    expect(h.values('presence').map((change) => [change.userId, change.current.online, change.source])).toEqual([
      [BOB._id, true, 'snapshot'],
      ['ca401000000000000000000000000003', false, 'snapshot'],
    ]);

    // Crossed announcements: offline, online, online. The last one wins; repeating it changes nothing.
    socket.event('user_offline', { userId: BOB._id, username: 'bob', lastSeen: '2026-11-21T10:40:00.000Z' });
    socket.event('user_online', { userId: BOB._id, username: 'bob' });
    socket.event('user_online', { userId: BOB._id, username: 'bob' });
    expect(h.client.presence.isOnline(BOB._id)).toBe(true);
    expect(h.values('presence').slice(2).map((change) => [change.current.online, change.changed])).toEqual([
      [false, true],
      [true, true],
      [true, false],
    ]);
    expect(h.client.presence.get(BOB._id)).toMatchObject({ status: 'online', lastSeen: '2026-11-21T10:40:00.000Z' });

    socket.event('status_changed', { userId: BOB._id, username: 'bob', status: 'busy' });
    expect(h.client.presence.get(BOB._id)).toMatchObject({ online: true, status: 'busy', username: 'bob' });
  });

  it('re-applies events that arrived while the snapshot was in flight', async () => {
    const h = harness();
    const first = await connected(h);
    const second = await reconnect(h, first, advance);
    // Bob came online after the server read the snapshot, but his event arrives before the snapshot.
    second.event('user_online', { userId: BOB._id, username: 'bob' });
    second.presence([{ userId: BOB._id, online: false, status: 'offline', lastSeen: '2026-11-21T09:00:00.000Z' }]);
    await settle();
    expect(h.client.presence.get(BOB._id)).toMatchObject({ online: true, status: 'online' });
  });
});

describe('app state', () => {
  it('is said again on a new socket while the app is in the background, and not once it is in front', async () => {
    const h = harness();
    const first = await connected(h);
    const hiding = h.client.setAppState('background');
    first.ack(first.last('set_app_state'), { state: 'background' });
    await expect(hiding).resolves.toBe('background');

    const second = await reconnect(h, first, advance);
    expect(second.frames('set_app_state')).toEqual([
      { action: 'set_app_state', requestId: expect.any(String), state: 'background' },
    ]);
    second.ack(second.last('set_app_state'), { state: 'background' });
    const showing = h.client.setAppState('foreground');
    second.ack(second.last('set_app_state'), { state: 'foreground' });
    await showing;
    const third = await reconnect(h, second, advance);
    expect(third.frames('set_app_state')).toEqual([]);
  });
});

describe('joined conversations', () => {
  it('are joined again after a reconnect; rejected ones are forgotten', async () => {
    const h = harness();
    const first = await connected(h);
    const joining = h.client.joinConversations([CONVERSATION, 'gone']);
    first.ack(first.last('join_conversations'), { joined: [CONVERSATION], rejected: ['gone'] });
    await expect(joining).resolves.toEqual({ joined: [CONVERSATION], rejected: ['gone'] });

    const second = await reconnect(h, first, advance);
    expect(second.last('join_conversations')).toEqual({
      action: 'join_conversations',
      requestId: expect.any(String),
      conversationIds: [CONVERSATION],
    });
    const leaving = h.client.leaveConversation(CONVERSATION);
    second.ack(second.last('leave_conversation'), { conversationId: CONVERSATION });
    await leaving;
    const third = await reconnect(h, second, advance);
    expect(third.frames('join_conversations')).toEqual([]);
  });

  it('joined while offline: sent once on connect', async () => {
    const h = harness();
    const joining = h.client.joinConversations([CONVERSATION]);
    h.client.connect().catch(() => undefined);
    const socket = h.latest();
    socket.open();
    expect(socket.frames('join_conversations')).toHaveLength(1);
    socket.ack(socket.last('join_conversations'), { joined: [CONVERSATION], rejected: [] });
    await expect(joining).resolves.toEqual({ joined: [CONVERSATION], rejected: [] });
  });

  it('split more than 100 ids into several frames', async () => {
    const h = harness();
    const socket = await connected(h);
    const ids = Array.from({ length: 150 }, (_, i) => `c${i}`);
    const joining = h.client.joinConversations(ids);
    const firstFrame = socket.last('join_conversations');
    expect(firstFrame.conversationIds).toHaveLength(100);
    socket.ack(firstFrame, { joined: firstFrame.conversationIds, rejected: [] });
    await settle();
    const secondFrame = socket.last('join_conversations');
    expect(secondFrame.conversationIds).toHaveLength(50);
    socket.ack(secondFrame, { joined: secondFrame.conversationIds, rejected: [] });
    await expect(joining).resolves.toMatchObject({ rejected: [] });
    expect(h.client.joinedConversations()).toHaveLength(150);
  });
});

describe('server events', () => {
  it('are emitted under their wire names', async () => {
    const h = harness();
    const socket = await connected(h);
    const typing = vi.fn();
    h.client.on('typing_status', typing);
    const data = { userId: BOB._id, username: 'bob', conversationId: CONVERSATION, isTyping: true };
    socket.event('typing_status', data);
    expect(typing).toHaveBeenCalledWith(data);
  });

  it('stop following a conversation the user left', async () => {
    const h = harness();
    await h.client.me();
    const socket = await connected(h);
    h.client.trackConversation(CONVERSATION, 4);
    socket.event('member_left', { conversationId: CONVERSATION, userId: ALICE._id, removedBy: ALICE._id });
    expect(h.client.lastSeq(CONVERSATION)).toBeNull();
  });

  it('follow conversations created for the user', async () => {
    const h = harness();
    const socket = await connected(h);
    socket.event('conversation_created', {
      conversation: {
        _id: 'c1',
        type: 'group',
        name: 'g',
        avatar: null,
        members: [],
        lastMessage: null,
        lastSeq: 0,
        createdBy: BOB._id,
        createdAt: '2026-11-21T10:00:00.000Z',
        updatedAt: '2026-11-21T10:00:00.000Z',
      },
    });
    expect(h.client.lastSeq('c1')).toBe(0);
  });
});
