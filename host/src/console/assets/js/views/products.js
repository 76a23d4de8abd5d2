// Products and stock: search the catalog, edit a product's price and MRP (PUT with the
// product's own JSON), set its stock (PATCH .../stock), upload and delete its images.
// Needs an admin sign-in; the catalog plugin serves all of it.

import { qs, shop } from "../api.js";
import { alertError, busy, field, h, inlineField, money, page, pager, paise, problem, say, table } from "../ui.js";

const SERVICE = "catalog service";
const local = (u) => typeof u === "string" && u.startsWith("/") && !u.startsWith("//");

function thumb(p) {
  const img = (p.images || []).find((i) => local(i.thumbnail_url));
  if (!img) return h("span", { class: "muted" }, "none");
  return h("img", { class: "thumb", src: img.thumbnail_url, alt: "", width: 48, height: 48, loading: "lazy" });
}

export async function render(main, query) {
  const q = query.get("q") || "";
  const pageNo = Math.max(1, Number(query.get("page")) || 1);
  const openId = query.get("id");

  const search = h(
    "form",
    { class: "inline", role: "search", "aria-label": "Products" },
    inlineField("Search products", { type: "search", name: "q", value: q }),
    h("button", { type: "submit" }, "Search"),
  );
  search.addEventListener("submit", (ev) => {
    ev.preventDefault();
    location.hash = `#/products${qs({ q: search.elements.q.value.trim() })}`;
  });
  const list = h("div", {}, h("p", {}, "Loading…"));
  const editor = h("section", { class: "panel", "aria-labelledby": "edit-h", hidden: true });
  page(main, "Products and stock", search, list, editor);

  let data;
  try {
    // The admin token is sent so a missing sign-in says so, though listing is public.
    data = await shop(`/api/v1/products${qs({ q, page: pageNo, page_size: 20 })}`);
  } catch (e) {
    list.replaceChildren(problem(e, SERVICE));
    return;
  }
  const go = (n) => (location.hash = `#/products${qs({ q, page: n })}`);
  const rows = (data.items || []).map((p) => [
    thumb(p),
    p.name,
    h("code", {}, p.sku),
    money(p.price),
    String(p.stock),
    h("button", { type: "button", class: "secondary", onclick: () => open(p.id, true) }, "Edit", h("span", { class: "sr-only" }, ` ${p.name}`)),
  ]);
  list.replaceChildren(
    rows.length ? table(q ? `Products matching “${q}”` : "Products", ["Image", "Name", "SKU", "Price", "Stock", "Actions"], rows, [3, 4]) : h("p", {}, "No products found."),
    pager(data, go),
  );
  if (openId) await open(openId, false);

  async function open(id, focus) {
    let p;
    try {
      p = await shop(`/api/v1/products/${encodeURIComponent(id)}`);
    } catch (e) {
      editor.hidden = false;
      editor.replaceChildren(h("h2", { id: "edit-h", tabindex: "-1" }, "Product"), problem(e, SERVICE));
      return;
    }
    editor.hidden = false;
    editor.replaceChildren(...edit(p));
    if (focus) editor.querySelector("h2").focus();
  }

  function edit(p) {
    const priceForm = h(
      "form",
      { class: "stack", "aria-labelledby": "price-h" },
      h("h3", { id: "price-h" }, "Price"),
      ...field("Price (₹)", { name: "price", inputmode: "decimal", value: (p.price / 100).toFixed(2), required: true }),
      ...field("MRP (₹)", { name: "mrp", inputmode: "decimal", value: (p.mrp / 100).toFixed(2), required: true }),
      h("button", { type: "submit" }, "Save price"),
    );
    priceForm.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const price = paise(priceForm.elements.price.value);
      const mrp = paise(priceForm.elements.mrp.value);
      if (Number.isNaN(price) || Number.isNaN(mrp)) {
        alertError(new Error("Prices are rupees with up to two decimals, like 45.50."));
        return;
      }
      // PUT takes the full product; the JSON of GET is editable (computed fields are ignored).
      const body = { ...p, price, mrp };
      const r = await busy(priceForm.querySelector("button"), () => shop(`/api/v1/products/${encodeURIComponent(p.id)}`, { method: "PUT", json: body }), SERVICE);
      if (r) {
        say(`${r.name}: price ${money(r.price)}, MRP ${money(r.mrp)}.`);
        await open(p.id, true);
      }
    });

    const stockForm = h(
      "form",
      { class: "stack", "aria-labelledby": "stock-h" },
      h("h3", { id: "stock-h" }, "Stock"),
      ...field("Units in stock", { name: "set", type: "number", min: 0, step: 1, value: p.stock, required: true }),
      h("button", { type: "submit" }, "Set stock"),
    );
    stockForm.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const set = Number(stockForm.elements.set.value);
      const r = await busy(stockForm.querySelector("button"), () => shop(`/api/v1/products/${encodeURIComponent(p.id)}/stock`, { method: "PATCH", json: { set } }), SERVICE);
      if (r) {
        say(`${r.name}: ${r.stock} in stock.`);
        await open(p.id, true);
      }
    });

    const uploaded = (p.images || []).filter((i) => !i.generated);
    const images = h(
      "ul",
      { class: "images" },
      uploaded.map((img, n) =>
        h(
          "li",
          {},
          h("img", { src: local(img.thumbnail_url) ? img.thumbnail_url : "", alt: `${p.name}, image ${n + 1}`, width: 96, height: 96 }),
          h(
            "button",
            {
              type: "button",
              class: "danger",
              onclick: async (ev) => {
                const ok = await busy(ev.currentTarget, () => shop(`/api/v1/products/${encodeURIComponent(p.id)}/images/${encodeURIComponent(img.id)}`, { method: "DELETE" }).then(() => true), SERVICE);
                if (ok) {
                  say(`Image ${n + 1} of ${p.name} is deleted.`);
                  await open(p.id, true);
                }
              },
            },
            `Delete image ${n + 1}`,
          ),
        ),
      ),
    );
    const upload = h(
      "form",
      { class: "stack", "aria-labelledby": "img-h" },
      h("h3", { id: "img-h" }, "Images"),
      uploaded.length ? images : h("p", {}, "No uploaded images; the shop shows a generated picture."),
      ...field("Upload an image (JPEG, PNG or WebP, up to 5 MB)", { type: "file", name: "image", accept: "image/jpeg,image/png,image/webp", required: true }),
      h("button", { type: "submit" }, "Upload image"),
    );
    upload.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const file = upload.elements.image.files[0];
      if (!file) return;
      const r = await busy(
        upload.querySelector("button"),
        () => shop(`/api/v1/products/${encodeURIComponent(p.id)}/images`, { method: "POST", raw: file, type: file.type || "application/octet-stream" }),
        SERVICE,
      );
      if (r) {
        say(`Uploaded an image for ${r.name}.`);
        await open(p.id, true);
      }
    });

    return [
      h("h2", { id: "edit-h", tabindex: "-1" }, `Edit ${p.name}`),
      h("p", {}, h("code", {}, p.sku), ` · ${p.unit} · ${money(p.price)} (MRP ${money(p.mrp)}, ${p.discount_percent}% off) · ${p.stock} in stock`),
      h("div", { class: "grid2" }, h("div", {}, priceForm, stockForm), upload),
    ];
  }
}
