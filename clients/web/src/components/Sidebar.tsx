/**
 * The sidebar: who is signed in, their status, and the chats, friends and settings tabs. Every `data-testid` is used by the
 * browser tests (tests/browser.test.ts): keep them stable.
 */

import type { JSX } from 'preact';
import { useState } from 'preact/hooks';

import { store } from '../state';
import { Chats } from './Chats';
import { Friends } from './Friends';
import { Settings } from './Settings';

const STATUSES = ['online', 'away', 'busy', 'invisible'];

export function Sidebar(): JSX.Element {
  const me = store.core.me!;
  const incoming = store.friends.requests.incoming.length;
  return (
    <aside class="sidebar">
      <header class="me">
        <div class="me-line">
          <span class={`state-pill state-${store.core.connection}`} data-testid="connection-state" title="connection">
            {store.core.connection}
          </span>
          <strong data-testid="me" data-user-id={me._id}>
            {me.username}
          </strong>
          <button class="link" data-testid="logout" onClick={() => store.session.logout()}>
            Log out
          </button>
        </div>
        <StatusControl />
      </header>
      <nav class="tabs">
        <button class={store.conversations.tab === 'chats' ? 'tab active' : 'tab'} data-testid="tab-chats" onClick={() => store.core.update(() => (store.conversations.tab = 'chats'))}>
          Chats
        </button>
        <button class={store.conversations.tab === 'friends' ? 'tab active' : 'tab'} data-testid="tab-friends" onClick={() => store.core.update(() => (store.conversations.tab = 'friends'))}>
          Friends
          {incoming > 0 && (
            <span class="badge" data-testid="friend-requests-count">
              {incoming}
            </span>
          )}
        </button>
        <button class={store.conversations.tab === 'settings' ? 'tab active' : 'tab'} data-testid="tab-settings" onClick={() => store.core.update(() => (store.conversations.tab = 'settings'))}>
          Settings
        </button>
      </nav>
      {store.conversations.tab === 'chats' ? <Chats /> : store.conversations.tab === 'friends' ? <Friends /> : <Settings />}
    </aside>
  );
}

function StatusControl(): JSX.Element {
  const [custom, setCustom] = useState('');
  const preset = STATUSES.includes(store.friends.myStatus);
  return (
    <div class="status-control">
      <select
        data-testid="status-select"
        value={preset ? store.friends.myStatus : 'custom'}
        onChange={(e) => {
          const value = e.currentTarget.value;
          if (value !== 'custom') void store.friends.setStatus(value);
        }}
      >
        {STATUSES.map((s) => (
          <option value={s}>{s}</option>
        ))}
        <option value="custom" disabled>
          {preset ? 'custom…' : store.friends.myStatus}
        </option>
      </select>
      <form
        class="row"
        onSubmit={(e) => {
          e.preventDefault();
          void store.friends.setStatus(custom).then(() => setCustom(''));
        }}
      >
        <input
          data-testid="status-text"
          placeholder="Custom status"
          maxLength={64}
          value={custom}
          onInput={(e) => setCustom(e.currentTarget.value)}
        />
        <button type="submit" class="secondary" data-testid="status-save">
          Set
        </button>
      </form>
      <span class="muted small" data-testid="my-status">
        {store.friends.myStatus}
      </span>
    </div>
  );
}
