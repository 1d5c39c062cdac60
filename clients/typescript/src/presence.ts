/**
 * Who is online: a map of peer presence fed by `user_online`, `user_offline`, `status_changed` and
 * `get_presence` snapshots.
 *
 * Why this module exists: presence events can cross on the way (the backend may send `offline, online, online`),
 * so each one is applied as "the state is now X", never as a toggle. A client also misses announcements made
 * while its own handshake ran, so it asks `get_presence` after every (re)connect; events that arrive while that
 * request is in flight are newer than the snapshot and are re-applied on top of it.
 */

import type { PeerPresence, ServerEvents } from './protocol.js';

export interface PresenceState {
  userId: string;
  /** Known from presence events; snapshots do not carry it. */
  username?: string;
  online: boolean;
  /** The chosen status while online (`online`, `away`, `busy` or custom text), else `offline`. */
  status: string;
  lastSeen: string | null;
}

export interface PresenceChange {
  userId: string;
  /** The state before, or undefined if the user was unknown. */
  previous: PresenceState | undefined;
  current: PresenceState;
  /** Whether `online` or `status` differs from `previous`. */
  changed: boolean;
  source: 'event' | 'snapshot';
}

type PresenceEvent =
  | { kind: 'online'; data: ServerEvents['user_online'] }
  | { kind: 'offline'; data: ServerEvents['user_offline'] }
  | { kind: 'status'; data: ServerEvents['status_changed'] };

export class PresenceMap {
  private readonly states = new Map<string, PresenceState>();
  /** Events seen since a snapshot was requested, re-applied when it arrives. */
  private sinceSnapshot: PresenceEvent[] | null = null;

  get(userId: string): PresenceState | undefined {
    return this.states.get(userId);
  }

  isOnline(userId: string): boolean {
    return this.states.get(userId)?.online ?? false;
  }

  all(): PresenceState[] {
    return [...this.states.values()];
  }

  online(): PresenceState[] {
    return this.all().filter((state) => state.online);
  }

  /** `user_online`: the user is online now. Their status stays what it was if they were already online. */
  applyOnline(data: ServerEvents['user_online']): PresenceChange {
    return this.apply({ kind: 'online', data });
  }

  /** `user_offline`: the user is offline now (or went invisible). */
  applyOffline(data: ServerEvents['user_offline']): PresenceChange {
    return this.apply({ kind: 'offline', data });
  }

  /** `status_changed`: the user's chosen status (ignored while they are known to be offline). */
  applyStatus(data: ServerEvents['status_changed']): PresenceChange {
    return this.apply({ kind: 'status', data });
  }

  /** Call when sending `get_presence`: events from now on are re-applied on top of its answer. */
  beginSnapshot(): void {
    this.sinceSnapshot = [];
  }

  /** Call if the `get_presence` request failed. */
  abandonSnapshot(): void {
    this.sinceSnapshot = null;
  }

  /**
   * Replaces the map with a `get_presence` answer (the users not in it are no longer peers), re-applies the
   * events that arrived meanwhile, and returns one change per user in the result.
   */
  applySnapshot(users: PeerPresence[]): PresenceChange[] {
    const replay = this.sinceSnapshot ?? [];
    this.sinceSnapshot = null;
    const before = new Map(this.states);
    this.states.clear();
    for (const user of users) {
      const known = before.get(user.userId);
      const state: PresenceState = {
        userId: user.userId,
        online: user.online,
        status: user.status,
        lastSeen: user.lastSeen,
      };
      if (known?.username !== undefined) state.username = known.username;
      this.states.set(user.userId, state);
    }
    for (const event of replay) this.reduce(event);
    return [...this.states.values()].map((current) => {
      const previous = before.get(current.userId);
      return { userId: current.userId, previous, current, changed: differs(previous, current), source: 'snapshot' };
    });
  }

  clear(): void {
    this.states.clear();
    this.sinceSnapshot = null;
  }

  private apply(event: PresenceEvent): PresenceChange {
    this.sinceSnapshot?.push(event);
    const previous = this.states.get(event.data.userId);
    const current = this.reduce(event);
    return { userId: current.userId, previous, current, changed: differs(previous, current), source: 'event' };
  }

  private reduce(event: PresenceEvent): PresenceState {
    const { userId, username } = event.data;
    const previous = this.states.get(userId);
    let next: PresenceState;
    switch (event.kind) {
      case 'online':
        next = {
          userId,
          username,
          online: true,
          status: previous?.online ? previous.status : 'online',
          lastSeen: previous?.lastSeen ?? null,
        };
        break;
      case 'offline':
        next = { userId, username, online: false, status: 'offline', lastSeen: event.data.lastSeen };
        break;
      case 'status':
        // A status can only be set over a live connection, so an unknown user is online. A user known to be
        // offline stays offline: this `status_changed` crossed their `user_offline` on the way.
        next =
          previous && !previous.online
            ? { ...previous, username }
            : { userId, username, online: true, status: event.data.status, lastSeen: previous?.lastSeen ?? null };
        break;
    }
    this.states.set(userId, next);
    return next;
  }
}

function differs(previous: PresenceState | undefined, current: PresenceState): boolean {
  return previous === undefined || previous.online !== current.online || previous.status !== current.status;
}
