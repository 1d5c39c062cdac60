/**
 * The session: reading the endpoints, signing in and out, and what a fresh or renewed connection loads (the
 * SDK catches up new messages after a reconnect; edits, deletions and reactions made meanwhile need the visible
 * history reloaded).
 */

import { ChatClient, ChatError, type Session as Tokens } from '@chat/sdk';

import { type Config, type Core, describe } from './core';
import { type Conversations, listAll } from './conversations';
import { wire } from './events';
import type { Friends } from './friends';
import type { Members } from './members';
import type { Security } from './security';
import type { Messages } from './messages';
import type { Typing } from './typing';

const SESSION_KEY = 'chat.session';

/** Every slice, as the session and the event wiring see them. */
export interface Slices {
  core: Core;
  conversations: Conversations;
  messages: Messages;
  typing: Typing;
  friends: Friends;
  members: Members;
  security: Security;
}

export class Session {
  /** Set while logging in or registering. */
  busy = false;
  authError: string | null = null;

  private offs: (() => void)[] = [];

  constructor(private readonly slices: Slices) {}

  private get core(): Core {
    return this.slices.core;
  }

  async boot(): Promise<void> {
    try {
      const response = await fetch('./config.json', { cache: 'no-store' });
      if (!response.ok) throw new Error(`config.json: HTTP ${response.status}`);
      const config = (await response.json()) as Partial<Config>;
      if (typeof config.http !== 'string' || typeof config.websocket !== 'string') {
        throw new Error('config.json needs "http" and "websocket"');
      }
      this.core.config = { http: config.http, websocket: config.websocket };
    } catch (error) {
      this.core.configError = describe(error);
      this.core.changed();
      return;
    }
    window.addEventListener('online', () => this.core.client?.reconnectNow());
    document.addEventListener('visibilitychange', () => {
      const visible = document.visibilityState === 'visible';
      const active = this.slices.conversations.activeId;
      if (visible && active) void this.slices.conversations.markRead(active);
      // A hidden tab keeps its socket; the server pushes to this user's devices meanwhile.
      void this.core.client?.setAppState(visible ? 'foreground' : 'background').catch(() => undefined);
    });
    const saved = sessionStorage.getItem(SESSION_KEY);
    if (saved) {
      try {
        this.start(JSON.parse(saved) as Tokens);
      } catch {
        sessionStorage.removeItem(SESSION_KEY);
      }
    }
    this.core.changed();
  }

  async authenticate(mode: 'login' | 'register', username: string, password: string): Promise<void> {
    const config = this.core.config;
    if (!config || this.busy) return;
    this.busy = true;
    this.authError = null;
    this.core.changed();
    try {
      const client = new ChatClient({ ...config });
      const session = mode === 'login' ? await client.login({ username, password }) : await client.register({ username, password });
      sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
      this.start(session);
    } catch (error) {
      this.authError = describe(error);
    } finally {
      this.busy = false;
      this.core.changed();
    }
  }

  /** Ends this session on the server too (its sockets close), then here. */
  logout(): void {
    const client = this.core.client;
    if (client) void client.rest.logout().catch(() => undefined);
    this.forget();
  }

  /**
   * This device's session was ended from here (logout everywhere, account deleted): back to the login screen,
   * without the "session has ended" error. The client already forgot its tokens, which stopped everything here;
   * only what is still running is stopped.
   */
  endedHere(): void {
    this.authError = null;
    if (this.core.client) this.forget();
    else this.core.changed();
  }

  /** Forgets the session here only (the server already ended it). */
  private forget(): void {
    sessionStorage.removeItem(SESSION_KEY);
    this.stop();
    this.core.changed();
  }

  private expired(): void {
    this.authError = 'Your session has ended: log in again.';
    this.forget();
  }

  private stop(): void {
    const { core, conversations, friends, members, security, typing } = this.slices;
    for (const off of this.offs) off();
    this.offs = [];
    core.client?.disconnect();
    core.client = null;
    core.me = null;
    core.connection = 'offline';
    conversations.clear();
    friends.clear();
    members.clear();
    security.clear();
    typing.end();
  }

  private start({ token, refreshToken, user }: Pick<Tokens, 'token' | 'refreshToken' | 'user'>): void {
    const config = this.core.config;
    if (!config) return;
    this.stop();
    const client = new ChatClient({
      ...config,
      token,
      refreshToken: refreshToken ?? null,
      // Renewed tokens are kept so a reload stays logged in; an ended session logs out.
      onSession: (session) => {
        if (client !== this.core.client) return;
        if (session) sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
        else this.expired();
      },
      reconnect: { maxDelayMs: 10_000 },
    });
    client.user = user;
    this.core.client = client;
    this.core.me = user;
    this.offs = wire(client, this.slices, () => this.expired(), () => void this.afterReconnect());
    this.slices.typing.start();
    void this.load(client);
  }

  private async load(client: ChatClient): Promise<void> {
    const { conversations, friends } = this.slices;
    try {
      const summaries = await listAll(client);
      for (const summary of summaries) conversations.upsert(summary);
      this.core.changed();
      await client.connect();
      await client.joinConversations(summaries.map((c) => c._id));
      await Promise.all([friends.refresh(), friends.refreshStatus()]);
      // Opened from a push notification (sw.js): show its conversation.
      const fromNotification = new URLSearchParams(window.location.search).get('conversation');
      if (fromNotification && conversations.all.has(fromNotification)) await conversations.open(fromNotification);
    } catch (error) {
      if (client !== this.core.client) return;
      if (error instanceof ChatError && error.status === 401) {
        this.expired();
        return;
      }
      this.core.notify(`Could not load: ${describe(error)}`);
    }
  }

  private async afterReconnect(): Promise<void> {
    const client = this.core.client;
    const { conversations, friends } = this.slices;
    if (!client) return;
    // Edits, deletions and reactions made while we were away are not replayed: reload what is on screen.
    for (const [id, view] of conversations.all) {
      if (id !== conversations.activeId) {
        view.historyLoaded = false;
        view.messages.clear();
      }
    }
    try {
      for (const summary of await listAll(client)) conversations.upsert(summary);
      if (conversations.activeId) {
        await conversations.reloadHistory(conversations.activeId);
        await conversations.markRead(conversations.activeId);
      }
      await Promise.all([friends.refresh(), friends.refreshStatus()]);
    } catch (error) {
      this.core.notify(`Could not refresh after reconnecting: ${describe(error)}`);
    }
    this.core.changed();
  }
}
