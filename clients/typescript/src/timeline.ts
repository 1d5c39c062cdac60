/**
 * Per-conversation message ordering, deduplication and catch-up.
 *
 * Why this module exists: messages reach a client three ways — live `receive_message` frames, the `ack` of its
 * own `send_message`, and REST history fetched to catch up after a reconnect — and the same message can arrive
 * more than one way (a message sent while the client reconnected is both in the history and, sometimes, live).
 * The app should see each message exactly once, in `seq` order. Because `seq` is gap-free per conversation, the
 * highest seq delivered so far says exactly what is missing:
 *
 * - a message at `lastSeq + 1` is delivered at once; one at or below `lastSeq` is a duplicate (a message id
 *   is `<conversationId>-<seq>`, so this is deduplication by `_id`);
 * - a message further ahead waits in a buffer; if the missing ones do not arrive live within `gapWaitMs`, they
 *   are fetched with `GET /conversations/:id/messages?afterSeq=lastSeq` (all pages);
 * - after a reconnect every conversation with a known position is caught up the same way;
 * - when a catch-up fails, a `gap` is reported and the buffered messages are delivered after it, so live
 *   delivery resumes instead of stalling.
 */

import { ChatError } from './errors.js';
import type { Message, Page } from './protocol.js';

/** How a message reached the client. */
export type MessageSource = 'live' | 'ack' | 'catch_up';

export interface MessageDelivery {
  conversationId: string;
  message: Message;
  source: MessageSource;
}

/**
 * Messages with `afterSeq < seq < beforeSeq` (no upper bound when `beforeSeq` is null) may be missing: the
 * client could not fetch them. Reload that range of history (or the whole conversation) to fill it.
 */
export interface GapInfo {
  conversationId: string;
  afterSeq: number;
  beforeSeq: number | null;
  reason: unknown;
}

/** Fetches one page of catch-up: the first with `afterSeq`, the following ones with the previous `nextCursor`. */
export type FetchAfter = (
  conversationId: string,
  position: { afterSeq: number } | { cursor: string },
) => Promise<Page<Message>>;

export interface TimelineOptions {
  fetchAfter: FetchAfter;
  deliver: (delivery: MessageDelivery) => void;
  onGap: (gap: GapInfo) => void;
  /** How long an out-of-order message waits for the missing ones to arrive live before they are fetched. */
  gapWaitMs: number;
  /** Attempts per page of catch-up before giving up with a `gap`. */
  fetchAttempts: number;
  /** Delay before the n-th retry of a page (n from 0). */
  retryDelayMs: (retry: number) => number;
  /** Conversations caught up at the same time after a reconnect. */
  concurrency: number;
}

interface ConversationState {
  /** Highest seq delivered or already known to the app. */
  lastSeq: number;
  /** Messages ahead of `lastSeq + 1`, by seq. */
  pending: Map<number, MessageDelivery>;
  gapTimer: ReturnType<typeof setTimeout> | null;
  catchingUp: Promise<void> | null;
}

export class Timeline {
  private readonly conversations = new Map<string, ConversationState>();

  constructor(private readonly options: TimelineOptions) {}

  /**
   * Starts following a conversation whose messages up to `lastSeq` the app already has (0: none). For a
   * conversation already followed, the position only moves forward (buffered messages it covers are dropped).
   */
  track(conversationId: string, lastSeq: number): void {
    const state = this.conversations.get(conversationId);
    if (!state) {
      this.conversations.set(conversationId, newState(lastSeq));
      return;
    }
    if (state.lastSeq >= lastSeq) return;
    state.lastSeq = lastSeq;
    for (const seq of state.pending.keys()) if (seq <= lastSeq) state.pending.delete(seq);
    this.drain(conversationId, state);
  }

  /** Stops following a conversation (e.g. after leaving it). */
  untrack(conversationId: string): void {
    const state = this.conversations.get(conversationId);
    if (state?.gapTimer) clearTimeout(state.gapTimer);
    this.conversations.delete(conversationId);
  }

  isTracked(conversationId: string): boolean {
    return this.conversations.has(conversationId);
  }

  /** The highest seq delivered (or known to the app) in a conversation; null if it is not followed. */
  lastSeq(conversationId: string): number | null {
    return this.conversations.get(conversationId)?.lastSeq ?? null;
  }

  trackedConversations(): string[] {
    return [...this.conversations.keys()];
  }

  /**
   * Takes a message from any source. Returns false if it was a duplicate. A message of a conversation that is
   * not followed yet starts following it from that message on.
   */
  ingest(message: Message, source: MessageSource): boolean {
    const conversationId = message.conversationId;
    let state = this.conversations.get(conversationId);
    if (!state) {
      state = newState(message.seq - 1);
      this.conversations.set(conversationId, state);
    }
    if (message.seq <= state.lastSeq || state.pending.has(message.seq)) return false;
    state.pending.set(message.seq, { conversationId, message, source });
    this.drain(conversationId, state);
    if (state.pending.size > 0) this.scheduleGapFill(conversationId, state);
    return true;
  }

  /**
   * Fetches everything after the conversation's position (all pages) and delivers it in order. Resolves when
   * done, failed (a `gap` was reported) or already running.
   */
  catchUp(conversationId: string): Promise<void> {
    const state = this.conversations.get(conversationId);
    if (!state) return Promise.resolve();
    if (state.catchingUp) return state.catchingUp;
    if (state.gapTimer) {
      clearTimeout(state.gapTimer);
      state.gapTimer = null;
    }
    const run = this.runCatchUp(conversationId, state).finally(() => {
      state.catchingUp = null;
      // Messages still waiting above a hole: give the missing ones another chance to arrive or be fetched.
      if (state.pending.size > 0 && this.conversations.get(conversationId) === state) {
        this.scheduleGapFill(conversationId, state);
      }
    });
    state.catchingUp = run;
    return run;
  }

  /** Catches up every followed conversation, `concurrency` at a time. */
  async catchUpAll(): Promise<void> {
    const queue = this.trackedConversations();
    const worker = async (): Promise<void> => {
      for (let id = queue.shift(); id !== undefined; id = queue.shift()) await this.catchUp(id);
    };
    const workers = Array.from({ length: Math.max(1, Math.min(this.options.concurrency, queue.length)) }, worker);
    await Promise.all(workers);
  }

  /** Stops every timer (the client was disconnected for good). */
  dispose(): void {
    for (const state of this.conversations.values()) {
      if (state.gapTimer) clearTimeout(state.gapTimer);
      state.gapTimer = null;
    }
  }

  // ---------------------------------------------------------------- internals

  private async runCatchUp(conversationId: string, state: ConversationState): Promise<void> {
    const startSeq = state.lastSeq;
    let position: { afterSeq: number } | { cursor: string } = { afterSeq: startSeq };
    try {
      for (;;) {
        const page = await this.fetchWithRetry(conversationId, position);
        if (this.conversations.get(conversationId) !== state) return; // untracked meanwhile
        for (const message of page.items) {
          if (message.conversationId === conversationId) this.ingest(message, 'catch_up');
        }
        if (!page.nextCursor) break;
        position = { cursor: page.nextCursor };
      }
    } catch (reason) {
      if (this.conversations.get(conversationId) !== state) return;
      this.skipGap(conversationId, state, reason);
      if (reason instanceof ChatError && reason.code === 'not_found') this.untrack(conversationId);
      return;
    }
    // Still a hole below a buffered message? If this pass made progress, the newest messages may simply not
    // have been visible to the history query yet, and another pass follows (see `catchUp`). Without progress
    // the history does not have them: report the hole and move past it.
    if (state.pending.size > 0 && state.lastSeq === startSeq) {
      this.skipGap(conversationId, state, new Error('the missing messages were not in the history'));
    }
  }

  private async fetchWithRetry(
    conversationId: string,
    position: { afterSeq: number } | { cursor: string },
  ): Promise<Page<Message>> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.options.fetchAfter(conversationId, position);
      } catch (error) {
        // A 4xx will not change by asking again (except being told to slow down).
        const permanent =
          error instanceof ChatError && error.status >= 400 && error.status < 500 && error.status !== 429;
        if (permanent || attempt >= this.options.fetchAttempts) throw error;
        await sleep(this.options.retryDelayMs(attempt - 1));
      }
    }
  }

  /** Reports the hole below the first buffered message (or everything after `lastSeq`) and moves past it. */
  private skipGap(conversationId: string, state: ConversationState, reason: unknown): void {
    const afterSeq = state.lastSeq;
    const next = state.pending.size > 0 ? Math.min(...state.pending.keys()) : null;
    this.options.onGap({ conversationId, afterSeq, beforeSeq: next, reason });
    if (next !== null) {
      state.lastSeq = next - 1;
      this.drain(conversationId, state);
    }
  }

  private drain(conversationId: string, state: ConversationState): void {
    for (;;) {
      const next = state.lastSeq + 1;
      const delivery = state.pending.get(next);
      if (!delivery) break;
      state.pending.delete(next);
      state.lastSeq = next;
      this.options.deliver(delivery);
      // A listener may have untracked the conversation.
      if (this.conversations.get(conversationId) !== state) return;
    }
    if (state.pending.size === 0 && state.gapTimer) {
      clearTimeout(state.gapTimer);
      state.gapTimer = null;
    }
  }

  private scheduleGapFill(conversationId: string, state: ConversationState): void {
    if (state.gapTimer || state.catchingUp) return;
    state.gapTimer = setTimeout(() => {
      state.gapTimer = null;
      if (this.conversations.get(conversationId) === state) void this.catchUp(conversationId);
    }, this.options.gapWaitMs);
  }
}

function newState(lastSeq: number): ConversationState {
  return { lastSeq, pending: new Map(), gapTimer: null, catchingUp: null };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
