/**
 * The realtime half of the SDK against the deployed stack: two (or three) clients talking, requests answered
 * through their `requestId`, `error` frames rejecting exactly their request, message events, presence, friends
 * and conversation events. Every frame is also checked against docs/asyncapi.yaml (setup.ts).
 */

import { describe, expect, it } from 'vitest';

import { ChatError } from '../src/index.js';
import { checker, connectSynced, eventData, participant, timeline, waitFor } from './stack.js';

/** A well-formed conversation id that no conversation has. */
const UNKNOWN_CONVERSATION = 'f'.repeat(32);

async function pair() {
  const alice = await participant('alice');
  const bob = await participant('bob');
  const chat = await alice.client.createPrivate(bob.userId);
  await bob.client.getConversation(chat._id); // bob follows it too
  return { alice, bob, chat };
}

describe('realtime through the SDK', () => {
  it('delivers every message to both sides once, in seq order, from the right source', async () => {
    const { alice, bob, chat } = await pair();
    await Promise.all([connectSynced(alice), connectSynced(bob)]);

    const first = await alice.client.sendMessage(chat._id, 'hi bob');
    expect(first).toMatchObject({ duplicate: false, message: { seq: 1, content: 'hi bob', status: 'sent' } });
    expect(first.message.clientMessageId).toBe(first.clientMessageId);
    await waitFor(() => timeline(bob, chat._id).length === 1, 'bob receives the first message');
    expect(timeline(bob, chat._id)[0]).toMatchObject({ source: 'live', message: { _id: first.message._id } });
    expect(timeline(alice, chat._id)[0]).toMatchObject({ source: 'ack', message: { _id: first.message._id } });

    const reply = await bob.client.sendMessage(chat._id, 'hi alice');
    expect(reply.message.seq).toBe(2);
    await waitFor(() => timeline(alice, chat._id).length === 2, 'alice receives the reply');

    // Both type at once: every message reaches both timelines once, both in the same (seq) order.
    await Promise.all(
      [0, 1, 2, 3, 4].flatMap((i) => [
        alice.client.sendMessage(chat._id, `alice ${i}`),
        bob.client.sendMessage(chat._id, `bob ${i}`),
      ]),
    );
    await waitFor(() => timeline(alice, chat._id).length === 12 && timeline(bob, chat._id).length === 12, '12 messages each');
    for (const p of [alice, bob]) {
      expect(timeline(p, chat._id).map((d) => d.message.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    }
    expect(timeline(alice, chat._id).map((d) => d.message._id)).toEqual(timeline(bob, chat._id).map((d) => d.message._id));
    const history = await bob.client.rest.history(chat._id, { afterSeq: 0 });
    expect(history.items.map((m) => m._id)).toEqual(timeline(bob, chat._id).map((d) => d.message._id));

    // The sender learns whom each message reached.
    await waitFor(() => eventData(alice, 'message_status').some((s) => s.messageId === first.message._id), 'delivered status');
    expect(eventData(alice, 'message_status').find((s) => s.messageId === first.message._id)).toMatchObject({
      status: 'delivered',
      userIds: [bob.userId],
    });
  });

  it('resolves requests on their ack and rejects exactly the request an error frame answers', async () => {
    const { alice, bob, chat } = await pair();
    await Promise.all([connectSynced(alice), connectSynced(bob)]);
    const { message } = await alice.client.sendMessage(chat._id, 'original');

    await expect(alice.client.ping()).resolves.toEqual({});

    const editing = bob.client.editMessage(message._id, 'not yours');
    const pinging = bob.client.ping(); // in flight at the same time: must not be settled by the error
    const forbidden = await editing.catch((e: unknown) => e);
    expect(forbidden).toBeInstanceOf(ChatError);
    expect(forbidden).toMatchObject({ code: 'forbidden', status: 403, operation: 'edit_message' });
    expect((forbidden as ChatError).requestId).toEqual(expect.any(String));
    await expect(pinging).resolves.toEqual({});

    await expect(alice.client.sendMessage(UNKNOWN_CONVERSATION, 'anyone?')).rejects.toMatchObject({ code: 'not_found', status: 404 });
    await expect(alice.client.deleteMessage('not-a-message-id')).rejects.toMatchObject({ code: 'validation_failed' });
    checker.expectInvalidClientFrame('send_message'); // the document states the limit the server enforces
    await expect(alice.client.sendMessage(chat._id, 'x'.repeat(4001))).rejects.toMatchObject({ code: 'payload_too_large' });
    await expect(alice.client.addReaction(message._id, 'abc')).rejects.toMatchObject({ code: 'validation_failed' });

    // The connection survives every error, and ids that are not the user's are rejected, not failed.
    expect(alice.client.state).toBe('connected');
    await expect(alice.client.joinConversations([chat._id, UNKNOWN_CONVERSATION])).resolves.toEqual({
      joined: [chat._id],
      rejected: [UNKNOWN_CONVERSATION],
    });
    expect(alice.errors).toEqual([]);
    expect(bob.errors).toEqual([]);
  });

  it('edits, reactions, reads, typing and deletes reach the other side', async () => {
    const { alice, bob, chat } = await pair();
    await Promise.all([connectSynced(alice), connectSynced(bob)]);
    await Promise.all([alice.client.joinConversation(chat._id), bob.client.joinConversation(chat._id)]);
    const { message } = await alice.client.sendMessage(chat._id, 'draft');

    const edited = await alice.client.editMessage(message._id, 'final');
    expect(edited).toMatchObject({ content: 'final', edited: true });
    await waitFor(() => eventData(bob, 'message_edited').length === 1, 'message_edited');
    expect(eventData(bob, 'message_edited')[0]).toMatchObject({ messageId: message._id, newContent: 'final', conversationId: chat._id });

    expect(await bob.client.addReaction(message._id, '👍')).toBe(true);
    expect(await bob.client.addReaction(message._id, '👍')).toBe(false); // already there: nothing changes
    await waitFor(() => eventData(alice, 'reaction_added').length === 1, 'reaction_added');
    expect(await bob.client.removeReaction(message._id, '👍')).toBe(true);
    await waitFor(() => eventData(alice, 'reaction_removed').length === 1, 'reaction_removed');

    expect(await alice.client.typing(chat._id, true)).toBe(true);
    await waitFor(() => eventData(bob, 'typing_status').length === 1, 'typing_status');
    expect(eventData(bob, 'typing_status')[0]).toMatchObject({ userId: alice.userId, isTyping: true, conversationId: chat._id });

    const receipt = await bob.client.markRead({ conversationId: chat._id, lastMessageId: message._id });
    expect(receipt).toMatchObject({ conversationId: chat._id, lastReadSeq: 1, messageIds: [message._id] });
    await waitFor(() => eventData(alice, 'messages_read').length === 1, 'messages_read');
    expect(eventData(alice, 'messages_read')[0]).toMatchObject({ readBy: bob.userId, upToSeq: 1 });
    await waitFor(() => eventData(alice, 'message_status').some((s) => s.status === 'read'), 'read status');

    await bob.client.leaveConversation(chat._id);
    expect(bob.client.joinedConversations()).toEqual([]);
    await expect(bob.client.joinConversation(UNKNOWN_CONVERSATION)).rejects.toMatchObject({ code: 'not_found' });

    await expect(alice.client.deleteMessage(message._id)).resolves.toEqual({ messageId: message._id, conversationId: chat._id });
    await waitFor(() => eventData(bob, 'message_deleted').length === 1, 'message_deleted');
    await expect(alice.client.editMessage(message._id, 'too late')).rejects.toMatchObject({ code: 'conflict' });
  });

  it('reports presence: snapshot on connect, online, status (to friends) and offline of a peer', async () => {
    const { alice, bob } = await pair();
    // Statuses go to friends only (docs/protocol.md, set_status).
    await alice.client.rest.sendFriendRequest(bob.username);
    await bob.client.rest.acceptFriendRequest(alice.username);
    await connectSynced(alice);
    expect(alice.client.presence.isOnline(bob.userId)).toBe(false);

    await connectSynced(bob);
    // Bob learns from his snapshot that alice is online; alice from bob's announcement.
    expect(bob.client.presence.isOnline(alice.userId)).toBe(true);
    await waitFor(() => alice.client.presence.isOnline(bob.userId), 'alice sees bob online');

    expect(await bob.client.setStatus('away')).toBe('away');
    await waitFor(() => alice.client.presence.get(bob.userId)?.status === 'away', 'alice sees bob away');
    expect(await bob.client.getStatus()).toMatchObject({ status: 'away' });

    const peers = await alice.client.getPresence();
    expect(peers).toContainEqual(expect.objectContaining({ userId: bob.userId, online: true, status: 'away' }));

    bob.client.disconnect();
    await waitFor(() => !alice.client.presence.isOnline(bob.userId), 'alice sees bob offline', 30_000);
    const offline = eventData(alice, 'user_offline').at(-1);
    expect(offline).toMatchObject({ userId: bob.userId, username: bob.username, lastSeen: expect.any(String) });
  });

  it('answers a sender over its budget with rate_limited and the seconds to wait', async () => {
    const { alice, chat } = await pair();
    await connectSynced(alice);
    // 60 sends per user per 10 s window; the window may roll over once while we send, hence up to 130.
    let refused: unknown = null;
    for (let i = 0; i < 130 && refused === null; i += 1) {
      await alice.client.sendMessage(chat._id, `flood ${i}`).catch((error: unknown) => {
        refused = error;
      });
    }
    expect(refused).toMatchObject({ code: 'rate_limited', status: 429 });
    const frame = eventData<{ code: string; retryAfter?: number }>(alice, 'error').find((e) => e.code === 'rate_limited');
    expect(frame?.retryAfter).toBeGreaterThanOrEqual(1);
    expect(frame?.retryAfter).toBeLessThanOrEqual(10);
  });

  it('runs the friend request flow with events on both sides', async () => {
    const alice = await participant('alice');
    const bob = await participant('bob');
    const carol = await participant('carol');
    await Promise.all([connectSynced(alice), connectSynced(bob), connectSynced(carol)]);

    // A request that is cancelled, and one that is rejected.
    await carol.client.sendFriendRequest(alice.username);
    await waitFor(() => eventData(alice, 'friend_request_received').length === 1, 'friend_request_received (carol)');
    expect(await carol.client.cancelFriendRequest(alice.username)).toMatchObject({ result: 'cancelled' });
    await waitFor(() => eventData(alice, 'friend_request_cancelled').length === 1, 'friend_request_cancelled');
    await alice.client.sendFriendRequest(carol.username);
    expect(await carol.client.rejectFriendRequest(alice.username)).toMatchObject({ result: 'rejected' });
    await waitFor(() => eventData(alice, 'friend_request_rejected').length === 1, 'friend_request_rejected');

    expect(await alice.client.sendFriendRequest(bob.username)).toMatchObject({ result: 'requested', user: { _id: bob.userId } });
    await waitFor(() => eventData(bob, 'friend_request_received').length === 1, 'friend_request_received');
    expect((await bob.client.getFriendRequests()).incoming.map((r) => r.user._id)).toEqual([alice.userId]);
    expect((await alice.client.getFriendRequests()).outgoing.map((r) => r.user._id)).toEqual([bob.userId]);
    await expect(alice.client.sendFriendRequest(bob.username)).rejects.toMatchObject({ code: 'conflict' });

    expect(await bob.client.acceptFriendRequest(alice.username)).toMatchObject({ result: 'accepted' });
    await waitFor(() => eventData(alice, 'friendship_created').length === 1, 'friendship_created');
    expect(eventData(alice, 'friend_request_accepted')).toHaveLength(1);
    const friends = await alice.client.getFriends();
    expect(friends).toEqual([expect.objectContaining({ _id: bob.userId, online: true })]);

    expect(await alice.client.unfriend(bob.username)).toMatchObject({ result: 'unfriended' });
    await waitFor(() => eventData(bob, 'friendship_deleted').length === 1, 'friendship_deleted');
    expect(await bob.client.getFriends()).toEqual([]);
  });

  it('follows conversations created, changed and left while connected', async () => {
    const alice = await participant('alice');
    const bob = await participant('bob');
    const carol = await participant('carol');
    const dave = await participant('dave');
    await Promise.all([connectSynced(bob), connectSynced(carol)]);

    const group = await alice.client.createGroup('team', [bob.userId, carol.userId]);
    await waitFor(() => eventData(bob, 'conversation_created').length === 1, 'conversation_created');
    expect(bob.client.lastSeq(group._id)).toBe(0); // followed from the event

    await alice.client.rest.postMessage(group._id, { content: 'over REST' });
    await waitFor(() => timeline(bob, group._id).length === 1, 'bob receives the REST message');
    expect(timeline(bob, group._id)[0]).toMatchObject({ source: 'live', message: { seq: 1, content: 'over REST' } });

    await alice.client.rest.updateGroup(group._id, { name: 'team 2' });
    await waitFor(() => eventData(bob, 'conversation_updated').length === 1, 'conversation_updated');

    await alice.client.rest.addMembers(group._id, [dave.userId]);
    await waitFor(() => eventData(bob, 'member_joined').length === 1, 'member_joined');

    await alice.client.rest.removeMember(group._id, carol.userId);
    await waitFor(() => eventData(carol, 'member_left').length === 1, 'member_left (carol)');
    await waitFor(() => eventData(bob, 'member_left').length === 1, 'member_left (bob)');
    // Carol is out: the SDK stops following, and the server refuses her.
    expect(carol.client.lastSeq(group._id)).toBeNull();
    await expect(carol.client.sendMessage(group._id, 'still here?')).rejects.toMatchObject({ code: 'not_found' });

    // Roles: Bob, made an admin, then given the group, hears both; the member list says who is what.
    await alice.client.rest.setRole(group._id, bob.userId, 'admin');
    await waitFor(() => eventData(bob, 'member_role_changed').length === 1, 'member_role_changed (admin)');
    expect(eventData(bob, 'member_role_changed')[0]).toEqual({
      conversationId: group._id,
      userId: bob.userId,
      role: 'admin',
      changedBy: alice.userId,
    });
    const handed = await alice.client.rest.transferOwnership(group._id, bob.userId);
    expect(handed).toMatchObject({ ownerId: bob.userId, admins: [alice.userId] });
    await waitFor(() => eventData(bob, 'member_role_changed').length === 3, 'member_role_changed (owner, admin)');
    const members = await bob.client.rest.members(group._id);
    const roles = Object.fromEntries(members.items.map((m) => [m._id, m.role]));
    expect(roles).toEqual({ [alice.userId]: 'admin', [bob.userId]: 'owner', [dave.userId]: 'member' });
    await expect(dave.client.rest.removeMember(group._id, alice.userId)).rejects.toMatchObject({ status: 403, code: 'forbidden' });
  });
});
