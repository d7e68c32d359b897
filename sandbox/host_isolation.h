// Which isolation layers this host allows: each namespace is tried once with a trivial clone
// (the answer is cached for the process), and a layer that later fails in a way that is its
// own (say, a mount the kernel refuses) is switched off for the rest of the process with the
// reason. Nothing is dropped silently: every layer that is off has a "name: why" entry.
#pragma once
#include <string>
#include <vector>

namespace aha::sandbox {

struct HostIsolation {
  int clone_flags = 0;  // CLONE_NEW* flags that work together here
  bool seccomp = true;
  bool root = false;    // running as uid 0 (so the program's uid must be switched)
  std::vector<std::string> missing;  // "layer: reason"
};

// The current answer (probes on first use).
HostIsolation host_isolation();

// Switches a layer off for the rest of the process: a CLONE_NEW* flag, or 0 for seccomp.
void disable_layer(int clone_flag, const std::string& reason);

// The layer name of a CLONE_NEW* flag ("user_namespace", ...).
const char* namespace_layer_name(int clone_flag);

// Every CLONE_NEW* flag the sandbox asks for, in the order of the fallback.
const std::vector<int>& sandbox_namespace_flags();

}  // namespace aha::sandbox
