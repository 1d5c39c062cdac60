/**
 * The REST client: URLs, headers, bodies and query strings of each route, and failures as `ChatError`s.
 */

import { describe, expect, it } from 'vitest';

import { ChatError, RestClient } from '../src/index.js';
import { fakeFetch, type RecordedCall, type Route } from './fakes.js';

const BASE = 'http://api.test/_aws/execute-api/abc';
const USER = { _id: 'u1', username: 'alice', avatar: null, createdAt: '2026-11-20T08:00:00.000Z' };

function client(route: Route, token: string | null = 'tok') {
  const net = fakeFetch(route);
  return { rest: new RestClient({ baseUrl: `${BASE}/`, token, fetch: net.fetch }), calls: net.calls };
}

const ok = (body: unknown) => () => ({ status: 200, body });
const summary = (call: RecordedCall) => `${call.method} ${call.path.replace('/_aws/execute-api/abc', '')}${call.url.search}`;

describe('RestClient', () => {
  it('logs in without a token and uses the one it gets', async () => {
    const { rest, calls } = client((call) => (call.path.endsWith('/auth/login') ? { status: 200, body: { token: 'fresh', user: USER } } : ok(USER)()), null);
    const session = await rest.login({ username: 'alice', password: 'password123' });
    expect(session.user).toEqual(USER);
    await rest.me();
    expect(calls[0]?.headers.authorization).toBeUndefined();
    expect(calls[0]?.body).toEqual({ username: 'alice', password: 'password123' });
    expect(calls[0]?.headers['content-type']).toBe('application/json');
    expect(calls[1]?.headers.authorization).toBe('Bearer fresh');
  });

  it('builds each route', async () => {
    const { rest, calls } = client(ok({ items: [], nextCursor: null }));
    await rest.searchUsers('al', { limit: 5 });
    await rest.listConversations({ page: 2 });
    await rest.getConversation('c1');
    await rest.createPrivate('u2');
    await rest.createGroup('weekend', ['u2', 'u3']);
    await rest.updateGroup('c1', { name: 'renamed' });
    await rest.addMembers('c1', ['u4']);
    await rest.removeMember('c1', 'u4');
    await rest.setRole('c1', 'u3', 'admin');
    await rest.transferOwnership('c1', 'u3');
    await rest.history('c1', { afterSeq: 7, limit: 100 });
    await rest.history('c1', { cursor: 'a b+c' });
    await rest.postMessage('c1', { content: 'hi', clientMessageId: 'tab-1' });
    await rest.editMessage('c1', 'c1-7', 'fixed');
    await rest.deleteMessage('c1', 'c1-7');
    await rest.markRead('c1', { lastMessageId: 'c1-7' });
    await rest.listFriends();
    await rest.listFriendRequests();
    await rest.sendFriendRequest('bob');
    await rest.cancelFriendRequest('bob');
    await rest.acceptFriendRequest('bob');
    await rest.rejectFriendRequest('bob');
    await rest.unfriend('bob');
    expect(calls.map(summary)).toEqual([
      'GET /users?search=al&limit=5',
      'GET /conversations?page=2',
      'GET /conversations/c1',
      'POST /conversations',
      'POST /conversations',
      'PATCH /conversations/c1',
      'POST /conversations/c1/members',
      'DELETE /conversations/c1/members/u4',
      'PUT /conversations/c1/members/u3/role',
      'PUT /conversations/c1/owner',
      'GET /conversations/c1/messages?afterSeq=7&limit=100',
      'GET /conversations/c1/messages?cursor=a+b%2Bc',
      'POST /conversations/c1/messages',
      'PUT /conversations/c1/messages/c1-7',
      'DELETE /conversations/c1/messages/c1-7',
      'POST /conversations/c1/read',
      'GET /friends',
      'GET /friend-requests',
      'POST /friend-requests',
      'DELETE /friend-requests/bob',
      'POST /friend-requests/bob/accept',
      'POST /friend-requests/bob/reject',
      'DELETE /friends/bob',
    ]);
    expect(calls.map((call) => call.body).filter((body) => body !== undefined)).toEqual([
      { type: 'private', participantId: 'u2' },
      { type: 'group', name: 'weekend', participantIds: ['u2', 'u3'] },
      { name: 'renamed' },
      { userIds: ['u4'] },
      { role: 'admin' },
      { userId: 'u3' },
      { content: 'hi', clientMessageId: 'tab-1' },
      { newContent: 'fixed' },
      { lastMessageId: 'c1-7' },
      { username: 'bob' },
    ]);
    expect(calls.every((call) => call.headers.authorization === 'Bearer tok')).toBe(true);
  });

  it('unwraps the friend list', async () => {
    const friend = { ...USER, online: true, status: 'away', lastSeen: null };
    const { rest } = client(ok({ items: [friend] }));
    await expect(rest.listFriends()).resolves.toEqual([friend]);
  });

  it('throws the error of an {"error": {code, message}} body', async () => {
    const { rest } = client(() => ({ status: 404, body: { error: { code: 'not_found', message: 'conversation not found' } } }));
    const error = await rest.getConversation('nope').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ChatError);
    expect(error).toMatchObject({
      status: 404,
      code: 'not_found',
      message: 'conversation not found',
      operation: 'GET /conversations/nope',
    });
  });

  it('derives a code from the status when the body is not ours', async () => {
    const { rest } = client(() => ({ status: 403, body: { message: 'Forbidden' } }));
    await expect(rest.me()).rejects.toMatchObject({ status: 403, code: 'forbidden' });
    const gateway = client(() => ({ status: 502, text: '<html>Bad Gateway</html>' }));
    await expect(gateway.rest.me()).rejects.toMatchObject({ status: 502, code: 'internal', message: '<html>Bad Gateway</html>' });
    const garbled = client(() => ({ status: 200, text: 'not json' }));
    await expect(garbled.rest.me()).rejects.toMatchObject({ status: 200, code: 'invalid_response' });
  });

  it('reports network failures with status 0', async () => {
    const rest = new RestClient({
      baseUrl: BASE,
      token: 'tok',
      fetch: async () => {
        throw new TypeError('fetch failed');
      },
    });
    await expect(rest.me()).rejects.toMatchObject({ status: 0, code: 'network', message: 'GET /users/me: fetch failed' });
  });

  it('times out a request that hangs', async () => {
    const rest = new RestClient({
      baseUrl: BASE,
      token: 'tok',
      timeoutMs: 20,
      fetch: (_url, init) =>
        new Promise((_resolve, reject) => {
          init.signal?.addEventListener('abort', () => reject(new Error('aborted')));
        }),
    });
    await expect(rest.me()).rejects.toMatchObject({ status: 0, code: 'timeout' });
  });

  it('renews an expired access token once for concurrent 401s, retries, and tells the app', async () => {
    let issued = 0;
    const net = fakeFetch((call) => {
      if (call.path.endsWith('/auth/refresh')) {
        issued += 1;
        return { status: 200, body: { token: `access-${issued}`, refreshToken: `refresh-${issued}`, expiresIn: 900, user: USER } };
      }
      return call.headers.authorization === 'Bearer expired'
        ? { status: 401, body: { error: { code: 'unauthorized', message: 'invalid or expired token' } } }
        : ok(USER)();
    });
    const seen: (string | null)[] = [];
    const rest = new RestClient({
      baseUrl: BASE,
      token: 'expired',
      refreshToken: 'refresh-0',
      onSession: (session) => seen.push(session?.token ?? null),
      fetch: net.fetch,
    });
    await Promise.all([rest.me(), rest.me(), rest.me()]);
    const refreshes = net.calls.filter((call) => call.path.endsWith('/auth/refresh'));
    expect(refreshes.map((call) => call.body)).toEqual([{ refreshToken: 'refresh-0' }]);
    expect(refreshes[0]?.headers.authorization).toBeUndefined();
    expect(net.calls.filter((call) => call.headers.authorization === 'Bearer access-1')).toHaveLength(3);
    expect(seen).toEqual(['access-1']);
  });

  it('a refused refresh ends the session: the tokens are dropped and the first 401 is thrown', async () => {
    const net = fakeFetch(() => ({ status: 401, body: { error: { code: 'unauthorized', message: 'session ended' } } }));
    const seen: (string | null)[] = [];
    const rest = new RestClient({
      baseUrl: BASE,
      token: 'expired',
      refreshToken: 'used',
      onSession: (session) => seen.push(session?.token ?? null),
      fetch: net.fetch,
    });
    await expect(rest.me()).rejects.toMatchObject({ status: 401, operation: 'GET /users/me' });
    expect(seen).toEqual([null]);
    expect(await rest.currentToken()).toBeNull();
    expect(net.calls).toHaveLength(2);
  });

  it('ends sessions, lists them and changes the password on the documented routes', async () => {
    const { rest, calls } = client(ok({ items: [], endedSessions: 1, closedConnections: 0 }));
    await rest.sessions();
    await rest.endSession('s 1');
    await rest.changePassword('old-password', 'new-password');
    await rest.logoutEverywhere();
    expect(calls.map(summary)).toEqual([
      'GET /users/me/sessions',
      'DELETE /users/me/sessions/s%201',
      'PUT /users/me/password',
      'POST /auth/logout-all',
    ]);
    expect(calls[2]?.body).toEqual({ currentPassword: 'old-password', newPassword: 'new-password' });
    expect(await rest.currentToken()).toBeNull();
  });

  it('registers, lists and removes push subscriptions on the documented routes', async () => {
    const { rest, calls } = client(ok({ publicKey: 'BKey', items: [], id: 'a1', removed: true }));
    expect(await rest.pushServerKey()).toBe('BKey');
    await rest.registerPushSubscription({ endpoint: 'https://push.example/1', keys: { p256dh: 'p', auth: 'a' } });
    await rest.registerDevice('apns', 'device-token');
    await rest.pushSubscriptions();
    await rest.removePushSubscription('a1');
    expect(calls.map(summary)).toEqual([
      'GET /push/server-key',
      'POST /users/me/push-subscriptions',
      'POST /users/me/push-subscriptions',
      'GET /users/me/push-subscriptions',
      'DELETE /users/me/push-subscriptions/a1',
    ]);
    expect(calls[1]?.body).toEqual({ endpoint: 'https://push.example/1', keys: { p256dh: 'p', auth: 'a' }, expirationTime: null });
    expect(calls[2]?.body).toEqual({ platform: 'apns', token: 'device-token' });
  });

  it('reports and moderates on the documented routes', async () => {
    const { rest, calls } = client(ok({ items: [], nextCursor: null, result: 'reported', resolved: 1 }));
    await rest.report({ type: 'message', messageId: 'c1-7' }, 'spam', 'link farm');
    await rest.report({ type: 'user', userId: 'u2' }, 'harassment');
    await rest.openReports({ limit: 10 });
    await rest.resolveReports({ type: 'user', userId: 'u2' }, 'dismissed');
    await rest.moderateMessage('c1-7');
    await rest.setSuspended('u 2', true, 'spam wave');
    await rest.setSuspended('u 2', false);
    await rest.auditRecord({ month: '2026-12' });
    expect(calls.map(summary)).toEqual([
      'POST /reports',
      'POST /reports',
      'GET /moderation/reports?limit=10',
      'POST /moderation/reports/resolve',
      'DELETE /moderation/messages/c1-7',
      'PUT /moderation/users/u%202/suspension',
      'DELETE /moderation/users/u%202/suspension',
      'GET /moderation/audit?month=2026-12',
    ]);
    expect(calls[0]?.body).toEqual({ target: { type: 'message', messageId: 'c1-7' }, reason: 'spam', details: 'link farm' });
    expect(calls[1]?.body).toEqual({ target: { type: 'user', userId: 'u2' }, reason: 'harassment', details: null });
    expect(calls[3]?.body).toEqual({ target: { type: 'user', userId: 'u2' }, outcome: 'dismissed', note: null });
    expect(calls[5]?.body).toEqual({ reason: 'spam wave' });
  });

  it('deletes the account with the password and forgets the tokens', async () => {
    const { rest, calls } = client(() => ({ status: 202, body: { status: 'erasing', endedSessions: 1, closedConnections: 0 } }));
    const deleted = await rest.deleteAccount('password123');
    expect(deleted.status).toBe('erasing');
    expect(calls.map(summary)).toEqual(['DELETE /users/me']);
    expect(calls[0]?.body).toEqual({ password: 'password123' });
    expect(await rest.currentToken()).toBeNull();
  });

  it('asks for an export and reads it, none being null', async () => {
    const pending = { exportId: 'e1', status: 'pending', requestedAt: '2026-12-04T10:00:00.000Z' };
    let asked = false;
    const { rest, calls } = client((call) => {
      if (call.method === 'POST') {
        asked = true;
        return { status: 202, body: pending };
      }
      return asked
        ? { status: 200, body: { ...pending, status: 'ready', url: 'https://bucket/e1.json' } }
        : { status: 404, body: { error: { code: 'not_found', message: 'no export was requested' } } };
    });
    expect(await rest.exportStatus()).toBeNull();
    expect((await rest.requestExport()).status).toBe('pending');
    expect(await rest.exportStatus()).toMatchObject({ status: 'ready', url: 'https://bucket/e1.json' });
    expect(calls.map(summary)).toEqual(['GET /users/me/export', 'POST /users/me/export', 'GET /users/me/export']);
  });

  it('asks a token function before every request', async () => {
    let n = 0;
    const net = fakeFetch(ok(USER));
    const rest = new RestClient({ baseUrl: BASE, token: async () => `t${++n}`, fetch: net.fetch });
    await rest.me();
    await rest.me();
    expect(net.calls.map((call) => call.headers.authorization)).toEqual(['Bearer t1', 'Bearer t2']);
  });
});
