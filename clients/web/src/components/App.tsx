/**
 * The signed-in app's frame, or what stands in for it (missing config, loading, sign-in). Every `data-testid` is
 * used by the browser tests (tests/browser.test.ts): keep them stable.
 */

import type { JSX } from 'preact';

import { store } from '../state';
import { ConnectionBanner } from './ConnectionBanner';
import { ConversationPane } from './ConversationPane';
import { Login } from './Login';
import { Sidebar } from './Sidebar';

export function App(): JSX.Element {
  if (store.core.configError) {
    return (
      <div class="center" data-testid="config-error">
        <h1>Cannot start</h1>
        <p>{store.core.configError}</p>
        <p class="muted">
          The app reads its endpoints from <code>config.json</code> next to index.html:{' '}
          <code>{'{"http": "…", "websocket": "…"}'}</code>
        </p>
      </div>
    );
  }
  if (!store.core.config) return <div class="center muted">Loading…</div>;
  if (!store.core.me) return <Login />;
  return (
    <div class="app" data-testid="app" data-connection={store.core.connection}>
      <ConnectionBanner />
      <div class="layout">
        <Sidebar />
        <ConversationPane />
      </div>
      {store.core.toast && (
        <div class="toast" data-testid="toast" role="status">
          {store.core.toast}
        </div>
      )}
    </div>
  );
}
