/**
 * Starting a private chat or a group. Every `data-testid` is used by the browser tests (tests/browser.test.ts):
 * keep them stable.
 */

import type { User } from '@chat/sdk';
import type { JSX } from 'preact';
import { useEffect, useState } from 'preact/hooks';

import { store } from '../state';
import { Dot } from './Dot';

/** Picks users by username prefix: one for a private chat, several (plus a name) for a group. */
export function NewConversation({ group }: { group: boolean }): JSX.Element {
  const [query, setQuery] = useState('');
  const [results, setResults] = useState<User[]>([]);
  const [picked, setPicked] = useState<User[]>([]);
  const [name, setName] = useState('');
  useEffect(() => {
    let live = true;
    const timer = setTimeout(() => {
      void store.conversations.searchUsers(query).then((users) => live && setResults(users));
    }, 200);
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [query]);
  const choose = (user: User) => {
    if (!group) {
      void store.conversations.createPrivate(user._id);
      return;
    }
    setPicked(picked.some((p) => p._id === user._id) ? picked.filter((p) => p._id !== user._id) : [...picked, user]);
  };
  return (
    <div class="card panel" data-testid={group ? 'group-panel' : 'private-panel'}>
      {group && (
        <input data-testid="group-name" placeholder="Group name" maxLength={100} value={name} onInput={(e) => setName(e.currentTarget.value)} />
      )}
      <input
        data-testid="user-search"
        placeholder={group ? 'Add people by username' : 'Find someone by username'}
        value={query}
        onInput={(e) => setQuery(e.currentTarget.value)}
      />
      {group && picked.length > 0 && (
        <div class="chips">
          {picked.map((u) => (
            <button class="chip" data-testid="group-member" onClick={() => choose(u)}>
              {u.username} ✕
            </button>
          ))}
        </div>
      )}
      <ul class="results">
        {results.map((u) => (
          <li>
            <button class="result" data-testid="user-result" data-username={u.username} onClick={() => choose(u)}>
              <Dot online={store.conversations.presenceOf(u._id)?.online ?? false} /> {u.username}
              {group && picked.some((p) => p._id === u._id) && ' ✓'}
            </button>
          </li>
        ))}
        {query.trim() !== '' && results.length === 0 && <li class="muted small">Nobody found.</li>}
      </ul>
      {group && (
        <button
          data-testid="group-create"
          disabled={name.trim() === '' || picked.length === 0}
          onClick={() => void store.conversations.createGroup(name.trim(), picked.map((p) => p._id))}
        >
          Create group
        </button>
      )}
    </div>
  );
}
