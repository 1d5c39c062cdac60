/**
 * The conversation list: newest activity first, unread counts (and mentions of me), mute state, presence of
 * private peers. Every `data-testid` is
 * used by the browser tests (tests/browser.test.ts): keep them stable.
 */

import type { JSX } from 'preact';

import { type ConversationView, store } from '../state';
import { Dot } from './Dot';
import { time } from './format';
import { NewConversation } from './NewConversation';

export function Chats(): JSX.Element {
  const conversations = store.conversations.sorted();
  return (
    <div class="chats">
      <div class="row new-buttons">
        <button class="secondary" data-testid="new-private" onClick={() => store.core.update(() => (store.conversations.panel = store.conversations.panel === 'private' ? 'none' : 'private'))}>
          New chat
        </button>
        <button class="secondary" data-testid="new-group" onClick={() => store.core.update(() => (store.conversations.panel = store.conversations.panel === 'group' ? 'none' : 'group'))}>
          New group
        </button>
      </div>
      {store.conversations.panel !== 'none' && <NewConversation key={store.conversations.panel} group={store.conversations.panel === 'group'} />}
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
  const peer = store.conversations.peer(c);
  const last = c.lastMessage;
  const typing = [...view.typing.values()];
  const active = store.conversations.activeId === c._id;
  return (
    <li>
      <button
        class={active ? 'conversation active' : 'conversation'}
        data-testid="conversation-item"
        data-conversation-id={c._id}
        data-title={store.conversations.title(c)}
        onClick={() => void store.conversations.open(c._id)}
      >
        <span class="avatar">
          {store.conversations.title(c).slice(0, 1).toUpperCase()}
          {peer && <Dot online={store.conversations.presenceOf(peer._id)?.online ?? false} />}
        </span>
        <span class="conversation-text">
          <span class="row spread">
            <strong class="ellipsis" data-testid="conversation-title">
              {store.conversations.title(c)}
              {c.notifications.level !== 'all' && (
                <span class="muted small" data-testid="conversation-muted" title={`Notifications: ${c.notifications.level}`}>
                  {' '}
                  {c.notifications.level === 'none' ? '🔕' : '🔔@'}
                </span>
              )}
            </strong>
            {last && <span class="muted small">{time(last.createdAt)}</span>}
          </span>
          <span class="row spread">
            <span class="muted ellipsis" data-testid="conversation-last-message">
              {typing.length > 0
                ? `${typing.map((t) => t.username).join(', ')} typing…`
                : last
                  ? `${c.type === 'group' || last.sender._id === store.core.me?._id ? `${last.sender._id === store.core.me?._id ? 'You' : last.sender.username}: ` : ''}${last.content}`
                  : 'No messages yet'}
            </span>
            {c.unreadMentionCount > 0 && !active && (
              <span class="badge mention" data-testid="unread-mention-count" title="Mentions of you">
                @{c.unreadMentionCount}
              </span>
            )}
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
