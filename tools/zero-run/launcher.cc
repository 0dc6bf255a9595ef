#include "launcher.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <regex>
#include <set>
#include <string>
#include <vector>

namespace zero {
namespace {

constexpr char kBoardEnv[] = "ZERO_RUN_STEP_BOARD";
constexpr char kErrorPrefix[] = "zero-run: error: ";
constexpr size_t kBoardSlot = 2 * sizeof(int64_t);  // pid, step

pid_t mpirun_pid = -1;

void forward_signal(int sig) {
  if (mpirun_pid > 0) kill(mpirun_pid, sig);
}

// The message with every number blanked, so the same error from several
// ranks (which differ in rank and step, e.g. the watchdog's) is shown once.
std::string error_kind(const std::string& line) {
  static const std::regex number("[0-9]+");
  return std::regex_replace(line, number, "#");
}

}  // namespace

int launch_ranks(int argc, char** argv, int nproc) {
  char self[4096];
  const ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0) {
    std::fprintf(stderr, "%scannot find own executable: %s\n", kErrorPrefix, std::strerror(errno));
    return 1;
  }
  self[n] = '\0';
  std::vector<std::string> args = {"mpirun", "--oversubscribe", "-np", std::to_string(nproc), self};
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--nproc") == 0) {
      ++i;  // drop the flag and its value
      continue;
    }
    args.push_back(argv[i]);
  }
  std::vector<char*> cargs;
  for (auto& a : args) cargs.push_back(&a[0]);
  cargs.push_back(nullptr);

  // The step board: a pid and a step per rank in a shared file the ranks map.
  char board_path[] = "/dev/shm/zero-run-steps-XXXXXX";
  int board = mkstemp(board_path);
  if (board < 0 || ftruncate(board, off_t(kBoardSlot) * nproc) != 0) {
    if (board >= 0) close(board), unlink(board_path);
    board = -1;  // no /dev/shm: the report just lacks the step
  } else {
    setenv(kBoardEnv, board_path, 1);
  }
  // Containers often run as root, which Open MPI refuses without these.
  setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 0);
  setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 0);

  int pipe_fds[2];
  if (pipe(pipe_fds) != 0) {
    std::fprintf(stderr, "%scannot create a pipe: %s\n", kErrorPrefix, std::strerror(errno));
    return 1;
  }
  const pid_t parent = getpid();
  mpirun_pid = fork();
  if (mpirun_pid == 0) {
    // mpirun (and with it every rank) ends when the launcher does.
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(1);
    dup2(pipe_fds[1], STDERR_FILENO);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    execvp("mpirun", cargs.data());
    std::fprintf(stderr, "%s--nproc needs mpirun on PATH: %s\n", kErrorPrefix, std::strerror(errno));
    _exit(1);
  }
  close(pipe_fds[1]);
  if (mpirun_pid < 0) {
    std::fprintf(stderr, "%scannot start mpirun: %s\n", kErrorPrefix, std::strerror(errno));
    return 1;
  }
  // Ctrl-C reaches mpirun through the terminal; a TERM sent to the launcher
  // is passed on. Either way the launcher stays to report.
  signal(SIGINT, SIG_IGN);
  signal(SIGTERM, forward_signal);
  signal(SIGHUP, forward_signal);

  // mpirun's own report of a rank a signal ended (Open MPI 4).
  static const std::regex killed(
      "process rank ([0-9]+) with PID ([0-9]+) on node (\\S+) exited on signal ([0-9]+) \\(([^)]*)\\)");
  std::set<std::string> shown;
  std::string mpirun_said;  // mpirun's first line, shown only if nothing else explains a failure
  std::string killed_line;
  FILE* in = fdopen(pipe_fds[0], "r");
  char* line = nullptr;
  size_t capacity = 0;
  ssize_t len;
  while ((len = getline(&line, &capacity, in)) >= 0) {
    std::string text(line, size_t(len));
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    std::smatch m;
    if (text.rfind("zero-run:", 0) == 0) {
      // After a rank was killed, the others' errors are the teardown.
      if (killed_line.empty() && shown.insert(error_kind(text)).second) std::fprintf(stderr, "%s\n", text.c_str());
    } else if (killed_line.empty() && std::regex_search(text, m, killed)) {
      // Open MPI may print PID 0; the rank's own record is better.
      const int rank = std::atoi(m[1].str().c_str());
      std::string pid = m[2].str() == "0" ? "" : m[2].str(), at = " before its first step";
      int64_t slot[2] = {0, -1};
      if (board >= 0 && rank >= 0 && rank < nproc &&
          pread(board, slot, sizeof(slot), off_t(kBoardSlot) * rank) == sizeof(slot)) {
        if (slot[0] > 0) pid = std::to_string(slot[0]);
        if (slot[1] >= 0) at = " at step " + std::to_string(slot[1]);
      }
      killed_line = std::string(kErrorPrefix) + "rank " + m[1].str() + (pid.empty() ? "" : " (pid " + pid + ")") +
                    " was killed by signal " + m[4].str() + " (" + m[5].str() + ")" + at + "; all ranks stopped";
    } else if (!text.empty() && text.find_first_not_of('-') != std::string::npos) {
      if (mpirun_said.empty()) mpirun_said = text;
    }
  }
  free(line);
  fclose(in);
  int status = 0;
  while (waitpid(mpirun_pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (board >= 0) close(board), unlink(board_path);
  const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  if (!killed_line.empty()) {
    std::fprintf(stderr, "%s\n", killed_line.c_str());
  } else if (!ok && shown.empty()) {
    const std::string why = WIFSIGNALED(status) ? "was killed by signal " + std::to_string(WTERMSIG(status))
                                                : "failed with exit code " + std::to_string(WEXITSTATUS(status));
    std::fprintf(stderr, "%smpirun %s%s%s\n", kErrorPrefix, why.c_str(), mpirun_said.empty() ? "" : ": ",
                 mpirun_said.c_str());
  }
  return ok ? 0 : 1;
}

StepBoard::StepBoard(int rank) {
  const char* path = std::getenv(kBoardEnv);
  if (!path) return;
  const int fd = open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0) return;
  const off_t end = lseek(fd, 0, SEEK_END);
  if (rank >= 0 && end >= off_t(kBoardSlot) * (rank + 1)) {
    size_ = size_t(end);
    map_ = mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map_ == MAP_FAILED) {
      map_ = nullptr;
    } else {
      volatile int64_t* slot = static_cast<volatile int64_t*>(map_) + 2 * rank;
      slot[0] = getpid();
      slot_ = slot + 1;
    }
  }
  close(fd);
  publish(-1);
}

StepBoard::~StepBoard() {
  if (map_) munmap(map_, size_);
}

}  // namespace zero
