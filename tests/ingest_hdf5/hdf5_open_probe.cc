// A tiny program that opens an HDF5 frame dataset and reads its first frame, printing the Status:
// tests run it in a subprocess with a changed environment (e.g. an empty HDF5_PLUGIN_PATH).
#include <iostream>

#include "ingest/hdf5_frame_reader.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: hdf5_open_probe FILE [DATASET]\n";
    return 2;
  }
  auto reader = tilestage::ingest::Hdf5FrameReader::Open(argv[1], argc > 2 ? argv[2] : "");
  if (!reader.ok()) {
    std::cout << reader.status().ToString() << "\n";
    return 1;
  }
  auto frames = (*reader)->ReadFrames(0, 1);
  std::cout << (frames.ok() ? "OK " + frames->Describe() : frames.status().ToString()) << "\n";
  return frames.ok() ? 0 : 1;
}
