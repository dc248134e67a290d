/**
 * A loopback OpenTelemetry collector for the benchmarks, in a process of its own (the benchmark's
 * own process blocks on wrk): decodes every OTLP export as a collector would, prints its endpoint
 * as a JSON line, and the spans and export requests it took when it gets SIGTERM.
 */
import { startOtlpReceiver } from "@valora/kit/testing";

const receiver = await startOtlpReceiver();
console.log(JSON.stringify({ endpoint: receiver.httpEndpoint }));
// Only counts are kept: the spans themselves would grow without bound over a long run.
let taken = 0;
setInterval(() => (taken += receiver.spans.splice(0).length), 1000).unref();
process.once("SIGTERM", () => {
  console.log(JSON.stringify({ spans: taken + receiver.spans.length, requests: receiver.requests.protobuf }));
  void receiver.close().then(() => process.exit(0));
});
