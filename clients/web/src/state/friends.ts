/**
 * Friends, friend requests, the users this user blocked, and this user's own status.
 */

import type { BlockedUser, ContactableBy, Friend, FriendOutcome, FriendRequests, User } from '@chat/sdk';

import { type Core, describe } from './core';

export type FriendAction = 'send' | 'cancel' | 'accept' | 'reject' | 'unfriend';

export class Friends {
  list: Friend[] = [];
  requests: FriendRequests = { incoming: [], outgoing: [] };
  blocked: BlockedUser[] = [];
  contactableBy: ContactableBy = 'everyone';
  myStatus = 'online';

  constructor(private readonly core: Core) {}

  clear(): void {
    this.list = [];
    this.requests = { incoming: [], outgoing: [] };
    this.blocked = [];
  }

  async refresh(): Promise<void> {
    const client = this.core.client;
    if (!client) return;
    try {
      const [friends, requests, blocked, privacy] = await Promise.all([
        client.getFriends(),
        client.getFriendRequests(),
        client.blockedUsers(),
        client.rest.privacy(),
      ]);
      this.list = friends;
      this.requests = requests;
      this.blocked = blocked;
      this.contactableBy = privacy.contactableBy;
      this.core.changed();
    } catch (error) {
      this.core.notify(`Could not load friends: ${describe(error)}`);
    }
  }

  async refreshStatus(): Promise<void> {
    const client = this.core.client;
    if (!client) return;
    this.myStatus = (await client.getStatus()).status;
    this.core.changed();
  }

  async setStatus(status: string): Promise<void> {
    const client = this.core.client;
    if (!client || status.trim() === '') return;
    try {
      this.myStatus = await client.setStatus(status.trim());
      this.core.changed();
    } catch (error) {
      this.core.notify(`Could not set the status: ${describe(error)}`);
    }
  }

  async act(action: FriendAction, username: string): Promise<boolean> {
    const client = this.core.client;
    if (!client || username.trim() === '') return false;
    const name = username.trim();
    const calls: Record<FriendAction, (username: string) => Promise<FriendOutcome>> = {
      send: (u) => client.sendFriendRequest(u),
      cancel: (u) => client.cancelFriendRequest(u),
      accept: (u) => client.acceptFriendRequest(u),
      reject: (u) => client.rejectFriendRequest(u),
      unfriend: (u) => client.unfriend(u),
    };
    try {
      const outcome = await calls[action](name);
      await this.refresh();
      if (action === 'send') {
        this.core.notify(outcome.result === 'accepted' ? `You and ${name} are now friends` : `Friend request sent to ${name}`);
      }
      return true;
    } catch (error) {
      this.core.notify(describe(error));
      return false;
    }
  }

  isBlocked(userId: string): boolean {
    return this.blocked.some((b) => b.user._id === userId);
  }

  /** Blocks `user`, or unblocks them if blocked; the server then stops (or resumes) delivering what they do. */
  async toggleBlock(user: Pick<User, '_id' | 'username'>): Promise<void> {
    const client = this.core.client;
    if (!client) return;
    try {
      const blocking = !this.isBlocked(user._id);
      await (blocking ? client.blockUser(user._id) : client.unblockUser(user._id));
      await this.refresh();
      this.core.notify(blocking ? `You blocked ${user.username}` : `You unblocked ${user.username}`);
    } catch (error) {
      this.core.notify(describe(error));
    }
  }

  async setContactableBy(setting: ContactableBy): Promise<void> {
    const client = this.core.client;
    if (!client) return;
    try {
      this.contactableBy = (await client.rest.setPrivacy(setting)).contactableBy;
      this.core.changed();
    } catch (error) {
      this.core.notify(`Could not change who can reach you: ${describe(error)}`);
    }
  }

  /** A friend's live presence: the presence map when it knows them, else what `get_friends` said. */
  presence(friend: Friend): { online: boolean; status: string } {
    const live = this.core.client?.presence.get(friend._id);
    return live ? { online: live.online, status: live.status } : { online: friend.online, status: friend.status };
  }
}
