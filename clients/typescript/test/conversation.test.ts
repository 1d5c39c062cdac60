/**
 * `client.conversation(id)`: one conversation's actions and events through one object, consistent with the flat
 * client methods it delegates to.
 */

import { describe, expect, it } from 'vitest';

import { ChatError } from '../src/index.js';
import { ALICE, BOB, CONVERSATION, message, settle } from './fakes.js';
import { connected, harness } from './harness.js';

const OTHER = 'c0000000000000000000000000000099';

describe('ChatConversation', () => {
  it('is one object per id', () => {
    const h = harness();
    expect(h.client.conversation(CONVERSATION)).toBe(h.client.conversation(CONVERSATION));
    expect(h.client.conversation(OTHER)).not.toBe(h.client.conversation(CONVERSATION));
  });

  it('hears only its own conversation, until unsubscribed', async () => {
    const h = harness();
    const socket = await connected(h);
    const conversation = h.client.conversation(CONVERSATION);
    const typing: string[] = [];
    const edits: string[] = [];
    const offTyping = conversation.on('typing_status', ({ userId }) => typing.push(userId));
    conversation.on('message_edited', ({ messageId }) => edits.push(messageId));

    socket.event('typing_status', { userId: BOB._id, username: 'bob', conversationId: CONVERSATION, isTyping: true });
    socket.event('typing_status', { userId: BOB._id, username: 'bob', conversationId: OTHER, isTyping: true });
    socket.event('message_edited', { messageId: `${OTHER}-1`, newContent: 'x', editedAt: 't', conversationId: OTHER });
    socket.event('message_edited', {
      messageId: `${CONVERSATION}-2`,
      newContent: 'y',
      editedAt: 't',
      conversationId: CONVERSATION,
    });
    offTyping();
    socket.event('typing_status', { userId: ALICE._id, username: 'alice', conversationId: CONVERSATION, isTyping: true });
    await settle();

    expect(typing).toEqual([BOB._id]);
    expect(edits).toEqual([`${CONVERSATION}-2`]);
  });

  it('sends, reacts and marks read with its own id, as the flat methods would', async () => {
    const h = harness();
    const socket = await connected(h);
    const conversation = h.client.conversation(CONVERSATION);

    const sending = conversation.send('hello');
    const sent = socket.last('send_message');
    expect(sent).toMatchObject({ conversationId: CONVERSATION, content: 'hello', type: 'text', clientMessageId: 'tab1-1' });
    const stored = message(1, { sender: ALICE, content: 'hello', clientMessageId: 'tab1-1' });
    socket.ack(sent, { message: stored });
    await expect(sending).resolves.toEqual({ message: stored, duplicate: false, clientMessageId: 'tab1-1' });
    expect(conversation.lastSeq).toBe(1);

    const reacting = conversation.addReaction(`${CONVERSATION}-1`, '👍');
    socket.ack(socket.last('add_reaction'), { messageId: `${CONVERSATION}-1`, emoji: '👍', changed: true });
    await expect(reacting).resolves.toBe(true);

    const reading = conversation.markReadUpTo(1);
    expect(socket.last('mark_read')).toMatchObject({ conversationId: CONVERSATION, lastMessageId: `${CONVERSATION}-1` });
    socket.ack(socket.last('mark_read'), { conversationId: CONVERSATION, lastReadSeq: 1, messageIds: [] });
    await expect(reading).resolves.toEqual({ conversationId: CONVERSATION, lastReadSeq: 1, messageIds: [] });
  });

  it("refuses another conversation's message id before sending anything", async () => {
    const h = harness();
    const socket = await connected(h);
    const before = socket.sent.length;
    const conversation = h.client.conversation(CONVERSATION);
    await expect(conversation.editMessage(`${OTHER}-3`, 'x')).rejects.toBeInstanceOf(ChatError);
    await expect(conversation.markRead([`${CONVERSATION}-1`, `${OTHER}-2`])).rejects.toThrow(/not in conversation/);
    expect(socket.sent.length).toBe(before);
  });
});
