// AG-UI's HttpAgent (what CopilotKit runs) against our AG-UI endpoint. A job (JSON in argv[2];
// an array runs each in turn):
//   {url, threadId, runId?, text?, messages?, headers?, dropAfterDeltas?, stopAfterDeltas?,
//    cancelUrl?, resumeAfterDrop?, answers?}
// - text: a user message is added and the agent runs; dropAfterDeltas cuts the connection
//   after that many TEXT_MESSAGE_CONTENT events, then (resumeAfterDrop) the same run is
//   re-posted with Last-Event-ID; stopAfterDeltas POSTs cancelUrl mid-run.
// - answers ({questionId: answer}): after a run that ended in an interrupt, a new run resumes
//   it with one resolved entry per pending interrupt.
// - retry (with retryText, an edited last user message): after a failed run, drop the partial
//   answer and run the same conversation again.
// - waitFor: before re-posting after a drop, poll this URL until it answers 200.
// Prints {messages, runs: [{error, pendingInterrupts}], unhandled, events, statuses,
// lastEventId} per job.
import { HttpAgent } from "@ag-ui/client";
import { createTap } from "./sse_tap.mjs";

// a dropped connection rejects a second promise inside the agent's request pipeline; keep it
const unhandled = [];
process.on("unhandledRejection", (e) => unhandled.push(String(e?.message ?? e)));

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
  const tap = createTap();
  const agent = new HttpAgent({
    url: job.url,
    headers: job.headers ?? {},
    threadId: job.threadId,
    initialMessages: job.messages ?? [],
    fetch: tap.fetch,
  });
  const runs = [];
  const run = async (params) => {
    let error = null;
    try {
      await agent.runAgent(params);
    } catch (e) {
      error = String(e?.message ?? e);
    }
    runs.push({ error, pendingInterrupts: structuredClone(agent.pendingInterrupts ?? []) });
    return error;
  };
  const runId = job.runId ?? crypto.randomUUID();
  if (job.text !== undefined) {
    agent.addMessage({ id: crypto.randomUUID(), role: "user", content: job.text });
  }
  if (job.dropAfterDeltas) tap.dropAfter(job.dropAfterDeltas, "TEXT_MESSAGE_CONTENT");
  if (job.stopAfterDeltas) {
    tap.onCount(job.stopAfterDeltas, "TEXT_MESSAGE_CONTENT", async () => {
      const r = await fetch(job.cancelUrl, {
          method: "POST",
          headers: { ...(job.headers ?? {}), "content-type": "application/json" },
          body: "{}",
        });
      tap.statuses.push(`cancel:${r.status}`);
    });
  }
  const failed = await run({ runId });
  if (failed && job.resumeAfterDrop) {
    if (job.waitFor) await waitFor(job.waitFor);
    agent.headers = { ...agent.headers, "Last-Event-ID": tap.lastEventId ?? "-1" };
    await run({ runId });
    delete agent.headers["Last-Event-ID"];
  }
  if (job.retry) {
    const kept = [...agent.messages];
    while (kept.length && kept[kept.length - 1].role !== "user") kept.pop();
    if (job.retryText !== undefined) kept[kept.length - 1] = { ...kept[kept.length - 1], content: job.retryText };
    agent.setMessages(kept);
    await run({ runId: crypto.randomUUID() });
  }
  if (job.answers) {
    const resume = agent.pendingInterrupts.map((i) => ({
      interruptId: i.id,
      status: "resolved",
      payload: { answer: job.answers[i.id] ?? "" },
    }));
    await run({ runId: crypto.randomUUID(), resume });
  }
  return {
    messages: agent.messages,
    runs,
    unhandled: unhandled.splice(0),
    events: tap.events,
    statuses: tap.statuses,
    lastEventId: tap.lastEventId,
  };
}

const input = JSON.parse(process.argv[2]);
const results = [];
for (const job of Array.isArray(input) ? input : [input]) results.push(await runJob(job));
process.stdout.write(JSON.stringify(Array.isArray(input) ? results : results[0]) + "\n");
