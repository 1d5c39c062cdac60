/**
 * Friends and friend requests. Every `data-testid` is used by the browser tests (tests/browser.test.ts): keep them
 * stable.
 */

import type { ContactableBy, Friend } from '@chat/sdk';
import type { JSX } from 'preact';
import { useState } from 'preact/hooks';

import { store } from '../state';
import { Dot } from './Dot';

export function Friends(): JSX.Element {
  const [username, setUsername] = useState('');
  const { incoming, outgoing } = store.friends.requests;
  return (
    <div class="friends">
      <form
        class="row"
        onSubmit={(e) => {
          e.preventDefault();
          void store.friends.act('send', username).then((ok) => ok && setUsername(''));
        }}
      >
        <input data-testid="friend-username" placeholder="Username" value={username} onInput={(e) => setUsername(e.currentTarget.value)} />
        <button type="submit" data-testid="friend-send">
          Add friend
        </button>
      </form>
      {incoming.length > 0 && <h3>Requests</h3>}
      <ul>
        {incoming.map((r) => (
          <li class="row spread" data-testid="friend-request" data-username={r.user.username}>
            <span>{r.user.username}</span>
            <span class="row">
              <button data-testid="friend-accept" onClick={() => void store.friends.act('accept', r.user.username)}>
                Accept
              </button>
              <button class="secondary" data-testid="friend-reject" onClick={() => void store.friends.act('reject', r.user.username)}>
                Reject
              </button>
            </span>
          </li>
        ))}
      </ul>
      {outgoing.length > 0 && <h3>Sent</h3>}
      <ul>
        {outgoing.map((r) => (
          <li class="row spread" data-testid="friend-outgoing" data-username={r.user.username}>
            <span>{r.user.username}</span>
            <button class="secondary" data-testid="friend-cancel" onClick={() => void store.friends.act('cancel', r.user.username)}>
              Cancel
            </button>
          </li>
        ))}
      </ul>
      <h3>Friends</h3>
      <ul>
        {store.friends.list.length === 0 && <li class="muted small">No friends yet.</li>}
        {store.friends.list.map((f) => (
          <FriendItem friend={f} />
        ))}
      </ul>
      {store.friends.blocked.length > 0 && <h3>Blocked</h3>}
      <ul>
        {store.friends.blocked.map((b) => (
          <li class="row spread" data-testid="blocked-user" data-username={b.user.username}>
            <span>{b.user.username}</span>
            <button class="secondary" data-testid="unblock" onClick={() => void store.friends.toggleBlock(b.user)}>
              Unblock
            </button>
          </li>
        ))}
      </ul>
      <label class="row small">
        Who can start chats with me
        <select
          data-testid="contactable-by"
          value={store.friends.contactableBy}
          onChange={(e) => void store.friends.setContactableBy(e.currentTarget.value as ContactableBy)}
        >
          <option value="everyone">Everyone</option>
          <option value="friends">Friends</option>
          <option value="nobody">Nobody</option>
        </select>
      </label>
    </div>
  );
}

function FriendItem({ friend }: { friend: Friend }): JSX.Element {
  const { online, status } = store.friends.presence(friend);
  return (
    <li class="row spread friend" data-testid="friend" data-username={friend.username}>
      <span class="row">
        <Dot online={online} />
        <span>
          {friend.username}
          <span class="muted small" data-testid="friend-status">
            {' '}
            {status}
          </span>
        </span>
      </span>
      <span class="row">
        <button class="secondary" data-testid="friend-chat" onClick={() => void store.conversations.createPrivate(friend._id)}>
          Chat
        </button>
        <button class="link" data-testid="friend-remove" onClick={() => void store.friends.act('unfriend', friend.username)}>
          Unfriend
        </button>
      </span>
    </li>
  );
}
