// The storefront's service worker: shows the shop's Web Push messages and opens the
// order a message is about. Served at /sw.js so its scope is the whole shop. It makes
// no request of its own: the browser's push service brings the messages.
//
// A message is {"title", "body", "data": {"type", "order_id"?, "status"?, ...}}
// (docs/plugins/notifications.md).

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (e) => e.waitUntil(self.clients.claim()));

self.addEventListener("push", (e) => {
  let m = {};
  try {
    m = e.data ? e.data.json() : {};
  } catch {
    m = { body: e.data ? e.data.text() : "" };
  }
  const data = m && typeof m.data === "object" && m.data ? m.data : {};
  e.waitUntil(
    self.registration.showNotification(String(m.title || "Kirana"), {
      body: String(m.body || ""),
      icon: "/static/icon.svg",
      tag: data.order_id ? "order-" + data.order_id : undefined,
      data,
    }),
  );
});

/** The page a message opens: its order, else the notifications. */
function target(data) {
  const id = data && typeof data.order_id === "string" && /^[\w-]+$/.test(data.order_id) ? data.order_id : null;
  return new URL(id ? "/#/orders/" + id : "/#/notifications", self.location.origin).href;
}

self.addEventListener("notificationclick", (e) => {
  e.notification.close();
  const url = target(e.notification.data);
  e.waitUntil(
    (async () => {
      const open = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
      const mine = open.find((c) => new URL(c.url).origin === self.location.origin);
      if (mine) {
        await mine.focus();
        return mine.navigate(url);
      }
      return self.clients.openWindow(url);
    })(),
  );
});
