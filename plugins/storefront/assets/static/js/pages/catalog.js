// Browsing: the home page, search with results as you type, category listings with
// filters and sort, and the product page.

import { api, qs } from "../api.js";
import { h, page, picture, pictures, priceTag, stockNote, problem, money } from "../ui.js";
import { addToCart, loadCategories } from "../live.js";

/** One product in a grid. */
export function card(p) {
  const link = `#/p/${p.id}`;
  return h(
    "li",
    { class: "card" },
    h("a", { href: link, tabindex: "-1", "aria-hidden": "true" }, picture(p)),
    h("a", { class: "title", href: link }, p.name),
    h("span", { class: "muted" }, [p.brand, p.unit].filter(Boolean).join(" · ")),
    priceTag(p.price, p.mrp, p.discount_percent),
    stockNote(p.stock),
    p.stock > 0
      ? h("button", { class: "add", type: "button", "aria-label": `Add ${p.name} to cart`, onclick: () => addToCart(p) }, "Add")
      : h("button", { class: "add", type: "button", disabled: true }, "Sold out"),
  );
}

export async function home(view) {
  page(view, "Groceries in minutes");
  const cats = h("section", { "aria-labelledby": "h-cats" }, h("h2", { id: "h-cats" }, "Shop by category"));
  const popular = h("section", { "aria-labelledby": "h-pop" }, h("h2", { id: "h-pop" }, "In stock now"));
  view.append(cats, popular);
  try {
    const list = await loadCategories();
    cats.append(
      h("ul", { class: "tiles" }, ...list.map((c) => h("li", {}, h("a", { href: `#/c/${c.slug}` }, c.name, h("br"), h("span", { class: "muted" }, `${c.product_count} products`))))),
    );
  } catch (e) {
    cats.append(problem(e, "the catalog"));
  }
  try {
    const r = await api("/api/v1/products" + qs({ in_stock: true, sort: "newest", page_size: 12 }));
    popular.append(h("ul", { class: "grid" }, ...r.items.map(card)));
  } catch (e) {
    popular.append(problem(e, "the catalog"));
  }
}

const SORTS = [
  ["relevance", "Best match"],
  ["name", "Name"],
  ["price_asc", "Price: low to high"],
  ["price_desc", "Price: high to low"],
  ["newest", "Newest"],
];

/** Rupees typed by a shopper as paise ("" stays empty). */
function paise(v) {
  const n = Number(String(v).trim());
  return String(v).trim() === "" || !Number.isFinite(n) || n < 0 ? "" : Math.round(n * 100);
}

/**
 * The filter form and result grid shared by search and category pages. `state` holds
 * the query; `onChange(state)` runs after every change (to keep the address current).
 */
function listing(view, state, { withSearch, onChange }) {
  const status = h("p", { class: "muted", role: "status", "aria-live": "polite" });
  const grid = h("ul", { class: "grid", "aria-label": "Products" });
  const more = h("button", { type: "button", class: "secondary", hidden: true }, "Show more");
  const facets = h("div");
  const sorts = withSearch ? SORTS : SORTS.slice(1);
  const form = h(
    "form",
    { class: "filters", onsubmit: (e) => e.preventDefault() },
    withSearch ? h("div", {}, h("label", { for: "f-q" }, "Search"), h("input", { id: "f-q", name: "q", type: "search", value: state.q || "", autocomplete: "off" })) : null,
    h("div", {}, h("label", { for: "f-sort" }, "Sort by"), h("select", { id: "f-sort", name: "sort" }, ...sorts.map(([v, t]) => h("option", { value: v, selected: (state.sort || sorts[0][0]) === v }, t)))),
    h("div", {}, h("label", { for: "f-min" }, "Min ₹"), h("input", { id: "f-min", name: "min", type: "number", min: "0", step: "1", inputmode: "numeric", size: "6", value: state.min || "" })),
    h("div", {}, h("label", { for: "f-max" }, "Max ₹"), h("input", { id: "f-max", name: "max", type: "number", min: "0", step: "1", inputmode: "numeric", size: "6", value: state.max || "" })),
    h("label", { class: "check" }, h("input", { type: "checkbox", name: "in_stock", checked: state.in_stock === "true" }), "In stock only"),
  );
  view.append(form, facets, status, grid, more);

  let seq = 0;
  let pageNo = 1;
  async function load(append) {
    const mine = ++seq;
    const query = {
      q: state.q,
      category: state.category,
      sort: state.sort,
      in_stock: state.in_stock === "true" ? "true" : "",
      min_price: paise(state.min || ""),
      max_price: paise(state.max || ""),
      page: pageNo,
      page_size: 24,
    };
    if (withSearch && !state.q) {
      grid.replaceChildren();
      facets.replaceChildren();
      status.textContent = "Type to search the shop.";
      more.hidden = true;
      return;
    }
    status.textContent = "Loading…";
    let r;
    try {
      r = await api("/api/v1/products" + qs(query));
    } catch (e) {
      if (mine !== seq) return;
      status.textContent = "";
      grid.replaceChildren();
      facets.replaceChildren(e.status === 400 ? h("p", { class: "error", role: "alert" }, e.message) : problem(e, "the catalog"));
      return;
    }
    if (mine !== seq) return;
    const cards = r.items.map(card);
    if (append) grid.append(...cards);
    else grid.replaceChildren(...cards);
    status.textContent = r.total === 0 ? "No products match." : `${r.total} product${r.total === 1 ? "" : "s"}`;
    more.hidden = r.page * r.page_size >= r.total;
    if (append && cards[0]) cards[0].querySelector("a.title").focus();
    if (!append) renderFacets(r.facets);
  }

  function renderFacets(f) {
    facets.replaceChildren();
    if (!f || !f.category || !f.category.length) return;
    const chips = f.category.map((c) =>
      h("li", {}, h("a", { href: "#/search" + qs({ q: state.q, category: c.slug }), "aria-current": state.category === c.slug ? "true" : null }, `${c.name} (${c.count})`)),
    );
    if (state.category) chips.unshift(h("li", {}, h("a", { href: "#/search" + qs({ q: state.q }) }, "All categories")));
    facets.append(h("nav", { "aria-label": "Categories in the results" }, h("ul", { class: "chips" }, ...chips)));
  }

  let typing = null;
  form.addEventListener("input", (e) => {
    const el = e.target;
    state[el.name] = el.type === "checkbox" ? String(el.checked) : el.value;
    pageNo = 1;
    onChange(state);
    clearTimeout(typing);
    typing = setTimeout(() => load(false), el.name === "q" || el.type === "number" ? 250 : 0);
  });
  more.addEventListener("click", () => {
    pageNo += 1;
    load(true);
  });
  load(false);
  return () => clearTimeout(typing);
}

/** Replaces the address without a new history entry or a re-render. */
function keepAddress(base, state, keys) {
  const q = {};
  for (const k of keys) if (state[k] && state[k] !== "false") q[k] = state[k];
  history.replaceState(null, "", base + qs(q));
}

export function search(view, params) {
  const state = Object.fromEntries(params);
  page(view, state.q ? `Results for “${state.q}”` : "Search");
  const title = view.querySelector("h1");
  return listing(view, state, {
    withSearch: true,
    onChange: (st) => {
      keepAddress("#/search", st, ["q", "category", "sort", "in_stock", "min", "max"]);
      title.textContent = st.q ? `Results for “${st.q}”` : "Search";
      document.title = `${title.textContent} — Kirana`;
    },
  });
}

export async function category(view, params, slug) {
  const state = { ...Object.fromEntries(params), category: slug };
  page(view, "Category");
  const title = view.querySelector("h1");
  try {
    const c = (await loadCategories()).find((x) => x.slug === slug);
    if (!c) {
      view.append(problem({ status: 404 }, "the catalog"));
      return;
    }
    title.textContent = c.name;
    document.title = `${c.name} — Kirana`;
  } catch (e) {
    view.append(problem(e, "the catalog"));
    return;
  }
  return listing(view, state, {
    withSearch: false,
    onChange: (st) => keepAddress(`#/c/${slug}`, st, ["sort", "in_stock", "min", "max"]),
  });
}

export async function product(view, _params, id) {
  page(view, "Product");
  const title = view.querySelector("h1");
  let p;
  try {
    p = await api("/api/v1/products/" + encodeURIComponent(id));
  } catch (e) {
    view.append(problem(e, "the catalog"));
    return;
  }
  title.textContent = p.name;
  document.title = `${p.name} — Kirana`;
  const pics = pictures(p);
  const gallery = h("div", { class: "gallery" });
  if (pics.length) {
    const big = h("img", { class: "main-img", src: pics[0].url, alt: p.name, width: pics[0].width, height: pics[0].height });
    const thumbs = pics.map((pic, i) =>
      h(
        "li",
        {},
        h(
          "button",
          {
            type: "button",
            "aria-pressed": String(i === 0),
            "aria-label": `Picture ${i + 1} of ${pics.length}`,
            onclick: (e) => {
              big.src = pic.url;
              gallery.querySelectorAll("ul button").forEach((b) => b.setAttribute("aria-pressed", String(b === e.currentTarget)));
            },
          },
          h("img", { class: "thumb", src: pic.thumb, alt: "" }),
        ),
      ),
    );
    gallery.append(big, pics.length > 1 ? h("ul", { "aria-label": "More pictures" }, ...thumbs) : null);
  } else {
    gallery.append(picture(p, "large"));
  }
  let qty = 1;
  const max = Math.min(20, p.stock);
  const out = h("output", { "aria-live": "polite", id: "qty" }, "1");
  const minus = h("button", { type: "button", class: "secondary", "aria-label": "One fewer", disabled: true }, "−");
  const plus = h("button", { type: "button", class: "secondary", "aria-label": "One more", disabled: max <= 1 }, "+");
  const set = (n) => {
    qty = Math.max(1, Math.min(max, n));
    out.textContent = String(qty);
    minus.disabled = qty <= 1;
    plus.disabled = qty >= max;
  };
  minus.addEventListener("click", () => set(qty - 1));
  plus.addEventListener("click", () => set(qty + 1));
  let catLink = null;
  try {
    const c = (await loadCategories()).find((x) => x.id === p.category_id);
    if (c) catLink = h("p", {}, h("a", { href: `#/c/${c.slug}` }, `More in ${c.name}`));
  } catch {
    catLink = null;
  }
  view.append(
    h(
      "div",
      { class: "product" },
      gallery,
      h(
        "div",
        {},
        h("p", { class: "muted" }, [p.brand, p.unit].filter(Boolean).join(" · ")),
        priceTag(p.price, p.mrp, p.discount_percent),
        p.mrp > p.price ? h("p", { class: "muted" }, `You save ${money(p.mrp - p.price)} on the MRP of ${money(p.mrp)}.`) : null,
        stockNote(p.stock) || h("p", { class: "muted" }, "In stock"),
        p.stock > 0
          ? h(
              "div",
              { class: "row" },
              h("span", { class: "qty", role: "group", "aria-label": "Quantity" }, minus, out, plus),
              h("button", { type: "button", onclick: () => addToCart(p, qty) }, "Add to cart"),
            )
          : null,
        p.description ? h("p", {}, p.description) : null,
        catLink,
      ),
    ),
  );
}
