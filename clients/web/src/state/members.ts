/**
 * A group's member list with roles, and what the signed-in user's role lets them do there: the owner gives and
 * takes admin, hands the group over and removes anyone; an admin removes members; everyone may leave. The server
 * decides (docs/protocol.md, "Group roles"); this slice only hides buttons that would be refused.
 */

import type { Conversation, Member, Role } from '@chat/sdk';

import { type Core, describe } from './core';

export class Members {
  /** The group whose member list is shown, if any. */
  shownFor: string | null = null;
  list: Member[] = [];

  constructor(private readonly core: Core) {}

  clear(): void {
    this.shownFor = null;
    this.list = [];
  }

  myRole(conversation: Conversation): Role | null {
    const me = this.core.me?._id;
    if (!me || conversation.type !== 'group') return null;
    if (conversation.ownerId === me) return 'owner';
    return conversation.admins?.includes(me) ? 'admin' : 'member';
  }

  /** Whether `me` (with `mine`) may remove `member`: the owner anyone, an admin members only. */
  mayRemove(mine: Role | null, member: Member): boolean {
    if (member._id === this.core.me?._id) return false;
    return mine === 'owner' || (mine === 'admin' && member.role === 'member');
  }

  async toggle(conversationId: string): Promise<void> {
    if (this.shownFor === conversationId) {
      this.core.update(() => this.clear());
      return;
    }
    this.shownFor = conversationId;
    await this.reload();
  }

  /** The first 100 members (the panel of a larger group says how many more there are). */
  async reload(): Promise<void> {
    const client = this.core.client;
    const id = this.shownFor;
    if (!client || !id) return;
    try {
      const page = await client.rest.members(id, { limit: 100 });
      if (this.shownFor === id) this.list = page.items.sort((a, b) => a.username.localeCompare(b.username));
    } catch (error) {
      this.core.notify(`Could not list the members: ${describe(error)}`);
    }
    this.core.changed();
  }

  /** A role change or membership change in `conversationId`: refresh the list if it is shown. */
  changed(conversationId: string): void {
    if (this.shownFor === conversationId) void this.reload();
  }

  setRole(member: Member, role: 'admin' | 'member'): Promise<void> {
    return this.act((client, id) => client.rest.setRole(id, member._id, role), `${member.username} is now ${role === 'admin' ? 'an admin' : 'a member'}`);
  }

  transfer(member: Member): Promise<void> {
    return this.act((client, id) => client.rest.transferOwnership(id, member._id), `${member.username} now owns the group`);
  }

  remove(member: Member): Promise<void> {
    return this.act((client, id) => client.rest.removeMember(id, member._id), `${member.username} was removed`);
  }

  private async act(
    change: (client: NonNullable<Core['client']>, conversationId: string) => Promise<unknown>,
    done: string,
  ): Promise<void> {
    const client = this.core.client;
    const id = this.shownFor;
    if (!client || !id) return;
    try {
      await change(client, id);
      this.core.notify(done);
    } catch (error) {
      this.core.notify(describe(error));
    }
    await this.reload();
  }
}
