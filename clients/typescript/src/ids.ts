/**
 * Identifiers the client makes up: `requestId`s for matching replies, and `clientMessageId`s that make sends
 * idempotent.
 *
 * Why this module exists: a `clientMessageId` must be unique per sender and conversation across tabs, devices
 * and page reloads (a retry must reuse it, a new message must never), and must match `[A-Za-z0-9_.:-]{1,64}`.
 * A random instance prefix plus a counter gives that without coordination.
 */

const ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyz';

/** `length` random base-36 characters, from `crypto.getRandomValues` where available. */
export function randomToken(length = 12): string {
  const bytes = new Uint8Array(length);
  const crypto = (globalThis as { crypto?: { getRandomValues?: (array: Uint8Array) => Uint8Array } }).crypto;
  if (crypto?.getRandomValues) {
    crypto.getRandomValues(bytes);
  } else {
    for (let i = 0; i < length; i++) bytes[i] = Math.floor(Math.random() * 256);
  }
  let out = '';
  for (const byte of bytes) out += ALPHABET[byte % ALPHABET.length];
  return out;
}

/** A generator of `<prefix>-1`, `<prefix>-2`, … */
export function sequentialIds(prefix: string): () => string {
  let next = 0;
  return () => `${prefix}-${++next}`;
}

const CLIENT_MESSAGE_ID = /^[A-Za-z0-9_.:-]{1,64}$/;

/** Whether `id` is acceptable as a `clientMessageId`. */
export function isValidClientMessageId(id: string): boolean {
  return CLIENT_MESSAGE_ID.test(id);
}
