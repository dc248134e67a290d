import { z } from "zod";

export const GROUP = "valora.dev";
export const VERSION = "v1alpha1";
export const API_VERSION = `${GROUP}/${VERSION}`;

/** CEL rules evaluated by the API server (x-kubernetes-validations). */
export const cel = (...rules: { rule: string; message: string }[]) => ({ "x-kubernetes-validations": rules });

export const Sha256 = z
  .string()
  .regex(/^[a-f0-9]{64}$/)
  .describe("Lower-case hex sha256 of the model file; verified before the model is loaded.");

export const ModelUri = z
  .string()
  .min(1)
  .describe(
    "Where the model file is: file:// (a mounted volume), https:// or s3:// (S3-compatible endpoint from the operator's configuration). Hosts outside the allow-list are refused.",
  )
  .meta(
    cel({
      rule: "self.startsWith('file://') || self.startsWith('https://') || self.startsWith('s3://')",
      message: "uri must start with file://, https:// or s3://",
    }),
  );

export const Condition = z.object({
  type: z.string().describe("Ready, Progressing or Degraded."),
  status: z.enum(["True", "False", "Unknown"]),
  reason: z.string().describe("CamelCase machine-readable reason."),
  message: z.string().describe("Human-readable detail."),
  observedGeneration: z.number().int().optional(),
  lastTransitionTime: z.string().describe("RFC 3339 time the status last changed."),
});
export type Condition = z.infer<typeof Condition>;

export const ObjectMeta = z.object({
  name: z
    .string()
    .min(1)
    .max(63)
    .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/),
  namespace: z.string().optional(),
  labels: z.record(z.string(), z.string()).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
  uid: z.string().optional(),
  generation: z.number().int().optional(),
  resourceVersion: z.string().optional(),
  creationTimestamp: z.string().optional(),
  deletionTimestamp: z.string().optional(),
  finalizers: z.array(z.string()).optional(),
});

export const Resources = z
  .object({
    requests: z.record(z.string(), z.string()).optional(),
    limits: z.record(z.string(), z.string()).optional(),
  })
  .describe("Container resources, as in a Pod spec.");

export const Serving = z
  .object({
    minReplicas: z.number().int().min(0).default(1).describe("Fewest replicas the autoscaler keeps."),
    maxReplicas: z.number().int().min(1).default(4).describe("Most replicas the autoscaler creates."),
    targetCPUUtilization: z
      .number()
      .int()
      .min(1)
      .max(100)
      .default(70)
      .describe("Average CPU utilisation (%) the HorizontalPodAutoscaler aims for."),
    scaleDownStabilizationSeconds: z
      .number()
      .int()
      .min(0)
      .default(300)
      .describe("How long load must stay low before scaling down."),
    resources: Resources.optional(),
    batching: z
      .object({
        maxBatchSize: z
          .number()
          .int()
          .min(1)
          .max(4096)
          .default(64)
          .describe("Most rows one onnxruntime run takes."),
        maxDelayMicros: z
          .number()
          .int()
          .min(0)
          .max(1_000_000)
          .default(500)
          .describe("Longest a request waits for its batch to fill while a run is in flight."),
      })
      .optional(),
  })
  .describe("Replicas, autoscaling, resources and batching of the serving pods.")
  .meta(
    cel({ rule: "self.minReplicas <= self.maxReplicas", message: "minReplicas must not exceed maxReplicas" }),
  );
