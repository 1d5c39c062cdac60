/**
 * Every live frame against docs/asyncapi.yaml, with a standard JSON Schema validator (Ajv).
 *
 * Why this module exists: the unit contract test checks the document against its own examples and the SDK's
 * outgoing frames against fakes; only live frames show whether the server still says what the document says.
 * The integration tests route every frame through `FrameChecker`: client frames must match the schema of their
 * action, `ack`s the schema of the action they answer (`ack.<action>`, found through the `requestId`), and every
 * other server frame the schema of its event. A frame that does not validate is recorded as a violation, and the
 * test that received it fails (see setup.ts).
 *
 * The document's `$ref`s are local (`#/components/schemas/X`); they are rewritten to one registered schema of
 * definitions so that Ajv resolves them in strict mode (an unknown keyword in the document is an error, too).
 */

import { readFileSync } from 'node:fs';

import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { parse } from 'yaml';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

interface AsyncApiDocument {
  components: {
    schemas: Record<string, JsonObject>;
    messages: Record<string, { name: string; payload: JsonObject }>;
  };
}

const DEFINITIONS_ID = 'https://chat.invalid/asyncapi-definitions.json';
const LOCAL_SCHEMA_REF = /^#\/components\/schemas\//;

/** ajv-formats is CommonJS: its plugin is the module itself or its `default`, depending on the loader. */
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as unknown as (
  ajv: Ajv,
) => Ajv;

/** `value` with every `#/components/schemas/X` reference pointing at the registered definitions instead. */
function rewriteRefs(value: Json): Json {
  if (Array.isArray(value)) return value.map(rewriteRefs);
  if (value && typeof value === 'object') {
    const out: JsonObject = {};
    for (const [key, inner] of Object.entries(value)) {
      out[key] =
        key === '$ref' && typeof inner === 'string' && LOCAL_SCHEMA_REF.test(inner)
          ? inner.replace(LOCAL_SCHEMA_REF, `${DEFINITIONS_ID}#/definitions/`)
          : rewriteRefs(inner);
    }
    return out;
  }
  return value;
}

export const ASYNCAPI_PATH = new URL('../../../docs/asyncapi.yaml', import.meta.url);

/** The compiled payload schemas of docs/asyncapi.yaml, by message key (`send_message`, `ack.send_message`, …). */
export class AsyncApiSchemas {
  private readonly validators = new Map<string, ValidateFunction>();
  readonly messageKeys: string[];

  constructor(documentText: string = readFileSync(ASYNCAPI_PATH, 'utf8')) {
    const doc = parse(documentText) as AsyncApiDocument;
    // Strict about the schema itself (an unknown keyword or format is an error). Not about the document's style:
    // union types (`[string, "null"]`), `properties` inside `allOf` parts without their own `type: object`, and
    // `oneOf: [{required: [a]}, {required: [b]}]` are deliberate.
    const ajv = new Ajv({ strict: true, strictTypes: false, strictRequired: false, allowUnionTypes: true });
    addFormats(ajv);
    ajv.addSchema({ $id: DEFINITIONS_ID, definitions: rewriteRefs(doc.components.schemas) as JsonObject });
    for (const [key, message] of Object.entries(doc.components.messages)) {
      this.validators.set(key, ajv.compile(rewriteRefs(message.payload) as JsonObject));
    }
    this.messageKeys = [...this.validators.keys()];
  }

  has(messageKey: string): boolean {
    return this.validators.has(messageKey);
  }

  /** Null when `frame` matches the payload schema of `messageKey`, else what is wrong. */
  violation(messageKey: string, frame: unknown): string | null {
    const validate = this.validators.get(messageKey);
    if (!validate) return `no message \`${messageKey}\` in docs/asyncapi.yaml`;
    if (validate(frame)) return null;
    return (validate.errors ?? [])
      .map((error) => `${error.instancePath || '/'} ${error.message ?? 'is invalid'}${paramsOf(error.params)}`)
      .join('; ');
  }
}

function paramsOf(params: Record<string, unknown>): string {
  const interesting = Object.entries(params).filter(([, value]) => value !== undefined);
  return interesting.length ? ` (${interesting.map(([k, v]) => `${k}: ${JSON.stringify(v)}`).join(', ')})` : '';
}

/** One frame that broke the document, with where it was seen. */
export interface Violation {
  direction: 'client' | 'server';
  messageKey: string;
  problem: string;
  frame: string;
}

/** Events that answer a request (matched to their action through `requestId`). */
const REPLY_EVENTS = new Set(['ack', 'error', 'pong']);

/**
 * Checks the frames of any number of sockets and collects violations. Knows which action each `requestId`
 * was sent with, so an `ack` is held to the schema of the action it answers.
 */
export class FrameChecker {
  readonly violations: Violation[] = [];
  /** How many frames were checked, by message key (shows what the suite covered). */
  readonly coverage = new Map<string, number>();
  private readonly actionByRequestId = new Map<string, string>();
  /** Client frames a test sends invalid on purpose (to see the server refuse them), by message key. */
  private readonly expectedInvalid: string[] = [];

  constructor(private readonly schemas: AsyncApiSchemas) {}

  /**
   * The next client frame of `action` is invalid on purpose: it must break the document (which shows that the
   * document states the rule the server enforces) and is then not a violation. See `unconsumedExpectations`.
   */
  expectInvalidClientFrame(action: string): void {
    this.expectedInvalid.push(action);
  }

  /** Expected invalid client frames that were sent valid (or not sent): the document lacks a rule. Clears them. */
  unconsumedExpectations(): string[] {
    return this.expectedInvalid.splice(0);
  }

  /** A frame a client sends. */
  clientFrame(raw: string): void {
    const frame = parseObject(raw);
    const action = typeof frame?.action === 'string' ? frame.action : '(no action)';
    if (frame && typeof frame.requestId === 'string') this.actionByRequestId.set(frame.requestId, action);
    this.check('client', action, frame ?? raw, raw);
  }

  /** A frame the server sent. */
  serverFrame(raw: string): void {
    const frame = parseObject(raw);
    if (!frame) {
      this.record('server', '(not a JSON object)', 'every server frame is a JSON object', raw);
      return;
    }
    const event = typeof frame.event === 'string' ? frame.event : '(no event)';
    let key = event;
    if (event === 'ack') {
      const action = typeof frame.requestId === 'string' ? this.actionByRequestId.get(frame.requestId) : undefined;
      key = action ? `ack.${action}` : 'ack';
    } else if (!REPLY_EVENTS.has(event) && event.startsWith('ack.')) {
      key = `(event ${event})`;
    }
    this.check('server', key, frame, raw);
  }

  private check(direction: Violation['direction'], key: string, frame: unknown, raw: string): void {
    this.coverage.set(key, (this.coverage.get(key) ?? 0) + 1);
    const problem = this.schemas.violation(key, frame);
    if (direction === 'client' && problem) {
      const expected = this.expectedInvalid.indexOf(key);
      if (expected !== -1) {
        this.expectedInvalid.splice(expected, 1);
        return;
      }
    }
    if (problem) this.record(direction, key, problem, raw);
  }

  private record(direction: Violation['direction'], messageKey: string, problem: string, frame: string): void {
    this.violations.push({ direction, messageKey, problem, frame });
  }
}

function parseObject(raw: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(raw);
    return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** Violations as a readable report (one per line, frame included, long frames cut). */
export function describeViolations(violations: Violation[]): string {
  const cut = (frame: string) => (frame.length > 600 ? `${frame.slice(0, 600)}… (${frame.length} characters)` : frame);
  return violations
    .map((v) => `${v.direction} frame breaks docs/asyncapi.yaml \`${v.messageKey}\`: ${v.problem}\n    ${cut(v.frame)}`)
    .join('\n');
}
