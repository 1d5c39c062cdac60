/**
 * A crowd: several SDK clients of one group connect together, all talk at once, all lose their connections at
 * once and keep talking. Every client must end with the same timeline, every message exactly once, in seq order,
 * and see everyone else online.
 */

import { describe, expect, it } from 'vitest';

import type { Conversation } from '../src/index.js';
import {
  type Participant,
  closeOnServer,
  connectSynced,
  connectionIdsOf,
  participant,
  sleep,
  timeline,
  waitFor,
} from './stack.js';

const CROWD = 6;
const MESSAGES_EACH = 3;

async function crowd(): Promise<{ people: Participant[]; group: Conversation }> {
  const people = await Promise.all(
    Array.from({ length: CROWD }, (_, i) => participant(`crowd${i}`, { reconnect: { initialDelayMs: 300, maxDelayMs: 2_000 } })),
  );
  const [creator, ...others] = people as [Participant, ...Participant[]];
  const group = await creator.client.createGroup('crowd', others.map((p) => p.userId));
  await Promise.all(others.map((p) => p.client.getConversation(group._id)));
  return { people, group };
}

function expectSameTimelines(people: Participant[], groupId: string, count: number): void {
  const expected = Array.from({ length: count }, (_, i) => i + 1);
  const reference = timeline(people[0] as Participant, groupId).map((d) => d.message._id);
  for (const p of people) {
    const seen = timeline(p, groupId);
    expect(seen.map((d) => d.message.seq), `${p.username}'s seqs`).toEqual(expected);
    expect(seen.map((d) => d.message._id), `${p.username}'s ids`).toEqual(reference);
  }
}

async function everyoneSeesEveryoneOnline(people: Participant[]): Promise<void> {
  await waitFor(
    () => people.every((p) => people.every((other) => other === p || p.client.presence.isOnline(other.userId))),
    'every client sees the other ones online',
    30_000,
  );
}

describe(`a crowd of ${CROWD} clients`, () => {
  it('connects together and exchanges every message exactly once, in seq order', async () => {
    const { people, group } = await crowd();
    await Promise.all(people.map(connectSynced));

    await Promise.all(
      people.flatMap((p) => Array.from({ length: MESSAGES_EACH }, (_, i) => p.client.sendMessage(group._id, `${p.username} #${i}`))),
    );
    const total = CROWD * MESSAGES_EACH;
    await waitFor(() => people.every((p) => timeline(p, group._id).length >= total), `${total} messages everywhere`, 30_000);
    await sleep(1_500);
    expectSameTimelines(people, group._id, total);
    // Each sender's messages keep their own order.
    for (const sender of people) {
      const own = timeline(sender, group._id).filter((d) => d.message.sender._id === sender.userId);
      expect(own.map((d) => d.message.content)).toEqual([0, 1, 2].map((i) => `${sender.username} #${i}`));
    }
    await everyoneSeesEveryoneOnline(people);
  });

  it('loses every connection at once, keeps talking, and converges to one timeline', async () => {
    const { people, group } = await crowd();
    await Promise.all(people.map(connectSynced));
    for (const p of people) await p.client.sendMessage(group._id, `${p.username} hello`);

    const connections = (await Promise.all(people.map((p) => connectionIdsOf(p.userId)))).flat();
    expect(connections).toHaveLength(CROWD);
    const syncedBefore = people.map((p) => p.synced.length);
    await Promise.all(connections.map(closeOnServer));
    // Everyone sends right away: some sends are in flight at the close, others queued while reconnecting.
    await Promise.all(
      people.flatMap((p) => [1, 2].map((i) => p.client.sendMessage(group._id, `${p.username} after ${i}`))),
    );
    const total = CROWD * 3;
    await waitFor(() => people.every((p, i) => p.synced.length > (syncedBefore[i] as number)), 'everyone reconnected', 30_000);
    await waitFor(() => people.every((p) => timeline(p, group._id).length >= total), `${total} messages everywhere`, 30_000);
    await sleep(1_500);
    expectSameTimelines(people, group._id, total);
    const stored = await (people[0] as Participant).client.rest.history(group._id, { afterSeq: 0, limit: 100 });
    expect(stored.items).toHaveLength(total);
    await everyoneSeesEveryoneOnline(people);
  });
});
