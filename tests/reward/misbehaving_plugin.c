/* A C-ABI reward plug-in for the tests that misbehaves on request: completion "crash"
 * dereferences NULL, "hang" loops forever, "fail" returns an error, "nan" returns NaN, "print"
 * writes to stdout (which the host must keep off the protocol); anything else scores
 * strlen(completion). Option {"refuse": true} makes aha_reward_create fail. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "reward/plugins/aha_reward_plugin.h"

static int token;

uint32_t aha_reward_abi_version(void) { return AHA_REWARD_ABI_VERSION; }

void* aha_reward_create(const char* options_json, char* error, size_t error_size) {
  if (strstr(options_json, "\"refuse\":true")) {
    snprintf(error, error_size, "refusing as asked");
    return NULL;
  }
  return &token;
}

int aha_reward_score(void* state, const aha_reward_input* in, aha_reward_output* out) {
  const char* c = in->completion;
  if (strcmp(c, "crash") == 0) {
    volatile int* null_pointer = NULL;
    *null_pointer = 1;
  }
  if (strcmp(c, "hang") == 0) {
    for (;;) pause();
  }
  if (strcmp(c, "fail") == 0) {
    snprintf(out->diagnostic, sizeof out->diagnostic, "failing as asked");
    return 1;
  }
  if (strcmp(c, "nan") == 0) {
    out->value = NAN;
    return 0;
  }
  if (strcmp(c, "print") == 0) {
    printf("noise on stdout\n");
    fflush(stdout);
  }
  out->value = (double)strlen(c);
  return 0;
}

void aha_reward_destroy(void* state) {}
