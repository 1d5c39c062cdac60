/**
 * The web app in Chromium against a deployed stack: two users in two browser contexts, everything one does
 * must show up on the other's screen. Run by `cargo xtask test` (which serves dist/ and sets the environment),
 * or by hand with a stack from `cargo xtask dev`:
 *
 *   npm run build && CHAT_ENDPOINTS_FILE=../../.local/endpoints.json npm run test:browser
 *
 * The tests run in order and build on each other (one conversation, one story). Screenshots go to
 * .local/artifacts/browser/ (CHAT_ARTIFACTS_DIR), plus one per page for a failed test.
 */

import { writeFileSync } from 'node:fs';
import { deflateSync } from 'node:zlib';

import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import {
  artifact,
  closeConnection,
  connectionIds,
  launchChromium,
  loadEndpoints,
  rest,
  serveApp,
  sessionOf,
  type StackEndpoints,
} from './support';

/** How long anything may take to appear on the other side (cold Lambdas on the emulator included). */
const SEEN = 20_000;
const PASSWORD = 'password123';
/** Makes this run's usernames unique on a long-lived dev stack (names are 3-32 of [A-Za-z0-9_.-]). */
const run = Math.random().toString(36).slice(2, 8).padEnd(6, '0');

interface User {
  name: string;
  id: string;
  context: BrowserContext;
  page: Page;
  console: string[];
  frames: string[];
}

let endpoints: StackEndpoints;
let app: { url: string; close: () => Promise<void> };
let browser: Browser;
let alice: User;
let bob: User;
let privateChat: string;
let groupChat: string;

/**
 * Test hook, installed before the app's scripts: while `__chatTest.blockSockets` is true, every new WebSocket
 * goes to a closed loopback port and fails at once, so the app stays `reconnecting` until the test lets it
 * through. The app itself is unchanged: it gets this constructor as the global `WebSocket`.
 */
function blockableSockets(): void {
  const Native = window.WebSocket;
  const hook = { blockSockets: false };
  (window as unknown as { __chatTest: typeof hook }).__chatTest = hook;
  window.WebSocket = class extends Native {
    constructor(url: string | URL, protocols?: string | string[]) {
      super(hook.blockSockets ? 'ws://127.0.0.1:9/blocked' : url, protocols);
    }
  };
}

async function openPage(user: Pick<User, 'context' | 'console' | 'frames'>, label: string): Promise<Page> {
  const page = await user.context.newPage();
  page.setDefaultTimeout(SEEN);
  page.on('console', (message) => {
    if (message.type() === 'error' || message.type() === 'warning') user.console.push(`[${label}] ${message.type()}: ${message.text()}`);
  });
  page.on('pageerror', (error) => user.console.push(`[${label}] pageerror: ${error.message}`));
  // Every WebSocket frame, for the artifacts (frames-<user>.log): what the app sent and received.
  page.on('websocket', (socket) => {
    const at = () => new Date().toISOString().slice(11, 23);
    user.frames.push(`${at()} [${label}] open ${socket.url().replace(/token=[^&]+/, 'token=…')}`);
    socket.on('framesent', (frame) => user.frames.push(`${at()} [${label}] > ${String(frame.payload)}`));
    socket.on('framereceived', (frame) => user.frames.push(`${at()} [${label}] < ${String(frame.payload)}`));
    socket.on('close', () => user.frames.push(`${at()} [${label}] closed`));
  });
  await page.goto(app.url, { waitUntil: 'load' });
  return page;
}

async function newUser(label: string): Promise<User> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: 'en-GB', timezoneId: 'UTC' });
  await context.addInitScript(blockableSockets);
  const user = { name: `${label}_${run}`, id: '', context, console: [] as string[], frames: [] as string[] };
  const page = await openPage(user, label);
  await page.getByTestId('login-username').fill(user.name);
  await page.getByTestId('login-password').fill(PASSWORD);
  await page.getByTestId('register-submit').click();
  await connected(page);
  const id = await page.getByTestId('me').getAttribute('data-user-id');
  return { ...user, id: id!, page };
}

async function connected(page: Page): Promise<void> {
  await page.locator('[data-testid=app][data-connection=connected]').waitFor();
}

function message(page: Page, text: string | RegExp): Locator {
  return page.locator('[data-testid=message]', { hasText: text });
}

function conversationItem(page: Page, conversationId: string): Locator {
  return page.locator(`[data-testid=conversation-item][data-conversation-id="${conversationId}"]`);
}

async function send(page: Page, text: string): Promise<void> {
  await page.getByTestId('composer-input').fill(text);
  await page.getByTestId('composer-send').click();
}

/** Resolves once `locator`'s text content contains `text`. */
async function hasText(locator: Locator, text: string): Promise<void> {
  await locator.filter({ hasText: text }).first().waitFor();
}

/** A `width` × `height` RGB PNG of a colour gradient, encoded here (zlib from Node, CRC-32 by hand). */
function gradientPng(width: number, height: number): Buffer {
  const rows = Buffer.alloc((width * 3 + 1) * height);
  for (let y = 0; y < height; y++) {
    const row = y * (width * 3 + 1);
    for (let x = 0; x < width; x++) rows.set([(x * 2) % 256, (y * 4) % 256, 160], row + 1 + x * 3);
  }
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const out = Buffer.alloc(body.length + 8);
    out.writeUInt32BE(data.length, 0);
    body.copy(out, 4);
    out.writeUInt32BE(crc32(body), body.length + 4);
    return out;
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8);
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([signature, chunk('IHDR', header), chunk('IDAT', deflateSync(rows)), chunk('IEND', Buffer.alloc(0))]);
}

function crc32(bytes: Buffer): number {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: artifact(name) });
}

beforeAll(async () => {
  endpoints = loadEndpoints();
  // A browser calls the HTTP API from another origin: without CORS nothing below can work, so say so first.
  const preflight = await fetch(`${endpoints.http}/auth/login`, {
    method: 'OPTIONS',
    headers: { origin: 'http://127.0.0.1:5173', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
    signal: AbortSignal.timeout(15_000),
  });
  if (!preflight.headers.get('access-control-allow-origin')) {
    throw new Error(
      `the HTTP API refuses CORS preflights (${preflight.status} ${await preflight.text()}): the stack's ` +
        'CorsConfiguration is missing or was not applied by the emulator',
    );
  }
  app = await serveApp(endpoints);
  browser = await launchChromium();
  alice = await newUser('alice');
  bob = await newUser('bob');
}, 120_000);

afterEach(async (context) => {
  if (context.task.result?.state !== 'fail') return;
  const name = context.task.name.replace(/[^a-z0-9]+/gi, '-').slice(0, 60);
  for (const user of [alice, bob]) {
    if (user?.page && !user.page.isClosed()) await user.page.screenshot({ path: artifact(`failed-${name}-${user.name.split('_')[0]}.png`) }).catch(() => undefined);
  }
});

afterAll(async () => {
  for (const user of [alice, bob]) {
    if (!user) continue;
    const label = user.name.split('_')[0];
    writeFileSync(artifact(`console-${label}.log`), user.console.join('\n') + '\n');
    writeFileSync(artifact(`frames-${label}.log`), user.frames.join('\n') + '\n');
  }
  await browser?.close();
  await app?.close();
}, 60_000);

describe('web app, two users', () => {
  it('starts a private chat; the message arrives with an unread count and is marked delivered', async () => {
    await alice.page.getByTestId('new-private').click();
    await alice.page.getByTestId('user-search').fill(bob.name);
    await alice.page.locator(`[data-testid=user-result][data-username="${bob.name}"]`).click();
    await hasText(alice.page.getByTestId('conversation-header'), bob.name);
    privateChat = (await alice.page.getByTestId('conversation').getAttribute('data-conversation-id'))!;

    await send(alice.page, 'Hello Bob');
    const sent = message(alice.page, 'Hello Bob');
    await sent.waitFor();
    // Reconciled with the stored message (the ack), then delivered to Bob's connection.
    await sent.and(alice.page.locator('[data-pending=false]')).waitFor();
    await sent.locator('[data-testid=message-status][data-state=delivered]').waitFor();

    const item = conversationItem(bob.page, privateChat);
    await hasText(item.getByTestId('conversation-last-message'), 'Hello Bob');
    await hasText(item.getByTestId('unread-count'), '1');
  });

  it('opening the conversation clears the unread count and shows a read receipt to the sender', async () => {
    await conversationItem(bob.page, privateChat).click();
    await message(bob.page, 'Hello Bob').waitFor();
    await conversationItem(bob.page, privateChat).getByTestId('unread-count').waitFor({ state: 'detached' });
    await message(alice.page, 'Hello Bob').locator('[data-testid=message-status][data-state=read]').waitFor();
  });

  it('shows the typing indicator while the other user types, and their message', async () => {
    await bob.page.getByTestId('composer-input').pressSequentially('Hi Al', { delay: 30 });
    await hasText(alice.page.getByTestId('typing-indicator'), `${bob.name} is typing`);
    await bob.page.getByTestId('composer-input').pressSequentially('ice', { delay: 30 });
    await bob.page.getByTestId('composer-send').click();
    await message(alice.page, 'Hi Alice').waitFor();
    await alice.page.locator('[data-testid=typing-indicator][data-active=false]').waitFor();
  });

  it('shows a reaction on the other side', async () => {
    const target = message(bob.page, 'Hello Bob');
    await target.hover();
    await target.getByTestId('reaction-add').click();
    await target.locator('[data-testid=reaction-option][data-emoji="👍"]').click();
    await message(alice.page, 'Hello Bob').locator('[data-testid=reaction][data-emoji="👍"][data-count="1"]').waitFor();
  });

  it('shows an edit on the other side', async () => {
    const mine = message(alice.page, 'Hello Bob');
    await mine.hover();
    await mine.getByTestId('message-edit').click();
    await alice.page.getByTestId('edit-input').fill('Hello Bob, how are you?');
    await alice.page.getByTestId('edit-save').click();
    const theirs = message(bob.page, 'Hello Bob, how are you?');
    await theirs.getByTestId('message-edited').waitFor();
    // The reaction survives the edit.
    await theirs.locator('[data-testid=reaction][data-emoji="👍"]').waitFor();
  });

  it('shows a deletion on the other side', async () => {
    await send(alice.page, 'oops, wrong chat');
    const theirs = message(bob.page, 'oops, wrong chat');
    await theirs.waitFor();
    const seq = await theirs.getAttribute('data-seq');
    const mine = message(alice.page, 'oops, wrong chat').and(alice.page.locator('[data-pending=false]'));
    await mine.hover();
    await mine.getByTestId('message-delete').click();
    const deleted = bob.page.locator(`[data-testid=message][data-seq="${seq}"]`);
    await deleted.and(bob.page.locator('[data-deleted=true]')).waitFor();
    await hasText(deleted, 'This message was deleted');
  });

  it('an image attached with the attach button shows inline on the other side; a dropped file shows as a card', async () => {
    await alice.page.getByTestId('composer-file').setInputFiles({ name: 'gradient.png', mimeType: 'image/png', buffer: gradientPng(96, 64) });
    const image = bob.page.locator('[data-testid=message] [data-testid=attachment-image]');
    await image.waitFor({ timeout: SEEN });
    // The thumbnail actually loaded from its read URL (a broken image has no natural size).
    await bob.page.waitForFunction(
      () => {
        const img = document.querySelector<HTMLImageElement>('[data-testid=attachment-image]');
        return img !== null && img.complete && img.naturalWidth > 0;
      },
      undefined,
      { timeout: SEEN },
    );
    expect(await bob.page.getByTestId('attachment-image-link').last().getAttribute('href')).toMatch(/media\//);

    // Drag and drop a document onto the composer.
    await alice.page.evaluate(() => {
      const transfer = new DataTransfer();
      transfer.items.add(new File(['minutes of the meeting'], 'minutes.txt', { type: 'text/plain' }));
      const composer = document.querySelector('[data-testid=composer]');
      composer?.dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, bubbles: true, cancelable: true }));
    });
    const card = bob.page.locator('[data-testid=attachment-file]', { hasText: 'minutes.txt' });
    await card.waitFor({ timeout: SEEN });
    await card.getByTestId('attachment-link').waitFor();
    await shot(bob.page, 'attachments.png');
  });

  it('friend request, custom status and presence changes reach the other user', async () => {
    await alice.page.getByTestId('tab-friends').click();
    await alice.page.getByTestId('friend-username').fill(bob.name);
    await alice.page.getByTestId('friend-send').click();
    await alice.page.locator(`[data-testid=friend-outgoing][data-username="${bob.name}"]`).waitFor();

    await hasText(bob.page.getByTestId('friend-requests-count'), '1');
    await bob.page.getByTestId('tab-friends').click();
    await bob.page.locator(`[data-testid=friend-request][data-username="${alice.name}"]`).getByTestId('friend-accept').click();
    await bob.page.locator(`[data-testid=friend][data-username="${alice.name}"]`).waitFor();

    const friend = alice.page.locator(`[data-testid=friend][data-username="${bob.name}"]`);
    await friend.locator('[data-testid=presence-dot][data-online=true]').waitFor();

    await bob.page.getByTestId('status-text').fill('In a meeting');
    await bob.page.getByTestId('status-save').click();
    await hasText(bob.page.getByTestId('my-status'), 'In a meeting');
    await hasText(friend.getByTestId('friend-status'), 'In a meeting');
    await alice.page.getByTestId('tab-chats').click();
    await hasText(alice.page.getByTestId('peer-status'), 'In a meeting');
    await shot(alice.page, 'friends-and-status.png');

    // Bob closes his tab: his last connection goes, Alice sees him offline; he comes back, online again.
    await bob.page.close();
    await alice.page.locator('[data-testid=peer-presence][data-online=false]').waitFor();
    await conversationItem(alice.page, privateChat).locator('[data-testid=presence-dot][data-online=false]').waitFor();
    bob.page = await openPage(bob, 'bob-2');
    await bob.page.getByTestId('login-username').fill(bob.name);
    await bob.page.getByTestId('login-password').fill(PASSWORD);
    await bob.page.getByTestId('login-submit').click();
    await connected(bob.page);
    await alice.page.locator('[data-testid=peer-presence][data-online=true]').waitFor();
    await hasText(alice.page.getByTestId('peer-status'), 'In a meeting');
  });

  it('creates a group; the other member scrolls back through its history', async () => {
    await alice.page.getByTestId('new-group').click();
    await alice.page.getByTestId('group-name').fill(`Team ${run}`);
    await alice.page.getByTestId('user-search').fill(bob.name);
    await alice.page.locator(`[data-testid=user-result][data-username="${bob.name}"]`).click();
    await alice.page.getByTestId('group-create').click();
    await hasText(alice.page.getByTestId('conversation-header'), `Team ${run}`);
    const group = (await alice.page.getByTestId('conversation').getAttribute('data-conversation-id'))!;
    groupChat = group;
    await conversationItem(bob.page, group).waitFor();

    // 45 messages over REST (a page of history is 30).
    const { token } = await sessionOf(alice.page);
    for (let i = 1; i <= 45; i += 1) {
      await rest(endpoints, token, 'POST', `/conversations/${group}/messages`, { content: `history ${i}`, type: 'text' });
    }
    await hasText(conversationItem(bob.page, group).getByTestId('unread-count'), '45');
    // A reload (the session survives it) starts from the server's list: only the newest page gets loaded.
    await bob.page.reload();
    await connected(bob.page);
    await hasText(conversationItem(bob.page, group).getByTestId('unread-count'), '45');
    await conversationItem(bob.page, group).click();
    const content = (text: string) => bob.page.locator('[data-testid=message-content]', { hasText: new RegExp(`^${text}$`) });
    await content('history 45').waitFor();
    await content('history 16').waitFor();
    expect(await content('history 15').count()).toBe(0);
    // Scrolling to the top loads older pages until the start of the conversation.
    const list = bob.page.getByTestId('message-list');
    const start = bob.page.getByText('Start of the conversation');
    const deadline = Date.now() + SEEN;
    while (!(await start.isVisible())) {
      if (Date.now() > deadline) throw new Error('scrolling back never reached the start of the conversation');
      await list.evaluate((el) => el.scrollTo({ top: 0 }));
      await bob.page.waitForTimeout(200);
    }
    await content('history 1').waitFor();
    expect(await bob.page.locator('[data-testid=message]').count()).toBe(45);
    await shot(bob.page, 'group-history.png');
  });

  it('a socket closed by the server reconnects and shows what was sent meanwhile', async () => {
    await conversationItem(alice.page, privateChat).click();
    await conversationItem(bob.page, privateChat).click();
    await message(bob.page, 'Hi Alice').waitFor();

    await bob.page.evaluate(() => {
      (window as unknown as { __chatTest: { blockSockets: boolean } }).__chatTest.blockSockets = true;
    });
    const ids = await connectionIds(endpoints, bob.id);
    expect(ids.length).toBeGreaterThan(0);
    for (const id of ids) {
      const status = await closeConnection(endpoints, id);
      expect(status, `DELETE @connections/${id}`).toBeLessThan(300);
    }
    await bob.page.locator('[data-testid=connection-banner][data-state=reconnecting]').waitFor();

    await send(alice.page, 'sent while you were away');
    await message(alice.page, 'sent while you were away').and(alice.page.locator('[data-pending=false]')).waitFor();
    await send(alice.page, 'and one more');
    await message(alice.page, 'and one more').and(alice.page.locator('[data-pending=false]')).waitFor();
    // Bob writes while disconnected: shown at once as pending, sent when the connection is back.
    await send(bob.page, 'queued while offline');
    await message(bob.page, 'queued while offline').locator('[data-testid=message-status][data-state=sending]').waitFor();
    await shot(bob.page, 'reconnecting.png');
    expect(await message(bob.page, 'sent while you were away').count()).toBe(0);

    await bob.page.evaluate(() => {
      (window as unknown as { __chatTest: { blockSockets: boolean } }).__chatTest.blockSockets = false;
    });
    await bob.page.getByTestId('reconnect-now').click().catch(() => undefined); // or wait for the backoff
    await connected(bob.page);
    await bob.page.getByTestId('connection-banner').waitFor({ state: 'detached' });
    await message(bob.page, 'sent while you were away').waitFor();
    await message(bob.page, 'and one more').waitFor();
    await message(bob.page, 'queued while offline').and(bob.page.locator('[data-pending=false]')).waitFor();
    await message(alice.page, 'queued while offline').waitFor();
    // Bob has the conversation open: what he caught up on is read, and Alice sees it.
    await message(alice.page, 'and one more').locator('[data-testid=message-status][data-state=read]').waitFor();
    // Everything once, in order.
    const texts = await bob.page.locator('[data-testid=message-content]').allTextContents();
    const away = texts.indexOf('sent while you were away');
    expect(texts.filter((t) => t === 'sent while you were away')).toHaveLength(1);
    expect(texts[away + 1]).toBe('and one more');
    await shot(bob.page, 'reconnected.png');
  });

  it('the screenshot: a conversation open', async () => {
    await alice.page.getByTestId('composer-input').click();
    await bob.page.getByTestId('composer-input').pressSequentially('See you', { delay: 30 });
    await hasText(alice.page.getByTestId('typing-indicator'), 'is typing');
    // Bob's custom status survived his reconnect (user_online carries none: the app asks get_presence).
    await hasText(alice.page.getByTestId('peer-status'), 'In a meeting');
    await alice.page.mouse.move(0, 0);
    await shot(alice.page, 'web-app.png');
  });

  it('a user who blocks another gets nothing more from them; unblocking opens the chat again', async () => {
    for (const user of [alice, bob]) await conversationItem(user.page, privateChat).click();
    await bob.page.locator('[data-testid=block-toggle][data-blocked=false]').click();
    await bob.page.locator('[data-testid=block-toggle][data-blocked=true]').waitFor();
    await send(alice.page, 'are you ignoring me?');
    await message(alice.page, 'are you ignoring me?').locator('[data-testid=message-status][data-state=failed]').waitFor();
    await bob.page.waitForTimeout(1_500);
    expect(await message(bob.page, 'are you ignoring me?').count()).toBe(0);

    // Bob unblocks from his list of blocked users, and lets only friends start chats with him.
    await bob.page.getByTestId('tab-friends').click();
    await bob.page.locator(`[data-testid=blocked-user][data-username="${alice.name}"]`).getByTestId('unblock').click();
    await bob.page.locator('[data-testid=blocked-user]').waitFor({ state: 'detached' });
    await bob.page.getByTestId('contactable-by').selectOption('friends');
    await bob.page.getByTestId('tab-chats').click();
    await conversationItem(bob.page, privateChat).click();
    await bob.page.locator('[data-testid=block-toggle][data-blocked=false]').waitFor();
    await send(alice.page, 'friends again?');
    await message(bob.page, 'friends again?').waitFor();
    // The setting was stored: the server answers it to a fresh login.
    const login = await fetch(`${endpoints.http}/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: bob.name, password: PASSWORD }),
    }).then((r) => r.json() as Promise<{ token: string }>);
    const privacy = await fetch(`${endpoints.http}/users/me/privacy`, { headers: { authorization: `Bearer ${login.token}` } });
    expect(await privacy.json()).toEqual({ contactableBy: 'friends' });
  });

  it('a user reports a message from its actions, once: a second report is known to the server', async () => {
    await conversationItem(bob.page, privateChat).click();
    const reported = message(bob.page, 'friends again?');
    for (const expected of ['Report sent to the moderators', 'You already reported this']) {
      await reported.hover();
      await reported.getByTestId('message-report').click();
      await bob.page.getByTestId('report-reason').selectOption('harassment');
      await bob.page.getByTestId('report-send').click();
      await hasText(bob.page.getByTestId('toast'), expected);
      await bob.page.getByTestId('report-form').waitFor({ state: 'detached' });
    }
    // Nobody reports their own message.
    expect(await message(alice.page, 'friends again?').getByTestId('message-report').count()).toBe(0);
  });

  it('an @name typed in the composer mentions that member: a mention badge and a marked message; a mute, do not disturb and previews are stored on the server', async () => {
    await conversationItem(alice.page, privateChat).click();
    await conversationItem(bob.page, groupChat).click();
    await send(alice.page, `@${bob.name} have a look`);
    await send(alice.page, 'no mention in this one');
    const item = conversationItem(bob.page, privateChat);
    await hasText(item.getByTestId('unread-count'), '2');
    await hasText(item.getByTestId('unread-mention-count'), '@1');
    // A deleted mention leaves the badge (the server stops counting it too); the message stays unread.
    await send(alice.page, `@${bob.name} wrong chat, sorry`);
    await hasText(item.getByTestId('unread-mention-count'), '@2');
    const mistaken = message(alice.page, 'wrong chat, sorry').and(alice.page.locator('[data-pending=false]'));
    await mistaken.hover();
    await mistaken.getByTestId('message-delete').click();
    await hasText(item.getByTestId('unread-mention-count'), '@1');
    await hasText(item.getByTestId('unread-count'), '3');
    await item.click();
    await message(bob.page, 'have a look').and(bob.page.locator('[data-mentions-me=true]')).waitFor();
    await message(bob.page, 'no mention in this one').and(bob.page.locator('[data-mentions-me=false]')).waitFor();
    await item.getByTestId('unread-mention-count').waitFor({ state: 'detached' });

    await bob.page.getByTestId('notify-level').selectOption('mentions');
    await bob.page.locator('[data-testid=notify-level][data-level=mentions]').waitFor();
    await item.getByTestId('conversation-muted').waitFor();
    const { token } = await sessionOf(bob.page);
    const stored = (await rest(endpoints, token, 'GET', `/conversations/${privateChat}`)) as { notifications: { level: string } };
    expect(stored.notifications.level).toBe('mentions');
    await bob.page.getByTestId('notify-level').selectOption('all');
    await item.getByTestId('conversation-muted').waitFor({ state: 'detached' });

    // Do not disturb and previews, from Settings; stored on the server.
    await bob.page.getByTestId('tab-settings').click();
    await bob.page.locator('[data-testid=dnd-state][data-active=false]').waitFor();
    await bob.page.getByTestId('dnd-1h').click();
    await bob.page.locator('[data-testid=dnd-state][data-active=true]').waitFor();
    await bob.page.getByTestId('previews').uncheck();
    await expect.poll(async () => ((await rest(endpoints, token, 'GET', '/users/me/notifications')) as { previews: boolean }).previews).toBe(false);
    const preferences = (await rest(endpoints, token, 'GET', '/users/me/notifications')) as { doNotDisturbUntil: string | null };
    expect(preferences.doNotDisturbUntil).not.toBeNull();
    await bob.page.getByTestId('dnd-off').click();
    await bob.page.locator('[data-testid=dnd-state][data-active=false]').waitFor();

    // Push: the service worker is registered on load, but permission is asked for only from the button. This
    // browser refuses it (headless), which the page says instead of failing.
    await expect.poll(() => bob.page.evaluate(async () => Boolean(await navigator.serviceWorker.getRegistration('./sw.js')))).toBe(true);
    expect(await bob.page.evaluate(() => Notification.permission)).toBe('default');
    await bob.page.locator('[data-testid=push-state][data-state=off]').waitFor();
    await bob.page.getByTestId('push-enable').click();
    await bob.page.locator('[data-testid=push-state][data-state=blocked]').waitFor();
    expect(((await rest(endpoints, token, 'GET', '/users/me/push-subscriptions')) as { items: unknown[] }).items).toEqual([]);
    await bob.page.getByTestId('tab-chats').click();
  });

  it('a notification the service worker showed closes in an open tab once its message is deleted or read', async () => {
    const page = alice.page;
    const origin = new URL(app.url).origin;
    await alice.context.grantPermissions(['notifications'], { origin });
    // Another conversation open, so that nothing in the group is read by being seen.
    await conversationItem(page, privateChat).click();
    const scope = await page.evaluate(async () => (await navigator.serviceWorker.ready).scope);
    // Chromium's DevTools protocol hands sw.js a push as the browser's push service would.
    const cdp = await alice.context.newCDPSession(page);
    const registrations: { registrationId: string; scopeURL: string }[] = [];
    cdp.on('ServiceWorker.workerRegistrationUpdated', (event) => registrations.push(...event.registrations));
    await cdp.send('ServiceWorker.enable');
    await expect.poll(() => registrations.some((r) => r.scopeURL === scope), { timeout: SEEN }).toBe(true);
    const registrationId = registrations.find((r) => r.scopeURL === scope)!.registrationId;
    type Sent = { _id: string; seq: number; content: string; createdAt: string };
    const bobToken = (await sessionOf(bob.page)).token;
    const pushed = async (content: string): Promise<Sent> => {
      const message = await rest<Sent>(endpoints, bobToken, 'POST', `/conversations/${groupChat}/messages`, { content });
      const payload = {
        type: 'message', conversationId: groupChat, conversationName: 'group', messageId: message._id, seq: message.seq,
        sender: { _id: bob.id, username: bob.name, avatar: null }, preview: content, mentioned: false, sentAt: message.createdAt,
      };
      await cdp.send('ServiceWorker.deliverPushMessage', { origin, registrationId, data: JSON.stringify(payload) });
      await expect.poll(shown, { timeout: SEEN }).toEqual([message._id]);
      return message;
    };
    const shown = () =>
      page.evaluate(async (tag) => {
        const notifications = await (await navigator.serviceWorker.ready).getNotifications({ tag });
        return notifications.map((n) => (n.data as { messageId: string }).messageId);
      }, `conversation-${groupChat}`);

    const deleted = await pushed('about to vanish');
    await rest(endpoints, bobToken, 'DELETE', `/conversations/${groupChat}/messages/${deleted._id}`);
    await expect.poll(shown, { timeout: SEEN }).toEqual([]);

    // Read on another device of hers (her phone, through the REST API).
    const readElsewhere = await pushed('read on the phone');
    const aliceToken = (await sessionOf(page)).token;
    await rest(endpoints, aliceToken, 'POST', `/conversations/${groupChat}/read`, { lastMessageId: readElsewhere._id });
    await expect.poll(shown, { timeout: SEEN }).toEqual([]);

    // Read here, by opening the conversation.
    await pushed('read in this tab');
    await conversationItem(page, groupChat).click();
    await expect.poll(shown, { timeout: SEEN }).toEqual([]);
    await cdp.detach();
  });

  it("the group's owner makes the other member an admin, then hands the group over; both see the roles", async () => {
    for (const user of [alice, bob]) {
      await conversationItem(user.page, groupChat).click();
      await user.page.getByTestId('members-toggle').click();
    }
    const row = (page: typeof alice.page, name: string) => page.locator(`[data-testid=member][data-username="${name}"]`);
    await row(alice.page, alice.name).and(alice.page.locator('[data-role=owner]')).waitFor();
    // Bob, a member, is offered nothing to do to Alice.
    await row(bob.page, alice.name).waitFor();
    expect(await bob.page.getByTestId('member-remove').count()).toBe(0);
    expect(await bob.page.getByTestId('member-admin-toggle').count()).toBe(0);

    await row(alice.page, bob.name).getByTestId('member-admin-toggle').click();
    await row(bob.page, bob.name).and(bob.page.locator('[data-role=admin]')).waitFor();
    await row(alice.page, bob.name).getByTestId('member-make-owner').click();
    // Bob owns it now (his page learned it from the event) and may manage Alice, now an admin.
    await row(bob.page, bob.name).and(bob.page.locator('[data-role=owner]')).waitFor();
    await row(bob.page, alice.name).and(bob.page.locator('[data-role=admin]')).waitFor();
    await row(bob.page, alice.name).getByTestId('member-admin-toggle').waitFor();
    // Alice's page hears of the change on its own socket, maybe after Bob's.
    await expect.poll(() => alice.page.getByTestId('member-make-owner').count(), { timeout: SEEN }).toBe(0);
    await shot(bob.page, 'group-members.png');
  });

  it('ending a session in settings logs that device out; a new password ends the others; log out everywhere ends this one', async () => {
    const second = await openPage(alice, 'alice-2');
    await second.getByTestId('login-username').fill(alice.name);
    await second.getByTestId('login-password').fill(PASSWORD);
    await second.getByTestId('login-submit').click();
    await connected(second);
    await alice.page.getByTestId('tab-settings').click();
    await alice.page.locator('[data-testid=session][data-current=false]').waitFor();
    expect(await alice.page.locator('[data-testid=session]').count()).toBe(2);
    await alice.page.locator('[data-testid=session][data-current=false]').getByTestId('session-end').click();
    // The other device's socket is closed by the server, its tokens are refused: it is back at the login screen.
    await hasText(second.getByTestId('auth-error'), 'Your session has ended');
    await alice.page.locator('[data-testid=session][data-current=false]').waitFor({ state: 'detached' });
    await shot(alice.page, 'settings.png');

    await alice.page.getByTestId('password-current').fill(PASSWORD);
    await alice.page.getByTestId('password-new').fill('another-password-9');
    await alice.page.getByTestId('password-save').click();
    await hasText(alice.page.getByTestId('toast'), 'Password changed');
    const login = (password: string) =>
      fetch(`${endpoints.http}/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: alice.name, password }),
      }).then((r) => r.status);
    expect(await login(PASSWORD)).toBe(401);
    expect(await login('another-password-9')).toBe(200);

    await alice.page.getByTestId('logout-everywhere').click();
    await alice.page.getByTestId('login-form').waitFor();
    // Ended on purpose here: the login screen without a "session has ended" error.
    expect(await alice.page.getByTestId('auth-error').count()).toBe(0);
    await second.close();
  });

  it('a user downloads their data, then deletes their account in settings and can no longer log in', async () => {
    const dora = await newUser('dora');
    await dora.page.getByTestId('tab-settings').click();
    // First a copy of her data: asked for with a button, ready in the background, downloaded through the link.
    await dora.page.getByTestId('export-request').click();
    const link = dora.page.getByTestId('export-download');
    await link.waitFor({ timeout: 90_000 });
    const document = (await (await fetch((await link.getAttribute('href')) as string)).json()) as { profile: { username: string } };
    expect(document.profile.username).toBe(dora.name);
    await shot(dora.page, 'settings-export.png');
    await dora.page.getByTestId('delete-password').fill(PASSWORD);
    await dora.page.getByTestId('delete-account').click();
    await hasText(dora.page.getByTestId('delete-account'), 'Yes, delete my account');
    await dora.page.getByTestId('delete-account').click();
    await dora.page.getByTestId('login-form').waitFor();
    await dora.page.getByTestId('login-username').fill(dora.name);
    await dora.page.getByTestId('login-password').fill(PASSWORD);
    await dora.page.getByTestId('login-submit').click();
    await hasText(dora.page.getByTestId('auth-error'), 'invalid username or password');
    await dora.context.close();
  }, 180_000);
});
