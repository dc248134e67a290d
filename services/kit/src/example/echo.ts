import { trace, context } from "@opentelemetry/api";
import { EchoService } from "@valora/proto/valora/example/v1/echo_pb";
import { ValoraError, isErrorCode } from "../errors.js";
import { implement, type ServiceRegistration } from "../grpc/server.js";

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        reject(new ValoraError("CANCELLED", "cancelled while waiting"));
      },
      { once: true },
    );
  });
}

/** The smallest service built with the kit: the template for real ones and the kit's test subject. */
export function echoService(): ServiceRegistration {
  return implement(EchoService, {
    async echo(req, call) {
      if (req.failWith) {
        if (!isErrorCode(req.failWith)) {
          throw new ValoraError("INVALID_ARGUMENT", `unknown error code ${req.failWith}`, {
            details: [{ field: "fail_with", description: "must be a Valora error code such as NOT_FOUND" }],
          });
        }
        throw new ValoraError(req.failWith, `failing as asked: ${req.failWith}`);
      }
      if (req.delayMs > 0) await sleep(req.delayMs, call.signal);
      const traceId = trace.getSpan(context.active())?.spanContext().traceId ?? "";
      return { message: req.message, traceId };
    },
    async *count(req, call) {
      if (req.n < 0 || req.n > 10_000) {
        throw new ValoraError("INVALID_ARGUMENT", "n must be within 0..10000", {
          details: [{ field: "n", description: "must be within 0..10000" }],
        });
      }
      for (let i = 1; i <= req.n && !call.signal.aborted; i++) yield { value: i };
    },
  });
}
