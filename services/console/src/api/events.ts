import { createParser, type EventSourceMessage } from "eventsource-parser";
import { authorisedFetch, type TokenSource } from "./client";

/**
 * Reads a server-sent event stream with fetch, so the API key travels as a bearer header
 * (EventSource cannot send one, and a key in a URL would land in logs). Resolves when the
 * stream ends or `signal` aborts.
 */
export async function readEvents(
  token: TokenSource,
  path: string,
  onEvent: (e: EventSourceMessage) => void,
  signal: AbortSignal,
): Promise<void> {
  const res = await authorisedFetch(token, path, { headers: { accept: "text/event-stream" }, signal });
  const parser = createParser({ onEvent });
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      parser.feed(value);
    }
  } catch (err) {
    if (!signal.aborted) throw err;
  } finally {
    reader.releaseLock();
  }
}
