#!/usr/bin/env bash
# Installs the Debian 12 packages tilestage needs, when any is missing.
#   tools/setup.sh          build, test and demo dependencies
#   tools/setup.sh --bench  also the Python peers the benchmarks run (xarray, h5py, ...)
# As root it runs apt-get; otherwise it prints the exact apt-get line and stops.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  libgdal-dev gdal-bin python3-gdal
  libhdf5-dev hdf5-tools bitshuffle hdf5-filter-plugin hdf5-filter-plugin-blosc-serial
  libnetcdf-dev netcdf-bin
  libopenmpi-dev openmpi-bin
  libtiff-dev libdeflate-dev libtbb-dev libeigen3-dev
  libzstd-dev liblz4-dev libxxhash-dev nlohmann-json3-dev libcli11-dev libsimdjson-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  python3-numpy python3-xxhash python3-zstandard python3-lz4
  # The tilestage Python package's native extension (tools/python).
  pybind11-dev python3-dev
  # Independent truth for tests: PyTorch checks the trainer's gradients, cftime its calendars.
  python3-torch python3-cftime
)
if [[ ${1:-} == --bench ]]; then
  # libopenblas0-pthread: the PyTorch training peer loads it through LD_LIBRARY_PATH (installing it
  # also makes it the libblas.so.3 alternative Debian picks by default).
  packages+=(python3-xarray python3-netcdf4 python3-dask python3-h5py python3-matplotlib
             libopenblas0-pthread)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
((${#missing[@]} == 0)) && exit 0

line="apt-get install -y --no-install-recommends ${missing[*]}"
if [[ $(id -u) != 0 ]]; then
  echo "tilestage needs these Debian packages; run as root:" >&2
  echo "  apt-get update && $line" >&2
  exit 1
fi
echo "Installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
