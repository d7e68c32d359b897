// The adversarial suite: each hostile program ends with the right outcome within its limits,
// and no process it started survives the run (checked by a marker in every process's argv).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "sandbox_test_util.h"

namespace aha::sandbox {
namespace {

using testing::marked_request;
using testing::processes_with_marker;
using testing::unique_marker;

// Runs the request and asserts that no process carrying its marker is left.
SandboxResult run_marked(SandboxRequest r) {
  const std::string marker = r.args.at(0);
  SandboxResult result = run_sandboxed(r);
  EXPECT_TRUE(processes_with_marker(marker).empty()) << "a process of the sandbox survived";
  return result;
}

SandboxResult run_marked(const std::string& program, SandboxLimits limits = {}) {
  SandboxRequest r = marked_request(program, unique_marker());
  r.limits = limits;
  return run_marked(r);
}

size_t count(const std::string& text, const std::string& word) {
  size_t n = 0;
  for (size_t at = text.find(word); at != std::string::npos; at = text.find(word, at + 1)) ++n;
  return n;
}

TEST(SandboxAdversarial, MarkerScanSeesARunningProgram) {
  // The survivor check must be able to fail: while a program runs, its marker is visible.
  const std::string marker = unique_marker();
  SandboxRequest r = marked_request("import time\ntime.sleep(3)\n", marker);
  auto running = std::async(std::launch::async, [&] { return run_sandboxed(r); });
  bool seen = false;
  while (!seen && running.wait_for(std::chrono::milliseconds(10)) != std::future_status::ready)
    seen = !processes_with_marker(marker).empty();
  EXPECT_TRUE(seen);
  EXPECT_EQ(running.get().status, SandboxStatus::ok);
  EXPECT_TRUE(processes_with_marker(marker).empty());
}

TEST(SandboxAdversarial, ForkBombEndsAtTheWallClockLimit) {
  SandboxLimits limits;
  limits.wall_seconds = 2;
  limits.max_processes = 32;
  SandboxResult r = run_marked(
      "import os\n"
      "while True:\n"
      "    try:\n"
      "        os.fork()\n"
      "    except OSError:\n"
      "        pass\n",
      limits);
  EXPECT_EQ(r.status, SandboxStatus::timeout) << r.to_json();
  EXPECT_GE(r.wall_seconds, 2.0);
}

TEST(SandboxAdversarial, InfiniteLoopEndsAtTheWallClockLimit) {
  SandboxLimits limits;
  limits.wall_seconds = 1;
  limits.cpu_seconds = 60;
  SandboxResult r = run_marked("while True:\n    pass\n", limits);
  EXPECT_EQ(r.status, SandboxStatus::timeout) << r.to_json();
  EXPECT_NE(r.message.find("wall-clock"), std::string::npos) << r.message;
  EXPECT_GE(r.wall_seconds, 1.0);
  EXPECT_GT(r.cpu_seconds, 0.0);  // the killed loop's CPU time is still counted
}

TEST(SandboxAdversarial, InfiniteLoopEndsAtTheCpuLimit) {
  SandboxLimits limits;
  limits.wall_seconds = 60;
  limits.cpu_seconds = 1;
  SandboxResult r = run_marked("while True:\n    pass\n", limits);
  EXPECT_EQ(r.status, SandboxStatus::timeout) << r.to_json();
  EXPECT_EQ(r.signal, SIGXCPU);
  EXPECT_GT(r.cpu_seconds, 0.5);  // rusage rounds the tick-sampled time the limit sees
}

TEST(SandboxAdversarial, BusyChildThatOutlivesItsParentIsKilled) {
  SandboxLimits limits;
  limits.wall_seconds = 30;
  SandboxResult r = run_marked(
      "import os\n"
      "if os.fork() == 0:\n"
      "    while True:\n"
      "        pass\n"
      "print('parent done')\n",
      limits);
  EXPECT_EQ(r.status, SandboxStatus::ok) << r.to_json();
  EXPECT_EQ(r.stdout_text, "parent done\n");
}

TEST(SandboxAdversarial, DaemonCannotLeaveTheSessionAndIsKilled) {
  SandboxResult r = run_marked(
      "import os, time\n"
      "if os.fork() == 0:\n"
      "    for name, leave in (('setsid', os.setsid), ('setpgid', lambda: os.setpgid(0, 0))):\n"
      "        try:\n"
      "            leave()\n"
      "            print(name, 'allowed', flush=True)\n"
      "        except PermissionError:\n"
      "            print(name, 'refused', flush=True)\n"
      "    if os.fork() == 0:\n"
      "        while True:\n"
      "            time.sleep(1)\n"
      "    os._exit(0)\n"
      "os.wait()\n");
  EXPECT_EQ(r.status, SandboxStatus::ok) << r.to_json();
  EXPECT_EQ(r.stdout_text, "setsid refused\nsetpgid refused\n");
}

TEST(SandboxAdversarial, MemoryBombIsMemoryLimit) {
  SandboxLimits limits;
  limits.memory_bytes = 256LL << 20;
  SandboxResult at_once = run_marked("x = bytearray(2 << 30)\n", limits);
  EXPECT_EQ(at_once.status, SandboxStatus::memory_limit) << at_once.to_json();
  SandboxResult growing = run_marked(
      "chunks = []\n"
      "while True:\n"
      "    chunks.append(bytearray(10 ** 7))\n",
      limits);
  EXPECT_EQ(growing.status, SandboxStatus::memory_limit) << growing.to_json();
  EXPECT_NE(growing.stderr_text.find("MemoryError"), std::string::npos);
}

TEST(SandboxAdversarial, GigabyteOfOutputIsOutputLimit) {
  SandboxLimits limits;
  limits.max_output_bytes = 1 << 20;
  SandboxResult r = run_marked(
      "import sys\n"
      "chunk = 'x' * (1 << 20)\n"
      "for _ in range(1024):\n"
      "    sys.stdout.write(chunk)\n",
      limits);
  EXPECT_EQ(r.status, SandboxStatus::output_limit) << r.message;
  EXPECT_TRUE(r.stdout_truncated);
  EXPECT_EQ(r.stdout_text.size(), size_t{1} << 20);
  EXPECT_EQ(r.stdout_text.find_first_not_of('x'), std::string::npos);

  SandboxResult err = run_marked("import sys\nwhile True:\n    sys.stderr.write('e' * 4096)\n", limits);
  EXPECT_EQ(err.status, SandboxStatus::output_limit) << err.message;
  EXPECT_TRUE(err.stderr_truncated);
  EXPECT_FALSE(err.stdout_truncated);
}

TEST(SandboxAdversarial, DeepRecursionEndsWithinItsLimits) {
  SandboxResult plain = run_marked("def f(n):\n    return f(n + 1)\nf(0)\n");
  EXPECT_EQ(plain.status, SandboxStatus::runtime_error);
  EXPECT_NE(plain.stderr_text.find("RecursionError"), std::string::npos);

  // With the interpreter's guard lifted, the frames exhaust the address-space limit.
  SandboxLimits limits;
  limits.memory_bytes = 128LL << 20;
  SandboxResult deep = run_marked(
      "import sys\nsys.setrecursionlimit(10 ** 8)\ndef f(n):\n    return f(n + 1)\nf(0)\n", limits);
  EXPECT_TRUE(deep.status == SandboxStatus::memory_limit || deep.status == SandboxStatus::runtime_error ||
              deep.status == SandboxStatus::signal)
      << deep.to_json();
}

TEST(SandboxAdversarial, WritingOutsideTheTempDirIsRefused) {
  const std::string python = default_interpreter()[0];
  SandboxLimits limits;
  limits.max_file_bytes = 1 << 20;
  limits.tmp_bytes = 4 << 20;
  SandboxRequest r = marked_request(
      "import os, sys\n"
      "for t in ['/usr/aha_evil', '/aha_evil', '/etc/aha_evil', '/dev/aha_evil', '/proc/aha_evil',\n"
      "          '/tmp/../aha_evil', sys.executable + '_aha_evil', '/usr/lib/aha_evil']:\n"
      "    try:\n"
      "        open(t, 'w').write('x')\n"
      "        print('WROTE', t)\n"
      "    except OSError as e:\n"
      "        print('refused', t)\n"
      "open('inside.txt', 'w').write('fine')\n"
      "print('inside', open('inside.txt').read())\n"
      "try:\n"
      "    open('big', 'wb').write(b'x' * (2 << 20))\n"
      "    print('WROTE big file')\n"
      "except OSError as e:\n"
      "    print('big file refused', e.errno)\n"
      "try:\n"
      "    for i in range(8):\n"
      "        open('f%d' % i, 'wb').write(b'x' * (1 << 20))\n"
      "    print('WROTE past tmp size')\n"
      "except OSError as e:\n"
      "    print('tmp full', e.errno)\n",
      unique_marker());
  r.limits = limits;
  SandboxResult res = run_marked(r);
  ASSERT_EQ(res.status, SandboxStatus::ok) << res.to_json();
  EXPECT_EQ(count(res.stdout_text, "refused /"), 8u) << res.stdout_text;
  EXPECT_EQ(res.stdout_text.find("WROTE"), std::string::npos) << res.stdout_text;
  EXPECT_NE(res.stdout_text.find("inside fine"), std::string::npos);
  EXPECT_NE(res.stdout_text.find("big file refused 27"), std::string::npos) << res.stdout_text;  // EFBIG
  EXPECT_NE(res.stdout_text.find("tmp full 28"), std::string::npos) << res.stdout_text;         // ENOSPC
  EXPECT_FALSE(std::filesystem::exists("/usr/aha_evil"));
  EXPECT_FALSE(std::filesystem::exists("/aha_evil"));
  EXPECT_FALSE(std::filesystem::exists(python + "_aha_evil"));
}

TEST(SandboxAdversarial, HostFilesOutsideTheViewCannotBeRead) {
  const std::string secret = std::string(AHA_BINARY_DIR) + "/sandbox_secret_" + std::to_string(getpid());
  std::ofstream(secret) << "secret";
  SandboxRequest r = marked_request(
      "import os, sys\n"
      "for p in [sys.argv[2], '/etc/passwd', '/etc/shadow', '/etc/hostname', '/root/.bashrc',\n"
      "          '/proc/1/environ', '/proc/1/cmdline', '/work/main/ARCHITECTURE.md']:\n"
      "    try:\n"
      "        open(p).read()\n"
      "        print('READ', p)\n"
      "    except OSError:\n"
      "        print('hidden', p)\n"
      "print(sorted(os.listdir('/')))\n"
      "print(os.listdir('/root') if os.path.isdir('/root') else 'no-root', os.listdir('/etc'))\n",
      unique_marker());
  r.args.push_back(secret);
  SandboxResult res = run_marked(r);
  std::filesystem::remove(secret);
  ASSERT_EQ(res.status, SandboxStatus::ok) << res.to_json();
  EXPECT_EQ(res.stdout_text.find("READ"), std::string::npos) << res.stdout_text;
  EXPECT_EQ(count(res.stdout_text, "hidden /"), 8u) << res.stdout_text;
  // /root is in the view only as the path to an interpreter installed under it (pyenv here);
  // of /etc only the loader cache is there.
  const std::string python = default_interpreter()[0];
  std::string root_view = "no-root";
  if (python.rfind("/root/", 0) == 0) root_view = "['" + python.substr(6, python.find('/', 6) - 6) + "']";
  EXPECT_NE(res.stdout_text.find(root_view + " ['ld.so.cache']"), std::string::npos) << res.stdout_text;
  EXPECT_EQ(res.stdout_text.find("'work'"), std::string::npos) << res.stdout_text;
  EXPECT_EQ(res.stdout_text.find("'home'"), std::string::npos) << res.stdout_text;
}

// A TCP listener on the host's 127.0.0.1; accepted() says whether anything connected.
class LocalListener {
 public:
  LocalListener() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    listen(fd_, 8);
    socklen_t len = sizeof addr;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~LocalListener() { close(fd_); }
  int port() const { return port_; }
  bool accepted() const {
    int c = accept(fd_, nullptr, nullptr);
    if (c >= 0) close(c);
    return c >= 0;
  }

 private:
  int fd_ = -1;
  int port_ = 0;
};

const char* kConnect =
    "import socket, sys\n"
    "try:\n"
    "    s = socket.create_connection(('127.0.0.1', int(sys.argv[2])), timeout=2)\n"
    "    print('CONNECTED')\n"
    "except OSError as e:\n"
    "    print('refused', type(e).__name__)\n"
    "a = socket.socket(socket.AF_UNIX)\n"
    "try:\n"
    "    a.connect(sys.argv[3].replace('@', '\\0'))\n"
    "    print('CONNECTED unix')\n"
    "except OSError as e:\n"
    "    print('unix refused', type(e).__name__)\n";

TEST(SandboxAdversarial, ConnectingToALocalListenerFails) {
  LocalListener tcp;
  ASSERT_GT(tcp.port(), 0);
  // An abstract unix socket on the host: reachable only from the host's network namespace.
  int unix_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
  const std::string name = "@aha-sandbox-test-" + std::to_string(getpid());
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path + 1, name.data() + 1, name.size() - 1);
  ASSERT_EQ(bind(unix_fd, reinterpret_cast<sockaddr*>(&addr), offsetof(sockaddr_un, sun_path) + name.size()), 0);
  ASSERT_EQ(listen(unix_fd, 4), 0);

  for (bool seccomp : {true, false}) {  // each layer alone refuses it
    SandboxRequest r = marked_request(kConnect, unique_marker());
    r.args.push_back(std::to_string(tcp.port()));
    r.args.push_back(name);
    r.isolation.seccomp = seccomp;
    SandboxResult res = run_marked(r);
    ASSERT_EQ(res.status, SandboxStatus::ok) << res.to_json();
    EXPECT_EQ(res.stdout_text.find("CONNECTED"), std::string::npos) << res.stdout_text;
    if (seccomp) {
      EXPECT_NE(res.stdout_text.find("refused PermissionError"), std::string::npos) << res.stdout_text;
    }
    EXPECT_NE(res.stdout_text.find("unix refused"), std::string::npos) << res.stdout_text;
    EXPECT_FALSE(tcp.accepted());
    int c = accept(unix_fd, nullptr, nullptr);
    EXPECT_LT(c, 0);
    if (c >= 0) close(c);
  }
  close(unix_fd);
}

TEST(SandboxAdversarial, SignallingOrTracingTheParentIsRefused) {
  SandboxRequest r = marked_request(
      "import ctypes, os, signal, sys\n"
      "host = int(sys.argv[2])\n"
      "for target in (os.getppid(), 1, host):\n"
      "    try:\n"
      "        os.kill(target, signal.SIGKILL)\n"
      "        print('SIGNALLED', target)\n"
      "    except OSError as e:\n"
      "        print('kill refused')\n"
      "libc = ctypes.CDLL(None, use_errno=True)\n"
      "for target in (os.getppid(), 1, host):\n"
      "    rc = libc.ptrace(16, target, 0, 0)\n"  // PTRACE_ATTACH
      "    print('ptrace', rc, ctypes.get_errno())\n"
      "print('ptrace traceme', libc.ptrace(0, 0, 0, 0), ctypes.get_errno())\n",
      unique_marker());
  r.args.push_back(std::to_string(getpid()));
  SandboxResult res = run_marked(r);
  ASSERT_EQ(res.status, SandboxStatus::ok) << res.to_json();
  EXPECT_EQ(count(res.stdout_text, "kill refused"), 3u) << res.stdout_text;
  EXPECT_EQ(count(res.stdout_text, "ptrace -1 1\n"), 3u) << res.stdout_text;  // EPERM
  EXPECT_NE(res.stdout_text.find("ptrace traceme -1 1\n"), std::string::npos) << res.stdout_text;
}

TEST(SandboxAdversarial, SetuidAttemptsFail) {
  SandboxResult r = run_marked(
      "import os, subprocess\n"
      "for name, f in (('setuid', lambda: os.setuid(0)), ('seteuid', lambda: os.seteuid(0)),\n"
      "                ('setresuid', lambda: os.setresuid(0, 0, 0)), ('setgid', lambda: os.setgid(0))):\n"
      "    try:\n"
      "        f()\n"
      "        print('BECAME ROOT via', name)\n"
      "    except PermissionError:\n"
      "        print('refused', name)\n"
      "status = open('/proc/self/status').read()\n"
      "print('NoNewPrivs:\\t1' in status, 'Seccomp:\\t2' in status, os.geteuid() != 0)\n"
      "os.mkdir('m')\n"
      "p = subprocess.run(['/usr/bin/mount', '-t', 'tmpfs', 'none', 'm'], capture_output=True)\n"
      "print('setuid mount', p.returncode != 0, os.path.ismount('m'))\n");
  ASSERT_EQ(r.status, SandboxStatus::ok) << r.to_json();
  EXPECT_EQ(r.stdout_text,
            "refused setuid\nrefused seteuid\nrefused setresuid\nrefused setgid\nTrue True True\n"
            "setuid mount True False\n");
}

TEST(SandboxAdversarial, StdinFloodDoesNotBlockTheSandbox) {
  SandboxRequest r = marked_request("print('not reading')\n", unique_marker());
  r.stdin_data.assign(64 << 20, 'z');
  SandboxResult res = run_marked(r);
  EXPECT_EQ(res.status, SandboxStatus::ok) << res.message;
  EXPECT_EQ(res.stdout_text, "not reading\n");

  SandboxRequest partial = marked_request(
      "import os, sys\nprint(len(sys.stdin.buffer.read(10)))\nos.close(0)\nprint('closed')\n",
      unique_marker());
  partial.stdin_data.assign(64 << 20, 'z');
  SandboxResult res2 = run_marked(partial);
  EXPECT_EQ(res2.status, SandboxStatus::ok) << res2.message;
  EXPECT_EQ(res2.stdout_text, "10\nclosed\n");
}

TEST(SandboxAdversarial, SeccompRefusesDangerousSystemCalls) {
  SandboxResult r = run_marked(
      "import ctypes, socket\n"
      "libc = ctypes.CDLL(None, use_errno=True)\n"
      "def call(name, nr, *args):\n"
      "    rc = libc.syscall(nr, *args)\n"
      "    print(name, rc, ctypes.get_errno())\n"
      "call('unshare', 272, 0x10000000)\n"
      "call('mount', 165, b'none', b'/tmp', b'tmpfs', 0, 0)\n"
      "call('bpf', 321, 0, 0, 0)\n"
      "call('perf_event_open', 298, 0, 0, -1, -1, 0)\n"
      "call('keyctl', 250, 0, 0, 0)\n"
      "call('kexec_load', 246, 0, 0, 0, 0)\n"
      "call('clone_newuser', 56, 0x10000000 | 17, 0, 0, 0, 0)\n"
      "call('clone3', 435, 0, 0)\n"
      "for family in (socket.AF_INET, socket.AF_INET6, socket.AF_NETLINK, socket.AF_PACKET):\n"
      "    try:\n"
      "        socket.socket(family, socket.SOCK_RAW if family == socket.AF_PACKET else socket.SOCK_DGRAM)\n"
      "        print('SOCKET', family)\n"
      "    except PermissionError:\n"
      "        print('socket refused')\n"
      "a, b = socket.socketpair()\n"
      "a.send(b'unix ok')\n"
      "print(b.recv(16).decode())\n");
  ASSERT_EQ(r.status, SandboxStatus::ok) << r.to_json();
  EXPECT_EQ(r.stdout_text,
            "unshare -1 1\nmount -1 1\nbpf -1 1\nperf_event_open -1 1\nkeyctl -1 1\nkexec_load -1 1\n"
            "clone_newuser -1 1\nclone3 -1 38\nsocket refused\nsocket refused\nsocket refused\n"
            "socket refused\nunix ok\n");
  EXPECT_NE(std::find(r.layers.begin(), r.layers.end(), "seccomp"), r.layers.end());
}

}  // namespace
}  // namespace aha::sandbox
