// Kotally staff embed (docs/embed.md). Read-only: nothing on this page can change a balance.
//
// 1. Ask the GHL parent frame for the user context: postMessage REQUEST_USER_DATA, answer
//    REQUEST_USER_DATA_RESPONSE with an encrypted `payload`.
// 2. Exchange it at POST /embed/session for a 15-minute token, kept in memory only (framed
//    pages often get no third-party cookies), sent as Authorization: Bearer on every read.
// 3. When a read answers 401 (the token expired), ask the parent again once and retry.
"use strict";

(() => {
  const HANDSHAKE_TIMEOUT_MS = 10000;
  const SEARCH_DELAY_MS = 300;
  const UPCOMING_SHOWN = 5;

  const session = { token: null, pending: null };
  const search = { query: "", cursor: null, seq: 0, timer: null };
  let detailSeq = 0;
  let selectedId = null;

  const $ = (id) => document.getElementById(id);

  class SignInError extends Error {
    constructor(title, text) {
      super(title);
      this.title = title;
      this.text = text;
    }
  }

  class ApiError extends Error {
    constructor(status, body) {
      super((body && body.message) || `The server answered ${status}.`);
      this.status = status;
      this.reason = body && body.reason_code;
    }
  }

  // DOM helpers: text only ever goes in through textContent.
  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function append(parent, ...children) {
    for (const child of children) if (child) parent.appendChild(child);
    return parent;
  }

  // Times are shown in the location's time zone, as in the admin UI; in the browser's own only
  // until the location is known, or when this browser does not know the location's zone.
  function makeFormats(timeZone) {
    try {
      return {
        dateTime: new Intl.DateTimeFormat(undefined,
          { dateStyle: "medium", timeStyle: "short", timeZone }),
        dateOnly: new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeZone }),
      };
    } catch (error) {
      if (timeZone === undefined) throw error;
      return makeFormats(undefined);
    }
  }

  let formats = makeFormats(undefined);
  const formatTime = (iso) => (iso ? formats.dateTime.format(new Date(iso)) : "No time recorded");
  const formatDate = (iso) => formats.dateOnly.format(new Date(iso));
  const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;

  // Notices: loading, not signed in, error.
  function notice(kind, title, text, retry) {
    const box = $("notice");
    box.dataset.kind = kind;
    $("notice-title").textContent = title;
    $("notice-text").textContent = text || "";
    const action = $("notice-action");
    action.hidden = !retry;
    action.onclick = retry || null;
    box.hidden = false;
    $("layout").hidden = true;
  }

  function ready() {
    $("notice").hidden = true;
    $("layout").hidden = false;
  }

  // The handshake.
  function requestUserData() {
    return new Promise((resolve, reject) => {
      if (window.parent === window) {
        reject(new SignInError("Open this page inside HighLevel",
          "Kotally's staff page signs you in through HighLevel. Open it from the " +
          "sub-account's menu."));
        return;
      }
      const timer = setTimeout(() => {
        window.removeEventListener("message", onMessage);
        reject(new SignInError("Not signed in",
          "HighLevel did not answer the sign-in request. Reload the page to try again."));
      }, HANDSHAKE_TIMEOUT_MS);
      function onMessage(event) {
        if (event.source !== window.parent) return;
        const data = event.data;
        if (!data || data.message !== "REQUEST_USER_DATA_RESPONSE") return;
        clearTimeout(timer);
        window.removeEventListener("message", onMessage);
        if (typeof data.payload === "string" && data.payload) resolve(data.payload);
        else reject(new SignInError("Not signed in", "HighLevel sent no user context."));
      }
      window.addEventListener("message", onMessage);
      window.parent.postMessage({ message: "REQUEST_USER_DATA" }, "*");
    });
  }

  async function signIn() {
    const payload = await requestUserData();
    const response = await fetch("embed/session", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ payload }),
      credentials: "omit",
      cache: "no-store",
    });
    const body = await response.json().catch(() => null);
    if (!response.ok || !body || !body.ok) {
      const message = (body && body.message) || "Kotally could not sign you in.";
      const title = response.status === 403 ? "This location is not set up in Kotally"
        : "Not signed in";
      throw new SignInError(title, message);
    }
    useLocation(await locationOf(body.token));
    session.token = body.token;
  }

  async function locationOf(token) {
    const response = await fetch("embed/api/location", {
      headers: { Authorization: `Bearer ${token}` },
      credentials: "omit",
      cache: "no-store",
    });
    const body = await response.json().catch(() => null);
    if (!response.ok || !body || !body.ok) throw new ApiError(response.status, body);
    return body.location;
  }

  function useLocation(location) {
    formats = makeFormats(location.timezone || undefined);
    const zone = formats.dateTime.resolvedOptions().timeZone;
    $("who").replaceChildren(
      el("span", "who-name", location.name || `Location ${location.id}`),
      el("span", "who-zone", `Times in ${zone.replaceAll("_", " ")}`));
  }

  function ensureSession() {
    if (session.token) return Promise.resolve();
    if (!session.pending) {
      session.pending = signIn().finally(() => { session.pending = null; });
    }
    return session.pending;
  }

  async function api(path) {
    for (let attempt = 0; ; attempt += 1) {
      await ensureSession();
      const response = await fetch(path, {
        headers: { Authorization: `Bearer ${session.token}` },
        credentials: "omit",
        cache: "no-store",
      });
      if (response.status === 401 && attempt === 0) {
        session.token = null; // expired: one new handshake, then the same read again
        continue;
      }
      const body = await response.json().catch(() => null);
      if (!response.ok || !body || !body.ok) throw new ApiError(response.status, body);
      return body;
    }
  }

  function failed(error, retry) {
    if (error instanceof SignInError) notice("signed-out", error.title, error.text, null);
    else notice("error", "Something went wrong", `${error.message} Nothing was changed.`, retry);
  }

  // Search.
  function contactsPath(query, cursor) {
    const params = new URLSearchParams();
    if (query) params.set("q", query);
    if (cursor) params.set("cursor", cursor);
    params.set("limit", "20");
    return `embed/api/contacts?${params}`;
  }

  async function runSearch(query, more) {
    const seq = ++search.seq;
    const status = $("results-status");
    status.classList.remove("error-text");
    status.textContent = more ? "Loading more…" : "Searching…";
    try {
      const body = await api(contactsPath(query, more ? search.cursor : null));
      if (seq !== search.seq) return; // a newer search has started
      search.query = query;
      search.cursor = body.next_cursor || null;
      const list = $("results");
      if (!more) list.replaceChildren();
      for (const contact of body.contacts) list.appendChild(resultItem(contact));
      $("more").hidden = !search.cursor;
      const count = list.children.length;
      if (count === 0) {
        status.textContent = query
          ? `No contacts match “${query}”. Try a name, an email or a contact id.`
          : "No contacts in this location yet. They appear once they buy or book.";
      } else {
        status.textContent = query
          ? `${plural(count, "contact", "contacts")}${search.cursor ? " so far" : ""} matching “${query}”`
          : "Newest contacts";
      }
      ready();
    } catch (error) {
      if (seq !== search.seq) return;
      if (error instanceof ApiError && error.status === 422) {
        status.textContent = error.message;
        status.classList.add("error-text");
        return;
      }
      failed(error, () => runSearch(query, more));
    }
  }

  function resultItem(contact) {
    const item = el("li");
    const button = el("button", "result");
    button.type = "button";
    button.dataset.id = contact.id;
    button.setAttribute("aria-current", String(contact.id === selectedId));
    const meta = [contact.email, contact.ghl_contact_id || contact.external_contact_id]
      .filter(Boolean).join(" · ");
    append(button,
      el("span", "result-name", contact.name || contact.email || "Unnamed contact"),
      el("span", "result-meta", meta || contact.id));
    button.addEventListener("click", () => openContact(contact.id));
    return append(item, button);
  }

  // Contact detail.
  async function openContact(id) {
    selectedId = id;
    for (const button of document.querySelectorAll(".result")) {
      button.setAttribute("aria-current", String(button.dataset.id === id));
    }
    const seq = ++detailSeq;
    const pane = $("detail");
    pane.replaceChildren(el("p", "loading", "Loading credits…"));
    $("layout").dataset.view = "detail";
    const base = `embed/api/contacts/${encodeURIComponent(id)}`;
    try {
      const [summary, balances, upcoming] = await Promise.all([
        api(`${base}/summary`),
        api(`${base}/balances`),
        api(`${base}/appointments/upcoming?limit=${UPCOMING_SHOWN}`),
      ]);
      if (seq !== detailSeq) return;
      renderContact(pane, summary, balances, upcoming);
    } catch (error) {
      if (seq !== detailSeq) return;
      if (error instanceof ApiError && error.status === 404) {
        pane.replaceChildren(backButton(),
          el("p", "error-text", "This contact is not in this location any more."));
        return;
      }
      failed(error, () => { ready(); openContact(id); });
    }
  }

  function backButton() {
    const button = el("button", "button-link back", "← Back to results");
    button.type = "button";
    button.addEventListener("click", () => {
      $("layout").dataset.view = "search";
      $("q").focus();
    });
    return button;
  }

  function section(title, ...children) {
    return append(el("section", "section"), el("h3", "section-title", title), ...children);
  }

  function renderContact(pane, summaryBody, balancesBody, upcomingBody) {
    const contact = summaryBody.contact;
    const ids = el("ul", "contact-ids");
    if (contact.email) ids.appendChild(el("li", null, contact.email));
    if (contact.ghl_contact_id) ids.appendChild(el("li", null, `GHL ${contact.ghl_contact_id}`));
    if (contact.external_contact_id) {
      ids.appendChild(el("li", null, `External ${contact.external_contact_id}`));
    }
    const total = summaryBody.summary.credits_available;
    pane.replaceChildren(
      backButton(),
      el("h2", "contact-name", contact.name || contact.email || "Unnamed contact"),
      ids,
      append(el("p", "total"),
        el("span", "total-number", total),
        el("span", "total-label", total === 1 ? "credit available" : "credits available")),
      section("Balance by product", balanceCards(balancesBody.balances)),
      section("Upcoming appointments", appointmentList(upcomingBody.appointments)),
      section("Recent activity", ledgerTable(summaryBody.summary.recent_ledger)),
    );
  }

  function balanceCards(balances) {
    if (!balances.length) {
      return el("p", "muted",
        "No usable credits. Credits appear here when a package or membership is paid.");
    }
    const grid = el("div", "balances");
    for (const item of balances) {
      const expiry = item.next_expires_at ? `Next expiry ${formatDate(item.next_expires_at)}`
        : "No expiry";
      append(grid, append(el("div", "balance"),
        el("p", "balance-name", item.product_config_name || item.product_config_id),
        el("p", "balance-number", item.credits_available),
        el("p", "balance-meta", expiry)));
    }
    return grid;
  }

  const APPOINTMENT_BADGES = { booked: "badge-ok", showed: "badge-ok", cancelled: "badge-warn",
    noshow: "badge-bad" };

  function appointmentList(appointments) {
    if (!appointments.length) return el("p", "muted", "No upcoming appointments.");
    const list = el("ul", "list");
    for (const item of appointments) {
      const used = item.credits_deducted - item.credits_restored;
      append(list, append(el("li"),
        append(el("span", "list-main"),
          document.createTextNode(formatTime(item.appointment_time)),
          el("span", "list-sub", `${plural(used, "credit", "credits")} · ${item.external_ref}`)),
        el("span", `badge ${APPOINTMENT_BADGES[item.status] || ""}`, item.status)));
    }
    return list;
  }

  const KINDS = { grant: "Granted", deduct: "Used", restore: "Restored", expire: "Expired",
    adjust: "Adjusted", void: "Voided" };

  function ledgerTable(entries) {
    if (!entries.length) return el("p", "muted", "No credit activity yet.");
    const table = el("table", "table");
    const head = el("tr");
    append(head, el("th", null, "When"), el("th", null, "What"),
      el("th", "col-config", "Product"), el("th", "num", "Credits"), el("th", "num", "Left"));
    const body = el("tbody");
    for (const entry of entries) {
      const sign = entry.amount > 0 ? "+" : "−";
      append(body, append(el("tr"),
        el("td", null, formatTime(entry.created_at)),
        el("td", null, KINDS[entry.kind] || entry.kind),
        el("td", "col-config", entry.product_config_id),
        el("td", `num ${entry.amount > 0 ? "plus" : "minus"}`, `${sign}${Math.abs(entry.amount)}`),
        el("td", "num", entry.entitlement_balance_after)));
    }
    return append(table, append(el("thead"), head), body);
  }

  // Wiring.
  function start() {
    $("search-form").addEventListener("submit", (event) => {
      event.preventDefault();
      clearTimeout(search.timer);
      runSearch($("q").value.trim(), false);
    });
    $("q").addEventListener("input", () => {
      clearTimeout(search.timer);
      search.timer = setTimeout(() => runSearch($("q").value.trim(), false), SEARCH_DELAY_MS);
    });
    $("more").addEventListener("click", () => runSearch(search.query, true));
    notice("loading", "Connecting to HighLevel…", "Checking who you are signed in as.", null);
    ensureSession().then(() => runSearch("", false), (error) => failed(error, null));
  }

  start();
})();
