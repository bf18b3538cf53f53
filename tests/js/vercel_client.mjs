// The AI SDK's chat state machine (AbstractChat, what useChat runs) with DefaultChatTransport
// against our UI message stream. A job (JSON in argv[2]; an array runs each in turn):
//   {api, chatId, text?, messages?, resume?, replay?, dropAfterDeltas?, stopAfterDeltas?,
//    cancelUrl?, headers?, package?}
// - text: sendMessage({text}); dropAfterDeltas cuts the connection after that many
//   text-delta events (then, with `resume`, resumeStream() reconnects: replay true asks for the
//   whole message again, false sends Last-Event-ID and continues); stopAfterDeltas POSTs
//   cancelUrl after that many deltas and reads on.
// - no text and resume: resumeStream() on `messages` (a reloaded page).
// - regenerate: regenerate() on `messages` (retry of the last answer, trigger
//   "regenerate-message"); editText: sendMessage({text: editText, messageId}) replacing the
//   last user message of `messages` (an edited retry).
// - waitFor: before resuming, poll this URL until it answers 200 (a restarted server).
// Prints {messages, status, error, errors, events, statuses, lastEventId} per job.
import { createTap } from "./sse_tap.mjs";

class State {
  constructor(messages) {
    this.messages = messages;
    this.status = "ready";
    this.error = undefined;
  }
  pushMessage(m) { this.messages = this.messages.concat(m); }
  popMessage() { this.messages = this.messages.slice(0, -1); }
  replaceMessage(i, m) { this.messages = [...this.messages.slice(0, i), m, ...this.messages.slice(i + 1)]; }
  snapshot(thing) { return structuredClone(thing); }
}

async function waitFor(url) {
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      if ((await fetch(url)).ok) return;
    } catch { /* not up yet */ }
    if (Date.now() > deadline) throw new Error(`${url} did not come up`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function runJob(job) {
  const ai = await import(job.package ?? "ai");
  const tap = createTap();
  let lastId = null;
  const transport = new ai.DefaultChatTransport({
    api: job.api,
    headers: job.headers ?? {},
    fetch: tap.fetch,
    resumeStreamIsReplay: job.replay !== false,
    prepareReconnectToStreamRequest: ({ headers }) => ({
      headers: job.replay === false && lastId !== null ? { ...headers, "Last-Event-ID": lastId } : headers,
    }),
  });
  const errors = [];
  const chat = new (class extends ai.AbstractChat {})({
    id: job.chatId,
    transport,
    state: new State(job.messages ?? []),
    onError: (e) => errors.push(String(e?.message ?? e)),
  });
  if (job.text !== undefined) {
    if (job.dropAfterDeltas) tap.dropAfter(job.dropAfterDeltas, "text-delta");
    if (job.stopAfterDeltas) {
      tap.onCount(job.stopAfterDeltas, "text-delta", async () => {
        const r = await fetch(job.cancelUrl, {
          method: "POST",
          headers: { ...(job.headers ?? {}), "content-type": "application/json" },
          body: "{}",
        });
        tap.statuses.push(`cancel:${r.status}`);
      });
    }
    await chat.sendMessage({ text: job.text });
    lastId = tap.lastEventId;
  }
  if (job.regenerate) await chat.regenerate();
  if (job.editText !== undefined) {
    const last = [...chat.messages].reverse().find((m) => m.role === "user");
    await chat.sendMessage({ text: job.editText, messageId: last.id });
  }
  if (job.waitFor) await waitFor(job.waitFor);
  if (job.resume) await chat.resumeStream();
  return {
    messages: chat.messages,
    status: chat.status,
    error: chat.error ? String(chat.error.message ?? chat.error) : null,
    errors,
    events: tap.events,
    statuses: tap.statuses,
    lastEventId: tap.lastEventId,
  };
}

const input = JSON.parse(process.argv[2]);
const results = [];
for (const job of Array.isArray(input) ? input : [input]) results.push(await runJob(job));
process.stdout.write(JSON.stringify(Array.isArray(input) ? results : results[0]) + "\n");
