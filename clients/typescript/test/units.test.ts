/**
 * The building blocks on their own: backoff schedule, presence map, timeline ordering, error parsing, ids,
 * emitter.
 */

import { afterEach, describe, expect, it, vi } from 'vitest';

import {
  backoffDelay,
  ChatError,
  DEFAULT_BACKOFF,
  Emitter,
  isValidClientMessageId,
  mentionsIn,
  PresenceMap,
  randomToken,
  sequentialIds,
  Timeline,
  type GapInfo,
  type MessageDelivery,
  withToken,
} from '../src/index.js';
import { BOB, CONVERSATION, message, settle } from './fakes.js';

afterEach(() => {
  vi.useRealTimers();
});

describe('backoffDelay', () => {
  it('grows exponentially up to the cap, within the jitter band', () => {
    const low = (n: number) => backoffDelay(n, DEFAULT_BACKOFF, () => 0);
    const high = (n: number) => backoffDelay(n, DEFAULT_BACKOFF, () => 0.999999);
    expect([0, 1, 2, 3, 10].map(low)).toEqual([250, 500, 1_000, 2_000, 15_000]);
    expect([0, 1, 2, 3, 10].map(high)).toEqual([500, 1_000, 2_000, 4_000, 30_000]);
    expect(backoffDelay(3, { ...DEFAULT_BACKOFF, jitter: 0 }, () => 0.3)).toBe(4_000);
    expect(backoffDelay(2, { ...DEFAULT_BACKOFF, jitter: 1 }, () => 0)).toBe(0);
  });
});

describe('PresenceMap', () => {
  it('keeps a status across repeated online events and forgets it when offline', () => {
    const presence = new PresenceMap();
    presence.applyStatus({ userId: 'u', username: 'u', status: 'away' });
    expect(presence.applyOnline({ userId: 'u', username: 'u' })).toMatchObject({ changed: false, current: { status: 'away' } });
    presence.applyOffline({ userId: 'u', username: 'u', lastSeen: 't' });
    expect(presence.get('u')).toEqual({ userId: 'u', username: 'u', online: false, status: 'offline', lastSeen: 't' });
    // A status change that crossed the offline event does not bring the user back.
    presence.applyStatus({ userId: 'u', username: 'u', status: 'busy' });
    expect(presence.isOnline('u')).toBe(false);
    expect(presence.applyOnline({ userId: 'u', username: 'u' }).current).toMatchObject({ online: true, status: 'online' });
    expect(presence.online().map((state) => state.userId)).toEqual(['u']);
  });

  it('replaces everything with a snapshot, keeping usernames', () => {
    const presence = new PresenceMap();
    presence.applyOnline({ userId: 'gone', username: 'gone' });
    presence.applyOnline({ userId: BOB._id, username: 'bob' });
    presence.beginSnapshot();
    const changes = presence.applySnapshot([{ userId: BOB._id, online: true, status: 'busy', lastSeen: null }]);
    expect(changes).toEqual([
      expect.objectContaining({ userId: BOB._id, changed: true, source: 'snapshot', current: expect.objectContaining({ username: 'bob', status: 'busy' }) }),
    ]);
    expect(presence.get('gone')).toBeUndefined();
  });
});

describe('Timeline', () => {
  function timeline(fetchAfter = vi.fn(async () => ({ items: [], nextCursor: null }))) {
    const delivered: MessageDelivery[] = [];
    const gaps: GapInfo[] = [];
    const t = new Timeline({
      fetchAfter,
      deliver: (d) => delivered.push(d),
      onGap: (g) => gaps.push(g),
      gapWaitMs: 100,
      fetchAttempts: 1,
      retryDelayMs: () => 0,
      concurrency: 2,
    });
    return { t, delivered, gaps, fetchAfter };
  }

  it('drops what the app already has and moves only forward', () => {
    const { t, delivered } = timeline();
    t.track(CONVERSATION, 3);
    expect(t.ingest(message(3), 'live')).toBe(false);
    expect(t.ingest(message(4), 'live')).toBe(true);
    t.track(CONVERSATION, 2); // never backwards
    expect(t.lastSeq(CONVERSATION)).toBe(4);
    t.ingest(message(7), 'live');
    t.track(CONVERSATION, 6); // the app loaded 5 and 6 itself: 7 can go
    expect(delivered.map((d) => d.message.seq)).toEqual([4, 7]);
  });

  it('catches up several conversations with bounded concurrency', async () => {
    let running = 0;
    let peak = 0;
    const fetchAfter = vi.fn(async () => {
      running++;
      peak = Math.max(peak, running);
      await settle();
      running--;
      return { items: [], nextCursor: null };
    });
    const { t } = timeline(fetchAfter);
    for (const id of ['a', 'b', 'c', 'd', 'e']) t.track(id, 0);
    await t.catchUpAll();
    expect(fetchAfter).toHaveBeenCalledTimes(5);
    expect(peak).toBe(2);
  });

  it('reports a hole the history does not fill, then moves past it', async () => {
    vi.useFakeTimers();
    const { t, delivered, gaps } = timeline(vi.fn(async () => ({ items: [message(5)], nextCursor: null })));
    t.track(CONVERSATION, 4);
    t.ingest(message(7), 'live');
    await vi.advanceTimersByTimeAsync(100); // fetch: 5 arrives (progress), 6 does not
    await vi.advanceTimersByTimeAsync(100); // fetch again: no progress
    expect(gaps).toEqual([{ conversationId: CONVERSATION, afterSeq: 5, beforeSeq: 7, reason: expect.any(Error) }]);
    expect(delivered.map((d) => d.message.seq)).toEqual([5, 7]);
  });
});

describe('ChatError', () => {
  it('reads error frames and keeps unknown codes as internal', () => {
    expect(ChatError.fromFrame({ success: false, code: 'rate_limited', message: 'slow down' })).toMatchObject({
      status: 429,
      code: 'rate_limited',
      message: 'slow down',
    });
    expect(ChatError.fromFrame({ code: 'weird' })).toMatchObject({ status: 500, code: 'internal' });
    expect(ChatError.client('timeout', 'x').fromServer).toBe(false);
  });

  it('keeps the retryAfter of rate_limited answers from frames and HTTP bodies', () => {
    const frame = { success: false, code: 'rate_limited', message: 'slow down', retryAfter: 3 };
    expect(ChatError.fromFrame(frame).retryAfter).toBe(3);
    const body = JSON.stringify({ error: { code: 'rate_limited', message: 'slow down', retryAfter: 7 } });
    expect(ChatError.fromHttp(429, body).retryAfter).toBe(7);
    expect(ChatError.fromFrame({ code: 'conflict', message: 'x' }).retryAfter).toBeUndefined();
  });
});

describe('ids', () => {
  it('makes valid, distinct clientMessageIds', () => {
    const next = sequentialIds(randomToken(10));
    const ids = [next(), next()];
    expect(ids[0]).not.toBe(ids[1]);
    expect(ids.every(isValidClientMessageId)).toBe(true);
    expect(isValidClientMessageId('a b')).toBe(false);
    expect(isValidClientMessageId('x'.repeat(65))).toBe(false);
  });

  it('puts the token in the query', () => {
    expect(withToken('wss://h.example/prod', 'a.b+c')).toBe('wss://h.example/prod?token=a.b%2Bc');
    expect(withToken('ws://h/p?x=1', 't')).toBe('ws://h/p?x=1&token=t');
  });
});

describe('Emitter', () => {
  it('isolates throwing listeners', async () => {
    const emitter = new Emitter<{ tick: number }>();
    const seen: number[] = [];
    const thrown: unknown[] = [];
    const original = globalThis.queueMicrotask;
    globalThis.queueMicrotask = (callback) =>
      original(() => {
        try {
          callback();
        } catch (error) {
          thrown.push(error);
        }
      });
    try {
      emitter.on('tick', () => {
        throw new Error('listener bug');
      });
      const off = emitter.on('tick', (n) => seen.push(n));
      emitter.once('tick', (n) => seen.push(n * 10));
      emitter.emit('tick', 1);
      off();
      emitter.emit('tick', 2);
      await settle();
    } finally {
      globalThis.queueMicrotask = original;
    }
    expect(seen).toEqual([1, 10]);
    expect(thrown).toHaveLength(2);
  });
});

describe('mentionsIn', () => {
  const members = [
    { _id: 'a1', username: 'alice' },
    { _id: 'b2', username: 'bob' },
    { _id: 'j3', username: 'j.doe-2' },
  ];

  it('finds members by @name, case-insensitively, once each, in order', () => {
    expect(mentionsIn('@Bob and @alice, then @bob again', members)).toEqual(['b2', 'a1']);
  });

  it('keeps dots and dashes inside a name and drops them at its end', () => {
    expect(mentionsIn('ping @j.doe-2. Thanks @bob.', members)).toEqual(['j3', 'b2']);
  });

  it('ignores e-mail addresses, non-members and a bare @', () => {
    expect(mentionsIn('mail bob@bob.example, @carol, @ and @@bob', members)).toEqual([]);
  });
});
