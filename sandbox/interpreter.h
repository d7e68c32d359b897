// Finding the program's interpreter on the host, and the directories the sandbox's view must
// show for it to run.
#pragma once
#include <string>

namespace aha::sandbox {

// The real path of an executable: `name` itself when it holds a '/', else the first match on
// $PATH, with symbolic links resolved. Throws aha::Error naming it when there is none. The
// sandbox runs that real file, so a virtual environment's python (a link to its base
// interpreter) runs as the base interpreter, without the environment's packages.
std::string resolve_executable(const std::string& name);

// The directory to show read-only in the sandbox for an interpreter outside /usr: the prefix
// `P` of `P/bin/<exe>` (where a pyenv or venv Python keeps its library), else the directory
// holding it. Empty when the executable is under /usr, which the view always shows.
std::string interpreter_prefix(const std::string& real_path);

}  // namespace aha::sandbox
