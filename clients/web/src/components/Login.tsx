/**
 * Sign in or create an account. Every `data-testid` is used by the browser tests (tests/browser.test.ts): keep them
 * stable.
 */

import type { JSX } from 'preact';
import { useState } from 'preact/hooks';

import { store } from '../state';

export function Login(): JSX.Element {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const submit = (mode: 'login' | 'register') => (event: Event) => {
    event.preventDefault();
    void store.session.authenticate(mode, username, password);
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
        {store.session.authError && (
          <p class="error" data-testid="auth-error">
            {store.session.authError}
          </p>
        )}
        <div class="row">
          <button type="submit" data-testid="login-submit" disabled={store.session.busy}>
            Log in
          </button>
          <button type="button" class="secondary" data-testid="register-submit" disabled={store.session.busy} onClick={submit('register')}>
            Create account
          </button>
        </div>
        <p class="muted small">Usernames: 3–32 letters, digits, “_”, “.”, “-”. Passwords: at least 8 characters.</p>
      </form>
    </div>
  );
}
