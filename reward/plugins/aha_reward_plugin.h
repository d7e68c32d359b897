/* aha_reward_plugin.h: the C ABI of a reward plug-in (a shared object), version 1.
 *
 * A plug-in exports the four functions below with C linkage. aha loads it with dlopen in a
 * separate host process (aha-reward-plugin-host), so a crash or hang in the plug-in costs one
 * sample's reward, never the training run. Calls into one plug-in instance are made one at a
 * time (several host processes give parallelism), so a plug-in need not be thread-safe.
 *
 * Versioning: aha_reward_abi_version() must return AHA_REWARD_ABI_VERSION as the plug-in was
 * compiled with; a host refuses a plug-in of another version. Structures are only ever
 * extended at the end, with the version raised.
 *
 * Strings are UTF-8 and NUL-terminated, owned by the caller and valid only during the call.
 * Example (see example_reward_plugin.c):
 *
 *   uint32_t aha_reward_abi_version(void) { return AHA_REWARD_ABI_VERSION; }
 *   void* aha_reward_create(const char* options_json, char* error, size_t error_size) {...}
 *   int aha_reward_score(void* state, const aha_reward_input* in, aha_reward_output* out) {...}
 *   void aha_reward_destroy(void* state) {...}
 */
#ifndef AHA_REWARD_PLUGIN_H
#define AHA_REWARD_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AHA_REWARD_ABI_VERSION 1u
#define AHA_REWARD_MAX_COMPONENTS 16
#define AHA_REWARD_NAME_SIZE 32
#define AHA_REWARD_TEXT_SIZE 512

/* What one call scores: an example and one completion. */
typedef struct aha_reward_input {
  const char* prompt;
  const char* completion;
  const char* gold;
  const char* task;          /* "math", "code" or "custom" */
  const char* metadata_json; /* a JSON object as text, or "" */
  const char* const* tests;  /* num_tests strings */
  size_t num_tests;
  const char* test_setup;
  const char* entry_point;
  int64_t num_tokens; /* completion length in tokens, or -1 when unknown */
} aha_reward_input;

typedef struct aha_reward_component {
  char name[AHA_REWARD_NAME_SIZE]; /* NUL-terminated */
  double value;
} aha_reward_component;

/* Zero-filled by the caller before each call. */
typedef struct aha_reward_output {
  double value; /* must be finite */
  aha_reward_component components[AHA_REWARD_MAX_COMPONENTS];
  size_t num_components;
  char diagnostic[AHA_REWARD_TEXT_SIZE]; /* NUL-terminated; on failure, the reason */
} aha_reward_output;

/* The ABI version the plug-in was compiled with: return AHA_REWARD_ABI_VERSION. */
uint32_t aha_reward_abi_version(void);

/* Creates an instance from the reward's "options" object (JSON text). Returns NULL on failure
 * after writing a NUL-terminated reason of at most error_size bytes to error. */
void* aha_reward_create(const char* options_json, char* error, size_t error_size);

/* Scores one completion. Returns 0 on success; non-zero means failure, with the reason in
 * out->diagnostic (the sample then gets 0 for this reward). */
int aha_reward_score(void* state, const aha_reward_input* in, aha_reward_output* out);

void aha_reward_destroy(void* state);

#ifdef __cplusplus
}
#endif

#endif /* AHA_REWARD_PLUGIN_H */
