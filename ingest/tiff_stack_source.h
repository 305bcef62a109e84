// TiffStackSource: multi-page TIFF detector stacks as a Source (ingest/source.h): every page of
// every file is one item x [1, h, w] after the per-frame transforms (ingest/frame_transforms.h).
//
// Each ItemReader opens its own libtiff handles (libtiff is safe with one handle per thread), so
// pages decode in parallel. Thread-safety: as Source requires.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "ingest/frame_transforms.h"
#include "ingest/source.h"

namespace tilestage::ingest {

struct TiffStackSourceOptions {
  std::vector<std::string> files;
  FrameTransform transform;
};

// Opens every file and walks its pages: pages (and files) of different sizes or sample types are
// InvalidArgument naming the file and page; a crop/bin that does not fit is InvalidArgument.
Result<std::unique_ptr<Source>> OpenTiffStackSource(const TiffStackSourceOptions& options);

}  // namespace tilestage::ingest
