/**
 * The connection state when it is not `connected`, with a way to retry now. Every `data-testid` is used by the
 * browser tests (tests/browser.test.ts): keep them stable.
 */

import type { JSX } from 'preact';

import { store } from '../state';

export function ConnectionBanner(): JSX.Element | null {
  const state = store.core.connection;
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
        <button class="link" data-testid="reconnect-now" onClick={() => store.core.client?.reconnectNow()}>
          Retry now
        </button>
      )}
      {state === 'offline' && (
        <button class="link" data-testid="reconnect-now" onClick={() => void store.core.client?.connect().catch(() => undefined)}>
          Reconnect
        </button>
      )}
    </div>
  );
}
