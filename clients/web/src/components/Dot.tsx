/**
 * A presence dot. Every `data-testid` is used by the browser tests (tests/browser.test.ts): keep them stable.
 */

import type { JSX } from 'preact';

export function Dot({ online, testid = 'presence-dot' }: { online: boolean; testid?: string }): JSX.Element {
  return (
    <span
      class={`dot ${online ? 'dot-online' : 'dot-offline'}`}
      data-testid={testid}
      data-online={String(online)}
      title={online ? 'online' : 'offline'}
    />
  );
}
