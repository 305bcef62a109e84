#include "ingest/progress.h"

#include <cstdio>

namespace tilestage::ingest {

Progress::Progress(bool enabled, std::string label, uint64_t total_tiles)
    : enabled_(enabled),
      label_(std::move(label)),
      total_tiles_(total_tiles),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

Progress::~Progress() { Finish(); }

double Progress::elapsed_s() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::Add(uint64_t tiles, uint64_t bytes) {
  tiles_.fetch_add(tiles, std::memory_order_relaxed);
  bytes_.fetch_add(bytes, std::memory_order_relaxed);
  if (!enabled_) return;
  std::unique_lock lock(draw_mu_, std::try_to_lock);
  if (!lock.owns_lock()) return;
  const auto now = std::chrono::steady_clock::now();
  if (now - last_draw_ < std::chrono::milliseconds(250)) return;
  last_draw_ = now;
  Draw(false);
}

void Progress::Finish() {
  if (!enabled_) return;
  std::lock_guard lock(draw_mu_);
  if (finished_) return;
  finished_ = true;
  if (drawn_) {
    Draw(true);
    std::fputc('\n', stderr);
  }
}

void Progress::Draw(bool final) {
  const double elapsed = std::max(elapsed_s(), 1e-9);
  const uint64_t tiles = tiles_.load(std::memory_order_relaxed);
  const double tiles_per_s = tiles / elapsed;
  const double mb_per_s = bytes_.load(std::memory_order_relaxed) / elapsed / 1e6;
  char eta[32] = "";
  if (total_tiles_ > 0 && !final && tiles_per_s > 0) {
    const double left_s = (total_tiles_ > tiles ? total_tiles_ - tiles : 0) / tiles_per_s;
    std::snprintf(eta, sizeof eta, "  ETA %.0fs", left_s);
  }
  char total[32] = "";
  if (total_tiles_ > 0)
    std::snprintf(total, sizeof total, "/%llu", (unsigned long long)total_tiles_);
  std::fprintf(stderr, "\r%s: %llu%s tiles  %.0f tiles/s  %.1f MB/s%s  %.1fs   ", label_.c_str(),
               (unsigned long long)tiles, total, tiles_per_s, mb_per_s, eta, elapsed);
  std::fflush(stderr);
  drawn_ = true;
}

}  // namespace tilestage::ingest
