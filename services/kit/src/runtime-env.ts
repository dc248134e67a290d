/**
 * Environment every model-server process starts with (pods the operator renders, `valora up`'s
 * local pods, the benchmark). glibc's malloc otherwise raises its trim threshold as it goes and
 * keeps the freed heap of onnxruntime's model load resident (38 → 23 MB for the default
 * real-estate model's session; the whole server settles at 171 MB instead of 187 MB idle).
 * Read at process start, so it cannot be set from inside the process.
 */
export const MODEL_SERVER_ENV: Readonly<Record<string, string>> = { MALLOC_TRIM_THRESHOLD_: "131072" };
