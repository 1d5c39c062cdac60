/**
 * The signed-in user's sessions (logins on other devices, which they can end), logging out everywhere, changing
 * the password (which ends every other session), exporting their data, reporting a message or a user to the
 * operators, and their notification preferences (stored on the server, so every device shows the same).
 */

import type { ExportStatus, NotificationPreferences, ReportReason, ReportTarget, SessionInfo } from '@chat/sdk';

import { type Core, describe } from './core';

/** How often a pending export is asked about, and for how long. */
const EXPORT_POLL_MS = 2_000;
const EXPORT_WAIT_MS = 180_000;

export class Security {
  sessions: SessionInfo[] = [];
  /** The export asked for on this page, once asked. */
  export: ExportStatus | null = null;
  /** Do not disturb and previews, once loaded. */
  notifications: NotificationPreferences | null = null;

  constructor(
    private readonly core: Core,
    /** Called once this device's session ended here (logout everywhere). */
    private readonly ended: () => void,
  ) {}

  clear(): void {
    this.sessions = [];
    this.export = null;
    this.notifications = null;
  }

  async refresh(): Promise<void> {
    const client = this.core.client;
    if (!client) return;
    try {
      [this.sessions, this.notifications] = await Promise.all([client.rest.sessions(), client.rest.notificationPreferences()]);
    } catch (error) {
      this.core.notify(`Could not load your settings: ${describe(error)}`);
    }
    this.core.changed();
  }

  /** Changes one preference and keeps the other (a `PUT` replaces both). */
  async setNotifications(change: Partial<NotificationPreferences>): Promise<void> {
    const client = this.core.client;
    if (!client || !this.notifications) return;
    try {
      this.notificationsChanged(await client.rest.setNotificationPreferences({ ...this.notifications, ...change }));
    } catch (error) {
      this.core.notify(`Could not change notifications: ${describe(error)}`);
    }
  }

  /** Set here or on another device of mine. */
  notificationsChanged(preferences: NotificationPreferences): void {
    this.notifications = preferences;
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

  /**
   * Asks for a copy of the user's data and follows it until its download link is there (within an hour of the
   * last request the server answers that one, so a second click costs nothing).
   */
  async requestExport(): Promise<void> {
    const client = this.core.client;
    if (!client) return;
    try {
      this.export = await client.rest.requestExport();
      this.core.changed();
      for (let waited = 0; this.export.status === 'pending' && waited < EXPORT_WAIT_MS; waited += EXPORT_POLL_MS) {
        await new Promise((resolve) => setTimeout(resolve, EXPORT_POLL_MS));
        this.export = (await client.rest.exportStatus()) ?? this.export;
        this.core.changed();
      }
      if (this.export.status === 'pending') this.core.notify('Your export is still being made: try again in a while');
    } catch (error) {
      this.core.notify(`Could not export your data: ${describe(error)}`);
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
