#include "sandbox/interpreter.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <mutex>
#include <sstream>

#include "core/error.h"
#include "sandbox/sandbox.h"

namespace aha::sandbox {
namespace {

std::string real_path(const std::string& path) {
  char buffer[PATH_MAX];
  if (!realpath(path.c_str(), buffer)) return "";
  return buffer;
}

bool is_executable_file(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(path.c_str(), X_OK) == 0;
}

// Asks `python3` on PATH where its real executable is: pyenv and similar put a shell-script
// shim on PATH that would need the user's home inside the sandbox.
std::vector<std::string> find_default_python() {
  std::string shim = resolve_executable("python3");
  std::string command = "'" + shim + "' -c 'import sys; print(sys.executable)' 2>/dev/null";
  std::string answer;
  if (FILE* pipe = popen(command.c_str(), "r")) {
    char buffer[PATH_MAX];
    while (fgets(buffer, sizeof buffer, pipe)) answer += buffer;
    pclose(pipe);
  }
  while (!answer.empty() && (answer.back() == '\n' || answer.back() == '\r')) answer.pop_back();
  std::string real = answer.empty() ? "" : real_path(answer);
  if (real.empty() || !is_executable_file(real)) real = shim;
  return {real};
}

}  // namespace

std::string resolve_executable(const std::string& name) {
  require(!name.empty(), "sandbox interpreter: the executable name is empty");
  if (name.find('/') != std::string::npos) {
    std::string real = real_path(name);
    require(!real.empty() && is_executable_file(real),
            "sandbox interpreter '" + name + "': not an executable file");
    return real;
  }
  const char* path = getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/local/bin:/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (dir.empty()) continue;
    std::string candidate = dir + "/" + name;
    if (is_executable_file(candidate)) return real_path(candidate);
  }
  throw Error("sandbox interpreter '" + name + "': not found on PATH");
}

std::string interpreter_prefix(const std::string& real) {
  if (real.rfind("/usr/", 0) == 0) return "";
  std::filesystem::path dir = std::filesystem::path(real).parent_path();
  if (dir.filename() == "bin" && dir.parent_path() != "/") return dir.parent_path().string();
  return dir.string();
}

const std::vector<std::string>& default_interpreter() {
  static std::once_flag once;
  static std::vector<std::string> interpreter;
  std::call_once(once, [] { interpreter = find_default_python(); });
  return interpreter;
}

}  // namespace aha::sandbox
