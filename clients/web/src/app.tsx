/**
 * The screens. They only read `store` and call its methods; every `data-testid` here is used by the browser
 * tests (tests/browser.test.ts), so keep them stable.
 */

import type { Friend, Message, User } from '@chat/sdk';
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import type { JSX } from 'preact';

import { type ConversationView, type PendingSend, store } from './store';

const REACTIONS = ['👍', '❤️', '😂', '🎉', '😮'];
const STATUSES = ['online', 'away', 'busy', 'invisible'];

export function App(): JSX.Element {
  if (store.configError) {
    return (
      <div class="center" data-testid="config-error">
        <h1>Cannot start</h1>
        <p>{store.configError}</p>
        <p class="muted">
          The app reads its endpoints from <code>config.json</code> next to index.html:{' '}
          <code>{'{"http": "…", "websocket": "…"}'}</code>
        </p>
      </div>
    );
  }
  if (!store.config) return <div class="center muted">Loading…</div>;
  if (!store.me) return <Login />;
  return (
    <div class="app" data-testid="app" data-connection={store.connection}>
      <ConnectionBanner />
      <div class="layout">
        <Sidebar />
        <ConversationPane />
      </div>
      {store.toast && (
        <div class="toast" data-testid="toast" role="status">
          {store.toast}
        </div>
      )}
    </div>
  );
}

// ------------------------------------------------------------------ sign in

function Login(): JSX.Element {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const submit = (mode: 'login' | 'register') => (event: Event) => {
    event.preventDefault();
    void store.authenticate(mode, username, password);
  };
  return (
    <div class="center">
      <form class="card login" onSubmit={submit('login')} data-testid="login-form">
        <h1>Chat</h1>
        <label>
          Username
          <input
            data-testid="login-username"
            autocomplete="username"
            value={username}
            onInput={(e) => setUsername(e.currentTarget.value)}
            required
          />
        </label>
        <label>
          Password
          <input
            data-testid="login-password"
            type="password"
            autocomplete="current-password"
            value={password}
            onInput={(e) => setPassword(e.currentTarget.value)}
            required
          />
        </label>
        {store.authError && (
          <p class="error" data-testid="auth-error">
            {store.authError}
          </p>
        )}
        <div class="row">
          <button type="submit" data-testid="login-submit" disabled={store.busy}>
            Log in
          </button>
          <button type="button" class="secondary" data-testid="register-submit" disabled={store.busy} onClick={submit('register')}>
            Create account
          </button>
        </div>
        <p class="muted small">Usernames: 3–32 letters, digits, “_”, “.”, “-”. Passwords: at least 8 characters.</p>
      </form>
    </div>
  );
}

// ------------------------------------------------------------------ connection

function ConnectionBanner(): JSX.Element | null {
  const state = store.connection;
  if (state === 'connected') return null;
  const text =
    state === 'reconnecting'
      ? 'Connection lost. Reconnecting…'
      : state === 'connecting'
        ? 'Connecting…'
        : 'Offline.';
  return (
    <div class={`banner banner-${state}`} data-testid="connection-banner" data-state={state} role="status">
      <span>{text}</span>
      {state === 'reconnecting' && (
        <button class="link" data-testid="reconnect-now" onClick={() => store.client?.reconnectNow()}>
          Retry now
        </button>
      )}
      {state === 'offline' && (
        <button class="link" data-testid="reconnect-now" onClick={() => void store.client?.connect().catch(() => undefined)}>
          Reconnect
        </button>
      )}
    </div>
  );
}

function Dot({ online, testid = 'presence-dot' }: { online: boolean; testid?: string }): JSX.Element {
  return (
    <span
      class={`dot ${online ? 'dot-online' : 'dot-offline'}`}
      data-testid={testid}
      data-online={String(online)}
      title={online ? 'online' : 'offline'}
    />
  );
}

// ------------------------------------------------------------------ sidebar

function Sidebar(): JSX.Element {
  const me = store.me!;
  const incoming = store.requests.incoming.length;
  return (
    <aside class="sidebar">
      <header class="me">
        <div class="me-line">
          <span class={`state-pill state-${store.connection}`} data-testid="connection-state" title="connection">
            {store.connection}
          </span>
          <strong data-testid="me" data-user-id={me._id}>
            {me.username}
          </strong>
          <button class="link" data-testid="logout" onClick={() => store.logout()}>
            Log out
          </button>
        </div>
        <StatusControl />
      </header>
      <nav class="tabs">
        <button class={store.tab === 'chats' ? 'tab active' : 'tab'} data-testid="tab-chats" onClick={() => set(() => (store.tab = 'chats'))}>
          Chats
        </button>
        <button class={store.tab === 'friends' ? 'tab active' : 'tab'} data-testid="tab-friends" onClick={() => set(() => (store.tab = 'friends'))}>
          Friends
          {incoming > 0 && (
            <span class="badge" data-testid="friend-requests-count">
              {incoming}
            </span>
          )}
        </button>
      </nav>
      {store.tab === 'chats' ? <Chats /> : <Friends />}
    </aside>
  );
}

function set(change: () => void): void {
  change();
  store.changed();
}

function StatusControl(): JSX.Element {
  const [custom, setCustom] = useState('');
  const preset = STATUSES.includes(store.myStatus);
  return (
    <div class="status-control">
      <select
        data-testid="status-select"
        value={preset ? store.myStatus : 'custom'}
        onChange={(e) => {
          const value = e.currentTarget.value;
          if (value !== 'custom') void store.setStatus(value);
        }}
      >
        {STATUSES.map((s) => (
          <option value={s}>{s}</option>
        ))}
        <option value="custom" disabled>
          {preset ? 'custom…' : store.myStatus}
        </option>
      </select>
      <form
        class="row"
        onSubmit={(e) => {
          e.preventDefault();
          void store.setStatus(custom).then(() => setCustom(''));
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
        {store.myStatus}
      </span>
    </div>
  );
}

function Chats(): JSX.Element {
  const conversations = store.sortedConversations();
  return (
    <div class="chats">
      <div class="row new-buttons">
        <button class="secondary" data-testid="new-private" onClick={() => set(() => (store.panel = store.panel === 'private' ? 'none' : 'private'))}>
          New chat
        </button>
        <button class="secondary" data-testid="new-group" onClick={() => set(() => (store.panel = store.panel === 'group' ? 'none' : 'group'))}>
          New group
        </button>
      </div>
      {store.panel !== 'none' && <NewConversation key={store.panel} group={store.panel === 'group'} />}
      <ul class="conversation-list" data-testid="conversation-list">
        {conversations.length === 0 && <li class="muted empty">No conversations yet.</li>}
        {conversations.map((view) => (
          <ConversationItem key={view.summary._id} view={view} />
        ))}
      </ul>
    </div>
  );
}

function ConversationItem({ view }: { view: ConversationView }): JSX.Element {
  const c = view.summary;
  const peer = store.peer(c);
  const last = c.lastMessage;
  const typing = [...view.typing.values()];
  const active = store.activeId === c._id;
  return (
    <li>
      <button
        class={active ? 'conversation active' : 'conversation'}
        data-testid="conversation-item"
        data-conversation-id={c._id}
        data-title={store.title(c)}
        onClick={() => void store.open(c._id)}
      >
        <span class="avatar">
          {store.title(c).slice(0, 1).toUpperCase()}
          {peer && <Dot online={store.presenceOf(peer._id)?.online ?? false} />}
        </span>
        <span class="conversation-text">
          <span class="row spread">
            <strong class="ellipsis" data-testid="conversation-title">
              {store.title(c)}
            </strong>
            {last && <span class="muted small">{time(last.createdAt)}</span>}
          </span>
          <span class="row spread">
            <span class="muted ellipsis" data-testid="conversation-last-message">
              {typing.length > 0
                ? `${typing.map((t) => t.username).join(', ')} typing…`
                : last
                  ? `${c.type === 'group' || last.sender._id === store.me?._id ? `${last.sender._id === store.me?._id ? 'You' : last.sender.username}: ` : ''}${last.content}`
                  : 'No messages yet'}
            </span>
            {c.unreadCount > 0 && !active && (
              <span class="badge" data-testid="unread-count">
                {c.unreadCount}
              </span>
            )}
          </span>
        </span>
      </button>
    </li>
  );
}

/** Picks users by username prefix: one for a private chat, several (plus a name) for a group. */
function NewConversation({ group }: { group: boolean }): JSX.Element {
  const [query, setQuery] = useState('');
  const [results, setResults] = useState<User[]>([]);
  const [picked, setPicked] = useState<User[]>([]);
  const [name, setName] = useState('');
  useEffect(() => {
    let live = true;
    const timer = setTimeout(() => {
      void store.searchUsers(query).then((users) => live && setResults(users));
    }, 200);
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [query]);
  const choose = (user: User) => {
    if (!group) {
      void store.createPrivate(user._id);
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
              <Dot online={store.presenceOf(u._id)?.online ?? false} /> {u.username}
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
          onClick={() => void store.createGroup(name.trim(), picked.map((p) => p._id))}
        >
          Create group
        </button>
      )}
    </div>
  );
}

function Friends(): JSX.Element {
  const [username, setUsername] = useState('');
  const { incoming, outgoing } = store.requests;
  return (
    <div class="friends">
      <form
        class="row"
        onSubmit={(e) => {
          e.preventDefault();
          void store.friendAction('send', username).then((ok) => ok && setUsername(''));
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
              <button data-testid="friend-accept" onClick={() => void store.friendAction('accept', r.user.username)}>
                Accept
              </button>
              <button class="secondary" data-testid="friend-reject" onClick={() => void store.friendAction('reject', r.user.username)}>
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
            <button class="secondary" data-testid="friend-cancel" onClick={() => void store.friendAction('cancel', r.user.username)}>
              Cancel
            </button>
          </li>
        ))}
      </ul>
      <h3>Friends</h3>
      <ul>
        {store.friends.length === 0 && <li class="muted small">No friends yet.</li>}
        {store.friends.map((f) => (
          <FriendItem friend={f} />
        ))}
      </ul>
    </div>
  );
}

function FriendItem({ friend }: { friend: Friend }): JSX.Element {
  const { online, status } = store.friendPresence(friend);
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
        <button class="secondary" data-testid="friend-chat" onClick={() => void store.createPrivate(friend._id)}>
          Chat
        </button>
        <button class="link" data-testid="friend-remove" onClick={() => void store.friendAction('unfriend', friend.username)}>
          Unfriend
        </button>
      </span>
    </li>
  );
}

// ------------------------------------------------------------------ conversation

function ConversationPane(): JSX.Element {
  const view = store.active();
  if (!view) {
    return (
      <main class="pane empty-pane">
        <p class="muted">Pick a conversation, or start one with “New chat”.</p>
      </main>
    );
  }
  const c = view.summary;
  const peer = store.peer(c);
  const presence = peer ? store.presenceOf(peer._id) : undefined;
  const typing = [...view.typing.values()].map((t) => t.username);
  return (
    <main class="pane" data-testid="conversation" data-conversation-id={c._id}>
      <header class="pane-header">
        <div>
          <h2 data-testid="conversation-header">{store.title(c)}</h2>
          <div class="muted small row">
            {peer ? (
              <>
                <Dot online={presence?.online ?? false} testid="peer-presence" />
                <span data-testid="peer-status">{presence?.online ? presence.status : 'offline'}</span>
              </>
            ) : (
              <span>{c.memberCount} members</span>
            )}
          </div>
        </div>
      </header>
      <MessageList key={c._id} view={view} />
      <div class="typing" data-testid="typing-indicator" data-active={String(typing.length > 0)}>
        {typing.length > 0 ? `${typing.join(', ')} ${typing.length > 1 ? 'are' : 'is'} typing…` : ''}
      </div>
      <Composer key={c._id} conversationId={c._id} />
    </main>
  );
}

function MessageList({ view }: { view: ConversationView }): JSX.Element {
  const ref = useRef<HTMLDivElement>(null);
  const atBottom = useRef(true);
  const anchor = useRef<number | null>(null);
  const messages = store.timeline(view);
  const me = store.me?._id;

  useLayoutEffect(() => {
    const el = ref.current;
    if (!el) return;
    if (anchor.current !== null && !view.loadingOlder) {
      el.scrollTop = el.scrollHeight - anchor.current;
      anchor.current = null;
    } else if (atBottom.current) {
      el.scrollTop = el.scrollHeight;
    }
  });

  const older = () => {
    const el = ref.current;
    if (!el || view.loadingOlder || view.reachedStart) return;
    anchor.current = el.scrollHeight - el.scrollTop;
    void store.loadOlder(view.summary._id);
  };
  const onScroll = () => {
    const el = ref.current;
    if (!el) return;
    atBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
    if (el.scrollTop < 80 && view.historyLoaded) older();
  };

  return (
    <div class="messages" ref={ref} onScroll={onScroll} data-testid="message-list">
      {view.historyLoaded && !view.reachedStart && (
        <button class="link load-older" data-testid="load-older" disabled={view.loadingOlder} onClick={older}>
          {view.loadingOlder ? 'Loading…' : 'Load older messages'}
        </button>
      )}
      {view.historyLoaded && view.reachedStart && <div class="muted small start">Start of the conversation</div>}
      {!view.historyLoaded && <div class="muted small start">Loading…</div>}
      {messages.map((m, i) => (
        <MessageItem key={m._id} view={view} message={m} own={m.sender._id === me} showSender={view.summary.type === 'group' && messages[i - 1]?.sender._id !== m.sender._id} />
      ))}
      {view.pending.map((p) => (
        <PendingItem key={p.clientMessageId} conversationId={view.summary._id} pending={p} />
      ))}
    </div>
  );
}

function MessageItem({ view, message, own, showSender }: { view: ConversationView; message: Message; own: boolean; showSender: boolean }): JSX.Element {
  const [editing, setEditing] = useState(false);
  const [draft, setDraft] = useState(message.content);
  const [picking, setPicking] = useState(false);
  const me = store.me?._id ?? '';
  const state = own ? store.messageState(view, message) : null;
  const readers = own && view.summary.type === 'group' ? store.readersOf(view, message) : 0;
  return (
    <div
      class={`message ${own ? 'own' : 'other'} ${message.deleted ? 'deleted' : ''}`}
      data-testid="message"
      data-message-id={message._id}
      data-seq={message.seq}
      data-own={String(own)}
      data-pending="false"
      data-deleted={String(message.deleted)}
    >
      {showSender && !own && <div class="sender">{message.sender.username}</div>}
      <div class="bubble">
        {editing ? (
          <form
            class="row"
            onSubmit={(e) => {
              e.preventDefault();
              setEditing(false);
              void store.edit(message, draft);
            }}
          >
            <input data-testid="edit-input" value={draft} onInput={(e) => setDraft(e.currentTarget.value)} autoFocus />
            <button type="submit" data-testid="edit-save">
              Save
            </button>
            <button type="button" class="secondary" onClick={() => setEditing(false)}>
              Cancel
            </button>
          </form>
        ) : (
          <span class="content" data-testid="message-content">
            {message.content}
          </span>
        )}
        <span class="meta">
          {message.edited && !message.deleted && (
            <span class="edited" data-testid="message-edited">
              edited
            </span>
          )}
          <span>{time(message.createdAt)}</span>
          {state && !message.deleted && (
            <span class={`status status-${state}`} data-testid="message-status" data-state={state} title={state}>
              {state === 'read' ? '✓✓' : state === 'delivered' ? '✓✓' : '✓'}
              <span class="status-text">{readers > 0 ? ` read by ${readers}` : ` ${state}`}</span>
            </span>
          )}
        </span>
      </div>
      {Object.keys(message.reactions).length > 0 && (
        <div class="reactions">
          {Object.entries(message.reactions).map(([emoji, users]) => (
            <button
              class={users.includes(me) ? 'reaction mine' : 'reaction'}
              data-testid="reaction"
              data-emoji={emoji}
              data-count={users.length}
              onClick={() => void store.toggleReaction(message, emoji)}
            >
              {emoji} {users.length}
            </button>
          ))}
        </div>
      )}
      {!message.deleted && !editing && (
        <div class="actions">
          <button class="link" data-testid="reaction-add" onClick={() => setPicking(!picking)} title="React">
            ☺+
          </button>
          {own && (
            <>
              <button
                class="link"
                data-testid="message-edit"
                onClick={() => {
                  setDraft(message.content);
                  setEditing(true);
                }}
              >
                Edit
              </button>
              <button class="link" data-testid="message-delete" onClick={() => void store.remove(message)}>
                Delete
              </button>
            </>
          )}
        </div>
      )}
      {picking && (
        <div class="picker" data-testid="reaction-picker">
          {REACTIONS.map((emoji) => (
            <button
              class="link"
              data-testid="reaction-option"
              data-emoji={emoji}
              onClick={() => {
                setPicking(false);
                void store.toggleReaction(message, emoji);
              }}
            >
              {emoji}
            </button>
          ))}
        </div>
      )}
    </div>
  );
}

function PendingItem({ conversationId, pending }: { conversationId: string; pending: PendingSend }): JSX.Element {
  return (
    <div
      class={`message own pending ${pending.failed ? 'failed' : ''}`}
      data-testid="message"
      data-pending="true"
      data-own="true"
      data-client-message-id={pending.clientMessageId}
    >
      <div class="bubble">
        <span class="content" data-testid="message-content">
          {pending.content}
        </span>
        <span class="meta">
          <span>{time(pending.createdAt)}</span>
          <span class="status" data-testid="message-status" data-state={pending.failed ? 'failed' : 'sending'}>
            {pending.failed ? ' failed' : ' 🕓 sending'}
          </span>
        </span>
      </div>
      {pending.failed && (
        <div class="actions visible">
          <span class="error small">{pending.failed}</span>
          <button class="link" data-testid="message-retry" onClick={() => store.send(conversationId, pending.content, pending)}>
            Retry
          </button>
          <button class="link" data-testid="message-discard" onClick={() => store.discard(conversationId, pending.clientMessageId)}>
            Discard
          </button>
        </div>
      )}
    </div>
  );
}

function Composer({ conversationId }: { conversationId: string }): JSX.Element {
  const [text, setText] = useState('');
  return (
    <form
      class="composer"
      onSubmit={(e) => {
        e.preventDefault();
        store.send(conversationId, text);
        setText('');
      }}
    >
      <input
        data-testid="composer-input"
        placeholder="Write a message"
        maxLength={4000}
        value={text}
        onInput={(e) => {
          setText(e.currentTarget.value);
          if (e.currentTarget.value !== '') store.typing(conversationId);
        }}
        onBlur={() => store.stopTyping()}
        autoFocus
      />
      <button type="submit" data-testid="composer-send" disabled={text.trim() === ''}>
        Send
      </button>
    </form>
  );
}

function time(iso: string): string {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? '' : date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}
