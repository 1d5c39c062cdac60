/**
 * Settings: notification preferences, the user's sessions (each can be ended), logging out everywhere, changing
 * the password, downloading one's data, and deleting the account. Every `data-testid` is used by the browser tests: keep them stable.
 */

import type { JSX } from 'preact';
import { useEffect, useState } from 'preact/hooks';

import { store } from '../state';
import { time } from './format';

export function Settings(): JSX.Element {
  const security = store.security;
  useEffect(() => void security.refresh(), []);
  return (
    <section class="settings">
      <NotificationSettings />
      <h3>Sessions</h3>
      <ul>
        {security.sessions.map((s) => (
          <li key={s.sessionId} class="row" data-testid="session" data-current={String(s.current)}>
            <span class="grow small">
              {s.current ? 'This device' : 'Another device'} · since {time(s.createdAt)}
            </span>
            {!s.current && (
              <button type="button" class="secondary small" data-testid="session-end" onClick={() => void security.end(s.sessionId)}>
                End
              </button>
            )}
          </li>
        ))}
      </ul>
      <button type="button" class="secondary" data-testid="logout-everywhere" onClick={() => void security.logoutEverywhere()}>
        Log out everywhere
      </button>
      <PasswordForm />
      <DataExport />
      <DeleteAccountForm />
    </section>
  );
}

/** Do not disturb for a while, and whether notifications show the message's text. */
function NotificationSettings(): JSX.Element | null {
  const preferences = store.security.notifications;
  if (!preferences) return null;
  const until = preferences.doNotDisturbUntil;
  const forHours = (hours: number) => new Date(Date.now() + hours * 3_600_000).toISOString();
  return (
    <div class="notification-settings">
      <h3>Notifications</h3>
      <div class="row">
        <span class="grow small" data-testid="dnd-state" data-active={String(until !== null)}>
          {until ? `Do not disturb until ${time(until)}` : 'Notifications on'}
        </span>
        {until ? (
          <button type="button" class="secondary small" data-testid="dnd-off" onClick={() => void store.security.setNotifications({ doNotDisturbUntil: null })}>
            Turn off do not disturb
          </button>
        ) : (
          [1, 8].map((hours) => (
            <button
              key={hours}
              type="button"
              class="secondary small"
              data-testid={`dnd-${hours}h`}
              onClick={() => void store.security.setNotifications({ doNotDisturbUntil: forHours(hours) })}
            >
              Do not disturb for {hours} h
            </button>
          ))
        )}
      </div>
      <PushToggle />
      <label class="row small">
        <input
          type="checkbox"
          data-testid="previews"
          checked={preferences.previews}
          onChange={(e) => void store.security.setNotifications({ previews: e.currentTarget.checked })}
        />
        Show message text in notifications
      </label>
    </div>
  );
}

/** Push notifications on this device: permission is asked for only when the button is pressed. */
function PushToggle(): JSX.Element {
  const state = store.security.push;
  const label = {
    unsupported: 'This browser cannot show notifications from the chat',
    off: 'Notifications on this device are off',
    blocked: 'Notifications are blocked in this browser\'s site settings',
    on: 'Notifications on this device are on',
  }[state];
  return (
    <div class="row">
      <span class="grow small" data-testid="push-state" data-state={state}>
        {label}
      </span>
      {state === 'off' && (
        <button type="button" class="secondary small" data-testid="push-enable" onClick={() => void store.security.enablePush()}>
          Notify me on this device
        </button>
      )}
      {state === 'on' && (
        <button type="button" class="secondary small" data-testid="push-disable" onClick={() => void store.security.disablePush()}>
          Stop notifications here
        </button>
      )}
    </div>
  );
}

/** A copy of one's data: asked for with a button, made in the background, then a download link. */
function DataExport(): JSX.Element {
  const made = store.security.export;
  return (
    <div class="data-export">
      <h3>Your data</h3>
      <p class="muted small">A copy of your profile, conversations, friends and the messages you sent, as JSON.</p>
      {made?.status === 'ready' && made.url ? (
        <a href={made.url} class="button" data-testid="export-download" download="chat-export.json">
          Download ({Math.ceil((made.size ?? 0) / 1024)} KB, link valid until {time(made.urlExpiresAt ?? '')})
        </a>
      ) : (
        <button type="button" class="secondary" data-testid="export-request" disabled={made?.status === 'pending'} onClick={() => void store.security.requestExport()}>
          {made?.status === 'pending' ? 'Preparing your data…' : 'Export my data'}
        </button>
      )}
    </div>
  );
}

/** Deleting the account: the password again, and a second click to confirm. */
function DeleteAccountForm(): JSX.Element {
  const [password, setPassword] = useState('');
  const [confirming, setConfirming] = useState(false);
  return (
    <form
      class="delete-account"
      onSubmit={(e) => {
        e.preventDefault();
        if (confirming) void store.security.deleteAccount(password);
        else setConfirming(true);
      }}
    >
      <h3>Delete account</h3>
      <p class="muted small">Your messages are erased and your username is freed. This cannot be undone.</p>
      <input type="password" data-testid="delete-password" placeholder="Password" value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
      <button type="submit" class="danger" data-testid="delete-account" disabled={password === ''}>
        {confirming ? 'Yes, delete my account' : 'Delete my account'}
      </button>
    </form>
  );
}

function PasswordForm(): JSX.Element {
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  return (
    <form
      class="password-form"
      onSubmit={(e) => {
        e.preventDefault();
        void store.security.changePassword(current, next).then((changed) => {
          if (changed) {
            setCurrent('');
            setNext('');
          }
        });
      }}
    >
      <h3>Password</h3>
      <input type="password" data-testid="password-current" placeholder="Current password" value={current} onInput={(e) => setCurrent(e.currentTarget.value)} />
      <input type="password" data-testid="password-new" placeholder="New password (8+ characters)" value={next} onInput={(e) => setNext(e.currentTarget.value)} />
      <button type="submit" data-testid="password-save" disabled={current === '' || next.length < 8}>
        Change password
      </button>
    </form>
  );
}
