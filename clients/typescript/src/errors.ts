/**
 * One error type for everything the SDK can fail with: REST error bodies, WebSocket `error` frames, and the
 * client-side failures (timeouts, lost connections, network errors).
 *
 * Why this module exists: apps branch on `code` (the server's machine-readable codes plus a few client-side
 * ones) and `status` (the HTTP status, or the status the server gives that code; 0 for client-side failures),
 * whichever transport the failure came from.
 */

import { ERROR_CODES, type ErrorCode } from './protocol.js';

/** Failures that happen on the client side, without an answer from the server. */
export type ClientErrorCode =
  /** No answer within the request timeout. */
  | 'timeout'
  /** The HTTP request could not be made (DNS, refused, offline). */
  | 'network'
  /** The connection closed while the request was in flight; its outcome is unknown. */
  | 'connection_lost'
  /** The action needs a live connection and there is none (and it is not one that is queued). */
  | 'not_connected'
  /** The client was disconnected by the app (`disconnect()`); pending work is abandoned. */
  | 'closed'
  /** The server answered something that is not the documented shape. */
  | 'invalid_response';

export type ChatErrorCode = ErrorCode | ClientErrorCode;

/** The HTTP status the backend uses for each error code (shared/src/error.rs). */
export const STATUS_BY_CODE: Readonly<Record<ErrorCode, number>> = {
  bad_request: 400,
  unknown_action: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  payload_too_large: 413,
  validation_failed: 422,
  rate_limited: 429,
  internal: 500,
};

export interface ChatErrorDetails {
  /** The `requestId` of the WebSocket request that failed. */
  requestId?: string;
  /** The WebSocket action or `METHOD /path` that failed. */
  operation?: string;
  /** With `rate_limited`: seconds until the server accepts the action again. */
  retryAfter?: number;
  cause?: unknown;
}

export class ChatError extends Error {
  /** HTTP status (REST), the status the server gives `code` (WebSocket), or 0 for client-side failures. */
  readonly status: number;
  readonly code: ChatErrorCode;
  readonly requestId?: string;
  readonly operation?: string;
  /** With `rate_limited`: seconds until the server accepts the action again. */
  readonly retryAfter?: number;

  constructor(status: number, code: ChatErrorCode, message: string, details: ChatErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'ChatError';
    this.status = status;
    this.code = code;
    if (details.requestId !== undefined) this.requestId = details.requestId;
    if (details.operation !== undefined) this.operation = details.operation;
    if (details.retryAfter !== undefined) this.retryAfter = details.retryAfter;
  }

  /** Whether the server produced this error (as opposed to a timeout or a lost connection). */
  get fromServer(): boolean {
    return isErrorCode(this.code);
  }

  /** An error for a client-side failure (status 0). */
  static client(code: ClientErrorCode, message: string, details?: ChatErrorDetails): ChatError {
    return new ChatError(0, code, message, details);
  }

  /** The error an `error` frame's `data` describes. Unknown codes are kept as `internal`. */
  static fromFrame(data: unknown, details: ChatErrorDetails = {}): ChatError {
    const body = (typeof data === 'object' && data !== null ? data : {}) as Record<string, unknown>;
    const code = isErrorCode(body.code) ? body.code : 'internal';
    const message = typeof body.message === 'string' ? body.message : 'request failed';
    return new ChatError(STATUS_BY_CODE[code], code, message, withRetryAfter(details, body.retryAfter));
  }

  /**
   * The error of a failed HTTP response: `{"error": {"code", "message"}}` when the body has that shape,
   * otherwise a code derived from the status.
   */
  static fromHttp(status: number, bodyText: string, details: ChatErrorDetails = {}): ChatError {
    let parsed: unknown;
    try {
      parsed = JSON.parse(bodyText);
    } catch {
      parsed = undefined;
    }
    const error = (parsed as { error?: { code?: unknown; message?: unknown; retryAfter?: unknown } } | undefined)
      ?.error;
    if (error && isErrorCode(error.code)) {
      const message = typeof error.message === 'string' ? error.message : `HTTP ${status}`;
      return new ChatError(status, error.code, message, withRetryAfter(details, error.retryAfter));
    }
    const snippet = bodyText.trim().slice(0, 200);
    return new ChatError(status, codeForStatus(status), snippet || `HTTP ${status}`, details);
  }
}

function withRetryAfter(details: ChatErrorDetails, retryAfter: unknown): ChatErrorDetails {
  return typeof retryAfter === 'number' && retryAfter > 0 ? { ...details, retryAfter } : details;
}

export function isChatError(value: unknown): value is ChatError {
  return value instanceof ChatError;
}

function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && (ERROR_CODES as readonly string[]).includes(value);
}

/** For answers without a JSON error body (a gateway's own 403, a proxy's 502). */
function codeForStatus(status: number): ChatErrorCode {
  switch (status) {
    case 400:
      return 'bad_request';
    case 401:
      return 'unauthorized';
    case 403:
      return 'forbidden';
    case 404:
      return 'not_found';
    case 409:
      return 'conflict';
    case 413:
      return 'payload_too_large';
    case 422:
      return 'validation_failed';
    case 429:
      return 'rate_limited';
    default:
      return status >= 200 && status < 300 ? 'invalid_response' : 'internal';
  }
}
