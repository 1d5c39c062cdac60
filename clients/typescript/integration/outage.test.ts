/**
 * Connections closed by the server mid-conversation, the way API Gateway closes them (`DeleteConnection`) or
 * forgets them: the SDK reconnects, catches up, sends what was queued, and nothing is lost or doubled.
 */

import { DeleteItemCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';

import type { Conversation, SentMessage } from '../src/index.js';
import {
  type Participant,
  closeOnServer,
  connectSynced,
  connectionIdsOf,
  gate,
  participant,
  sleep,
  stack,
  timeline,
  waitFor,
} from './stack.js';

/** Reconnect quickly (the outage itself is held open by the test, see `gate`). */
const FAST_RECONNECT = { reconnect: { initialDelayMs: 200, maxDelayMs: 1_000 } };

async function pair(): Promise<{ alice: Participant; bob: Participant; chat: Conversation; hold: ReturnType<typeof gate> }> {
  const alice = await participant('alice', FAST_RECONNECT);
  const bob = await participant('bob', FAST_RECONNECT);
  const chat = await alice.client.createPrivate(bob.userId);
  await bob.client.getConversation(chat._id);
  // Bob's client asks for its token before every handshake: holding that answer holds his reconnect.
  const hold = gate();
  const token = bob.session.token;
  bob.client.rest.setToken(async () => {
    await hold.wait();
    return token;
  });
  await Promise.all([connectSynced(alice), connectSynced(bob)]);
  return { alice, bob, chat, hold };
}

/** The user's one live connection (waiting for the `$disconnect` of an older one to be processed). */
async function onlyConnectionOf(p: Participant): Promise<string> {
  let ids: string[] = [];
  const deadline = Date.now() + 15_000;
  while ((ids = await connectionIdsOf(p.userId)).length !== 1) {
    if (Date.now() > deadline) throw new Error(`${p.username} should have one live connection, has ${JSON.stringify(ids)}`);
    await sleep(200);
  }
  return ids[0] as string;
}

/** Every participant's timeline of `conversationId` is exactly seq 1..count, the same ids for all. */
function expectExactlyOnceInOrder(participants: Participant[], conversationId: string, count: number): void {
  const expected = Array.from({ length: count }, (_, i) => i + 1);
  const reference = timeline(participants[0] as Participant, conversationId).map((d) => d.message._id);
  for (const p of participants) {
    const seen = timeline(p, conversationId);
    expect(seen.map((d) => d.message.seq), `${p.username}'s seqs`).toEqual(expected);
    expect(seen.map((d) => d.message._id), `${p.username}'s ids`).toEqual(reference);
  }
}

/** The server's history: exactly `contents`, each once (also checks that no clientMessageId was stored twice). */
async function expectStoredOnce(p: Participant, conversationId: string, contents: string[]): Promise<void> {
  const stored = [];
  let page = await p.client.rest.history(conversationId, { afterSeq: 0, limit: 100 });
  stored.push(...page.items);
  while (page.nextCursor) {
    page = await p.client.rest.history(conversationId, { cursor: page.nextCursor, limit: 100 });
    stored.push(...page.items);
  }
  expect(stored.map((m) => m.content).sort()).toEqual([...contents].sort());
  const clientIds = stored.map((m) => m.clientMessageId).filter((id) => id !== undefined);
  expect(new Set(clientIds).size).toBe(clientIds.length);
}

describe('a connection closed by the server', () => {
  it('reconnects, catches up and sends the queued messages: nothing lost, nothing doubled, in seq order', async () => {
    const { alice, bob, chat, hold } = await pair();
    const contents: string[] = [];
    const send = async (p: Participant, content: string): Promise<SentMessage> => {
      contents.push(content);
      return p.client.sendMessage(chat._id, content);
    };

    // A conversation is going on.
    for (const i of [1, 2]) {
      await send(alice, `alice before ${i}`);
      await send(bob, `bob before ${i}`);
    }
    await waitFor(() => timeline(bob, chat._id).length === 4 && timeline(alice, chat._id).length === 4, 'the first 4');

    // API Gateway closes bob's connection; his reconnect is held until the test lets it go.
    hold.close();
    await closeOnServer(await onlyConnectionOf(bob));
    await waitFor(() => bob.client.state === 'reconnecting', 'bob notices the close');
    await waitFor(() => !alice.client.presence.isOnline(bob.userId), 'alice sees bob offline');

    // Offline, bob's sends are queued; alice keeps talking.
    const queued = [send(bob, 'bob offline 1'), send(bob, 'bob offline 2')];
    expect(bob.client.pendingCount).toBeGreaterThanOrEqual(2);
    for (const i of [1, 2, 3, 4]) await send(alice, `alice during outage ${i}`);
    await sleep(300);
    expect(timeline(bob, chat._id)).toHaveLength(4);

    // Bob comes back while alice is still sending.
    hold.open();
    const racing: Array<Promise<SentMessage>> = [];
    for (const i of [1, 2, 3, 4]) {
      racing.push(send(alice, `alice during reconnect ${i}`));
      await sleep(100);
    }
    const sent = await Promise.all([...queued, ...racing]);
    expect(sent.slice(0, 2).map((s) => s.message.content)).toEqual(['bob offline 1', 'bob offline 2']);

    const total = contents.length; // 4 + 2 + 4 + 4
    await waitFor(() => timeline(bob, chat._id).length >= total && timeline(alice, chat._id).length >= total, `${total} each`);
    await waitFor(() => bob.synced.some((s) => s.reconnect), 'bob synced after the reconnect');
    await sleep(1_500); // anything doubled would arrive now
    expectExactlyOnceInOrder([alice, bob], chat._id, total);
    expect(timeline(bob, chat._id).some((d) => d.source === 'catch_up'), 'missed messages came from the catch-up').toBe(true);
    expect(bob.states).toEqual(expect.arrayContaining(['connected', 'reconnecting']));
    expect(bob.client.state).toBe('connected');
    await waitFor(() => alice.client.presence.isOnline(bob.userId), 'alice sees bob online again');
    await expectStoredOnce(alice, chat._id, contents);
    expect(bob.errors).toEqual([]);
  });

  it('stores and acknowledges a send in flight at the close exactly once', async () => {
    const { alice, bob, chat } = await pair();
    const contents: string[] = [];
    for (const round of [1, 2, 3]) {
      const connectionId = await onlyConnectionOf(bob);
      const syncedBefore = bob.synced.length;
      const content = `in flight ${round}`;
      contents.push(content);
      const sending = bob.client.sendMessage(chat._id, content);
      await closeOnServer(connectionId); // before or after the server handled the frame: either way once
      const result = await sending;
      expect(result.message.content).toBe(content);
      await waitFor(() => bob.synced.length > syncedBefore, `bob synced again (round ${round})`);
      await waitFor(() => timeline(alice, chat._id).length === round, `alice receives round ${round}`);
      // The user must be fully back before the next close (the presence record lists the new connection).
      await waitFor(() => bob.client.state === 'connected', 'bob connected');
    }
    await sleep(1_500);
    expectExactlyOnceInOrder([alice, bob], chat._id, 3);
    await expectStoredOnce(alice, chat._id, contents);
  });

  it('reconnects when the server no longer knows the connection (unauthorized) and sends again once', async () => {
    const { alice, bob, chat } = await pair();
    await bob.client.sendMessage(chat._id, 'before');
    const connectionId = await onlyConnectionOf(bob);
    const syncedBefore = bob.synced.length;

    // The connection record disappears (expired, cleaned up) while the socket stays open.
    const dynamo = new DynamoDBClient({
      endpoint: stack.awsEndpoint,
      region: stack.region,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    });
    await dynamo.send(
      new DeleteItemCommand({ TableName: stack.tableName, Key: { pk: { S: `CONN#${connectionId}` }, sk: { S: 'CONN' } } }),
      { abortSignal: AbortSignal.timeout(10_000) },
    );
    dynamo.destroy();

    const after = await bob.client.sendMessage(chat._id, 'after');
    expect(after.message.seq).toBe(2);
    await waitFor(() => bob.synced.length > syncedBefore, 'bob reconnected');
    await waitFor(() => timeline(alice, chat._id).length === 2, 'alice receives both');
    await sleep(1_000);
    expectExactlyOnceInOrder([alice, bob], chat._id, 2);
    await expectStoredOnce(alice, chat._id, ['before', 'after']);
  });
});
