// The fusionbus gateway dashboard: a live table of the reports this agency received, and
// the gateway's state (its subscriber's connection and lag, quarantined records by reason),
// and, for a role that may post, a form sending feedback on a report to its originator.
// Every piece of report text goes into the page through textContent and DOM calls only;
// tests/unit/gateway/test_dashboard.py fails if this file ever parses strings as HTML.
"use strict";

(function () {
  const FILTERS = ["category", "jurisdiction", "precedence"];
  const HISTORY_MS = 24 * 3600 * 1000; // the first connect replays the last day
  const RECONNECT_MS = [500, 1000, 2000, 5000];
  const STATS_MS = 5000;
  const SENDERS = new Set(["operator", "system"]); // the roles that may give feedback
  const byId = (id) => document.getElementById(id);
  const rows = new Map(); // message id -> {tr, item}
  let source = null;
  let lastEventId = null;
  let failures = 0;
  let since = new Date(Date.now() - HISTORY_MS).toISOString();
  let me = null; // {agency, token_id, role} once /v1/me answered
  let meKnown = Promise.resolve();

  function text(tag, value, className) {
    const node = document.createElement(tag);
    node.textContent = value === null || value === undefined ? "" : String(value);
    if (className) node.className = className;
    return node;
  }

  function setState(state, detail) {
    const node = byId("state");
    node.dataset.state = state;
    node.textContent = detail ? state + ": " + detail : state;
  }

  function notice(message) {
    byId("notice").textContent = message || "";
  }

  function csrf() {
    const found = document.cookie.split("; ").find((c) => c.startsWith("fbgw_csrf="));
    return found ? decodeURIComponent(found.slice("fbgw_csrf=".length)) : "";
  }

  // -- filters in the URL ----------------------------------------------------------------

  function currentFilters() {
    const query = new URLSearchParams(window.location.search);
    const filters = new URLSearchParams();
    for (const name of FILTERS) {
      for (const value of query.getAll(name)) if (value) filters.append(name, value);
    }
    return filters;
  }

  function showFilters() {
    const filters = currentFilters();
    for (const name of FILTERS) byId("f-" + name).value = filters.get(name) || "";
  }

  function applyFilters(event) {
    event.preventDefault();
    const filters = new URLSearchParams();
    for (const name of FILTERS) {
      const value = byId("f-" + name).value.trim();
      if (value) filters.set(name, value);
    }
    const query = filters.toString();
    window.history.pushState(null, "", query ? "/?" + query : "/");
    restart();
  }

  // -- the table --------------------------------------------------------------------------

  function age(iso) {
    return span(Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000)));
  }

  // Written long before it reached this gateway (it waited in its sender's outbox).
  function ageCell(item) {
    const late = item.late_by_s ? " · late by " + span(item.late_by_s) : "";
    return age(item.header.created_at) + late;
  }

  function span(seconds) {
    if (seconds < 60) return seconds + " s";
    if (seconds < 3600) return Math.floor(seconds / 60) + " min";
    if (seconds < 86400) return Math.floor(seconds / 3600) + " h";
    return Math.floor(seconds / 86400) + " d";
  }

  function validity(item) {
    const report = item.report || {};
    const until = report.valid_until || item.header.expires_at;
    const from = report.valid_from;
    const now = Date.now();
    if (from && Date.parse(from) > now) return { label: "from " + from, state: "pending" };
    if (until && Date.parse(until) <= now) return { label: "expired " + until, state: "expired" };
    return { label: until ? "until " + until : "valid", state: "valid" };
  }

  function place(item) {
    const report = item.report;
    const where = report && report.location && report.location.place;
    const jurisdiction = item.header.jurisdiction;
    return where && where !== jurisdiction ? jurisdiction + " / " + where : jurisdiction;
  }

  function addRow(item) {
    const header = item.header;
    const id = header.message_id;
    const state = item.state || "current";
    const known = rows.get(id);
    if (known) {
      // the originator's notice changed it: it comes again with its new state
      if ((known.item.state || "current") === state) return;
      known.tr.remove();
      rows.delete(id);
    }
    if (state === "purged") {
      // never shown again: nor in the detail view, if it is open on this report
      const panel = byId("detail");
      if (panel.dataset.messageId === id) {
        panel.hidden = true;
        for (const part of ["d-title", "d-narrative", "d-action"]) byId(part).textContent = "";
      }
      return;
    }
    const tr = document.createElement("tr");
    tr.dataset.messageId = id;
    tr.dataset.state = state;
    tr.className = "precedence-" + String(header.precedence).toLowerCase();
    tr.tabIndex = 0;
    tr.append(
      text("td", header.precedence, "precedence"),
      text("td", header.sender),
      text("td", header.category),
      text("td", place(item)),
      text("td", header.tlp, "tlp"),
      text("td", ageCell(item), "age"),
      text("td", "", "validity"),
      text("td", item.redacted ? "(redacted: " + header.tlp + ")" : item.report.title, "title"),
    );
    if (state !== "current") {
      const why = item.notice && item.notice.reason ? ": " + item.notice.reason : "";
      tr.querySelector(".title").prepend(text("strong", state.toUpperCase() + why + " — ", "state"));
    }
    const valid = validity(item);
    const cell = tr.querySelector(".validity");
    cell.textContent = valid.label;
    cell.dataset.validity = valid.state;
    tr.addEventListener("click", () => openDetail(id));
    tr.addEventListener("keydown", (e) => {
      if (e.key === "Enter") openDetail(id);
    });
    rows.set(id, { tr, item });
    byId("rows").prepend(tr);
    byId("empty").hidden = true;
  }

  function refreshAges() {
    for (const { tr, item } of rows.values()) {
      tr.querySelector(".age").textContent = ageCell(item);
    }
  }

  function clearRows() {
    rows.clear();
    byId("rows").replaceChildren();
    byId("empty").hidden = false;
  }

  // -- the detail view --------------------------------------------------------------------

  function pairs(list, entries) {
    list.replaceChildren();
    for (const [name, value] of entries) {
      if (value === null || value === undefined || value === "") continue;
      if (Array.isArray(value) && !value.length) continue;
      const shown = Array.isArray(value) ? value.map(flat).join(", ") : flat(value);
      list.append(text("dt", name), text("dd", shown));
    }
  }

  function flat(value) {
    if (value !== null && typeof value === "object") {
      return Object.entries(value)
        .map(([k, v]) => k + ": " + flat(v))
        .join("; ");
    }
    return String(value);
  }

  async function openDetail(id) {
    const panel = byId("detail");
    const answer = await fetch("/v1/reports/" + encodeURIComponent(id), {
      credentials: "same-origin",
    });
    const body = await answer.json();
    panel.hidden = false;
    resetFeedback(null);
    if (!answer.ok) {
      byId("d-title").textContent = body.title || "The report cannot be shown";
      pairs(byId("d-summary"), [["why", body.detail]]);
      for (const part of ["d-narrative", "d-action"]) byId(part).textContent = "";
      for (const part of ["d-evaluation", "d-handling", "d-subjects"]) byId(part).replaceChildren();
      return;
    }
    const report = body.report;
    const header = body.header;
    byId("d-title").textContent = report.title;
    pairs(byId("d-summary"), [
      ["message id", header.message_id],
      ["sender", header.sender],
      ["precedence", header.precedence],
      ["category", header.category],
      ["jurisdiction", header.jurisdiction],
      ["place", report.location && report.location.place],
      ["location", report.location && report.location.description],
      ["created", report.created_at],
      ["observed", report.observed_at],
      ["valid", validity(body).label],
      ["received", body.received_at],
    ]);
    byId("d-narrative").textContent = report.narrative;
    byId("d-action").textContent = report.requested_action || "none";
    const evaluation = report.evaluation || {};
    pairs(byId("d-evaluation"), [
      ["source reliability", evaluation.source_reliability],
      ["information credibility", evaluation.information_credibility],
    ]);
    const handling = report.handling || {};
    pairs(byId("d-handling"), [
      ["TLP", handling.tlp],
      ["conditions", (handling.conditions || []).length ? handling.conditions : "none"],
      ["named recipients", handling.named_recipients],
    ]);
    const subjects = byId("d-subjects");
    subjects.replaceChildren();
    for (const subject of report.subjects || []) {
      const li = document.createElement("li");
      const dl = document.createElement("dl");
      pairs(dl, Object.entries(subject));
      li.append(dl);
      subjects.append(li);
    }
    if (!(report.subjects || []).length) subjects.append(text("li", "none"));
    await meKnown;
    resetFeedback(header);
    panel.dataset.messageId = id; // last: the view is complete
  }

  // -- feedback to the originator ---------------------------------------------------------

  function resetFeedback(header) {
    const form = byId("feedback");
    const mayGive = header && me && SENDERS.has(me.role) && header.sender !== me.agency;
    form.hidden = !mayGive;
    form.reset();
    showOutcomeFields();
    byId("fb-result").textContent = "";
    delete byId("fb-result").dataset.state;
    delete byId("fb-result").dataset.feedbackId;
  }

  function showOutcomeFields() {
    const outcome = byId("fb-outcome").value;
    byId("fb-seizure").hidden = outcome !== "seizure";
    byId("fb-note").required = outcome === "other";
    byId("fb-note").placeholder = outcome === "other" ? "required: what came of it" : "optional";
  }

  function feedbackBody() {
    const outcome = byId("fb-outcome").value;
    const body = { outcome };
    const note = byId("fb-note").value.trim();
    if (note) body.note = note;
    if (outcome === "seizure") {
      const quantity = byId("fb-quantity").value.trim();
      const unit = byId("fb-unit").value.trim();
      if (quantity) body.quantity = quantity;
      if (unit) body.unit = unit;
    }
    return body;
  }

  function sayFeedback(state, message) {
    const result = byId("fb-result");
    result.dataset.state = state;
    result.textContent = message;
  }

  async function sendFeedback(event) {
    event.preventDefault();
    const id = byId("detail").dataset.messageId;
    const button = byId("fb-send");
    button.disabled = true;
    sayFeedback("sending", "sending...");
    try {
      const answer = await fetch("/v1/reports/" + encodeURIComponent(id) + "/feedback", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
        body: JSON.stringify(feedbackBody()),
      });
      const body = await answer.json().catch(() => ({}));
      if (answer.ok) {
        sayFeedback("sent", "Sent " + body.outcome + " to " + body.originator + ".");
        byId("fb-result").dataset.feedbackId = body.message_id;
        return;
      }
      // A 422 names each wrong field; any other problem says why in its detail.
      const fields = (body.errors || []).map((e) => e.detail).join("; ");
      sayFeedback("failed", "Not sent: " + (fields || body.detail || body.title || answer.status));
    } catch (exc) {
      sayFeedback("failed", "Not sent: the gateway did not answer (" + exc + ").");
    } finally {
      button.disabled = false;
    }
  }

  // -- the feed ---------------------------------------------------------------------------

  function feedUrl() {
    const query = currentFilters();
    query.set("since", since);
    if (lastEventId) query.set("last_event_id", lastEventId);
    return "/v1/feed?" + query.toString();
  }

  function connect() {
    setState(lastEventId ? "reconnecting" : "connecting");
    source = new EventSource(feedUrl(), { withCredentials: true });
    source.onopen = () => {
      failures = 0;
      setState("live");
      showStats();
    };
    source.addEventListener("report", (event) => {
      lastEventId = event.lastEventId || lastEventId;
      addRow(JSON.parse(event.data));
    });
    source.addEventListener("heartbeat", (event) => {
      lastEventId = event.lastEventId || lastEventId;
    });
    source.addEventListener("gap", () => {
      notice("Some reports were removed by retention before this page read them.");
    });
    source.addEventListener("disconnect", () => reconnect("the gateway ended the feed"));
    source.onerror = () => reconnect("connection lost");
  }

  async function reconnect(why) {
    if (source) source.close();
    source = null;
    failures += 1;
    setState("reconnecting", why);
    const me = await fetch("/v1/me", { credentials: "same-origin" }).catch(() => null);
    if (me && me.status === 401) {
      window.location.assign("/login");
      return;
    }
    if (me && me.ok && failures > 2) {
      // Signed in yet the feed keeps failing: most likely a filter the gateway refuses.
      const probe = await fetch(feedUrl().replace("/v1/feed", "/v1/reports") + "&limit=1");
      if (probe.status === 400) {
        const problem = await probe.json();
        setState("error", problem.detail || "the filters are not valid");
        return;
      }
    }
    const delay = RECONNECT_MS[Math.min(failures - 1, RECONNECT_MS.length - 1)];
    window.setTimeout(connect, delay);
  }

  function restart() {
    if (source) source.close();
    source = null;
    lastEventId = null;
    failures = 0;
    since = new Date(Date.now() - HISTORY_MS).toISOString();
    clearRows();
    byId("detail").hidden = true;
    notice("");
    showFilters();
    connect();
  }

  // -- the gateway's state ----------------------------------------------------------------

  function showConnected(state) {
    const node = byId("o-connected");
    node.dataset.state = state;
    node.textContent = state;
  }

  async function showStats() {
    const answer = await fetch("/v1/stats", { credentials: "same-origin" }).catch(() => null);
    if (!answer || !answer.ok) {
      showConnected("unknown");
      byId("o-lag").textContent = "unknown";
      return;
    }
    const stats = await answer.json();
    const subscriber = stats.subscriber || {};
    showConnected(subscriber.connected ? "connected" : "disconnected");
    const lag = subscriber.lag;
    byId("o-lag").textContent =
      lag === null || lag === undefined ? "unknown" : lag + (lag === 1 ? " record" : " records");
    byId("o-clients").textContent = String(stats.feed_clients);
    byId("o-received").textContent = String(stats.received);
    const outbox = stats.outbox || { queued: 0, oldest_age_s: 0, expired: 0, failed: 0 };
    byId("o-outbox").textContent =
      (outbox.queued ? outbox.queued + " queued, the oldest " + span(Math.round(outbox.oldest_age_s)) : "empty") +
      (outbox.expired ? ", " + outbox.expired + " expired unsent" : "") +
      (outbox.failed ? ", " + outbox.failed + " refused" : "");
    const quarantined = stats.quarantined || { total: 0, by_reason: {} };
    byId("o-quarantined").textContent = String(quarantined.total);
    const body = byId("o-reason-rows");
    body.replaceChildren();
    for (const [reason, count] of Object.entries(quarantined.by_reason || {})) {
      const tr = document.createElement("tr");
      tr.dataset.reason = reason;
      tr.append(text("td", reason), text("td", count));
      body.append(tr);
    }
    if (!body.children.length) {
      const tr = document.createElement("tr");
      tr.append(text("td", "none"), text("td", 0));
      body.append(tr);
    }
  }

  // -- what this agency sent, and what each recipient said -------------------------------

  const STAGES = ["received", "acknowledged", "actioned", "outcome"];

  function said(state) {
    // one recipient's line: each stage it reached, the outcome, applied notices, forwards
    const parts = [];
    for (const name of STAGES) {
      const stage = state[name];
      if (!stage) continue;
      if (name === "outcome") {
        const amount = stage.quantity ? " " + stage.quantity + " " + stage.unit : "";
        parts.push(stage.outcome + amount + (stage.note ? " (" + stage.note + ")" : ""));
      } else {
        parts.push(name);
      }
    }
    if ((state.applied || []).length) parts.push("applied");
    for (const forward of state.forwards || []) {
      parts.push(forward.kind.replace("_", " ") + " " + forward.forward_to);
    }
    return parts.length ? parts.join(" · ") : "nothing yet";
  }

  async function showSent() {
    const answer = await fetch("/v1/sent?limit=20", { credentials: "same-origin" }).catch(
      () => null,
    );
    if (!answer || !answer.ok) return;
    const body = byId("sent-rows");
    body.replaceChildren();
    const { items } = await answer.json();
    for (const item of items) {
      const tr = document.createElement("tr");
      tr.dataset.messageId = item.message_id;
      const recipients = document.createElement("td");
      recipients.className = "recipients";
      for (const state of item.feedback || []) {
        const entry = text("div", "", "recipient");
        entry.dataset.agency = state.agency;
        entry.append(text("strong", state.agency + ": "), text("span", said(state), "said"));
        recipients.append(entry);
      }
      tr.append(text("td", item.message_id, "id"), text("td", item.status), recipients);
      body.append(tr);
    }
    byId("sent-empty").hidden = items.length > 0;
  }

  // -- start ------------------------------------------------------------------------------

  async function whoAmI() {
    const answer = await fetch("/v1/me", { credentials: "same-origin" });
    if (answer.status === 401) {
      window.location.assign("/login");
      return;
    }
    me = await answer.json();
    byId("who").textContent = me.agency + " · " + me.role;
  }

  async function logout() {
    await fetch("/logout", {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf() },
    });
    window.location.assign("/login");
  }

  document.addEventListener("DOMContentLoaded", () => {
    byId("filters").addEventListener("submit", applyFilters);
    byId("clear").addEventListener("click", () => {
      window.history.pushState(null, "", "/");
      restart();
    });
    byId("close-detail").addEventListener("click", () => {
      byId("detail").hidden = true;
    });
    byId("logout").addEventListener("click", logout);
    byId("feedback").addEventListener("submit", sendFeedback);
    byId("fb-outcome").addEventListener("change", showOutcomeFields);
    window.addEventListener("popstate", restart);
    window.setInterval(refreshAges, 5000);
    window.setInterval(showStats, STATS_MS);
    window.setInterval(showSent, STATS_MS);
    showStats();
    showSent();
    meKnown = whoAmI();
    restart();
  });
})();
