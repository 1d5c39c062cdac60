/**
 * What the browser tests need besides the browser: the stack's endpoints, the app served somewhere, Chromium,
 * the REST API and DynamoDB (to find a connection id), and the API Gateway Management API (to close a socket
 * from the server side).
 */

import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

import { DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { type Browser, chromium, type Page } from 'playwright-core';

export interface StackEndpoints {
  http: string;
  websocket: string;
  awsEndpoint: string;
  region: string;
  tableName: string;
}

const webDir = fileURLToPath(new URL('..', import.meta.url));

/** The stack under test: the file named by CHAT_ENDPOINTS_FILE (what `cargo xtask dev`/`test` write). */
export function loadEndpoints(): StackEndpoints {
  const file = process.env.CHAT_ENDPOINTS_FILE ?? resolve(webDir, '../../.local/endpoints.json');
  if (!existsSync(file)) throw new Error(`no endpoints file ${file}: set CHAT_ENDPOINTS_FILE`);
  const endpoints = JSON.parse(readFileSync(file, 'utf8')) as Partial<StackEndpoints>;
  for (const key of ['http', 'websocket', 'awsEndpoint', 'region', 'tableName'] as const) {
    if (typeof endpoints[key] !== 'string') throw new Error(`${file} has no ${key}`);
  }
  for (const url of [endpoints.http!, endpoints.websocket!, endpoints.awsEndpoint!]) {
    const host = new URL(url).hostname;
    if (host !== '127.0.0.1' && host !== 'localhost') throw new Error(`refusing to test against ${url}: loopback only`);
  }
  return endpoints as StackEndpoints;
}

export const artifactsDir = process.env.CHAT_ARTIFACTS_DIR ?? resolve(webDir, '../../.local/artifacts/browser');
mkdirSync(artifactsDir, { recursive: true });

export function artifact(name: string): string {
  return join(artifactsDir, name);
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
};

/**
 * The app's URL: CHAT_WEB_URL (xtask serves dist/ itself), else dist/ served here with a config.json for
 * `endpoints` (run `npm run build` first).
 */
export async function serveApp(endpoints: StackEndpoints): Promise<{ url: string; close: () => Promise<void> }> {
  if (process.env.CHAT_WEB_URL) return { url: process.env.CHAT_WEB_URL, close: async () => undefined };
  const root = resolve(webDir, 'dist');
  if (!existsSync(join(root, 'index.html'))) throw new Error('clients/web/dist is missing: run `npm run build`');
  const config = JSON.stringify({ http: endpoints.http, websocket: endpoints.websocket });
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    if (path === '/config.json') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(config);
      return;
    }
    const file = normalize(join(root, path === '/' ? 'index.html' : decodeURIComponent(path)));
    if (!file.startsWith(root + sep) || !existsSync(file)) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' }).end(readFileSync(file));
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    close: () => new Promise<void>((done) => server.close(() => done())),
  };
}

/** Debian's Chromium (or CHAT_CHROMIUM), headless, with everything that would call the internet turned off. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env.CHAT_CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    timeout: 60_000,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-dev-shm-usage',
    ],
  });
}

/** The token a page logged in with (the app keeps its session in sessionStorage). */
export async function sessionOf(page: Page): Promise<{ token: string; user: { _id: string; username: string } }> {
  const saved = await page.evaluate(() => sessionStorage.getItem('chat.session'));
  if (!saved) throw new Error('the page is not logged in');
  return JSON.parse(saved) as { token: string; user: { _id: string; username: string } };
}

/** One REST call with a bearer token; throws on a non-2xx answer. */
export async function rest<T>(endpoints: StackEndpoints, token: string, method: string, path: string, body?: unknown): Promise<T> {
  const response = await fetch(endpoints.http + path, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(15_000),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: HTTP ${response.status} ${text}`);
  return JSON.parse(text) as T;
}

/**
 * The live connection ids of a user, from their presence item (`USER#<id>` / `PRESENCE`, attribute `conns`:
 * `<connectionId> <connectedAt> <expiresAt>` per connection; docs/data-model.md).
 */
export async function connectionIds(endpoints: StackEndpoints, userId: string): Promise<string[]> {
  const dynamo = new DynamoDBClient({
    endpoint: endpoints.awsEndpoint,
    region: endpoints.region,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    maxAttempts: 2,
    requestHandler: { connectionTimeout: 5_000, requestTimeout: 10_000 },
  });
  try {
    const { Item } = await dynamo.send(
      new GetItemCommand({
        TableName: endpoints.tableName,
        Key: { pk: { S: `USER#${userId}` }, sk: { S: 'PRESENCE' } },
        ConsistentRead: true,
      }),
    );
    return (Item?.conns?.SS ?? []).map((entry) => entry.split(' ')[0]!).filter(Boolean);
  } finally {
    dynamo.destroy();
  }
}

/** Closes a connection from the server side: `DELETE @connections/<id>` on the API Gateway Management API. */
export async function closeConnection(endpoints: StackEndpoints, connectionId: string): Promise<number> {
  const base = endpoints.websocket.replace(/^ws/, 'http');
  const response = await fetch(`${base}/@connections/${encodeURIComponent(connectionId)}`, {
    method: 'DELETE',
    signal: AbortSignal.timeout(15_000),
  });
  return response.status;
}
