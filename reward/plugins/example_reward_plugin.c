/* An example reward plug-in in C (ABI: aha_reward_plugin.h): rewards a completion whose final
 * line contains the gold answer verbatim, and a short completion.
 *
 *   value      1 if the last non-empty line of the completion contains the gold text, else 0
 *   components "contains_gold" (0/1) and "short" (1 if the completion has at most max_chars
 *              bytes, else 0)
 *
 * Options: {"max_chars": N} (default 1000). Build: cc -shared -fPIC -o example.so this.c
 * Use:     aha reward score --rewards spec.json with
 *          [{"name": "example", "kind": "plugin", "options": {"path": "example.so"}}]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aha_reward_plugin.h"

typedef struct example_state {
  long max_chars;
} example_state;

uint32_t aha_reward_abi_version(void) { return AHA_REWARD_ABI_VERSION; }

/* Reads an optional integer option by name from a flat JSON object. A real plug-in would use
 * a JSON library; this keeps the example free of dependencies. */
static int read_int_option(const char* json, const char* key, long* value, char* error, size_t error_size) {
  char quoted[64];
  snprintf(quoted, sizeof quoted, "\"%s\"", key);
  const char* at = strstr(json, quoted);
  if (!at) return 1; /* absent: keep the default */
  at = strchr(at + strlen(quoted), ':');
  char* end = NULL;
  long parsed = at ? strtol(at + 1, &end, 10) : 0;
  if (!at || end == at + 1 || parsed <= 0) {
    snprintf(error, error_size, "option '%s' must be a positive integer", key);
    return 0;
  }
  *value = parsed;
  return 1;
}

void* aha_reward_create(const char* options_json, char* error, size_t error_size) {
  example_state* state = (example_state*)malloc(sizeof *state);
  if (!state) {
    snprintf(error, error_size, "out of memory");
    return NULL;
  }
  state->max_chars = 1000;
  if (!read_int_option(options_json, "max_chars", &state->max_chars, error, error_size)) {
    free(state);
    return NULL;
  }
  return state;
}

int aha_reward_score(void* opaque, const aha_reward_input* in, aha_reward_output* out) {
  const example_state* state = (const example_state*)opaque;
  if (in->gold[0] == '\0') {
    snprintf(out->diagnostic, sizeof out->diagnostic, "the example has no gold answer");
    return 1;
  }
  /* The last non-empty line. */
  const char* text = in->completion;
  size_t end = strlen(text);
  while (end > 0 && (text[end - 1] == '\n' || text[end - 1] == ' ' || text[end - 1] == '\r')) --end;
  size_t start = end;
  while (start > 0 && text[start - 1] != '\n') --start;
  size_t line_length = end - start;
  char* line = (char*)malloc(line_length + 1);
  if (!line) {
    snprintf(out->diagnostic, sizeof out->diagnostic, "out of memory");
    return 1;
  }
  memcpy(line, text + start, line_length);
  line[line_length] = '\0';
  int contains = strstr(line, in->gold) != NULL;
  free(line);

  int is_short = (long)strlen(text) <= state->max_chars;
  out->value = contains ? 1.0 : 0.0;
  snprintf(out->components[0].name, AHA_REWARD_NAME_SIZE, "contains_gold");
  out->components[0].value = contains;
  snprintf(out->components[1].name, AHA_REWARD_NAME_SIZE, "short");
  out->components[1].value = is_short;
  out->num_components = 2;
  snprintf(out->diagnostic, sizeof out->diagnostic, "last line %s the gold", contains ? "contains" : "lacks");
  return 0;
}

void aha_reward_destroy(void* state) { free(state); }
