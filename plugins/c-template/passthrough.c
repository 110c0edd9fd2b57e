// passthrough, in C: returns every batch unchanged. A template for sluice plugins in C.
//
// The bindings (transform_plugin.h/.c) are generated from wit/transform.wit by
// `sluice-c-tool`, which also compiles this file with clang + wasi-libc and makes the
// component; see README.md for the one build command.
//
// Memory rules of wit-bindgen's C bindings: arguments passed to an export belong to the
// export (free them or hand them back); what an export returns is freed by the generated
// post-return functions after the host has copied it, so return malloc'd memory only.

#include <stdlib.h>
#include <string.h>

#include "transform_plugin.h"

typedef exports_sluice_transform_transform_error_t error_t_;
typedef exports_sluice_transform_transform_ipc_t ipc_t;

// One open transformer: a stateless passthrough only needs the input schema's IPC bytes,
// which are also its output schema.
struct exports_sluice_transform_transform_transformer_t {
  uint8_t *schema;
  size_t schema_len;
};

static void set_error(error_t_ *err, uint8_t tag, const char *message) {
  err->tag = tag;
  transform_plugin_string_dup(&err->val.invalid_config, message);  // all cases are strings
}

static void copy_bytes(ipc_t *ret, const uint8_t *bytes, size_t len) {
  ret->len = len;
  ret->ptr = malloc(len ? len : 1);
  if (len) memcpy(ret->ptr, bytes, len);
}

void exports_sluice_transform_transform_info(exports_sluice_transform_transform_plugin_info_t *ret) {
  transform_plugin_string_dup(&ret->name, "passthrough-c");
  transform_plugin_string_dup(&ret->version, "1.0.0");
  transform_plugin_string_dup(&ret->description, "Returns its input unchanged (written in C).");
  ret->stateful = false;
}

bool exports_sluice_transform_transform_static_transformer_open(
    transform_plugin_list_tuple2_string_string_t *config, ipc_t *input_schema, transform_plugin_list_u8_t *maybe_state,
    exports_sluice_transform_transform_own_transformer_t *ret, error_t_ *err) {
  size_t keys = config->len;
  transform_plugin_list_tuple2_string_string_free(config);
  if (maybe_state) transform_plugin_list_u8_free(maybe_state);
  if (keys > 0) {
    exports_sluice_transform_transform_ipc_free(input_schema);
    set_error(err, EXPORTS_SLUICE_TRANSFORM_TRANSFORM_ERROR_INVALID_CONFIG,
              "this plugin takes no configuration; remove every --config for it");
    return false;
  }
  exports_sluice_transform_transform_transformer_t *t = malloc(sizeof *t);
  if (!t) {
    exports_sluice_transform_transform_ipc_free(input_schema);
    set_error(err, EXPORTS_SLUICE_TRANSFORM_TRANSFORM_ERROR_INTERNAL, "out of memory");
    return false;
  }
  // Keep the argument's buffer: it is ours now.
  t->schema = input_schema->ptr;
  t->schema_len = input_schema->len;
  *ret = exports_sluice_transform_transform_transformer_new(t);
  return true;
}

void exports_sluice_transform_transform_transformer_destructor(exports_sluice_transform_transform_transformer_t *t) {
  if (t->schema_len) free(t->schema);
  free(t);
}

void exports_sluice_transform_transform_method_transformer_output_schema(
    exports_sluice_transform_transform_borrow_transformer_t self, ipc_t *ret) {
  copy_bytes(ret, self->schema, self->schema_len);
}

bool exports_sluice_transform_transform_method_transformer_process(
    exports_sluice_transform_transform_borrow_transformer_t self, ipc_t *batch, ipc_t *ret, error_t_ *err) {
  (void)self;
  (void)err;
  // The input stream (schema + one batch) is a valid output stream: hand the buffer back
  // without copying; post-return frees it.
  *ret = *batch;
  return true;
}

bool exports_sluice_transform_transform_method_transformer_finish(
    exports_sluice_transform_transform_borrow_transformer_t self, ipc_t *ret, error_t_ *err) {
  (void)err;
  // Nothing buffered: a stream with the schema and no batches.
  copy_bytes(ret, self->schema, self->schema_len);
  return true;
}

bool exports_sluice_transform_transform_method_transformer_checkpoint(
    exports_sluice_transform_transform_borrow_transformer_t self, transform_plugin_list_u8_t *ret, error_t_ *err) {
  (void)self;
  (void)err;
  ret->ptr = NULL;
  ret->len = 0;
  return true;
}
