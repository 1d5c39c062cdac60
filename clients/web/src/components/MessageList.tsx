/**
 * Messages of the open conversation: history loaded on scroll, receipts, edit, delete, reactions, and sends still
 * in flight. Every `data-testid` is used by the browser tests (tests/browser.test.ts): keep them stable.
 */

import { type Attachment, MAX_CONTENT_CHARS, type Message } from '@chat/sdk';
import type { JSX } from 'preact';
import { useLayoutEffect, useRef, useState } from 'preact/hooks';

import { type ConversationView, type PendingSend, store } from '../state';
import { time } from './format';
import { ReportButton } from './ReportForm';

const REACTIONS = ['👍', '❤️', '😂', '🎉', '😮'];

export function MessageList({ view }: { view: ConversationView }): JSX.Element {
  const ref = useRef<HTMLDivElement>(null);
  const atBottom = useRef(true);
  const anchor = useRef<number | null>(null);
  const messages = store.conversations.timeline(view);
  const me = store.core.me?._id;

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
    void store.conversations.loadOlder(view.summary._id);
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
  const me = store.core.me?._id ?? '';
  const state = own ? store.conversations.messageState(view, message) : null;
  const readers = own && view.summary.type === 'group' ? store.conversations.readersOf(view, message) : 0;
  return (
    <div
      class={`message ${own ? 'own' : 'other'} ${message.deleted ? 'deleted' : ''} ${!own && store.messages.mentionsMe(message) ? 'mentions-me' : ''}`}
      data-testid="message"
      data-message-id={message._id}
      data-seq={message.seq}
      data-own={String(own)}
      data-pending="false"
      data-deleted={String(message.deleted)}
      data-mentions-me={String(!own && store.messages.mentionsMe(message))}
    >
      {showSender && !own && <div class="sender">{message.sender.username}</div>}
      <div class="bubble">
        {editing ? (
          <form
            class="row"
            onSubmit={(e) => {
              e.preventDefault();
              setEditing(false);
              void store.messages.edit(message, draft);
            }}
          >
            <input
              data-testid="edit-input"
              maxLength={MAX_CONTENT_CHARS}
              value={draft}
              onInput={(e) => setDraft(e.currentTarget.value)}
              autoFocus
            />
            <button type="submit" data-testid="edit-save">
              Save
            </button>
            <button type="button" class="secondary" onClick={() => setEditing(false)}>
              Cancel
            </button>
          </form>
        ) : (
          <>
            {message.attachment && !message.deleted && <AttachmentView attachment={message.attachment} />}
            {message.content !== '' && (
              <span class="content" data-testid="message-content">
                {message.content}
              </span>
            )}
          </>
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
              onClick={() => void store.messages.toggleReaction(message, emoji)}
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
              <button class="link" data-testid="message-delete" onClick={() => void store.messages.remove(message)}>
                Delete
              </button>
            </>
          )}
          {!own && <ReportButton target={{ type: 'message', messageId: message._id }} testid="message-report" />}
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
                void store.messages.toggleReaction(message, emoji);
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
        {pending.file && (
          <progress
            class="upload-progress"
            data-testid="upload-progress"
            max={pending.file.source.size}
            value={pending.file.loaded}
          />
        )}
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
          <button
            class="link"
            data-testid="message-retry"
            onClick={() =>
              pending.file
                ? store.messages.sendFile(conversationId, pending.file.source, pending)
                : store.messages.send(conversationId, pending.content, pending)
            }
          >
            Retry
          </button>
          <button class="link" data-testid="message-discard" onClick={() => store.messages.discard(conversationId, pending.clientMessageId)}>
            Discard
          </button>
        </div>
      )}
    </div>
  );
}

/** An image inline (its thumbnail, opening the full image), or a card with the file's name and size. */
function AttachmentView({ attachment }: { attachment: Attachment }): JSX.Element {
  if (attachment.status === 'ready' && attachment.thumbnailUrl && attachment.url) {
    return (
      <a class="attachment-image" href={attachment.url} target="_blank" rel="noopener noreferrer" data-testid="attachment-image-link">
        <img
          src={attachment.thumbnailUrl}
          alt={attachment.fileName}
          width={attachment.width && attachment.height ? Math.min(320, attachment.width) : undefined}
          data-testid="attachment-image"
        />
      </a>
    );
  }
  const note = attachment.status === 'processing' ? 'preparing preview…' : attachment.status === 'rejected' ? 'not a valid image' : fileSize(attachment.size);
  return (
    <div class="attachment-file" data-testid="attachment-file" data-status={attachment.status}>
      <span class="attachment-icon">📄</span>
      <span>
        {attachment.url ? (
          <a href={attachment.url} target="_blank" rel="noopener noreferrer" download={attachment.fileName} data-testid="attachment-link">
            {attachment.fileName}
          </a>
        ) : (
          <span>{attachment.fileName}</span>
        )}
        <span class="muted small"> {note}</span>
      </span>
    </div>
  );
}

function fileSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}
