/**
 * What every slice of the app's state shares: the endpoints, the SDK client of the signed-in user, the
 * connection state, the toast, and the one change notification the views re-render on.
 *
 * Why this module exists: the slices (`session`, `conversations`, `messages`, `typing`, `friends`) each own one
 * part of the state and its rules; they meet here instead of in one class that holds everything.
 */

import { ChatError, type ChatClient, type ConnectionState, type User } from '@chat/sdk';

export interface Config {
  http: string;
  websocket: string;
}

export class Core {
  config: Config | null = null;
  configError: string | null = null;
  client: ChatClient | null = null;
  me: User | null = null;
  connection: ConnectionState = 'offline';
  toast: string | null = null;

  private listeners = new Set<() => void>();
  private scheduled = false;
  private toastTimer: ReturnType<typeof setTimeout> | undefined;

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Batches re-renders: many changes in one tick render once. */
  changed(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      for (const listener of this.listeners) listener();
    });
  }

  /** Applies a change made from a view (a tab, a panel) and re-renders. */
  update(change: () => void): void {
    change();
    this.changed();
  }

  notify(message: string): void {
    this.toast = message;
    clearTimeout(this.toastTimer);
    this.toastTimer = setTimeout(() => this.update(() => (this.toast = null)), 6_000);
    this.changed();
  }
}

export function describe(error: unknown): string {
  if (error instanceof ChatError) return error.message;
  return error instanceof Error ? error.message : String(error);
}

/** A message id is `<conversationId>-<seq>`. */
export function seqOf(messageId: string): number {
  return Number(messageId.slice(messageId.lastIndexOf('-') + 1));
}
