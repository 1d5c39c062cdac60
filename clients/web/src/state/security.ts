/**
 * The signed-in user's sessions (logins on other devices, which they can end), logging out everywhere, changing
 * the password (which ends every other session), exporting their data, reporting a message or a user to the
 * operators, their notification preferences (stored on the server, so every device shows the same), and push
 * notifications on this device (a service worker and a push subscription, only ever asked for from a button).
 */

import type { ExportStatus, NotificationPreferences, ReportReason, ReportTarget, SessionInfo } from '@chat/sdk';

import { type Core, describe } from './core';

/** How often a pending export is asked about, and for how long. */
const EXPORT_POLL_MS = 2_000;
const EXPORT_WAIT_MS = 180_000;

/** Push notifications on this browser: not possible here, not asked yet, refused by the user, or on. */
export type PushState = 'unsupported' | 'off' | 'blocked' | 'on';

/** The service worker that shows push notifications (clients/web/public/sw.js), next to index.html. */
const SERVICE_WORKER = './sw.js';

function pushSupported(): boolean {
  return typeof navigator !== 'undefined' && 'serviceWorker' in navigator && typeof PushManager !== 'undefined' && typeof Notification !== 'undefined';
}

/** Registers the service worker (no permission is asked for that); the page works on without it. */
export async function registerServiceWorker(): Promise<ServiceWorkerRegistration | null> {
  if (!pushSupported()) return null;
  try {
    return await navigator.serviceWorker.register(SERVICE_WORKER);
  } catch {
    return null;
  }
}

/** What the service worker keeps on the notification it shows for a conversation (its newest pushed message). */
export interface ShownMessage {
  conversationId?: string;
  messageId?: string;
  seq?: number;
}

/**
 * Closes this browser's notification of `conversationId` when `stale` says its message needs no attention any
 * more: deleted, or read in this tab or on another device. Only a browser with a tab of the app open hears of
 * that; the server pushes no withdrawals.
 */
export async function withdrawNotification(conversationId: string, stale: (shown: ShownMessage) => boolean): Promise<void> {
  if (!pushSupported()) return;
  try {
    const registration = await navigator.serviceWorker.getRegistration(SERVICE_WORKER);
    const shown = (await registration?.getNotifications({ tag: `conversation-${conversationId}` })) ?? [];
    for (const notification of shown) {
      if (stale((notification.data ?? {}) as ShownMessage)) notification.close();
    }
  } catch {
    // A notification left open is only a nuisance; the conversation itself is right.
  }
}

export class Security {
  sessions: SessionInfo[] = [];
  /** The export asked for on this page, once asked. */
  export: ExportStatus | null = null;
  /** Do not disturb and previews, once loaded. */
  notifications: NotificationPreferences | null = null;
  push: PushState = 'off';

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
      this.push = await this.pushState();
    } catch (error) {
      this.core.notify(`Could not load your settings: ${describe(error)}`);
    }
    this.core.changed();
  }

  private async pushState(): Promise<PushState> {
    if (!pushSupported()) return 'unsupported';
    if (Notification.permission === 'denied') return 'blocked';
    const registration = await navigator.serviceWorker.getRegistration(SERVICE_WORKER);
    return (await registration?.pushManager.getSubscription()) ? 'on' : 'off';
  }

  /**
   * Asks for permission (called from a button, never on load), subscribes this browser with the server's VAPID
   * key and registers the subscription, so messages reach this device while the app is closed.
   */
  async enablePush(): Promise<void> {
    const client = this.core.client;
    if (!client || !pushSupported()) return;
    try {
      if ((await Notification.requestPermission()) !== 'granted') {
        this.push = 'blocked';
        this.core.notify('Notifications are blocked for this site in your browser settings');
        return;
      }
      const registration = (await registerServiceWorker()) ?? (await navigator.serviceWorker.ready);
      // The base64url VAPID key, which `subscribe` takes as it is.
      const applicationServerKey = await client.rest.pushServerKey();
      const subscription = await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey });
      const json = subscription.toJSON();
      await client.rest.registerPushSubscription({
        endpoint: subscription.endpoint,
        keys: { p256dh: json.keys?.p256dh ?? '', auth: json.keys?.auth ?? '' },
        expirationTime: subscription.expirationTime,
      });
      this.push = 'on';
    } catch (error) {
      this.core.notify(`Could not turn on notifications: ${describe(error)}`);
    } finally {
      this.core.changed();
    }
  }

  /** Unsubscribes this browser and forgets its subscription on the server. */
  async disablePush(): Promise<void> {
    const client = this.core.client;
    if (!client || !pushSupported()) return;
    try {
      const registration = await navigator.serviceWorker.getRegistration(SERVICE_WORKER);
      const subscription = await registration?.pushManager.getSubscription();
      if (subscription) {
        const registered = (await client.rest.pushSubscriptions()).find((s) => s.endpoint === subscription.endpoint);
        if (registered) await client.rest.removePushSubscription(registered.id);
        await subscription.unsubscribe();
      }
      this.push = 'off';
    } catch (error) {
      this.core.notify(`Could not turn off notifications: ${describe(error)}`);
    } finally {
      this.core.changed();
    }
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
