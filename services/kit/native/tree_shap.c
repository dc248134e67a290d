/*
 * TreeSHAP leaf-table kernel (the passes of services/kit/src/onnx/fast-tree-shap.ts, compiled):
 * every internal node's direction for the rows, then each leaf's pattern (which of its path
 * features the row follows) and its d table entries added to the row's contributions. Same
 * float32 comparisons, NaN routing and double additions in the same order as the TypeScript, so
 * the two give identical bits (tested). Node-API only: no V8 or libuv headers, any Node >= 18.
 */
#define NAPI_VERSION 8
#include <node_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  int32_t feature_count, nodes, leaves;
  int all_leq;
  const int32_t *node_feature;
  const double *node_threshold;
  const uint8_t *node_mode, *node_missing_true;
  const int32_t *leaf_path_start, *leaf_distinct, *leaf_feature_start, *leaf_table_start;
  const int32_t *path_node;
  const uint8_t *path_true, *path_slot;
  const int32_t *features;
  const float *table;
} tables_t;

/* Rows a leaf-major pass takes at once (as PASS_ROWS in fast-tree-shap.ts). */
#define PASS_ROWS 64
/* Rows from which a leaf-major pass beats rows one at a time (Ames model: 2 rows 1.24 ms a row leaf-major against 0.68 alone; 16 rows 0.56). */
#define LEAF_MAJOR_ROWS 12
/* Leaves ahead whose table entries a single-row pass asks the cache for. */
#define PREFETCH_AHEAD 16

static _Thread_local uint8_t *scratch_dir;
static _Thread_local size_t scratch_dir_size;
static _Thread_local int32_t *scratch_int;
static _Thread_local size_t scratch_int_size;
static _Thread_local float *scratch_row;
static _Thread_local size_t scratch_row_size;

static int grow(void **p, size_t *size, size_t want) {
  if (*size >= want) return 1;
  void *next = realloc(*p, want);
  if (!next) return 0;
  *p = next;
  *size = want;
  return 1;
}

static uint8_t direction(int mode, double threshold, uint8_t missing_true, float x) {
  if (x != x) return missing_true;
  double v = (double)x;
  switch (mode) {
    case 0: return v <= threshold;
    case 1: return v < threshold;
    case 2: return v >= threshold;
    case 3: return v > threshold;
    case 4: return v == threshold;
    case 5: return v != threshold;
    default: return 0;
  }
}

/* directions[node * stride + at] for one float32 row. */
static void set_directions(const tables_t *c, const float *row, uint8_t *directions, size_t stride, size_t at) {
  if (c->all_leq) {
    for (int32_t i = 0; i < c->nodes; i++) {
      float v = row[c->node_feature[i]];
      directions[(size_t)i * stride + at] = v != v ? c->node_missing_true[i] : ((double)v <= c->node_threshold[i]);
    }
  } else {
    for (int32_t i = 0; i < c->nodes; i++)
      directions[(size_t)i * stride + at] =
          direction(c->node_mode[i], c->node_threshold[i], c->node_missing_true[i], row[c->node_feature[i]]);
  }
}

static void to_float_row(const tables_t *c, const double *x, float *row) {
  for (int32_t i = 0; i < c->feature_count; i++) row[i] = (float)x[i];
}

/* One row: patterns of every leaf first, then the table reads, prefetched ahead (a read per leaf all over the tables). */
static int one_row(const tables_t *c, const double *x, double *phi) {
  if (!grow((void **)&scratch_row, &scratch_row_size, (size_t)c->feature_count * sizeof(float)) ||
      !grow((void **)&scratch_dir, &scratch_dir_size, (size_t)c->nodes) ||
      !grow((void **)&scratch_int, &scratch_int_size, (size_t)c->leaves * sizeof(int32_t)))
    return 0;
  to_float_row(c, x, scratch_row);
  set_directions(c, scratch_row, scratch_dir, 1, 0);
  int32_t *entry = scratch_int;
  for (int32_t l = 0; l < c->leaves; l++) {
    int32_t d = c->leaf_distinct[l];
    int32_t pattern = (1 << d) - 1;
    for (int32_t s = c->leaf_path_start[l], end = c->leaf_path_start[l + 1]; s < end; s++)
      pattern &= ~((scratch_dir[c->path_node[s]] ^ c->path_true[s]) << c->path_slot[s]);
    entry[l] = c->leaf_table_start[l] + pattern * d;
  }
  for (int32_t l = 0; l < c->leaves; l++) {
    if (l + PREFETCH_AHEAD < c->leaves) __builtin_prefetch(c->table + entry[l + PREFETCH_AHEAD]);
    int32_t d = c->leaf_distinct[l];
    const float *e = c->table + entry[l];
    const int32_t *f = c->features + c->leaf_feature_start[l];
    for (int32_t j = 0; j < d; j++) phi[f[j]] += e[j];
  }
  return 1;
}

/* n rows (n <= PASS_ROWS) leaf by leaf: each leaf's entries are read from memory once for all of them. */
static int leaf_major(const tables_t *c, const double *rows, int32_t n, double *out) {
  size_t width = (size_t)c->feature_count;
  if (!grow((void **)&scratch_row, &scratch_row_size, width * sizeof(float)) ||
      !grow((void **)&scratch_dir, &scratch_dir_size, (size_t)c->nodes * (size_t)n) ||
      !grow((void **)&scratch_int, &scratch_int_size, (size_t)n * sizeof(int32_t)))
    return 0;
  uint8_t *directions = scratch_dir;
  int32_t *patterns = scratch_int;
  for (int32_t r = 0; r < n; r++) {
    to_float_row(c, rows + (size_t)r * width, scratch_row);
    set_directions(c, scratch_row, directions, (size_t)n, (size_t)r);
  }
  for (int32_t l = 0; l < c->leaves; l++) {
    int32_t d = c->leaf_distinct[l];
    int32_t all = (1 << d) - 1;
    for (int32_t r = 0; r < n; r++) patterns[r] = all;
    for (int32_t s = c->leaf_path_start[l], end = c->leaf_path_start[l + 1]; s < end; s++) {
      const uint8_t *at = directions + (size_t)c->path_node[s] * (size_t)n;
      int taken = c->path_true[s], slot = c->path_slot[s];
      for (int32_t r = 0; r < n; r++) patterns[r] &= ~((at[r] ^ taken) << slot);
    }
    const float *base = c->table + c->leaf_table_start[l];
    const int32_t *f = c->features + c->leaf_feature_start[l];
    for (int32_t r = 0; r < n; r++) {
      const float *e = base + patterns[r] * d;
      double *o = out + (size_t)r * width;
      for (int32_t j = 0; j < d; j++) o[f[j]] += e[j];
    }
  }
  return 1;
}

/* ---- Node-API glue ---- */

static int typed_value(napi_env env, napi_value v, napi_typedarray_type want, const void **data, size_t *length) {
  bool is;
  napi_typedarray_type type;
  void *p;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return 0;
  if (napi_get_typedarray_info(env, v, &type, length, &p, NULL, NULL) != napi_ok || type != want) return 0;
  *data = p;
  return 1;
}

static int typed(napi_env env, napi_value obj, const char *name, napi_typedarray_type want, const void **data, size_t *length) {
  napi_value v;
  return napi_get_named_property(env, obj, name, &v) == napi_ok && typed_value(env, v, want, data, length);
}

static napi_value fail(napi_env env, const char *message) {
  napi_throw_type_error(env, NULL, message);
  return NULL;
}

/* packedShap(tables, rows: Float64Array, count, out: Float64Array): adds the rows' contributions to out. */
static napi_value packed_shap(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4) return fail(env, "packedShap(tables, rows, count, out)");
  tables_t c;
  size_t len, leaves_plus_one, nodes;
  napi_value v;
  bool all_leq = false;
  int32_t count;
  const double *rows;
  double *out;
  size_t rows_len, out_len;
  if (napi_get_named_property(env, argv[0], "featureCount", &v) != napi_ok || napi_get_value_int32(env, v, &c.feature_count) != napi_ok)
    return fail(env, "tables.featureCount must be a number");
  if (napi_get_named_property(env, argv[0], "allLeq", &v) == napi_ok) napi_get_value_bool(env, v, &all_leq);
  c.all_leq = all_leq;
  if (!typed(env, argv[0], "nodeFeature", napi_int32_array, (const void **)&c.node_feature, &nodes) ||
      !typed(env, argv[0], "nodeThreshold", napi_float64_array, (const void **)&c.node_threshold, &len) || len != nodes ||
      !typed(env, argv[0], "nodeMode", napi_uint8_array, (const void **)&c.node_mode, &len) || len != nodes ||
      !typed(env, argv[0], "nodeMissingTrue", napi_uint8_array, (const void **)&c.node_missing_true, &len) || len != nodes ||
      !typed(env, argv[0], "leafPathStart", napi_int32_array, (const void **)&c.leaf_path_start, &leaves_plus_one) || leaves_plus_one == 0 ||
      !typed(env, argv[0], "leafDistinct", napi_int32_array, (const void **)&c.leaf_distinct, &len) || len + 1 != leaves_plus_one ||
      !typed(env, argv[0], "leafFeatureStart", napi_int32_array, (const void **)&c.leaf_feature_start, &len) || len + 1 != leaves_plus_one ||
      !typed(env, argv[0], "leafTableStart", napi_int32_array, (const void **)&c.leaf_table_start, &len) || len + 1 != leaves_plus_one ||
      !typed(env, argv[0], "pathNode", napi_int32_array, (const void **)&c.path_node, &len) ||
      !typed(env, argv[0], "pathTrue", napi_uint8_array, (const void **)&c.path_true, &len) ||
      !typed(env, argv[0], "pathSlot", napi_uint8_array, (const void **)&c.path_slot, &len) ||
      !typed(env, argv[0], "features", napi_int32_array, (const void **)&c.features, &len) ||
      !typed(env, argv[0], "table", napi_float32_array, (const void **)&c.table, &len))
    return fail(env, "tables are not compiled TreeSHAP tables");
  c.nodes = (int32_t)nodes;
  c.leaves = (int32_t)(leaves_plus_one - 1);
  if (!typed_value(env, argv[1], napi_float64_array, (const void **)&rows, &rows_len)) return fail(env, "rows must be a Float64Array");
  if (napi_get_value_int32(env, argv[2], &count) != napi_ok || count < 0) return fail(env, "count must be a non-negative integer");
  if (!typed_value(env, argv[3], napi_float64_array, (const void **)&out, &out_len)) return fail(env, "out must be a Float64Array");
  size_t width = (size_t)c.feature_count;
  if (rows_len < (size_t)count * width || out_len < (size_t)count * width) return fail(env, "rows and out must hold count rows");
  int ok = 1;
  /* Below LEAF_MAJOR_ROWS rows, each row alone (prefetched) costs less a row than a leaf-major pass. */
  if (count < LEAF_MAJOR_ROWS)
    for (int32_t r = 0; ok && r < count; r++) ok = one_row(&c, rows + (size_t)r * width, out + (size_t)r * width);
  else
    for (int32_t first = 0; ok && first < count; first += PASS_ROWS) {
      int32_t n = count - first < PASS_ROWS ? count - first : PASS_ROWS;
      ok = leaf_major(&c, rows + (size_t)first * width, n, out + (size_t)first * width);
    }
  if (!ok) {
    napi_throw_error(env, NULL, "out of memory for TreeSHAP scratch");
    return NULL;
  }
  return NULL;
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  napi_value fn;
  napi_create_function(env, "packedShap", NAPI_AUTO_LENGTH, packed_shap, NULL, &fn);
  napi_set_named_property(env, exports, "packedShap", fn);
  return exports;
}
