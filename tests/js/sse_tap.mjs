// A fetch that passes an SSE response through event by event while recording what it saw
// (`tap.events`: {id, data}), the last `id:` delivered (`tap.lastEventId`) and each status.
// `dropAfter(n, kind)` cuts the connection like a network failure after the n-th event whose
// data type is `kind`; `onCount(n, kind, fn)` runs `fn` (awaited) once that many were seen.
export function createTap() {
  const tap = {
    events: [],
    statuses: [],
    lastEventId: null,
    drop: null,
    hook: null,
  };
  tap.dropAfter = (n, kind) => { tap.drop = { n, kind, seen: 0 }; };
  tap.onCount = (n, kind, fn) => { tap.hook = { n, kind, seen: 0, fn }; };
  tap.fetch = async (url, init) => {
    const response = await fetch(url, init);
    tap.statuses.push(response.status);
    if (!response.body || response.status !== 200) return response;
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    const encoder = new TextEncoder();
    let buffer = "";
    let failNext = false;
    const body = new ReadableStream({
      async pull(controller) {
        if (failNext) {
          // a connection fails some time after its last bytes: let the client take them in
          // first (an error would discard chunks still queued inside its pipeline)
          await new Promise((resolve) => setTimeout(resolve, 150));
          controller.error(new TypeError("network error"));
          return;
        }
        for (;;) {
          let chunk;
          try {
            chunk = await reader.read();
          } catch {
            // the server went away (a crash): as for a cut connection, let the client take
            // in what it was given first, then fail as a browser does (Node says
            // "terminated", which the AI SDK does not take for a disconnect)
            await new Promise((resolve) => setTimeout(resolve, 150));
            controller.error(new TypeError("network error"));
            return;
          }
          const { done, value } = chunk;
          if (done) {
            controller.close();
            return;
          }
          buffer += decoder.decode(value, { stream: true });
          let out = "";
          let end;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            const block = buffer.slice(0, end + 2);
            buffer = buffer.slice(end + 2);
            let id = null;
            let data = "";
            for (const line of block.split("\n")) {
              if (line.startsWith("id:")) id = line.slice(3).trim();
              else if (line.startsWith("data:")) data += line.slice(5).trimStart();
            }
            let parsed = data;
            try { parsed = JSON.parse(data); } catch { /* [DONE] */ }
            tap.events.push({ id, data: parsed });
            if (id !== null) tap.lastEventId = id;
            out += block;
            const type = parsed && typeof parsed === "object" ? parsed.type : parsed;
            const hook = tap.hook;
            if (hook && type === hook.kind && ++hook.seen === hook.n) await hook.fn();
            const drop = tap.drop;
            if (drop && type === drop.kind && ++drop.seen === drop.n) {
              tap.drop = null;
              failNext = true;
              await reader.cancel();
              controller.enqueue(encoder.encode(out));
              return;
            }
          }
          if (out) {
            controller.enqueue(encoder.encode(out));
            return;
          }
        }
      },
      cancel(reason) {
        return reader.cancel(reason);
      },
    });
    return new Response(body, { status: response.status, headers: response.headers });
  };
  return tap;
}
