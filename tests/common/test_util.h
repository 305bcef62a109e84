// Shared test helpers: a fresh temporary directory per test, paths to the sample data in
// ../shared/data, and running the tilestage CLI. Not thread-safe; one per test.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tilestage::testing {

// ../shared/data/<relative>
std::string SharedData(const std::string& relative);
// Path of the built tilestage executable.
std::string CliPath();
// The python3 that has Debian's numpy.
std::string PythonPath();
std::string SourceDir();

// A unique empty directory under $TMPDIR, removed (recursively) on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};
// Runs a shell command line, capturing its output.
CommandResult RunCommand(const std::string& command_line);

// Byte-level file surgery for bad-input tests.
void FlipByte(const std::string& path, long offset);  // offset < 0 counts from the end
void TruncateFile(const std::string& path, long new_size);
long FileSize(const std::string& path);
// Creates or replaces a file with these bytes.
void WriteFile(const std::string& path, const std::vector<uint8_t>& bytes);

}  // namespace tilestage::testing
