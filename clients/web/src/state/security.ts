/**
 * The signed-in user's sessions (logins on other devices, which they can end), logging out everywhere, changing
 * the password (which ends every other session), and reporting a message or a user to the operators.
 */

import type { ReportReason, ReportTarget, SessionInfo } from '@chat/sdk';

import { type Core, describe } from './core';

export class Security {
  sessions: SessionInfo[] = [];

  constructor(
    private readonly core: Core,
    /** Called once this device's session ended here (logout everywhere). */
    private readonly ended: () => void,
  ) {}

  clear(): void {
    this.sessions = [];
  }

  async refresh(): Promise<void> {
    const client = this.core.client;
    if (!client) return;
    try {
      this.sessions = await client.rest.sessions();
    } catch (error) {
      this.core.notify(`Could not list your sessions: ${describe(error)}`);
    }
    this.core.changed();
  }

  async end(sessionId: string): Promise<void> {
    const client = this.core.client;
    if (!client) return;
    try {
      await client.rest.endSession(sessionId);
      this.core.notify('That session has ended');
    } catch (error) {
      this.core.notify(describe(error));
    }
    await this.refresh();
  }

  /** Whether the report was taken (a repeat of one already sent counts: the operators have it). */
  async report(target: ReportTarget, reason: ReportReason): Promise<boolean> {
    const client = this.core.client;
    if (!client) return false;
    try {
      const { result } = await client.rest.report(target, reason);
      this.core.notify(result === 'reported' ? 'Report sent to the moderators' : 'You already reported this');
      return true;
    } catch (error) {
      this.core.notify(`Could not report: ${describe(error)}`);
      return false;
    }
  }

  async logoutEverywhere(): Promise<void> {
    const client = this.core.client;
    if (!client) return;
    try {
      await client.rest.logoutEverywhere();
      this.ended();
    } catch (error) {
      this.core.notify(describe(error));
    }
  }

  /** Deletes the account (the password confirms it); this device is signed out once it is closed. */
  async deleteAccount(password: string): Promise<void> {
    const client = this.core.client;
    if (!client) return;
    try {
      await client.rest.deleteAccount(password);
      this.ended();
      this.core.notify('Your account was deleted');
    } catch (error) {
      this.core.notify(`Could not delete the account: ${describe(error)}`);
    }
  }

  /** Whether the password changed. */
  async changePassword(current: string, next: string): Promise<boolean> {
    const client = this.core.client;
    if (!client) return false;
    try {
      const { endedSessions } = await client.rest.changePassword(current, next);
      this.core.notify(`Password changed; ${endedSessions} other session${endedSessions === 1 ? '' : 's'} ended`);
      await this.refresh();
      return true;
    } catch (error) {
      this.core.notify(`Could not change the password: ${describe(error)}`);
      return false;
    }
  }
}
