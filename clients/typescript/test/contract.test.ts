/**
 * docs/asyncapi.yaml against itself and against the SDK: the document lists exactly the SDK's actions and
 * events, every example in it validates against its schema, the schemas reject what they should, and every
 * frame the SDK sends validates against the schema of its action.
 *
 * The validator below implements the JSON Schema subset the document promises to use (the same one the Rust
 * end-to-end checker understands), plus the numeric and string bounds.
 */

import { readFileSync } from 'node:fs';

import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

import { ACTIONS, type Action, REPLY_EVENTS, SERVER_EVENTS, type ServerEventName } from '../src/index.js';
import { ALICE, CONVERSATION, message } from './fakes.js';
import { connected, harness } from './harness.js';

// ---------------------------------------------------------------- compile-time completeness of the lists

type Missing<Union extends string, List extends readonly string[]> = Exclude<Union, List[number]>;
const allActionsListed: [Missing<Action, typeof ACTIONS>] extends [never] ? true : false = true;
const allEventsListed: [Missing<ServerEventName, typeof SERVER_EVENTS>] extends [never] ? true : false = true;

// ---------------------------------------------------------------- the document and a validator

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Schema = { [key: string]: Json };

const doc = parse(readFileSync(new URL('../../../docs/asyncapi.yaml', import.meta.url), 'utf8')) as {
  asyncapi: string;
  operations: Record<string, { action: 'send' | 'receive'; messages: Array<{ $ref: string }>; reply?: { messages: Array<{ $ref: string }> } }>;
  channels: { chat: { messages: Record<string, { $ref: string }> } };
  components: { messages: Record<string, { name: string; payload: Schema; examples?: Array<{ name?: string; payload: Json }> }> };
};

function resolve(node: Json): Json {
  if (node && typeof node === 'object' && !Array.isArray(node) && typeof node.$ref === 'string') {
    const pointer = node.$ref.replace(/^#\//, '').split('/');
    let target: unknown = doc;
    for (const part of pointer) {
      target = (target as Record<string, unknown>)[part.replace(/~1/g, '/').replace(/~0/g, '~')];
      if (target === undefined) throw new Error(`dangling $ref ${node.$ref}`);
    }
    return resolve(target as Json);
  }
  return node;
}

function typeOf(value: Json): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

/** The first violation of `schema` by `value`, or null. */
function violation(schemaNode: Json, value: Json, at = '$'): string | null {
  const schema = resolve(schemaNode) as Schema;
  for (const part of (schema.allOf as Json[] | undefined) ?? []) {
    const problem = violation(part, value, at);
    if (problem) return problem;
  }
  if (Array.isArray(schema.oneOf)) {
    const matching = schema.oneOf.filter((option) => violation(option, value, at) === null).length;
    if (matching !== 1) return `${at}: matches ${matching} of the oneOf alternatives`;
  }
  if (schema.type !== undefined) {
    const allowed = Array.isArray(schema.type) ? schema.type : [schema.type];
    const actual = typeOf(value);
    if (!allowed.includes(actual) && !(actual === 'integer' && allowed.includes('number'))) {
      return `${at}: expected ${allowed.join('|')}, got ${JSON.stringify(value)}`;
    }
  }
  if ('const' in schema && JSON.stringify(schema.const) !== JSON.stringify(value)) {
    return `${at}: expected ${JSON.stringify(schema.const)}, got ${JSON.stringify(value)}`;
  }
  if (Array.isArray(schema.enum) && !schema.enum.some((option) => JSON.stringify(option) === JSON.stringify(value))) {
    return `${at}: ${JSON.stringify(value)} is not one of ${JSON.stringify(schema.enum)}`;
  }
  if (typeof value === 'string') {
    const length = [...value].length;
    if (typeof schema.minLength === 'number' && length < schema.minLength) return `${at}: shorter than ${schema.minLength}`;
    if (typeof schema.maxLength === 'number' && length > schema.maxLength) return `${at}: longer than ${schema.maxLength}`;
    if (typeof schema.pattern === 'string' && !new RegExp(schema.pattern, 'u').test(value)) return `${at}: does not match ${schema.pattern}`;
  }
  if (typeof value === 'number' && typeof schema.minimum === 'number' && value < schema.minimum) {
    return `${at}: below ${schema.minimum}`;
  }
  if (Array.isArray(value)) {
    if (typeof schema.minItems === 'number' && value.length < schema.minItems) return `${at}: fewer than ${schema.minItems} items`;
    if (typeof schema.maxItems === 'number' && value.length > schema.maxItems) return `${at}: more than ${schema.maxItems} items`;
    if (schema.items !== undefined) {
      for (const [i, item] of value.entries()) {
        const problem = violation(schema.items, item, `${at}[${i}]`);
        if (problem) return problem;
      }
    }
  }
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    for (const name of (schema.required as string[] | undefined) ?? []) {
      if (!(name in value)) return `${at}: missing required property \`${name}\``;
    }
    const properties = (schema.properties ?? {}) as Record<string, Json>;
    for (const [name, field] of Object.entries(value)) {
      const inner = `${at}.${name}`;
      if (name in properties) {
        const problem = violation(properties[name] as Json, field, inner);
        if (problem) return problem;
      } else if (schema.additionalProperties === false) {
        return `${inner}: not documented`;
      } else if (schema.additionalProperties && typeof schema.additionalProperties === 'object') {
        const problem = violation(schema.additionalProperties, field, inner);
        if (problem) return problem;
      }
    }
  }
  return null;
}

function payloadOf(messageKey: string): Schema {
  const entry = doc.components.messages[messageKey];
  if (!entry) throw new Error(`no components.messages.${messageKey}`);
  return entry.payload;
}

const valid = (messageKey: string, frame: unknown) => violation(payloadOf(messageKey), frame as Json);
/** The key of the message a channel reference points to (checking that it resolves). */
function messageKeyOf(ref: { $ref: string }): string {
  resolve(ref);
  return ref.$ref.split('/').pop() as string;
}

// ---------------------------------------------------------------- the tests

describe('docs/asyncapi.yaml', () => {
  it('is AsyncAPI 3.0.0 and lists exactly the actions and events of the SDK', () => {
    expect(allActionsListed && allEventsListed).toBe(true);
    expect(doc.asyncapi).toBe('3.0.0');
    const operations = Object.values(doc.operations);
    const sent = operations.filter((op) => op.action === 'send').flatMap((op) => op.messages.map(messageKeyOf));
    const received = operations.filter((op) => op.action === 'receive').flatMap((op) => op.messages.map(messageKeyOf));
    expect(new Set(sent)).toEqual(new Set(ACTIONS));
    expect(new Set(received)).toEqual(new Set([...SERVER_EVENTS, ...REPLY_EVENTS]));
    for (const action of ACTIONS) {
      expect(doc.components.messages[action]?.name).toBe(action);
      const reply = doc.operations[action]?.reply?.messages.map(messageKeyOf);
      expect(reply, action).toEqual(action === 'ping' ? ['pong'] : [`ack.${action}`, 'error']);
    }
    for (const event of [...SERVER_EVENTS, ...REPLY_EVENTS]) expect(doc.components.messages[event]?.name).toBe(event);
    // Every message of the channel is a component message under the same key.
    for (const [key, ref] of Object.entries(doc.channels.chat.messages)) expect(ref.$ref).toBe(`#/components/messages/${key}`);
  });

  it('has valid examples for every message', () => {
    for (const [key, entry] of Object.entries(doc.components.messages)) {
      expect(entry.examples?.length, `${key} has examples`).toBeGreaterThan(0);
      for (const example of entry.examples ?? []) {
        expect(valid(key, example.payload), `${key} ${example.name ?? ''}`).toBeNull();
        // An action-specific ack is also a valid generic `ack` (its alternatives never overlap).
        if (key.startsWith('ack.')) expect(valid('ack', example.payload), `${key} as ack`).toBeNull();
      }
    }
  });

  it('rejects frames that break the protocol', () => {
    const frame = { event: 'receive_message', data: { message: message(8), conversationId: CONVERSATION } };
    expect(valid('receive_message', frame)).toBeNull();
    const withFile = { ...frame, data: { ...frame.data, message: message(8, { type: 'file', fileUrl: 'https://x/y', fileName: 'y', clientMessageId: 'tab-1', editedAt: '2026-11-21T10:31:00.000Z', edited: true, sender: { ...ALICE, avatar: 'https://x/a.png' } }) } };
    expect(valid('receive_message', withFile)).toBeNull();

    const broken = (mutate: (m: Record<string, unknown>) => void) => {
      const m = structuredClone(message(8)) as unknown as Record<string, unknown>;
      mutate(m);
      return valid('receive_message', { event: 'receive_message', data: { message: m, conversationId: CONVERSATION } });
    };
    expect(broken((m) => delete m.editedAt)).toMatch(/missing required property `editedAt`/);
    expect(broken((m) => (m.extra = 1))).toMatch(/not documented/);
    expect(broken((m) => (m.fileUrl = null))).toMatch(/expected string/);
    expect(broken((m) => (m.seq = '8'))).toMatch(/expected integer/);
    expect(broken((m) => (m.status = 'delivered'))).toMatch(/expected "sent"/);
    expect(broken((m) => ((m.sender as Record<string, unknown>).avatar = 5))).toMatch(/avatar/);
    expect(broken((m) => (m.reactions = { '👍': [1] }))).toMatch(/expected string/);

    expect(valid('receive_message', { ...frame, requestId: 'r1' })).toMatch(/requestId: not documented/);
    const delivered = { conversationId: CONVERSATION, messageId: `${CONVERSATION}-8`, status: 'delivered' };
    expect(valid('message_status', { event: 'message_status', data: { ...delivered, userIds: ['u'] } })).toBeNull();
    expect(valid('message_status', { event: 'message_status', data: { ...delivered, userId: 'u' } })).not.toBeNull();
    expect(valid('message_status', { event: 'message_status', data: { ...delivered, status: 'read', userId: 'u' } })).toBeNull();
    expect(valid('error', { event: 'error', data: { success: false, code: 'nope', message: 'x' } })).not.toBeNull();
    expect(valid('ack', { event: 'ack', requestId: 'r', data: { success: true, surprise: 1 } })).not.toBeNull();
    expect(valid('ack.send_message', { event: 'ack', data: { success: true, message: message(1), duplicate: false } })).not.toBeNull();
    expect(valid('ack.cancel_friend_request', { event: 'ack', data: { success: true, user: ALICE, result: 'accepted' } })).not.toBeNull();
    expect(valid('user_offline', { event: 'user_offline', data: { userId: 'u', username: 'u', lastSeen: null } })).toBeNull();
    expect(valid('pong', { event: 'pong', data: { extra: true } })).not.toBeNull();
    expect(valid('mark_read', { action: 'mark_read', conversationId: 'c', messageIds: ['c-1'], lastMessageId: 'c-1' })).not.toBeNull();
  });

  it('describes every frame the SDK sends', async () => {
    const h = harness();
    const socket = await connected(h);
    const c = h.client;
    const calls: Array<() => Promise<unknown>> = [
      () => c.ping(),
      () => c.joinConversations([CONVERSATION]),
      () => c.joinConversation(CONVERSATION),
      () => c.leaveConversation(CONVERSATION),
      () => c.sendMessage(CONVERSATION, 'hi'),
      () => c.sendMessage(CONVERSATION, '', { type: 'image', fileUrl: 'https://cdn.example.com/a.png', fileName: 'a.png' }),
      () => c.editMessage(`${CONVERSATION}-1`, 'fixed'),
      () => c.deleteMessage(`${CONVERSATION}-1`),
      () => c.markRead({ conversationId: CONVERSATION, lastMessageId: `${CONVERSATION}-1` }),
      () => c.markRead({ conversationId: CONVERSATION, messageIds: [`${CONVERSATION}-1`] }),
      () => c.typing(CONVERSATION, true),
      () => c.addReaction(`${CONVERSATION}-1`, '👍'),
      () => c.removeReaction(`${CONVERSATION}-1`, '👍'),
      () => c.sendFriendRequest('bob'),
      () => c.cancelFriendRequest('bob'),
      () => c.acceptFriendRequest('bob'),
      () => c.rejectFriendRequest('bob'),
      () => c.unfriend('bob'),
      () => c.blockUser('b0b00000000000000000000000000002'),
      () => c.unblockUser('b0b00000000000000000000000000002'),
      () => c.blockedUsers(),
      () => c.setStatus('away'),
      () => c.setAppState('background'),
      () => c.getFriends(),
      () => c.getFriendRequests(),
      () => c.getStatus(),
      () => c.getPresence(),
    ];
    for (const call of calls) void call().catch(() => undefined);
    const actions = new Set(socket.sent.map((frame) => frame.action));
    expect(actions).toEqual(new Set(ACTIONS));
    for (const frame of socket.sent) expect(valid(frame.action, frame), JSON.stringify(frame)).toBeNull();
    c.disconnect();
  });
});
