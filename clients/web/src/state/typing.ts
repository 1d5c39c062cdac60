/**
 * Typing indicators both ways: what this user's keystrokes send (a repeated `isTyping: true` while typing,
 * `false` when idle or leaving the conversation) and when other members' indicators expire.
 */

import type { Core } from './core';
import type { ConversationView } from './conversations';

/** A typing indicator without a refresh disappears after this long. */
export const TYPING_TTL_MS = 6_000;
/** While typing, `isTyping: true` is repeated this often (the server swallows repeats within 2 s). */
const TYPING_REPEAT_MS = 3_000;
/** After this long without a keystroke, `isTyping: false` is sent. */
const TYPING_IDLE_MS = 3_000;

export class Typing {
  private sentAt = 0;
  private idle: ReturnType<typeof setTimeout> | undefined;
  private conversationId: string | null = null;
  private sweeper: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly core: Core,
    private readonly views: () => Iterable<ConversationView>,
  ) {}

  /** Starts expiring other members' indicators (while signed in). */
  start(): void {
    clearInterval(this.sweeper);
    this.sweeper = setInterval(() => this.sweep(), 1_000);
  }

  end(): void {
    clearInterval(this.sweeper);
  }

  /** Called on every keystroke in the composer. */
  keystroke(conversationId: string): void {
    const client = this.core.client;
    if (!client || this.core.connection !== 'connected') return;
    const now = Date.now();
    if (this.conversationId !== conversationId || now - this.sentAt > TYPING_REPEAT_MS) {
      if (this.conversationId && this.conversationId !== conversationId) this.stop();
      this.conversationId = conversationId;
      this.sentAt = now;
      void client.typing(conversationId, true).catch(() => undefined);
    }
    clearTimeout(this.idle);
    this.idle = setTimeout(() => this.stop(), TYPING_IDLE_MS);
  }

  /** Says this user stopped typing, if they were. */
  stop(): void {
    clearTimeout(this.idle);
    const conversationId = this.conversationId;
    this.conversationId = null;
    this.sentAt = 0;
    if (conversationId && this.core.client?.state === 'connected') {
      void this.core.client.typing(conversationId, false).catch(() => undefined);
    }
  }

  /** Another member's indicator (`typing_status`). */
  peer(view: ConversationView, userId: string, username: string, isTyping: boolean): void {
    if (isTyping) view.typing.set(userId, { username, until: Date.now() + TYPING_TTL_MS });
    else view.typing.delete(userId);
  }

  private sweep(): void {
    const now = Date.now();
    let changed = false;
    for (const view of this.views()) {
      for (const [userId, peer] of view.typing) {
        if (peer.until < now) {
          view.typing.delete(userId);
          changed = true;
        }
      }
    }
    if (changed) this.core.changed();
  }
}
