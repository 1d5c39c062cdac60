/**
 * Harness of the integration tests: the deployed stack, SDK clients whose every frame is checked against
 * docs/asyncapi.yaml, what each client saw, the AWS side (DynamoDB, API Gateway Management API) and bounded waits.
 *
 * Why this module exists: each test should read as a scenario (who connects, who sends, what everyone must
 * have seen), not as plumbing. The stack comes from the JSON file named by `CHAT_ENDPOINTS_FILE` (written by
 * `cargo xtask deploy`/`dev`); nothing here talks to anything but that stack, and every wait has a deadline.
 */

import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';

import { ApiGatewayManagementApiClient, DeleteConnectionCommand } from '@aws-sdk/client-apigatewaymanagementapi';
import { DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { WebSocket } from 'ws';

import {
  ChatClient,
  type ChatClientOptions,
  type ChatError,
  type ConnectionState,
  type MessageDelivery,
  type PresenceChange,
  type Session,
  type WebSocketConstructorLike,
} from '../src/index.js';
import { AsyncApiSchemas, FrameChecker } from './spec.js';

// ---------------------------------------------------------------- the stack

export interface Stack {
  http: string;
  websocket: string;
  awsEndpoint: string;
  region: string;
  tableName: string;
}

function loadStack(): Stack {
  const path = process.env.CHAT_ENDPOINTS_FILE;
  if (!path) {
    throw new Error(
      'CHAT_ENDPOINTS_FILE is not set: point it at the endpoints JSON of a deployed stack ' +
        '(e.g. CHAT_ENDPOINTS_FILE=../../.local/endpoints.json after `cargo xtask dev`)',
    );
  }
  let parsed: Partial<Stack>;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8')) as Partial<Stack>;
  } catch (error) {
    throw new Error(`cannot read the endpoints file ${path}: ${String(error)}`);
  }
  for (const field of ['http', 'websocket', 'awsEndpoint', 'region', 'tableName'] as const) {
    if (typeof parsed[field] !== 'string') throw new Error(`${path}: field \`${field}\` is missing`);
  }
  const stack = parsed as Stack;
  for (const url of [stack.http, stack.websocket, stack.awsEndpoint]) {
    // The tests create users and close connections: never point them at anything but a local stack.
    if (!/^(https?|wss?):\/\/(127\.0\.0\.1|localhost)(:\d+)?(\/|$)/.test(url)) {
      throw new Error(`${path}: ${url} is not a local endpoint; the integration tests only run against 127.0.0.1`);
    }
  }
  return stack;
}

export const stack = loadStack();

/** Every frame of every client of the current test file, checked against docs/asyncapi.yaml. */
export const checker = new FrameChecker(new AsyncApiSchemas());

const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };
const dynamo = new DynamoDBClient({ endpoint: stack.awsEndpoint, region: stack.region, credentials, maxAttempts: 2 });
const management = new ApiGatewayManagementApiClient({
  // The emulator serves the Management API under the WebSocket stage URL, as AWS does under `https://…/<stage>`.
  endpoint: stack.websocket.replace(/^ws(s?):/, 'http$1:'),
  region: stack.region,
  credentials,
  maxAttempts: 2,
});

/** The live connection ids of a user, from their presence record (docs/data-model.md: `USER#<id>`/`PRESENCE`). */
export async function connectionIdsOf(userId: string): Promise<string[]> {
  const answer = await dynamo.send(
    new GetItemCommand({
      TableName: stack.tableName,
      Key: { pk: { S: `USER#${userId}` }, sk: { S: 'PRESENCE' } },
      ConsistentRead: true,
    }),
    { abortSignal: AbortSignal.timeout(10_000) },
  );
  // Each entry is `<connectionId> <connectedAt> <expiresAt>`.
  return (answer.Item?.conns?.SS ?? []).map((entry) => entry.split(' ')[0] as string);
}

/** What API Gateway does when a connection is closed on the server side: `DeleteConnection`. */
export async function closeOnServer(connectionId: string): Promise<void> {
  await management.send(new DeleteConnectionCommand({ ConnectionId: connectionId }), {
    abortSignal: AbortSignal.timeout(10_000),
  });
}

// ---------------------------------------------------------------- clients that record what they saw

export const PASSWORD = 'correct-horse-battery';

/** A unique, valid username (`[A-Za-z0-9_.-]{3,32}`), so tests and runs never collide. */
export function uniqueName(prefix: string): string {
  return `${prefix}_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
}

/** A `WebSocket` (the `ws` package) whose frames in both directions go through the checker and into `frames`. */
function checkedWebSocket(frames: Array<Record<string, unknown>>): WebSocketConstructorLike {
  return class CheckedWebSocket extends WebSocket {
    constructor(url: string) {
      super(url, { handshakeTimeout: 10_000 });
      // Registered before the SDK sets `onmessage`, so a frame is checked before the SDK acts on it.
      this.on('message', (data: Buffer) => {
        const text = data.toString('utf8');
        checker.serverFrame(text);
        try {
          frames.push(JSON.parse(text) as Record<string, unknown>);
        } catch {
          // recorded as a violation by the checker
        }
      });
    }

    override send(data: string, ...rest: unknown[]): void {
      checker.clientFrame(String(data));
      (super.send as (data: string, ...rest: unknown[]) => void)(data, ...rest);
    }
  } as unknown as WebSocketConstructorLike;
}

/** A registered user with an SDK client and everything that client reported. */
export interface Participant {
  client: ChatClient;
  session: Session;
  userId: string;
  username: string;
  /** Every `message` event (the SDK's ordered, deduplicated timeline). */
  messages: MessageDelivery[];
  presence: PresenceChange[];
  states: ConnectionState[];
  /** `error` events (errors that answer no request). */
  errors: ChatError[];
  synced: Array<{ reconnect: boolean }>;
  /** Every server frame, parsed, as received. */
  frames: Array<Record<string, unknown>>;
}

const participants: Participant[] = [];

/** Registers a fresh user and builds its client (not connected yet). */
export async function participant(prefix: string, options: Partial<ChatClientOptions> = {}): Promise<Participant> {
  const frames: Array<Record<string, unknown>> = [];
  const client = ChatClient.fromEndpoints(stack, {
    WebSocket: checkedWebSocket(frames),
    requestTimeoutMs: 15_000,
    ...options,
  });
  const username = uniqueName(prefix);
  const session = await client.register({ username, password: PASSWORD });
  const p: Participant = {
    client,
    session,
    userId: session.user._id,
    username,
    messages: [],
    presence: [],
    states: [],
    errors: [],
    synced: [],
    frames,
  };
  client.on('message', (delivery) => p.messages.push(delivery));
  client.on('presence', (change) => p.presence.push(change));
  client.on('state', ({ current }) => p.states.push(current));
  client.on('error', (error) => p.errors.push(error));
  client.on('synced', (info) => p.synced.push(info));
  participants.push(p);
  return p;
}

/** Connects and waits for the first `synced` (re-joins, presence snapshot and catch-up done). */
export async function connectSynced(p: Participant): Promise<void> {
  const before = p.synced.length;
  await withTimeout(p.client.connect(), 20_000, `${p.username} connecting`);
  await waitFor(() => p.synced.length > before, `${p.username} synced`);
}

/** Disconnects every client of the test (afterEach). */
export function disconnectAll(): void {
  for (const p of participants.splice(0)) p.client.disconnect();
}

/** The server frames `p` received with this `event`. */
export function framesOf(p: Participant, event: string): Array<Record<string, unknown>> {
  return p.frames.filter((frame) => frame.event === event);
}

/** The `data` of the frames `p` received with this `event`. */
export function eventData<T = Record<string, unknown>>(p: Participant, event: string): T[] {
  return framesOf(p, event).map((frame) => frame.data as T);
}

/** The messages of one conversation in `p`'s timeline, in delivery order. */
export function timeline(p: Participant, conversationId: string): MessageDelivery[] {
  return p.messages.filter((delivery) => delivery.conversationId === conversationId);
}

// ---------------------------------------------------------------- bounded waiting

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `condition` every 50 ms until it holds; fails after `timeoutMs` naming what it waited for. */
export async function waitFor(condition: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

export async function withTimeout<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms: ${what}`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A promise the test opens when it wants (used to hold a client's reconnect). */
export function gate(): { wait: () => Promise<void>; open: () => void; close: () => void } {
  let opened = true;
  const waiters: Array<() => void> = [];
  return {
    wait: () => (opened ? Promise.resolve() : new Promise<void>((resolve) => waiters.push(resolve))),
    open: () => {
      opened = true;
      for (const resolve of waiters.splice(0)) resolve();
    },
    close: () => {
      opened = false;
    },
  };
}
