// Web Push on this device, loaded only by the pages that show the switch: registers
// the service worker at /sw.js (its scope is the whole shop), subscribes with the
// shop's VAPID key and hands the subscription to the API; off unsubscribes and deletes
// it. The browser talks to its push service itself; the page only calls this origin.

import { api, session } from "../api.js";
import { h, problem } from "../ui.js";

/** `{id, user}`: the API's id of this browser's subscription, and whose it is. */
const KEY = "kirana.push";

function stored() {
  try {
    return JSON.parse(localStorage.getItem(KEY) || "null");
  } catch {
    return null;
  }
}

export function supported() {
  return "serviceWorker" in navigator && "PushManager" in window && "Notification" in window && window.isSecureContext;
}

/** base64url → bytes (the VAPID key as `applicationServerKey`). */
function bytes(b64url) {
  const b64 = b64url.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((b64url.length + 3) % 4);
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

/** Whether a subscription was made with `key` (else it must be made again). */
function sameKey(sub, key) {
  const k = sub.options && sub.options.applicationServerKey;
  if (!k) return false;
  const a = new Uint8Array(k);
  const b = bytes(key);
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Whether this browser is subscribed for the signed-in shopper. */
export async function isOn() {
  const s = session();
  const mine = stored();
  if (!supported() || !s || !mine || !s.user || mine.user !== s.user.id || Notification.permission !== "granted") return false;
  const reg = await navigator.serviceWorker.getRegistration("/");
  return !!(reg && (await reg.pushManager.getSubscription()));
}

async function enable() {
  const permission = await Notification.requestPermission();
  if (permission !== "granted") {
    throw new Error("Notifications are blocked for this shop. Allow them in the browser's site settings, then try again.");
  }
  await navigator.serviceWorker.register("/sw.js", { scope: "/" });
  const reg = await navigator.serviceWorker.ready;
  const { vapid_public_key: key } = await api("/api/v1/notifications/push/key");
  let sub = await reg.pushManager.getSubscription();
  if (sub && !sameKey(sub, key)) {
    await sub.unsubscribe();
    sub = null;
  }
  if (!sub) {
    try {
      sub = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: bytes(key) });
    } catch {
      throw new Error("This browser's push service is not available right now. Please try again later.");
    }
  }
  const json = sub.toJSON();
  const r = await api("/api/v1/notifications/push/subscriptions", { method: "POST", auth: true, body: { endpoint: json.endpoint, keys: json.keys } });
  localStorage.setItem(KEY, JSON.stringify({ id: r.id, user: session().user.id }));
}

async function disable(server = true) {
  const mine = stored();
  if (server && mine && mine.id) {
    try {
      await api("/api/v1/notifications/push/subscriptions/" + encodeURIComponent(mine.id), { method: "DELETE", auth: true });
    } catch (e) {
      // Already gone (the push service dropped it): nothing left to delete.
      if (e.status !== 404) throw e;
    }
  }
  localStorage.removeItem(KEY);
  const reg = await navigator.serviceWorker.getRegistration("/");
  const sub = reg && (await reg.pushManager.getSubscription());
  if (sub) await sub.unsubscribe();
}

/** At sign-out: this browser stops getting the shopper's messages (best effort; the
 * session's end does not delete the subscription by itself). Call it while the token
 * still works; with `server` false (the session is already over) the browser only
 * unsubscribes, and the host drops the subscription when the push service answers
 * that it is gone. */
export async function forgetPush(server = true) {
  try {
    await disable(server);
  } catch {
    localStorage.removeItem(KEY);
  }
}

/** The switch: "Notify me about my orders on this device". */
export function pushSection() {
  const sec = h("section", { "aria-labelledby": "h-push" }, h("h2", { id: "h-push" }, "Push notifications"));
  if (!supported()) {
    sec.append(h("p", { class: "muted" }, "This browser cannot show push notifications from the shop."));
    return sec;
  }
  const box = h("input", { type: "checkbox", id: "f-push", name: "push", disabled: true });
  const msg = h("div", { "aria-live": "polite" });
  sec.append(
    h("label", { class: "toggle", for: "f-push" }, box, "Notify me about my orders on this device"),
    h("p", { class: "muted" }, "Order updates appear even with the shop closed. Tapping one opens the order."),
    msg,
  );
  isOn()
    .then((on) => (box.checked = on))
    .catch(() => (box.checked = false))
    .finally(() => (box.disabled = false));
  box.addEventListener("change", async () => {
    const want = box.checked;
    box.disabled = true;
    msg.replaceChildren();
    try {
      if (want) await enable();
      else await disable();
      msg.append(h("p", { class: "notice", role: "status" }, want ? "Push notifications are on for this device." : "Push notifications are off for this device."));
    } catch (e) {
      box.checked = !want;
      msg.append(e.status !== undefined ? problem(e, "push notifications") : h("p", { class: "warning", role: "alert" }, e.message));
    } finally {
      box.disabled = false;
      box.focus();
    }
  });
  return sec;
}
