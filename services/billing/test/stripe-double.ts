import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface RecordedRequest {
  method: string;
  path: string;
  idempotencyKey: string | undefined;
  stripeVersion: string | undefined;
  form: Record<string, string>;
}

/**
 * A local HTTP double of the Stripe endpoints billing uses, for the real `stripe` SDK pointed at
 * it with host/port/protocol. It speaks Stripe's wire format: bearer secret key, form-encoded
 * bodies with bracketed keys, JSON objects with `object` types, error envelopes, idempotent
 * replay of a request with a seen Idempotency-Key, meter events de-duplicated by identifier.
 */
export class StripeDouble {
  readonly requests: RecordedRequest[] = [];
  readonly meterEvents = new Map<
    string,
    { customer: string; value: number; timestamp: number; eventName: string }
  >();
  readonly subscriptions = new Map<string, Record<string, unknown>>();
  /** Answer the next n meter-event requests with a 500 (an outage). */
  failMeterEvents = 0;
  private readonly replies = new Map<string, { status: number; body: unknown }>();
  private seq = 0;
  private server: Server | undefined;

  async listen(): Promise<number> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((r) => this.server!.listen(0, "127.0.0.1", r));
    return (this.server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    await new Promise((r) => this.server?.close(r));
  }

  private id(prefix: string): string {
    return `${prefix}_${String(++this.seq).padStart(14, "0")}`;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let raw = "";
    for await (const c of req) raw += (c as Buffer).toString();
    const form = Object.fromEntries(new URLSearchParams(raw));
    const path = (req.url ?? "").split("?")[0]!;
    const idempotencyKey = req.headers["idempotency-key"] as string | undefined;
    this.requests.push({
      method: req.method ?? "",
      path,
      idempotencyKey,
      stripeVersion: req.headers["stripe-version"] as string | undefined,
      form,
    });
    const send = (status: number, body: unknown) => {
      res
        .writeHead(status, { "content-type": "application/json", "request-id": `req_${this.seq}` })
        .end(JSON.stringify(body));
    };
    if (!/^Bearer sk_test_\w+$/.test(String(req.headers.authorization ?? "")))
      return send(401, { error: { type: "invalid_request_error", message: "Invalid API Key provided" } });
    const replayKey = idempotencyKey ? `${req.method} ${path} ${idempotencyKey}` : undefined;
    const seen = replayKey ? this.replies.get(replayKey) : undefined;
    if (seen) return send(seen.status, seen.body);
    const out = this.route(req.method ?? "", path, form);
    if (replayKey && out.status < 500) this.replies.set(replayKey, out);
    send(out.status, out.body);
  }

  private subscriptionItems(
    form: Record<string, string>,
    existing: { id: string; price: string }[] = [],
  ): { id: string; price: string }[] {
    const items = [...existing];
    for (let i = 0; form[`items[${i}][price]`] !== undefined; i++) {
      const id = form[`items[${i}][id]`];
      const price = form[`items[${i}][price]`]!;
      const at = id ? items.findIndex((x) => x.id === id) : -1;
      if (at >= 0) items[at] = { id: id!, price };
      else items.push({ id: this.id("si"), price });
    }
    return items;
  }

  private subscriptionJson(s: Record<string, unknown>): Record<string, unknown> {
    const items = s["items_"] as { id: string; price: string }[];
    return {
      id: s["id"],
      object: "subscription",
      customer: s["customer"],
      status: s["status"],
      metadata: s["metadata"],
      livemode: false,
      items: {
        object: "list",
        has_more: false,
        url: `/v1/subscription_items?subscription=${String(s["id"])}`,
        data: items.map((i) => ({
          id: i.id,
          object: "subscription_item",
          price: { id: i.price, object: "price" },
        })),
      },
    };
  }

  private route(
    method: string,
    path: string,
    form: Record<string, string>,
  ): { status: number; body: unknown } {
    const metadata = Object.fromEntries(
      Object.entries(form).flatMap(([k, v]) => (k.startsWith("metadata[") ? [[k.slice(9, -1), v]] : [])),
    );
    if (method === "POST" && path === "/v1/customers")
      return {
        status: 200,
        body: {
          id: this.id("cus"),
          object: "customer",
          name: form["name"] ?? null,
          metadata,
          livemode: false,
        },
      };
    if (method === "POST" && path === "/v1/subscriptions") {
      if (!form["customer"])
        return {
          status: 400,
          body: {
            error: {
              type: "invalid_request_error",
              param: "customer",
              message: "Missing required param: customer.",
            },
          },
        };
      const s = {
        id: this.id("sub"),
        customer: form["customer"],
        status: "active",
        metadata,
        items_: this.subscriptionItems(form),
      };
      this.subscriptions.set(s.id, s);
      return { status: 200, body: this.subscriptionJson(s) };
    }
    const sub = /^\/v1\/subscriptions\/(sub_\w+)$/.exec(path);
    if (sub) {
      const s = this.subscriptions.get(sub[1]!);
      if (!s)
        return {
          status: 404,
          body: {
            error: {
              type: "invalid_request_error",
              code: "resource_missing",
              message: `No such subscription: '${sub[1]}'`,
            },
          },
        };
      if (method === "DELETE") s["status"] = "canceled";
      else if (method === "POST") {
        s["items_"] = this.subscriptionItems(form, s["items_"] as { id: string; price: string }[]);
        s["metadata"] = { ...(s["metadata"] as object), ...metadata };
      }
      return { status: 200, body: this.subscriptionJson(s) };
    }
    if (method === "POST" && path === "/v1/billing/meter_events") {
      if (this.failMeterEvents > 0) {
        this.failMeterEvents--;
        return { status: 500, body: { error: { type: "api_error", message: "An unknown error occurred" } } };
      }
      const identifier = form["identifier"] ?? this.id("mev");
      const customer = form["payload[stripe_customer_id]"];
      const value = Number(form["payload[value]"]);
      if (!customer || !Number.isFinite(value))
        return {
          status: 400,
          body: {
            error: {
              type: "invalid_request_error",
              param: "payload",
              message: "payload needs stripe_customer_id and a numeric value",
            },
          },
        };
      if (!this.meterEvents.has(identifier))
        this.meterEvents.set(identifier, {
          customer,
          value,
          timestamp: Number(form["timestamp"]),
          eventName: form["event_name"] ?? "",
        });
      return {
        status: 200,
        body: {
          object: "billing.meter_event",
          event_name: form["event_name"],
          identifier,
          payload: { stripe_customer_id: customer, value: String(value) },
          timestamp: Number(form["timestamp"]),
          created: Math.floor(Date.now() / 1000),
          livemode: false,
        },
      };
    }
    return {
      status: 404,
      body: {
        error: { type: "invalid_request_error", message: `Unrecognized request URL (${method}: ${path}).` },
      },
    };
  }
}
