// The web app's service worker: shows the push notifications the chat backend sends while no tab of the app
// is connected (payload: docs/protocol.md, "Push notifications"), and opens the conversation when one is
// clicked. An open tab closes a notification whose message was deleted or read since. It caches nothing.

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

self.addEventListener('push', (event) => {
  let payload = null;
  try {
    payload = event.data ? event.data.json() : null;
  } catch {
    payload = null;
  }
  if (!payload || payload.type !== 'message') return;
  const who = payload.sender?.username ?? 'Someone';
  const title = payload.conversationName ? `${who} in ${payload.conversationName}` : who;
  const body = payload.preview ?? (payload.mentioned ? `${who} mentioned you` : `New message from ${who}`);
  event.waitUntil(
    self.registration.showNotification(title, {
      body,
      // One notification per conversation: a newer message replaces the older one.
      tag: `conversation-${payload.conversationId}`,
      renotify: true,
      // What the page needs to close it once the message is deleted or read (state/security.ts).
      data: { conversationId: payload.conversationId, messageId: payload.messageId, seq: payload.seq },
    }),
  );
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const conversationId = event.notification.data?.conversationId;
  const url = new URL(self.registration.scope);
  if (conversationId) url.searchParams.set('conversation', conversationId);
  event.waitUntil(
    self.clients.matchAll({ type: 'window', includeUncontrolled: true }).then((windows) => {
      const open = windows.find((w) => w.url.startsWith(self.registration.scope));
      return open ? open.focus() : self.clients.openWindow(url.href);
    }),
  );
});
