#include "bench/e2e/page_cache.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

namespace tilestage::bench {

namespace fs = std::filesystem;

std::vector<std::string> FilesUnder(const std::string& dir) {
  std::vector<std::string> files;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (it->is_regular_file()) files.push_back(it->path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

uint64_t TotalBytes(const std::vector<std::string>& files) {
  uint64_t total = 0;
  for (const auto& f : files) {
    std::error_code ec;
    const uint64_t size = fs::file_size(f, ec);
    if (!ec) total += size;
  }
  return total;
}

Status EvictFromPageCache(const std::vector<std::string>& files) {
  for (const auto& f : files) {
    const int fd = open(f.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return IOError("evict ", f, ": ", std::strerror(errno));
    fdatasync(fd);
    const int rc = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    close(fd);
    if (rc != 0) return IOError("posix_fadvise(DONTNEED) ", f, ": ", std::strerror(rc));
  }
  return Status::Ok();
}

Result<uint64_t> ResidentBytes(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return IOError("page cache residency of ", path, ": ", std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    const int e = errno;
    close(fd);
    return IOError("page cache residency of ", path, ": ", std::strerror(e));
  }
  const size_t size = size_t(st.st_size);
  if (size == 0) {
    close(fd);
    return uint64_t(0);
  }
  void* map = mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  const int map_errno = errno;
  close(fd);
  if (map == MAP_FAILED) {
    return IOError("page cache residency of ", path, ": mmap: ", std::strerror(map_errno));
  }
  const size_t page = size_t(sysconf(_SC_PAGESIZE));
  const size_t pages = (size + page - 1) / page;
  std::vector<unsigned char> in_core(pages);
  const int rc = mincore(map, size, in_core.data());
  const int mincore_errno = errno;
  munmap(map, size);
  if (rc != 0) {
    return IOError("page cache residency of ", path, ": mincore: ", std::strerror(mincore_errno));
  }
  uint64_t resident = 0;
  for (size_t i = 0; i < pages; ++i) {
    if (in_core[i] & 1) resident += std::min(page, size - i * page);
  }
  return resident;
}

Result<uint64_t> ResidentBytes(const std::vector<std::string>& files) {
  uint64_t resident = 0;
  for (const std::string& f : files) {
    TS_ASSIGN_OR_RETURN(const uint64_t bytes, ResidentBytes(f));
    resident += bytes;
  }
  return resident;
}

Result<double> ReadAllSeconds(const std::vector<std::string>& files) {
  std::vector<char> buf(8 << 20);
  const auto t0 = std::chrono::steady_clock::now();
  for (const auto& f : files) {
    const int fd = open(f.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return IOError("read ", f, ": ", std::strerror(errno));
    while (true) {
      const ssize_t n = read(fd, buf.data(), buf.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        const int e = errno;
        close(fd);
        return IOError("read ", f, ": ", std::strerror(e));
      }
      if (n == 0) break;
    }
    close(fd);
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace tilestage::bench
