// Chat page: streams a turn from POST /api/chat (NDJSON) and re-attaches to an unfinished
// turn after a reload through GET /api/runs/{id}/events.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const store = window.localStorage;
  const messagesEl = $("messages"), input = $("input"), sendBtn = $("send");
  const statusEl = $("status"), modelSel = $("model");

  const newId = () => "s-" + Math.random().toString(36).slice(2, 12) + Date.now().toString(36);
  let sessionId = store.getItem("ar.session") || newId();
  store.setItem("ar.session", sessionId);
  const historyKey = () => "ar.history." + sessionId;
  const loadHistory = () => JSON.parse(store.getItem(historyKey()) || "[]");
  const saveHistory = (h) => store.setItem(historyKey(), JSON.stringify(h));

  function setStatus(state, text) {
    statusEl.dataset.state = state;
    statusEl.textContent = text || state;
  }

  function bubble(role, text, state) {
    const el = document.createElement("div");
    el.className = "msg " + role;
    const body = document.createElement("span");
    body.className = "text";
    body.textContent = text || "";
    el.appendChild(body);
    if (state) el.dataset.state = state;
    messagesEl.appendChild(el);
    messagesEl.scrollTop = messagesEl.scrollHeight;
    return el;
  }

  function render() {
    messagesEl.textContent = "";
    for (const m of loadHistory()) bubble(m.role, m.content, m.role === "assistant" ? "completed" : null);
  }

  // Drops what the bubble shows of an attempt: its text, tool calls and errors.
  function clear(target) {
    target.querySelector(".text").textContent = "";
    for (const el of target.querySelectorAll(".error, .tool")) el.remove();
  }

  // Applies one chat line ({type, data}) to the assistant bubble; returns true when the
  // turn ended.
  function apply(target, ev) {
    const text = target.querySelector(".text");
    const data = ev.data || {};
    if (ev.type === "text_delta") {
      text.textContent += ev.text;
      messagesEl.scrollTop = messagesEl.scrollHeight;
    } else if (ev.type === "message.part.updated") {
      if (typeof data.delta === "string") text.textContent += data.delta;
      else if (data.part && data.part.type === "text") text.textContent = data.part.text || "";
    } else if (ev.type === "result") {
      text.textContent = data.finalText || "";  // a finished turn asked again: its whole text
    } else if (ev.type === "session.run.restarted") {
      clear(target);  // the turn is re-run from its start: what came before does not count
      target.dataset.attempt = String(data.attempt || "");
    } else if (ev.type === "tool_call") {
      const tool = document.createElement("span");
      tool.className = "tool";
      tool.textContent = ev.toolName || "tool";  // a tool the model called, before its answer
      target.insertBefore(tool, text);
    } else if (ev.type === "error") {
      const err = document.createElement("span");
      err.className = "error";
      err.textContent = data.message || ev.message || "error";
      target.appendChild(err);
    } else if (ev.type === "session.run.interrupted") {
      apply(target, { type: "error", data: { message: data.message } });
      target.dataset.state = "failed";
      setStatus("failed", "interrupted");
      return true;
    } else if (ev.type === "session.run.completed" || ev.type === "session.run.failed") {
      const ok = ev.type === "session.run.completed";
      if (!ok && data.message && !target.querySelector(".error")) {
        apply(target, { type: "error", data: { message: data.message } });
      }
      target.dataset.state = ok ? "completed" : "failed";
      setStatus(ok ? "completed" : "failed");
      return true;
    }
    return false;
  }

  // Reads an NDJSON body line by line, handing each parsed object to onLine.
  async function readLines(response, onLine) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let nl;
      while ((nl = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, nl).trim();
        buffer = buffer.slice(nl + 1);
        if (line && onLine(JSON.parse(line))) return true;
      }
    }
    return false;
  }

  function finish(target, pending) {
    store.removeItem("ar.pending");
    const ok = target.dataset.state === "completed";
    if (ok) {
      const h = loadHistory();
      h.push({ role: "user", content: pending.text });
      h.push({ role: "assistant", content: target.querySelector(".text").textContent });
      saveHistory(h);
    } else if (target.dataset.state === "streaming") {
      target.dataset.state = "failed";
      setStatus("failed", "connection lost");
    }
    sendBtn.disabled = false;
  }

  async function send(text) {
    const history = loadHistory();
    const turnIndex = history.filter((m) => m.role === "user").length;
    const body = { session_id: sessionId, turn_index: turnIndex,
      messages: [...history, { role: "user", content: text }] };
    if (modelSel.value) body.model = modelSel.value;
    bubble("user", text);
    const target = bubble("assistant", "", "streaming");
    setStatus("streaming");
    sendBtn.disabled = true;
    const pending = { text, turnIndex, sessionId, executionId: null, body };
    try {
      const response = await fetch("/api/chat", { method: "POST",
        headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
      if (!response.ok) {
        const err = await response.json().catch(() => ({}));
        apply(target, { type: "error", data: { message: (err.error && err.error.message) || response.statusText } });
        apply(target, { type: "session.run.failed" });
        sendBtn.disabled = false;
        return;
      }
      pending.executionId = response.headers.get("x-execution-id");
      store.setItem("ar.pending", JSON.stringify(pending));
      await readLines(response, (ev) => apply(target, ev));
    } catch (e) {
      apply(target, { type: "error", data: { message: String(e) } });
    }
    finish(target, pending);
  }

  // Asks for the same turn again: the server resumes a turn whose worker died (re-sending
  // its logged events first, then session.run.restarted if the re-run answers differently),
  // attaches to a live one, or replays a finished one.
  async function resume(target, pending) {
    clear(target);
    target.dataset.state = "streaming";
    setStatus("streaming", "resuming");
    const response = await fetch("/api/chat", { method: "POST",
      headers: { "content-type": "application/json" }, body: JSON.stringify(pending.body) });
    if (response.ok) await readLines(response, (ev) => apply(target, ev));
    else apply(target, { type: "session.run.failed" });
  }

  // After a reload: replay the unfinished turn's log from the start and follow it live.
  async function reattach() {
    const pending = JSON.parse(store.getItem("ar.pending") || "null");
    if (!pending || !pending.executionId || pending.sessionId !== sessionId) {
      store.removeItem("ar.pending");
      return;
    }
    bubble("user", pending.text);
    const target = bubble("assistant", "", "streaming");
    setStatus("streaming", "re-attached");
    sendBtn.disabled = true;
    try {
      const url = "/api/runs/" + encodeURIComponent(pending.executionId) + "/events";
      const response = await fetch(url, { headers: { accept: "application/x-ndjson" } });
      let closing = null;
      if (response.status === 200) {
        await readLines(response, (rec) => {
          if (rec.seq === null) closing = rec.payload;
          return apply(target, rec.payload);
        });
      }
      if (closing && closing.type === "session.run.interrupted" && pending.body) {
        await resume(target, pending);
      }
    } catch (e) {
      apply(target, { type: "error", data: { message: String(e) } });
    }
    finish(target, pending);
  }

  async function loadModels() {
    try {
      const response = await fetch("/api/models");
      if (!response.ok) return;
      const data = await response.json();
      for (const m of data.data) {
        const opt = document.createElement("option");
        opt.value = m.id;
        opt.textContent = m.id;
        if (m.id === data.default) opt.selected = true;
        modelSel.appendChild(opt);
      }
    } catch (e) { /* the model list is optional */ }
  }

  $("composer").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = input.value.trim();
    if (!text || sendBtn.disabled) return;
    input.value = "";
    send(text);
  });
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $("composer").requestSubmit(); }
  });
  $("new-chat").addEventListener("click", () => {
    sessionId = newId();
    store.setItem("ar.session", sessionId);
    store.removeItem("ar.pending");
    render();
    setStatus("idle");
  });

  render();
  loadModels();
  reattach();
})();
