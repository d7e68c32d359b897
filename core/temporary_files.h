// Atomic-write temporaries ("<path>.tmp-<pid>-<n>", core/files.h) must not outlive their
// writer: a kill that skips destructors would otherwise leave them beside the user's files
// forever. Two mechanisms, because SIGKILL cannot be caught:
//   - a signal-safe registry of live temporaries: SIGINT, SIGTERM and SIGHUP unlink every one
//     this process registered, then the signal is raised again with its default action, so the
//     process still dies of it (exit status, core dumps and shells behave as before). The
//     handlers are installed on first use, and only for signals whose disposition is still
//     the default (an ignored SIGINT, as under nohup, or a program's own handler is left alone).
//   - remove_stale_siblings: the next atomic write of a path removes the temporaries of that
//     path whose owning process no longer exists (SIGKILL, a power cut, a crash).
// Directory temporaries (model and checkpoint saves) are not registered: removing a tree is not
// async-signal-safe; remove_stale_siblings works for them too (tag "tmp"), for callers that want it.
#pragma once
#include <cstddef>
#include <filesystem>
#include <string>

namespace aha {

// Registers a temporary file for removal on SIGINT/SIGTERM/SIGHUP. Returns its slot for
// release_temporary, or -1 when the registry is full (64 live temporaries) or the path is too
// long; such a temporary is then only caught by the stale sweep.
int track_temporary(const std::filesystem::path& path);

// Forgets a slot (after the temporary was renamed into place or removed); -1 is ignored.
void release_temporary(int slot);

// Removes the siblings of `path` named unique_sibling(path, tag) would name them whose pid
// is not a running process, and returns how many. Never touches this process's own, nor any
// whose pid is alive (a pid reused since only delays the removal to a later write). Files and
// directory trees alike; errors are ignored (the sweep is best effort, the write proceeds).
size_t remove_stale_siblings(const std::filesystem::path& path, const std::string& tag);

}  // namespace aha
