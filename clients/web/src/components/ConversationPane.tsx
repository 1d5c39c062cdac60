/**
 * The open conversation: header with presence or member count (and a group's member list), messages, typing line, composer. Every `data-testid`
 * is used by the browser tests (tests/browser.test.ts): keep them stable.
 */

import { MAX_CONTENT_CHARS, type NotifyLevel } from '@chat/sdk';
import type { JSX } from 'preact';
import { useRef, useState } from 'preact/hooks';

import { store } from '../state';
import { Dot } from './Dot';
import { MembersPanel } from './MembersPanel';
import { MessageList } from './MessageList';
import { ReportButton } from './ReportForm';

export function ConversationPane(): JSX.Element {
  const view = store.conversations.active();
  if (!view) {
    return (
      <main class="pane empty-pane">
        <p class="muted">Pick a conversation, or start one with “New chat”.</p>
      </main>
    );
  }
  const c = view.summary;
  const peer = store.conversations.peer(c);
  const presence = peer ? store.conversations.presenceOf(peer._id) : undefined;
  const typing = [...view.typing.values()].map((t) => t.username);
  return (
    <main class="pane" data-testid="conversation" data-conversation-id={c._id}>
      <header class="pane-header">
        <div>
          <h2 data-testid="conversation-header">{store.conversations.title(c)}</h2>
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
        {peer && (
          <button
            type="button"
            class="secondary"
            data-testid="block-toggle"
            data-blocked={String(store.friends.isBlocked(peer._id))}
            onClick={() => void store.friends.toggleBlock(peer)}
          >
            {store.friends.isBlocked(peer._id) ? 'Unblock' : 'Block'}
          </button>
        )}
        {peer && <ReportButton key={peer._id} target={{ type: 'user', userId: peer._id }} testid="peer-report" />}
        <NotifyMenu conversationId={c._id} level={c.notifications.level} until={c.notifications.until} />
        {c.type === 'group' && (
          <button type="button" class="secondary" data-testid="members-toggle" onClick={() => void store.members.toggle(c._id)}>
            {store.members.shownFor === c._id ? 'Hide members' : 'Members'}
          </button>
        )}
      </header>
      {store.members.shownFor === c._id && <MembersPanel conversation={c} />}
      <MessageList key={c._id} view={view} />
      <div class="typing" data-testid="typing-indicator" data-active={String(typing.length > 0)}>
        {typing.length > 0 ? `${typing.join(', ')} ${typing.length > 1 ? 'are' : 'is'} typing…` : ''}
      </div>
      <Composer key={c._id} conversationId={c._id} />
    </main>
  );
}

function Composer({ conversationId }: { conversationId: string }): JSX.Element {
  const [text, setText] = useState('');
  const [dragging, setDragging] = useState(false);
  const picker = useRef<HTMLInputElement>(null);
  const attach = (files: Iterable<File> | null | undefined) => {
    for (const file of files ?? []) store.messages.sendFile(conversationId, file);
  };
  return (
    <form
      class={`composer ${dragging ? 'dragging' : ''}`}
      data-testid="composer"
      onSubmit={(e) => {
        e.preventDefault();
        store.messages.send(conversationId, text);
        setText('');
      }}
      onDragOver={(e) => {
        e.preventDefault();
        setDragging(true);
      }}
      onDragLeave={() => setDragging(false)}
      onDrop={(e) => {
        e.preventDefault();
        setDragging(false);
        attach(e.dataTransfer?.files);
      }}
    >
      <input
        type="file"
        hidden
        multiple
        ref={picker}
        data-testid="composer-file"
        onChange={(e) => {
          attach(e.currentTarget.files);
          e.currentTarget.value = '';
        }}
      />
      <button type="button" class="secondary" data-testid="composer-attach" title="Attach a file" onClick={() => picker.current?.click()}>
        📎
      </button>
      <input
        data-testid="composer-input"
        placeholder="Write a message"
        // The server counts characters (code points), maxLength UTF-16 units: never more than the server allows.
        maxLength={MAX_CONTENT_CHARS}
        value={text}
        onInput={(e) => {
          setText(e.currentTarget.value);
          if (e.currentTarget.value !== '') store.typing.keystroke(conversationId);
        }}
        onBlur={() => store.typing.stop()}
        onPaste={(e) => {
          const files = e.clipboardData?.files;
          if (files && files.length > 0) {
            e.preventDefault();
            attach(files);
          }
        }}
        autoFocus
      />
      <button type="submit" data-testid="composer-send" disabled={text.trim() === ''}>
        Send
      </button>
    </form>
  );
}

/** Which messages of this conversation notify me (stored on the server: every device of mine shows the same). */
function NotifyMenu({ conversationId, level, until }: { conversationId: string; level: NotifyLevel; until: string | null }): JSX.Element {
  const choices: { value: string; label: string; level: NotifyLevel; hours: number | null }[] = [
    { value: 'all', label: 'All messages', level: 'all', hours: null },
    { value: 'mentions', label: 'Only mentions', level: 'mentions', hours: null },
    { value: 'none-1', label: 'Mute for 1 hour', level: 'none', hours: 1 },
    { value: 'none-8', label: 'Mute for 8 hours', level: 'none', hours: 8 },
    { value: 'none', label: 'Mute', level: 'none', hours: null },
  ];
  const current = level === 'none' && until !== null ? 'none-until' : level;
  return (
    <select
      class="secondary"
      data-testid="notify-level"
      data-level={level}
      title={until ? `Until ${new Date(until).toLocaleString()}` : 'Notifications'}
      value={current}
      onChange={(e) => {
        const choice = choices.find((c) => c.value === e.currentTarget.value);
        if (choice) void store.conversations.setNotifications(conversationId, choice.level, choice.hours);
      }}
    >
      {choices.map((c) => (
        <option key={c.value} value={c.value}>
          {c.label}
        </option>
      ))}
      {current === 'none-until' && <option value="none-until">{`Muted until ${new Date(until ?? '').toLocaleTimeString()}`}</option>}
    </select>
  );
}
