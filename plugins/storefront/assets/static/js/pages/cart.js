// The cart (live prices and stock warnings), checkout (COD or online), and the
// sandbox payment provider's step, which signs the payment in the browser exactly as
// the provider's checkout would (HMAC-SHA256 of "provider_order_id|payment_id").

import { api, session, ApiError } from "../api.js";
import { h, page, money, problem, toast, randomId, formErrors } from "../ui.js";
import { setCartCount, toLogin } from "../live.js";
import { addressForm } from "./account.js";

function needCustomer(view) {
  const s = session();
  if (!s) {
    view.append(h("p", { class: "notice" }, "Please ", h("a", { href: "#/login?next=" + encodeURIComponent(location.hash) }, "sign in"), " to see your cart."));
    return false;
  }
  if (s.user && s.user.role !== "customer") {
    view.append(h("p", { class: "notice" }, "Only customer accounts have a cart."));
    return false;
  }
  return true;
}

function totals(c) {
  const rows = [
    ["Items", `${c.item_count}`],
    ["Subtotal", money(c.subtotal)],
    ["Delivery", c.delivery_fee ? money(c.delivery_fee) : "Free"],
  ];
  if (c.coupon) rows.push([`Coupon ${c.coupon.code}`, c.discount ? "−" + money(c.discount) : c.coupon.reason || c.coupon.status]);
  const dl = h("dl", {}, ...rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]), h("dt", { class: "grand" }, "Total"), h("dd", { class: "grand" }, money(c.total)));
  const hint =
    c.subtotal > 0 && c.subtotal < c.free_delivery_threshold
      ? h("p", { class: "muted" }, `Add ${money(c.free_delivery_threshold - c.subtotal)} more for free delivery.`)
      : null;
  return h("div", { class: "totals" }, dl, hint);
}

export async function cart(view) {
  page(view, "Your cart");
  if (!needCustomer(view)) return;
  const body = h("div", { "aria-live": "polite", "aria-busy": "true" });
  const errors = h("div");
  view.append(errors, body);
  let last = null;

  async function change(productId, quantity) {
    errors.replaceChildren();
    try {
      render(await api("/api/v1/cart/items/" + encodeURIComponent(productId), { method: "PUT", auth: true, body: { quantity } }));
    } catch (e) {
      if (e.code === "insufficient_stock") errors.append(h("p", { class: "warning", role: "alert" }, "There is not enough stock for that quantity."));
      else errors.append(problem(e, "the cart"));
    }
  }

  function render(c) {
    body.setAttribute("aria-busy", "false");
    setCartCount(c.item_count);
    if (last && last.total !== c.total && last.item_count === c.item_count) toast("Prices in your cart were updated.");
    last = c;
    if (!c.items.length) {
      body.replaceChildren(h("p", {}, "Your cart is empty. ", h("a", { href: "#/" }, "Start shopping")));
      return;
    }
    const short = c.items.filter((i) => !i.in_stock);
    const lines = c.items.map((i) =>
      h(
        "li",
        {},
        h(
          "div",
          {},
          h("a", { href: `#/p/${i.product_id}` }, i.name),
          h("span", { class: "muted" }, ` · ${i.unit}`),
          h("br"),
          h("span", {}, `${money(i.unit_price)} each`),
          i.mrp > i.unit_price ? h("s", { class: "mrp" }, money(i.mrp)) : null,
          i.in_stock ? null : h("p", { class: "stock-out" }, "Not enough stock for this quantity: lower it or remove the item."),
        ),
        h("strong", {}, money(i.line_total)),
        h(
          "div",
          { class: "qty", role: "group", "aria-label": `Quantity of ${i.name}` },
          h("button", { type: "button", class: "secondary", "aria-label": `One fewer ${i.name}`, onclick: () => change(i.product_id, i.quantity - 1) }, "−"),
          h("output", {}, String(i.quantity)),
          h("button", { type: "button", class: "secondary", "aria-label": `One more ${i.name}`, disabled: i.quantity >= 20, onclick: () => change(i.product_id, i.quantity + 1) }, "+"),
        ),
        h("button", { type: "button", class: "link", onclick: () => change(i.product_id, 0) }, "Remove", h("span", { class: "sr-only" }, ` ${i.name}`)),
      ),
    );
    const coupon = h(
      "form",
      { class: "row" },
      h("label", { for: "f-code" }, "Coupon"),
      h("input", { id: "f-code", name: "code", autocomplete: "off", value: c.coupon ? c.coupon.code : "", size: "12" }),
      h("button", { type: "submit", class: "secondary" }, "Apply"),
    );
    const couponErr = h("div");
    coupon.addEventListener("submit", async (e) => {
      e.preventDefault();
      try {
        render(await api("/api/v1/cart/coupon", { method: "POST", auth: true, body: { code: coupon.elements.code.value.trim() } }));
        toast("Coupon applied.");
      } catch (err) {
        if (err.status === 404) err = new ApiError(400, "validation_failed", "No such coupon.", { fields: [{ field: "code", message: "No such coupon." }] });
        formErrors(coupon, err, couponErr);
      }
    });
    // The applied coupon can be taken off (DELETE works even while promotions is down).
    const removeCoupon = c.coupon
      ? h(
          "button",
          {
            type: "button",
            class: "link",
            onclick: async () => {
              couponErr.replaceChildren();
              try {
                render(await api("/api/v1/cart/coupon", { method: "DELETE", auth: true }));
                toast("Coupon removed.");
                body.querySelector("#f-code")?.focus();
              } catch (err) {
                couponErr.append(problem(err, "the cart"));
              }
            },
          },
          "Remove coupon",
          h("span", { class: "sr-only" }, ` ${c.coupon.code}`),
        )
      : null;
    if (removeCoupon) coupon.append(removeCoupon);
    body.replaceChildren(
      short.length ? h("p", { class: "warning", role: "alert" }, `${short.length} item${short.length === 1 ? " is" : "s are"} short of stock. Adjust ${short.length === 1 ? "it" : "them"} to check out.`) : null,
      h("ul", { class: "lines" }, ...lines),
      coupon,
      couponErr,
      totals(c),
      h("p", {}, short.length ? h("button", { type: "button", disabled: true }, "Checkout") : h("a", { class: "button", href: "#/checkout" }, "Checkout")),
    );
  }

  async function load() {
    try {
      render(await api("/api/v1/cart", { auth: true }));
    } catch (e) {
      body.setAttribute("aria-busy", "false");
      if (e.status === 401) return toLogin();
      body.replaceChildren(problem(e, "the cart"));
    }
  }
  await load();
  // Prices and stock come from the catalog on every read: keep them current.
  const timer = setInterval(() => document.visibilityState === "visible" && load(), 30000);
  const onShow = () => document.visibilityState === "visible" && load();
  document.addEventListener("visibilitychange", onShow);
  return () => {
    clearInterval(timer);
    document.removeEventListener("visibilitychange", onShow);
  };
}

export async function checkout(view) {
  page(view, "Checkout");
  if (!needCustomer(view)) return;
  const errors = h("div");
  view.append(errors);
  let c;
  let addresses;
  try {
    [c, addresses] = await Promise.all([api("/api/v1/cart", { auth: true }), api("/api/v1/addresses", { auth: true }).then((r) => r.items)]);
  } catch (e) {
    view.append(problem(e, e.unavailable ? "checkout" : "the shop"));
    return;
  }
  if (!c.items.length) {
    view.append(h("p", {}, "Your cart is empty. ", h("a", { href: "#/" }, "Start shopping")));
    return;
  }
  // One key per visit: a double submit or a retry after a lost answer places one order.
  const key = "checkout-" + randomId();
  const addrBox = h("fieldset", {}, h("legend", {}, "Deliver to"));
  if (addresses.length) {
    addrBox.append(
      ...addresses.map((a, i) =>
        h("label", { class: "check" }, h("input", { type: "radio", name: "address_id", value: a.id, checked: a.is_default || i === 0, required: true }), `${a.label}: ${a.line1}${a.line2 ? ", " + a.line2 : ""}, ${a.city} ${a.pincode}`),
      ),
    );
  } else {
    addrBox.append(h("p", {}, "You have no address yet. Add one to continue:"));
    addrBox.append(addressForm(null, () => checkout(view)));
  }
  const form = h(
    "form",
    { class: "stack" },
    h(
      "fieldset",
      {},
      h("legend", {}, "Payment"),
      h("label", { class: "check" }, h("input", { type: "radio", name: "payment_method", value: "cod", checked: true }), "Cash on delivery"),
      h("label", { class: "check" }, h("input", { type: "radio", name: "payment_method", value: "online" }), "Pay online (sandbox)"),
    ),
    h("label", { for: "f-notes" }, "Notes for the delivery partner (optional)"),
    h("textarea", { id: "f-notes", name: "notes", maxlength: "500", rows: "2" }),
    totals(c),
    h("button", { type: "submit", disabled: !addresses.length }, `Place order · ${money(c.total)}`),
  );
  view.append(addrBox, form);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const chosen = addrBox.querySelector("input[name=address_id]:checked");
    if (!chosen) return;
    const method = form.elements.payment_method.value;
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    errors.replaceChildren();
    try {
      const order = await api("/api/v1/orders", {
        method: "POST",
        auth: true,
        idempotencyKey: key,
        body: { address_id: chosen.value, payment_method: method, notes: form.elements.notes.value },
      });
      setCartCount(0);
      if (method === "online") await payOnline(order);
      location.hash = "#/orders/" + order.id;
    } catch (err) {
      button.disabled = false;
      if (err.code === "insufficient_stock") errors.append(h("p", { class: "warning", role: "alert" }, "Some items ran out while you were checking out. ", h("a", { href: "#/cart" }, "Review your cart")));
      else if (err.code === "cart_empty") errors.append(h("p", { class: "notice", role: "alert" }, "Your cart is empty."));
      else formErrors(form, err, errors);
      errors.querySelector("[role=alert]")?.focus?.();
    }
  });
}

async function hmacHex(secret, text) {
  if (!window.crypto || !crypto.subtle) throw new Error("This browser cannot sign payments here (Web Crypto needs https or localhost).");
  const enc = new TextEncoder();
  const key = await crypto.subtle.importKey("raw", enc.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const sig = await crypto.subtle.sign("HMAC", key, enc.encode(text));
  return Array.from(new Uint8Array(sig), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Opens an intent for an online order and runs the sandbox provider's checkout in a
 * dialog. Resolves when paid or when the shopper closes it (the order then waits for
 * payment; the order page offers to pay again).
 */
export async function payOnline(order) {
  let intent;
  try {
    intent = await api("/api/v1/payments/intents", { method: "POST", auth: true, body: { order_id: order.id }, idempotencyKey: "intent-" + randomId() });
  } catch (e) {
    toast(e.unavailable ? "Payments are unavailable right now; pay from the order page later." : e.message);
    return false;
  }
  return new Promise((resolve) => {
    const err = h("div", { "aria-live": "assertive" });
    const secret = h("input", { id: "f-secret", name: "secret", value: "kirana_sandbox_key_secret", autocomplete: "off" });
    const pay = h("button", { type: "submit" }, `Pay ${money(intent.amount)}`);
    const cancel = h("button", { type: "button", class: "secondary" }, "Cancel");
    const form = h(
      "form",
      { method: "dialog" },
      h("h2", { id: "pay-title" }, "Sandbox payment provider"),
      h("p", {}, "This step stands in for the payment provider's checkout: it takes no money and signs the result the way the provider would."),
      h("dl", {}, h("dt", {}, "Amount"), h("dd", {}, money(intent.amount)), h("dt", {}, "Provider order"), h("dd", {}, intent.provider_order_id), h("dt", {}, "Key id"), h("dd", {}, intent.key_id)),
      h("label", { for: "f-secret" }, "Sandbox key secret"),
      secret,
      err,
      h("div", { class: "row" }, pay, cancel),
    );
    const dialog = h("dialog", { "aria-labelledby": "pay-title" }, form);
    document.body.append(dialog);
    const done = (ok) => {
      dialog.close();
      dialog.remove();
      resolve(ok);
    };
    cancel.addEventListener("click", () => done(false));
    dialog.addEventListener("cancel", () => done(false));
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      pay.disabled = true;
      err.replaceChildren();
      try {
        const paymentId = "pay_" + randomId();
        const signature = await hmacHex(secret.value, `${intent.provider_order_id}|${paymentId}`);
        await api("/api/v1/payments/verify", { method: "POST", auth: true, body: { order_id: order.id, provider_payment_id: paymentId, signature } });
        toast("Payment received. Thank you!");
        done(true);
      } catch (x) {
        pay.disabled = false;
        err.replaceChildren(h("p", { class: "error", role: "alert" }, x.code === "invalid_signature" ? "The provider's signature was refused: check the sandbox key secret." : x.message));
      }
    });
    dialog.showModal();
    pay.focus();
  });
}
