/**
 * Accounts and the REST half of the SDK against the deployed stack: register, login, profile, search,
 * conversations, history, and errors that keep the server's status and code.
 */

import { describe, expect, it } from 'vitest';

import { ChatClient, ChatError } from '../src/index.js';
import { PASSWORD, participant, stack } from './stack.js';

describe('REST through the SDK', () => {
  it('registers, logs in with the same credentials, and uses the new token', async () => {
    const alice = await participant('alice');
    expect(alice.session.token).toEqual(expect.any(String));
    expect(alice.session.user.username).toBe(alice.username);

    const again = ChatClient.fromEndpoints(stack);
    const session = await again.login({ username: alice.username, password: PASSWORD });
    expect(session.user._id).toBe(alice.userId);
    expect(again.user?._id).toBe(alice.userId);
    expect((await again.me()).username).toBe(alice.username);
    expect(await again.rest.currentToken()).toBe(session.token);
  });

  it('refuses a wrong password, a taken username and a missing token with the server codes', async () => {
    const alice = await participant('alice');
    const anonymous = ChatClient.fromEndpoints(stack);

    const wrong = await anonymous.login({ username: alice.username, password: 'not-the-password' }).catch((e: unknown) => e);
    expect(wrong).toBeInstanceOf(ChatError);
    expect(wrong).toMatchObject({ status: 401, code: 'unauthorized', operation: 'POST /auth/login' });

    const taken = await anonymous.register({ username: alice.username, password: PASSWORD }).catch((e: unknown) => e);
    expect(taken).toMatchObject({ status: 409, code: 'conflict' });

    const noToken = await ChatClient.fromEndpoints(stack).me().catch((e: unknown) => e);
    expect(noToken).toMatchObject({ status: 401, code: 'unauthorized' });

    const invalid = await anonymous.register({ username: 'x', password: PASSWORD }).catch((e: unknown) => e);
    expect(invalid).toBeInstanceOf(ChatError);
    expect((invalid as ChatError).status).toBeGreaterThanOrEqual(400);
    expect((invalid as ChatError).status).toBeLessThan(500);
  });

  it('finds users, creates conversations, posts and pages history', async () => {
    const alice = await participant('alice');
    const bob = await participant('bob');

    const found = await alice.client.rest.searchUsers(bob.username);
    expect(found.items.map((user) => user._id)).toContain(bob.userId);

    const chat = await alice.client.createPrivate(bob.userId);
    expect(chat).toMatchObject({ type: 'private', lastSeq: 0, lastMessage: null });
    expect(chat.members?.map((user) => user._id).sort()).toEqual([alice.userId, bob.userId].sort());
    // The same pair gets the same conversation.
    expect((await bob.client.createPrivate(alice.userId))._id).toBe(chat._id);

    for (const content of ['one', 'two', 'three']) {
      await alice.client.rest.postMessage(chat._id, { content, clientMessageId: `rest-${content}` });
    }
    const retry = await alice.client.rest.postMessage(chat._id, { content: 'one', clientMessageId: 'rest-one' });
    expect(retry.seq).toBe(1); // idempotent: the original message

    const newestFirst = await bob.client.rest.history(chat._id, { limit: 2 });
    expect(newestFirst.items.map((m) => m.content)).toEqual(['three', 'two']);
    expect(newestFirst.nextCursor).toEqual(expect.any(String));
    const older = await bob.client.rest.history(chat._id, { limit: 2, cursor: newestFirst.nextCursor as string });
    expect(older.items.map((m) => m.content)).toEqual(['one']);
    const after = await bob.client.rest.history(chat._id, { afterSeq: 1 });
    expect(after.items.map((m) => m.seq)).toEqual([2, 3]);

    // A fresh session (another device) lists the conversation and follows it from its lastSeq.
    const bobElsewhere = ChatClient.fromEndpoints(stack);
    await bobElsewhere.login({ username: bob.username, password: PASSWORD });
    const list = await bobElsewhere.listConversations();
    expect(list.items.find((c) => c._id === chat._id)).toMatchObject({ lastSeq: 3, lastMessage: { content: 'three' } });
    expect(bobElsewhere.lastSeq(chat._id)).toBe(3);

    const group = await alice.client.createGroup('crew', [bob.userId]);
    expect(group).toMatchObject({ type: 'group', name: 'crew', memberCount: 2 });
    const renamed = await alice.client.rest.updateGroup(group._id, { name: 'crew 2' });
    expect(renamed.name).toBe('crew 2');

    const strangerView = await (await participant('carol')).client.getConversation(chat._id).catch((e: unknown) => e);
    expect(strangerView).toMatchObject({ status: 404, code: 'not_found' });
  });

  it("exports the user's data: requested, made in the background, downloaded through its link", async () => {
    const alice = await participant('alice');
    const bob = await participant('bob');
    const chat = await alice.client.createPrivate(bob.userId);
    await alice.client.rest.postMessage(chat._id, { content: 'mine to take' });
    await bob.client.rest.postMessage(chat._id, { content: 'not hers' });

    expect(await alice.client.rest.exportStatus()).toBeNull();
    const requested = await alice.client.rest.requestExport();
    expect(requested.status).toBe('pending');
    let status = requested;
    for (let waited = 0; status.status !== 'ready'; waited += 500) {
      expect(waited).toBeLessThan(120_000);
      await new Promise((resolve) => setTimeout(resolve, 500));
      status = (await alice.client.rest.exportStatus()) ?? requested;
    }
    expect(status.exportId).toBe(requested.exportId);
    const document = (await (await fetch(status.url as string)).json()) as { messages: { content: string }[] };
    expect(document.messages.map((m) => m.content)).toEqual(['mine to take']);
  }, 150_000);
});
