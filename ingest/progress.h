// A one-line progress display for long ingests: tiles/s, MB/s and ETA, redrawn in place on
// stderr at most a few times per second, only when enabled (stderr is a terminal).
// Add() is thread-safe (atomics; the redraw is guarded by a mutex taken with try_lock).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace tilestage::ingest {

class Progress {
 public:
  // total_tiles: tiles this process will consider (kept or dropped); 0 when unknown.
  Progress(bool enabled, std::string label, uint64_t total_tiles);
  ~Progress();

  void Add(uint64_t tiles, uint64_t bytes);
  // Draws the final state and ends the line (if anything was drawn).
  void Finish();
  double elapsed_s() const;

 private:
  void Draw(bool final);

  const bool enabled_;
  const std::string label_;
  const uint64_t total_tiles_;
  const std::chrono::steady_clock::time_point start_;
  std::atomic<uint64_t> tiles_{0};
  std::atomic<uint64_t> bytes_{0};
  std::mutex draw_mu_;
  std::chrono::steady_clock::time_point last_draw_;
  bool drawn_ = false;
  bool finished_ = false;
};

}  // namespace tilestage::ingest
