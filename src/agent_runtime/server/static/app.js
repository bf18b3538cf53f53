// Chat page: streams a turn from POST /api/chat (NDJSON), renders the answer's markdown
// sanitized (marked + DOMPurify, vendored), stops a turn (POST /api/runs/{id}/cancel), lists
// the caller's sessions from the server's history (GET/PATCH/DELETE /api/sessions), and
// re-attaches to a running turn after a reload (GET /api/runs/{id}/events). A 401 asks for
// an API key, kept in sessionStorage and sent as a Bearer token on every call.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const local = window.localStorage, tabStore = window.sessionStorage;
  const messagesEl = $("messages"), input = $("input"), sendBtn = $("send"), stopBtn = $("stop");
  const statusEl = $("status"), modelSel = $("model"), sessionsEl = $("sessions");
  const bannerEl = $("banner"), keyDialog = $("key-dialog"), keyInput = $("key-input");

  const newId = () => "s-" + Math.random().toString(36).slice(2, 12) + Date.now().toString(36);
  const stored = local.getItem("ar.session");
  let sessionId = stored || newId();
  local.setItem("ar.session", sessionId);
  let turns = [];      // {turnIndex, prompt, text, status, usage, executionId, userEl, el}
  let live = null;     // the turn streaming now (with its fetch's AbortController)
  let editing = null;  // the failed turn index the composer's text replaces
  let defaultModel = null;

  // -- banner and status ---------------------------------------------------------------
  const banners = new Map();
  function banner(key, text) {
    if (text) banners.set(key, text); else banners.delete(key);
    bannerEl.textContent = [...banners.values()].join(" ");
    bannerEl.hidden = banners.size === 0;
  }
  function setStatus(state, text) {
    statusEl.dataset.state = state;
    statusEl.textContent = text || state;
  }

  // -- API calls, with the key prompt ----------------------------------------------------
  let keyWaiter = null;
  function askKey(reason) {
    if (!keyWaiter) {
      keyWaiter = new Promise((resolve) => {
        $("key-reason").textContent = reason;
        keyInput.value = "";
        keyDialog.showModal();
        keyInput.focus();
        $("key-form").onsubmit = (e) => {
          e.preventDefault();
          const key = keyInput.value.trim();
          if (!key) return;
          tabStore.setItem("ar.key", key);
          keyDialog.close();
          keyWaiter = null;
          resolve();
        };
      });
    }
    return keyWaiter;
  }
  keyDialog.addEventListener("cancel", (e) => e.preventDefault());  // a key is needed

  async function api(path, opts = {}) {
    for (;;) {
      const headers = Object.assign({}, opts.headers || {});
      const key = tabStore.getItem("ar.key");
      if (key) headers.authorization = "Bearer " + key;
      let body;
      if (opts.json !== undefined) {
        headers["content-type"] = "application/json";
        body = JSON.stringify(opts.json);
      }
      const res = await fetch(path, { method: opts.method || "GET", headers, body, signal: opts.signal });
      if (res.status !== 401) return res;
      if (key) tabStore.removeItem("ar.key");
      await askKey(key ? "That key was not accepted; enter another API key."
        : "This server needs an API key.");
    }
  }
  async function errorText(res) {
    const err = await res.json().catch(() => null);
    return (err && err.error && err.error.message) || (res.status + " " + res.statusText);
  }

  // -- markdown --------------------------------------------------------------------------
  const canRender = typeof window.marked !== "undefined" && typeof window.DOMPurify !== "undefined";
  if (canRender) {
    DOMPurify.addHook("afterSanitizeAttributes", (node) => {
      if (node.tagName === "A") { node.setAttribute("target", "_blank"); node.setAttribute("rel", "noopener noreferrer"); }
    });
  }
  function renderText(t) {
    const el = t.el.querySelector(".text");
    if (canRender) el.innerHTML = DOMPurify.sanitize(marked.parse(t.text, { gfm: true, breaks: true }));
    else el.textContent = t.text;
  }
  function scheduleRender(t) {
    if (t.frame) return;
    t.frame = requestAnimationFrame(() => { t.frame = 0; renderText(t); scroll(); });
  }
  const scroll = () => { messagesEl.scrollTop = messagesEl.scrollHeight; };

  // -- turns on the page -----------------------------------------------------------------
  function element(tag, cls, text) {
    const el = document.createElement(tag);
    if (cls) el.className = cls;
    if (text !== undefined) el.textContent = text;
    return el;
  }
  function emptyState() {
    messagesEl.querySelector(".empty")?.remove();
    if (!turns.length) messagesEl.appendChild(element("p", "empty", "Start a conversation: type a message below."));
  }
  function addTurn(t) {
    messagesEl.querySelector(".empty")?.remove();
    t.userEl = element("div", "msg user", t.prompt);
    t.el = element("div", "msg assistant");
    t.el.append(element("div", "tools"), element("div", "questions"), element("div", "text"), element("div", "meta"));
    t.el.querySelector(".questions").hidden = true;
    t.el.dataset.turn = String(t.turnIndex);
    messagesEl.append(t.userEl, t.el);
    turns.push(t);
    t.usage = t.usage || null;
    renderText(t);
    setState(t, t.status);
    scroll();
    return t;
  }
  function dropTurn(t) {
    t.userEl.remove(); t.el.remove();
    turns = turns.filter((x) => x !== t);
  }
  function clearAttempt(t) {
    t.text = ""; t.usage = null;
    t.el.querySelector(".tools").textContent = "";
    const q = t.el.querySelector(".questions"); q.textContent = ""; q.hidden = true;
    for (const e of t.el.querySelectorAll(".error")) e.remove();
    delete t.el.dataset.stopped;
    renderText(t);
  }
  function addError(t, message) {
    t.el.insertBefore(element("span", "error", message), t.el.querySelector(".meta"));
  }
  function formatUsage(u) {
    if (!u) return "";
    const parts = [];
    if (u.tokensIn != null || u.tokensOut != null) parts.push((u.tokensIn ?? "?") + " in · " + (u.tokensOut ?? "?") + " out tokens");
    if (typeof u.costUsd === "number") parts.push("$" + (u.costUsd < 0.01 ? u.costUsd.toFixed(4) : u.costUsd.toFixed(2)));
    return parts.join(" · ");
  }
  const STATE_LABEL = { stopped: "stopped", failed: "failed", interrupted: "interrupted", running: "running" };
  function setState(t, state) {
    t.status = state;
    t.el.dataset.state = state;
    const meta = t.el.querySelector(".meta");
    meta.textContent = "";
    const usage = formatUsage(t.usage);
    if (usage) meta.appendChild(element("span", "usage", usage));
    if (STATE_LABEL[state]) meta.appendChild(element("span", "state", STATE_LABEL[state]));
  }
  function updateActions() {
    for (const b of messagesEl.querySelectorAll(".meta .retry, .meta .edit")) b.remove();
    const last = turns[turns.length - 1];
    if (!last || live || last.status === "streaming" || last.status === "running") return;
    const meta = last.el.querySelector(".meta");
    const retry = element("button", "retry", "Retry");
    retry.type = "button";
    retry.addEventListener("click", () => {
      const again = retryable(last) ? last.turnIndex : nextIndex();
      send(last.prompt, again);
    });
    const edit = element("button", "edit", "Edit");
    edit.type = "button";
    edit.addEventListener("click", () => {
      editing = retryable(last) ? last.turnIndex : null;
      input.value = last.prompt;
      input.focus();
    });
    meta.append(retry, edit);
  }
  const retryable = (t) => t.status === "failed" || t.status === "interrupted";
  const nextIndex = () => turns.reduce((n, t) => Math.max(n, t.turnIndex + 1), 0);

  // Applies one chat line ({type, data}) to a turn; returns true when the turn ended.
  function apply(t, ev) {
    const data = ev.data || {};
    if (ev.type === "text_delta") {
      t.text += ev.text; scheduleRender(t);
    } else if (ev.type === "message.part.updated") {
      if (typeof data.delta === "string") t.text += data.delta;
      else if (data.part && data.part.type === "text") t.text = data.part.text || "";
      scheduleRender(t);
    } else if (ev.type === "result") {
      t.text = data.finalText || ""; renderText(t);  // a finished turn asked again
    } else if (ev.type === "session.run.restarted") {
      clearAttempt(t);  // the turn is re-run from its start: what came before does not count
      t.el.dataset.attempt = String(data.attempt || "");
    } else if (ev.type === "tool_call") {
      // the arguments only when the deployment shows tool payloads to clients
      const shown = ev.args !== undefined;
      const box = element(shown ? "details" : "div", "tool");
      box.dataset.callId = ev.toolCallId || "";
      box.appendChild(element(shown ? "summary" : "span", "", "🔧 " + (ev.toolName || "tool")));
      if (shown) box.appendChild(element("pre", "args", JSON.stringify(ev.args, null, 2)));
      t.el.querySelector(".tools").appendChild(box);
    } else if (ev.type === "tool_result") {
      const boxes = [...t.el.querySelectorAll(".tool")];
      const box = boxes.find((b) => ev.toolCallId && b.dataset.callId === ev.toolCallId) || boxes.pop();
      if (box) box.appendChild(element("pre", "result", "→ " + JSON.stringify(ev.result, null, 2)));
    } else if (ev.type === "llm_call") {
      const u = t.usage || { tokensIn: null, tokensOut: null, costUsd: null };
      for (const k of ["tokensIn", "tokensOut", "costUsd"]) if (typeof ev[k] === "number") u[k] = (u[k] || 0) + ev[k];
      t.usage = u;
    } else if (ev.type === "questions_start") {
      showQuestions(t, "The agent needs to know:", (ev.questions || []).map((q) => q.question));
    } else if (ev.type === "readiness_end") {
      const decision = ev.decision || {};
      if (decision.status === "blocked" && t.el.querySelector(".questions").hidden) {
        const gaps = ((ev.knowledge || {}).blockingGaps || []).map((g) => "Please provide: " + (g.description || g.id));
        showQuestions(t, decision.reason || "The agent cannot start yet.", gaps);
      }
    } else if (ev.type === "final") {
      if (ev.status === "aborted") t.el.dataset.stopped = "1";
    } else if (ev.type === "error") {
      addError(t, data.message || ev.message || "error");
    } else if (ev.type === "session.run.interrupted") {
      addError(t, data.message || "the turn was interrupted");
      setState(t, "interrupted"); setStatus("failed", "interrupted");
      return true;
    } else if (ev.type === "session.run.completed" || ev.type === "session.run.failed") {
      const ok = ev.type === "session.run.completed";
      if (!ok && data.message && !t.el.querySelector(".error")) addError(t, data.message);
      const state = ok ? (t.el.dataset.stopped ? "stopped" : "completed") : "failed";
      renderText(t); setState(t, state); setStatus(state);
      return true;
    }
    return false;
  }
  function showQuestions(t, title, items) {
    const box = t.el.querySelector(".questions");
    box.textContent = "";
    box.appendChild(element("strong", "", title));
    const list = element("ul");
    for (const q of items) list.appendChild(element("li", "", q));
    box.appendChild(list);
    box.hidden = false;
  }

  // Reads an NDJSON body line by line, handing each parsed object to onLine; true when
  // onLine said the turn ended.
  async function readLines(response, onLine) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return false;
      buffer += decoder.decode(value, { stream: true });
      let nl;
      while ((nl = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, nl).trim();
        buffer = buffer.slice(nl + 1);
        if (line && onLine(JSON.parse(line))) return true;
      }
    }
  }

  // -- sending, stopping, re-attaching -----------------------------------------------------
  function begin(t) {
    live = { turn: t, abort: new AbortController(), stopAsked: false };
    setState(t, "streaming"); setStatus("streaming");
    sendBtn.disabled = true; stopBtn.hidden = false;
    updateActions();
    return live;
  }
  function end(t, run) {
    if (live !== run) return;  // the page left this session meanwhile
    if (t.status === "streaming") {
      setState(t, "failed"); setStatus("failed", "connection lost");
    }
    live = null;
    if (t.frame) { cancelAnimationFrame(t.frame); t.frame = 0; }
    renderText(t); setState(t, t.status);
    local.removeItem("ar.pending");
    sendBtn.disabled = false; stopBtn.hidden = true;
    updateActions();
    refreshSessions();
  }
  async function stream(t, run, response) {
    t.executionId = response.headers.get("x-execution-id") || t.executionId;
    local.setItem("ar.pending", JSON.stringify({ sessionId, turnIndex: t.turnIndex, text: t.prompt, executionId: t.executionId }));
    if (run.stopAsked) stop();
    await readLines(response, (ev) => live === run && apply(t, ev));
  }
  function turnBody(t) {
    const body = { session_id: sessionId, turn_index: t.turnIndex, text: t.prompt };
    // the server's default model is not named, so a turn asked again is the same turn
    if (modelSel.value && !modelSel.disabled && modelSel.value !== defaultModel) body.model = modelSel.value;
    return body;
  }

  async function send(text, turnIndex) {
    if (live) return;
    const replaced = turns.find((x) => x.turnIndex === turnIndex);
    if (replaced) dropTurn(replaced);
    const t = addTurn({ turnIndex, prompt: text, text: "", status: "streaming", executionId: null });
    const run = begin(t);
    try {
      const response = await api("/api/chat", { method: "POST", json: turnBody(t), signal: run.abort.signal });
      banner("net", null);
      if (!response.ok) {
        addError(t, await errorText(response));
        setState(t, "failed"); setStatus("failed");
      } else {
        await stream(t, run, response);
      }
    } catch (e) {
      if (live !== run) return;
      addError(t, "The server cannot be reached: " + (e.message || e));
      banner("net", "The server cannot be reached; check that it is running.");
      setState(t, "failed"); setStatus("failed", "unreachable");
      loadModels();
    }
    end(t, run);
  }

  async function stop() {
    if (!live) return;
    const run = live, t = run.turn;
    run.stopAsked = true;
    if (!t.executionId) return;  // asked again once the turn's id is known
    stopBtn.disabled = true;
    try {
      const res = await api("/api/runs/" + encodeURIComponent(t.executionId) + "/cancel", { method: "POST", json: {} });
      if (!res.ok && res.status !== 404) addError(t, "Could not stop: " + (await errorText(res)));
    } catch (e) {
      addError(t, "Could not stop: " + (e.message || e));
    } finally {
      stopBtn.disabled = false;
    }
  }

  // Follows a running turn's log from its start; a turn whose worker died is asked again
  // (the server resumes it, re-sending its logged events first).
  async function reattach(t) {
    const run = begin(t);
    clearAttempt(t);
    setStatus("streaming", "re-attached");
    try {
      const url = "/api/runs/" + encodeURIComponent(t.executionId) + "/events";
      const response = await api(url, { headers: { accept: "application/x-ndjson" }, signal: run.abort.signal });
      let closing = null;
      if (response.status === 200) {
        await readLines(response, (rec) => {
          if (live !== run) return true;
          if (rec.seq === null) closing = rec.payload;
          return apply(t, rec.payload);
        });
      } else {
        addError(t, "This turn is not known to the server.");
        setState(t, "failed");
      }
      if (live === run && closing && closing.type === "session.run.interrupted") {
        clearAttempt(t);
        setState(t, "streaming"); setStatus("streaming", "resuming");
        const again = await api("/api/chat", { method: "POST", json: turnBody(t), signal: run.abort.signal });
        if (again.ok) await stream(t, run, again);
        else { addError(t, await errorText(again)); setState(t, "failed"); }
      }
    } catch (e) {
      if (live === run) addError(t, String(e.message || e));
    }
    end(t, run);
  }

  // -- sessions ----------------------------------------------------------------------------
  function leaveLive() {
    if (!live) return;
    live.abort.abort();  // the turn runs on at the server; coming back re-attaches
    live = null;
    sendBtn.disabled = false; stopBtn.hidden = true;
  }
  async function openSession(id, fresh) {
    leaveLive();
    sessionId = id;
    local.setItem("ar.session", id);
    editing = null;
    turns = [];
    messagesEl.textContent = "";
    setStatus("idle");
    markCurrent();
    let detail = null;
    if (!fresh) try {
      const res = await api("/api/sessions/" + encodeURIComponent(id));
      if (res.ok) detail = await res.json();
      else if (res.status !== 404) banner("session", "Could not load this session: " + (await errorText(res)));
    } catch (e) {
      banner("net", "The server cannot be reached; check that it is running.");
    }
    if (sessionId !== id) return;
    for (const turn of (detail && detail.turns) || []) {
      addTurn({
        turnIndex: turn.turnIndex, prompt: turn.prompt, text: turn.text || "", usage: turn.usage,
        status: turn.status, executionId: turn.executionId,
      });
      if (turn.error) addError(turns[turns.length - 1], turn.error);
    }
    emptyState();
    const pending = JSON.parse(local.getItem("ar.pending") || "null");
    let running = turns.find((t) => t.status === "running");
    if (!running && pending && pending.sessionId === id && pending.executionId &&
        !turns.some((t) => t.turnIndex === pending.turnIndex)) {
      running = addTurn({ turnIndex: pending.turnIndex, prompt: pending.text, text: "", status: "running", executionId: pending.executionId });
    }
    if (running) reattach(running);
    else { local.removeItem("ar.pending"); updateActions(); }
  }
  function markCurrent() {
    for (const li of sessionsEl.children) li.setAttribute("aria-current", String(li.dataset.id === sessionId));
  }
  async function refreshSessions() {
    let list;
    try {
      const res = await api("/api/sessions");
      if (!res.ok) { banner("sessions", "Could not list sessions: " + (await errorText(res))); return; }
      list = (await res.json()).sessions;
      banner("sessions", null);
    } catch (e) {
      banner("net", "The server cannot be reached; check that it is running.");
      return;
    }
    sessionsEl.textContent = "";
    for (const s of list) sessionsEl.appendChild(sessionItem(s));
    markCurrent();
  }
  function sessionItem(s) {
    const li = element("li");
    li.dataset.id = s.sessionId;
    const open = element("button", "open", s.title);
    open.type = "button";
    open.title = s.title + " (" + s.turnCount + (s.turnCount === 1 ? " turn)" : " turns)");
    open.addEventListener("click", () => openSession(s.sessionId));
    const rename = element("button", "act rename", "✎");
    rename.type = "button";
    rename.setAttribute("aria-label", "Rename " + s.title);
    rename.addEventListener("click", () => startRename(li, s));
    const del = element("button", "act delete", "✕");
    del.type = "button";
    del.setAttribute("aria-label", "Delete " + s.title);
    del.addEventListener("click", () => removeSession(s));
    li.append(open, rename, del);
    return li;
  }
  function startRename(li, s) {
    const field = element("input", "rename-input");
    field.value = s.title;
    field.maxLength = 200;
    field.setAttribute("aria-label", "New title");
    li.textContent = "";
    li.appendChild(field);
    field.focus(); field.select();
    let done = false;
    const finish = async (save) => {
      if (done) return;
      done = true;
      const title = field.value.trim();
      if (save && title && title !== s.title) {
        const res = await api("/api/sessions/" + encodeURIComponent(s.sessionId), { method: "PATCH", json: { title } });
        if (!res.ok) banner("sessions", "Could not rename: " + (await errorText(res)));
      }
      refreshSessions();
    };
    field.addEventListener("keydown", (e) => {
      if (e.key === "Enter") { e.preventDefault(); finish(true); }
      else if (e.key === "Escape") { e.preventDefault(); e.stopPropagation(); finish(false); }
    });
    field.addEventListener("blur", () => finish(true));
  }
  async function removeSession(s) {
    if (!window.confirm("Delete “" + s.title + "”? Its messages are removed from the server.")) return;
    const res = await api("/api/sessions/" + encodeURIComponent(s.sessionId), { method: "DELETE", json: {} });
    if (!res.ok && res.status !== 404) { banner("sessions", "Could not delete: " + (await errorText(res))); return; }
    if (s.sessionId === sessionId) await openSession(newId(), true);
    refreshSessions();
  }

  // -- models and health -------------------------------------------------------------------
  async function loadModels() {
    modelSel.textContent = "";
    try {
      const response = await api("/api/models");
      if (!response.ok) throw new Error(await errorText(response));
      const data = await response.json();
      if (!data.data || !data.data.length) throw new Error("the server lists no models");
      defaultModel = data.default;
      for (const m of data.data) {
        const opt = element("option", "", m.id);
        opt.value = m.id;
        if (m.id === data.default) opt.selected = true;
        modelSel.appendChild(opt);
      }
      modelSel.disabled = false;
      banner("models", null);
    } catch (e) {
      const opt = element("option", "", "unavailable");
      opt.value = "";
      modelSel.appendChild(opt);
      modelSel.disabled = true;
      banner("models", "Models are unavailable: " + (e.message || e) + ".");
    }
  }
  async function checkBackend() {
    try {
      const res = await fetch("/readyz");
      const report = await res.json();
      const backend = report.backend || {};
      if (backend.reachable === false) banner("backend", "The model backend is not reachable" + (backend.error ? ": " + backend.error : "") + ".");
      else if (!res.ok) banner("backend", "The server is not ready: its store is unavailable.");
      else banner("backend", null);
    } catch (e) {
      banner("net", "The server cannot be reached; check that it is running.");
    }
  }

  // -- keyboard and controls -----------------------------------------------------------------
  $("composer").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = input.value.trim();
    if (!text || live) return;
    input.value = "";
    const index = editing !== null ? editing : nextIndex();
    editing = null;
    send(text, index);
  });
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); $("composer").requestSubmit(); }
  });
  document.addEventListener("keydown", (e) => {
    if (e.key !== "Escape" || keyDialog.open) return;
    if (live) { e.preventDefault(); stop(); }
    else if (editing !== null) { editing = null; input.value = ""; }
  });
  stopBtn.addEventListener("click", stop);
  $("new-chat").addEventListener("click", () => { openSession(newId(), true); input.focus(); });

  checkBackend();
  loadModels();
  refreshSessions();
  openSession(sessionId, !stored);
  input.focus();
})();
