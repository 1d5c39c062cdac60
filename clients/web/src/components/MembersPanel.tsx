/**
 * An open group's members with their roles, and the actions the signed-in user's role allows (the server checks
 * them again). Every `data-testid` is used by the browser tests: keep them stable.
 */

import type { Conversation, Member } from '@chat/sdk';
import type { JSX } from 'preact';

import { store } from '../state';

export function MembersPanel({ conversation }: { conversation: Conversation }): JSX.Element {
  const members = store.members;
  const mine = members.myRole(conversation);
  const more = conversation.memberCount - members.list.length;
  return (
    <section class="members" data-testid="members-panel">
      <ul>
        {members.list.map((member) => (
          <li key={member._id} class="row" data-testid="member" data-username={member.username} data-role={member.role}>
            <span class="grow">{member.username}</span>
            {member.role !== 'member' && <span class="badge" data-testid="member-role">{member.role}</span>}
            {mine === 'owner' && member._id !== store.core.me?._id && <OwnerActions member={member} />}
            {members.mayRemove(mine, member) && (
              <button type="button" class="secondary small" data-testid="member-remove" onClick={() => void members.remove(member)}>
                Remove
              </button>
            )}
          </li>
        ))}
      </ul>
      {more > 0 && <p class="muted small">and {more} more</p>}
    </section>
  );
}

function OwnerActions({ member }: { member: Member }): JSX.Element {
  const admin = member.role === 'admin';
  return (
    <>
      <button
        type="button"
        class="secondary small"
        data-testid="member-admin-toggle"
        onClick={() => void store.members.setRole(member, admin ? 'member' : 'admin')}
      >
        {admin ? 'Remove admin' : 'Make admin'}
      </button>
      <button type="button" class="secondary small" data-testid="member-make-owner" onClick={() => void store.members.transfer(member)}>
        Make owner
      </button>
    </>
  );
}
