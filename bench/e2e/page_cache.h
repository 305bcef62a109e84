// The page cache around the benchmark's file sets: dropping files from it for a cold read,
// asking how much of a file is in it, and timing a raw read of every byte (the read-bandwidth
// limit the report compares staging and the loader with).
//
// Thread-safety: every function is safe to call concurrently; calls on the same files race only
// in what they measure, not in memory.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tiling/status.h"

namespace tilestage::bench {

// Regular files under dir (recursively), sorted; empty when dir does not exist.
std::vector<std::string> FilesUnder(const std::string& dir);
// Their sizes summed; a file that cannot be stat'ed counts 0.
uint64_t TotalBytes(const std::vector<std::string>& files);

// Writes the files' dirty pages back and drops their pages from the page cache
// (POSIX_FADV_DONTNEED), so the next read comes from the device. IOError names the file.
// On file systems whose pages are the storage (tmpfs) the pages stay: ResidentBytes tells.
Status EvictFromPageCache(const std::vector<std::string>& files);

// Bytes of the file now in the page cache (mincore over a read-only mapping; an empty file is 0).
// IOError names the file.
Result<uint64_t> ResidentBytes(const std::string& path);
// The same summed over files.
Result<uint64_t> ResidentBytes(const std::vector<std::string>& files);

// Seconds to read every byte of the files with read(2) in 8 MiB chunks. IOError names the file.
Result<double> ReadAllSeconds(const std::vector<std::string>& files);

}  // namespace tilestage::bench
