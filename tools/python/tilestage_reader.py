"""Pure-numpy reader for tilestage tile stores, written from tiling/FORMAT.md.

    import tilestage_reader as tr
    store = tr.Store("path/to/store")      # reads manifest.json, opens and checks every shard
    len(store)                             # number of records (samples)
    sample = store[17]                     # {"x": ndarray, "y": ndarray, ..., "meta": dict}
    store.manifest["fields"]               # schema, per-channel statistics, provenance
    store.verify()                         # whole-shard hashes and every record checksum

    store = tr.Store("path/to/store", normalize=True)
    sample = store[17]                     # what the C++ loader feeds the model:
    # x float32, normalized per channel with the manifest statistics, 0 where invalid (NaN or the
    # channel's nodata value); x_valid uint8 (1 valid, 0 invalid); y and y_valid the same way
    # (y normalized only when it is a float [C,H,W] field on x's grid, as in the loader).

Every record read is checked against its XXH3-64 checksum; damage raises DataLossError naming the
shard file and the record. Needs numpy and the Debian modules python3-xxhash (checksums),
python3-zstandard (zstd records) and python3-lz4 (lz4 records); the last two are imported only when
a store uses them. ``TorchDataset`` (a ``torch.utils.data.Dataset``) exists when torch is
importable.

A Store may be shared by DataLoader worker processes: file descriptors are opened per process.
Reading from several threads at once is safe (os.preadv, no shared file position).
"""

import json
import os
import struct

import numpy as np

__all__ = ["Store", "Shard", "TilestageError", "DataLossError", "StoreNotFoundError",
           "FORMAT_VERSION", "field_nodata"]

FORMAT_VERSION = 1
MANIFEST_VERSION = 1
SHARD_MAGIC = b"TSSHARD\0"
FOOTER_MAGIC = b"TSFOOTER"
RECORD_MAGIC = b"TREC"
SUPERBLOCK_BYTES = 64
FOOTER_BYTES = 64
INDEX_ENTRY_BYTES = 48
FLAG_LITTLE_ENDIAN = 1

CODEC_NONE, CODEC_LZ4, CODEC_ZSTD = 0, 1, 2
CODEC_NAMES = {CODEC_NONE: "none", CODEC_LZ4: "lz4", CODEC_ZSTD: "zstd"}

# DType codes (FORMAT.md) -> numpy dtypes, little-endian.
DTYPES = {1: np.dtype("u1"), 2: np.dtype("i1"), 3: np.dtype("<u2"), 4: np.dtype("<i2"),
          5: np.dtype("<u4"), 6: np.dtype("<i4"), 7: np.dtype("<f4"), 8: np.dtype("<f8")}
DTYPE_NAMES = {"u8": 1, "i8": 2, "u16": 3, "i16": 4, "u32": 5, "i32": 6, "f32": 7, "f64": 8}

INDEX_DTYPE = np.dtype([("offset", "<u8"), ("stored_size", "<u8"), ("raw_size", "<u8"),
                        ("checksum", "<u8"), ("codec", "u1"), ("flags", "u1"),
                        ("reserved", "V14")])
assert INDEX_DTYPE.itemsize == INDEX_ENTRY_BYTES


class TilestageError(Exception):
    """Base class of every error this reader raises."""


class DataLossError(TilestageError):
    """Damaged or inconsistent bytes: bad magic, checksum mismatch, truncation..."""


class StoreNotFoundError(TilestageError, FileNotFoundError):
    """A store directory, manifest or shard file that does not exist."""


def _xxh3_64(data):
    try:
        import xxhash
    except ImportError as e:  # pragma: no cover - Debian ships python3-xxhash
        raise TilestageError("checksums need the xxhash module (apt-get install python3-xxhash)"
                             ) from e
    return xxhash.xxh3_64_intdigest(data)


def _decompress(codec, payload, raw_bytes, where):
    """Decodes one field payload into a bytearray of exactly raw_bytes bytes."""
    if codec == CODEC_NONE:
        if len(payload) != raw_bytes:
            raise DataLossError(f"{where}: stored size {len(payload)} != raw size {raw_bytes}")
        return payload
    if codec == CODEC_LZ4:
        try:
            import lz4.block
        except ImportError as e:  # pragma: no cover
            raise TilestageError("lz4 records need python3-lz4") from e
        if raw_bytes == 0:
            return bytearray()
        try:
            # A raw LZ4 block (LZ4_compress_default) has no size prefix: pass the size instead.
            out = lz4.block.decompress(bytes(payload), uncompressed_size=raw_bytes)
        except Exception as e:  # lz4.block.LZ4BlockError
            raise DataLossError(f"{where}: lz4 block does not decode: {e}") from e
    elif codec == CODEC_ZSTD:
        try:
            import zstandard
        except ImportError as e:  # pragma: no cover
            raise TilestageError("zstd records need python3-zstandard") from e
        try:
            out = zstandard.ZstdDecompressor().decompress(bytes(payload),
                                                          max_output_size=raw_bytes)
        except zstandard.ZstdError as e:
            raise DataLossError(f"{where}: zstd block: {e}") from e
    else:
        raise DataLossError(f"{where}: unknown codec id {codec}")
    if len(out) != raw_bytes:
        raise DataLossError(f"{where}: {CODEC_NAMES[codec]} block decodes to {len(out)} bytes, "
                            f"expected {raw_bytes}")
    return bytearray(out)


def _unshuffle(data, elem_size):
    """Inverse of the byte shuffle: [elem_size, n] bytes back to [n, elem_size]."""
    n = len(data) // elem_size
    planes = np.frombuffer(data, dtype=np.uint8, count=n * elem_size).reshape(elem_size, n)
    return bytearray(planes.T.tobytes())


class Shard:
    """One shard file: superblock, footer and index validated on open; records by number."""

    def __init__(self, path):
        self.path = path
        self._fd = None
        self._pid = None
        try:
            self.file_size = os.stat(path).st_size
        except FileNotFoundError:
            raise StoreNotFoundError(f"shard {path}: no such file") from None
        size = self.file_size
        if size < SUPERBLOCK_BYTES + FOOTER_BYTES:
            raise DataLossError(f"shard {path}: truncated: {size} bytes is smaller than "
                                "superblock plus footer")
        sb = self._pread(0, SUPERBLOCK_BYTES)
        if sb[:8] != SHARD_MAGIC:
            raise DataLossError(f"shard {path}: bad magic {bytes(sb[:8])!r} "
                                "(not a tilestage shard)")
        version, flags, alignment = struct.unpack_from("<III", sb, 8)
        if version != FORMAT_VERSION:
            raise DataLossError(f"shard {path}: unknown format version {version} "
                                f"(this reader reads {FORMAT_VERSION})")
        if struct.unpack_from("<Q", sb, 56)[0] != _xxh3_64(bytes(sb[:56])):
            raise DataLossError(f"shard {path}: superblock checksum mismatch")
        if not flags & FLAG_LITTLE_ENDIAN:
            raise DataLossError(f"shard {path}: flags {flags} do not say little-endian")
        if alignment == 0 or alignment & (alignment - 1):
            raise DataLossError(f"shard {path}: bad alignment {alignment}")
        self.alignment = alignment

        footer = self._pread(size - FOOTER_BYTES, FOOTER_BYTES)
        if footer[:8] != FOOTER_MAGIC:
            raise DataLossError(f"shard {path}: truncated or damaged: no footer magic at the end "
                                f"of the {size}-byte file")
        if struct.unpack_from("<Q", footer, 56)[0] != _xxh3_64(bytes(footer[:56])):
            raise DataLossError(f"shard {path}: footer checksum mismatch")
        _, entry_bytes, index_offset, count, index_hash = struct.unpack_from("<IIQQQ", footer, 8)
        if entry_bytes != INDEX_ENTRY_BYTES:
            raise DataLossError(f"shard {path}: index entry size {entry_bytes}, expected "
                                f"{INDEX_ENTRY_BYTES}")
        if index_offset + count * INDEX_ENTRY_BYTES != size - FOOTER_BYTES:
            raise DataLossError(f"shard {path}: index of {count} records at offset "
                                f"{index_offset} does not fit the {size}-byte file")
        index = self._pread(index_offset, count * INDEX_ENTRY_BYTES)
        if _xxh3_64(bytes(index)) != index_hash:
            raise DataLossError(f"shard {path}: index checksum mismatch (damaged index)")
        self.index = np.frombuffer(bytes(index), dtype=INDEX_DTYPE)
        bad = ((self.index["offset"] < SUPERBLOCK_BYTES) | (self.index["offset"] > index_offset) |
               (self.index["stored_size"] > index_offset - np.minimum(self.index["offset"],
                                                                      index_offset)))
        if bad.any():
            i = int(np.argmax(bad))
            raise DataLossError(f"shard {path}: record {i}: extent lies outside the record area")
        unknown = self.index["codec"] > CODEC_ZSTD
        if unknown.any():
            i = int(np.argmax(unknown))
            raise DataLossError(f"shard {path}: record {i}: unknown codec id "
                                f"{int(self.index['codec'][i])}")

    def __len__(self):
        return len(self.index)

    def _file(self):
        # One descriptor per process, so a Store survives fork() into DataLoader workers.
        if self._fd is None or self._pid != os.getpid():
            self._fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            self._pid = os.getpid()
        return self._fd

    def _pread(self, offset, n):
        buf = bytearray(n)
        fd = self._file()
        done = 0
        while done < n:
            got = os.preadv(fd, [memoryview(buf)[done:]], offset + done)
            if got == 0:
                raise DataLossError(f"{self.path}: truncated: cannot read {n} bytes at offset "
                                    f"{offset} of a {self.file_size}-byte file")
            done += got
        return buf

    def close(self):
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)
        self._fd = None

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def read_stored(self, i):
        """The stored bytes of record i, checksum verified."""
        if not 0 <= i < len(self.index):
            raise IndexError(f"shard {self.path}: record {i} out of range "
                             f"({len(self.index)} records)")
        e = self.index[i]
        stored = self._pread(int(e["offset"]), int(e["stored_size"]))
        actual = _xxh3_64(bytes(stored))
        if actual != int(e["checksum"]):
            raise DataLossError(f"shard {self.path}: record {i}: checksum mismatch (stored "
                                f"{int(e['checksum']):016x}, computed {actual:016x})")
        return stored

    def read(self, i):
        """Record i as {field name: ndarray, ..., "meta": dict}."""
        stored = self.read_stored(i)
        e = self.index[i]
        return decode_record(stored, int(e["codec"]), bool(e["flags"] & 1), int(e["raw_size"]),
                             f"shard {self.path}: record {i}")

    def hash_file(self, block_bytes=8 << 20):
        """XXH3-64 of the whole file (the manifest's shard hash)."""
        import xxhash
        h = xxhash.xxh3_64()
        for offset in range(0, self.file_size, block_bytes):
            h.update(bytes(self._pread(offset, min(block_bytes, self.file_size - offset))))
        return h.intdigest()


def decode_record(stored, codec, shuffled, raw_size, where="record"):
    """Decodes a record's stored bytes (FORMAT.md, Record) into a dict of arrays plus "meta"."""
    def fail(what):
        raise DataLossError(f"{where}: {what}")

    if len(stored) < 16 or stored[:4] != RECORD_MAGIC:
        fail("bad record magic")
    nfields, _, meta_bytes, header_bytes = struct.unpack_from("<HHII", stored, 4)
    pos = 16
    fields = []
    try:
        for _ in range(nfields):
            (name_len,) = struct.unpack_from("<H", stored, pos)
            name = bytes(stored[pos + 2:pos + 2 + name_len]).decode("utf-8")
            pos += 2 + name_len
            code, ndim = struct.unpack_from("<BB", stored, pos)
            pos += 2
            if code not in DTYPES:
                fail(f"field '{name}': unknown dtype code {code}")
            shape = struct.unpack_from(f"<{ndim}q", stored, pos)
            pos += 8 * ndim
            raw_bytes, stored_bytes = struct.unpack_from("<QQ", stored, pos)
            pos += 16
            dtype = DTYPES[code]
            if any(d < 0 for d in shape) or raw_bytes != int(np.prod(shape, dtype=np.int64)) * \
                    dtype.itemsize:
                fail(f"field '{name}': {raw_bytes} raw bytes for shape {list(shape)} of {dtype}")
            fields.append((name, dtype, shape, raw_bytes, stored_bytes))
    except struct.error:
        fail("field table truncated")
    if pos + meta_bytes != header_bytes or header_bytes > len(stored):
        fail("record header size mismatch")
    try:
        meta = json.loads(bytes(stored[pos:header_bytes]).decode("utf-8"))
    except ValueError:
        fail("metadata is not valid JSON")

    sample = {}
    pos = header_bytes
    raw_total = header_bytes
    view = memoryview(stored)
    for name, dtype, shape, raw_bytes, stored_bytes in fields:
        if pos + stored_bytes > len(stored):
            fail(f"field '{name}' payload truncated")
        payload = view[pos:pos + stored_bytes]
        pos += stored_bytes
        raw = _decompress(codec, payload, raw_bytes, f"{where}: field '{name}'")
        if shuffled and dtype.itemsize > 1:
            raw = _unshuffle(raw, dtype.itemsize)
        sample[name] = np.frombuffer(raw, dtype=dtype, count=raw_bytes // dtype.itemsize
                                     ).reshape(shape)
        raw_total += raw_bytes
    if raw_total != raw_size:
        fail(f"decoded {raw_total} bytes, index says {raw_size}")
    sample["meta"] = meta
    return sample


def field_nodata(manifest, field):
    """The nodata value of each channel of `field` as the ingest recorded it
    (attrs.ingest.nodata.<field>; None for a channel without one), or [] when none is recorded."""
    ingest = manifest.get("attrs", {}).get("ingest", {}) if isinstance(manifest, dict) else {}
    nodata = ingest.get("nodata", {}) if isinstance(ingest, dict) else {}
    if not isinstance(nodata, dict) or field not in nodata:
        return []
    values = nodata[field]
    where = f"manifest attrs.ingest.nodata.{field}"
    if not isinstance(values, list):
        raise DataLossError(f"{where}: expected a list, got {values!r}")
    for c, v in enumerate(values):
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
            raise DataLossError(f"{where}[{c}]: expected a number or null, got {v!r}")
    return [None if v is None else float(v) for v in values]


def _stat_number(v):
    return float(v)  # JSON numbers, or the strings "inf", "-inf", "nan" float() reads too


def _nodata_as(dtype, nodata):
    """The stored value of `dtype` meaning "no data" (as the loader's NodataAs), or None."""
    if nodata is None or np.isnan(nodata):
        return None
    if dtype.kind == "f":
        return dtype.type(nodata)
    info = np.iinfo(dtype)
    if nodata < info.min or nodata > info.max or float(int(nodata)) != nodata:
        return None
    return dtype.type(int(nodata))


class _FieldNorm:
    """Per-channel mean, 1/std (float32) and nodata of one field, built as the C++ loader does."""

    def __init__(self, field, channels, enabled, nodata):
        self.channels = channels
        self.mean = [np.float32(0.0)] * channels
        self.inv_std = [np.float32(1.0)] * channels
        self.nodata = (list(nodata) + [None] * channels)[:channels]
        stats = field.get("stats", [])
        if not enabled or len(stats) != channels:
            return
        for c, st in enumerate(stats):
            count = int(st["count"])
            if count == 0:
                continue
            self.mean[c] = np.float32(_stat_number(st["mean"]))
            sd = float(np.sqrt(_stat_number(st["m2"]) / count))
            if sd > 0 and np.isfinite(sd):
                self.inv_std[c] = np.float32(1.0 / sd)

    def apply(self, raw):
        """(float32 values, uint8 validity) of a channel-first array, as the loader makes them."""
        planes = raw.reshape(self.channels, -1)
        out = np.empty(planes.shape, dtype=np.float32)
        valid = np.empty(planes.shape, dtype=np.uint8)
        for c in range(self.channels):
            v = planes[c].astype(np.float32)
            ok = ~np.isnan(v) if raw.dtype.kind == "f" else np.ones(v.shape, dtype=bool)
            nd = _nodata_as(raw.dtype, self.nodata[c])
            if nd is not None:
                ok &= planes[c] != nd
            out[c] = np.where(ok, (v - self.mean[c]) * self.inv_std[c], np.float32(0.0))
            valid[c] = ok
        return out.reshape(raw.shape), valid.reshape(raw.shape)


class Store:
    """A tile store directory: manifest.json plus shards, records numbered in manifest order.

    normalize=True gives what the C++ loader gives the model (Loader, normalize on): x and y as
    float32 normalized with the manifest statistics, NaN and nodata as 0, and validity masks
    x_valid / y_valid (uint8, 1 = valid).
    """

    def __init__(self, path, normalize=False):
        self.path = str(path)
        if not os.path.isdir(self.path):
            raise StoreNotFoundError(f"store directory {self.path} does not exist")
        manifest_path = os.path.join(self.path, "manifest.json")
        if not os.path.exists(manifest_path):
            raise StoreNotFoundError(
                f"store {self.path}: no manifest.json (not a tile store, or an incomplete one "
                "whose writer did not finish)")
        try:
            with open(manifest_path, "rb") as f:
                self.manifest = json.loads(f.read().decode("utf-8"))
        except ValueError as e:
            raise DataLossError(f"{manifest_path}: not valid JSON: {e}") from None
        m = self.manifest
        if not isinstance(m, dict) or m.get("format") != "tilestage":
            raise DataLossError(f"{manifest_path}: not a tilestage manifest "
                                '(no "format": "tilestage")')
        if m.get("format_version") != MANIFEST_VERSION:
            raise DataLossError(f"{manifest_path}: unknown manifest version "
                                f"{m.get('format_version')}")
        if not isinstance(m.get("shards"), list) or not isinstance(m.get("fields"), list):
            raise DataLossError(f"{manifest_path}: malformed manifest: needs 'fields' and "
                                "'shards' lists")
        self.shards = []
        self.offsets = [0]
        for entry in m["shards"]:
            name = entry.get("file") if isinstance(entry, dict) else None
            # A store is untrusted input: a shard is a plain file inside the store, nothing else.
            if (not isinstance(name, str) or name in ("", ".", "..", "manifest.json")
                    or "/" in name or "\0" in name):
                raise DataLossError(f"{manifest_path}: shard file {name!r} is not a plain file "
                                    "name inside the store")
            shard_path = os.path.join(self.path, name)
            if not os.path.exists(shard_path):
                raise StoreNotFoundError(f"store {self.path}: shard file {shard_path} listed in "
                                         "the manifest is missing")
            shard = Shard(shard_path)
            if shard.file_size != entry["bytes"]:
                raise DataLossError(f"shard {shard_path}: {shard.file_size} bytes, manifest says "
                                    f"{entry['bytes']}")
            if len(shard) != entry["records"]:
                raise DataLossError(f"shard {shard_path}: {len(shard)} records, manifest says "
                                    f"{entry['records']}")
            self.shards.append(shard)
            self.offsets.append(self.offsets[-1] + len(shard))
        self._offsets = np.asarray(self.offsets, dtype=np.int64)
        attrs = m.get("attrs", {})
        self._ingested = isinstance(attrs, dict) and "ingest" in attrs
        self.normalize = bool(normalize)
        self._norms = self._make_norms(manifest_path) if self.normalize else {}

    def _make_norms(self, where):
        """The loader's rules: x is a fixed [C,H,W] field; y is normalized only when it is a
        float [C,H,W] field on x's grid (else one channel, values kept)."""
        fields = {f.get("name"): f for f in self.manifest["fields"]}
        x = fields.get("x")
        if x is None:
            raise TilestageError(f"{where}: no field 'x' to normalize")
        x_shape = list(x.get("shape", []))
        if len(x_shape) != 3:
            raise TilestageError(f"{where}: field x has shape {x_shape}; normalize needs a fixed "
                                 "channel-first [C,H,W] shape")
        norms = {}
        nodata = field_nodata(self.manifest, "x")
        if nodata and len(nodata) != x_shape[0]:
            raise DataLossError(f"{where}: {len(nodata)} nodata values for the {x_shape[0]} "
                                "channels of field x")
        norms["x"] = _FieldNorm(x, x_shape[0], True, nodata)
        y = fields.get("y")
        if y is not None:
            y_shape = list(y.get("shape", []))
            spatial = len(y_shape) == 3 and y_shape[1:] == x_shape[1:]
            channels = y_shape[0] if spatial else 1
            nodata = field_nodata(self.manifest, "y")
            if nodata and len(nodata) != channels:
                raise DataLossError(f"{where}: {len(nodata)} nodata values for the {channels} "
                                    "channels of field y")
            is_float = DTYPES[DTYPE_NAMES[y["dtype"]]].kind == "f"
            norms["y"] = _FieldNorm(y, channels, is_float and spatial, nodata)
        return norms

    @property
    def fields(self):
        """The schema: a list of {name, dtype, shape, channel_names, units, stats}."""
        return self.manifest["fields"]

    def __len__(self):
        return self.offsets[-1]

    def locate(self, index):
        """(shard number, record within the shard) of a global index."""
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"store {self.path}: record {index} out of range ({n} records)")
        s = int(np.searchsorted(self._offsets, index, side="right")) - 1
        return s, index - self.offsets[s]

    def __getitem__(self, index):
        s, r = self.locate(int(index))
        sample = self.shards[s].read(r)
        # Every record of an ingested store has the same metadata keys (collation needs them);
        # stores written before "padded" was always set lack it where it was false.
        if self._ingested and isinstance(sample["meta"], dict):
            sample["meta"].setdefault("padded", False)
        for name, norm in self._norms.items():
            if name in sample:
                sample[name], sample[name + "_valid"] = norm.apply(sample[name])
        return sample

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def verify(self):
        """Checks every shard hash and record; returns the list of problems (empty when intact)."""
        problems = []
        for entry, shard in zip(self.manifest["shards"], self.shards):
            actual = f"{shard.hash_file():016x}"
            if actual != entry["hash"]:
                problems.append(f"shard {shard.path}: file hash {actual} != manifest hash "
                                f"{entry['hash']}")
            for i in range(len(shard)):
                try:
                    shard.read(i)
                except DataLossError as e:
                    problems.append(str(e))
        return problems

    def close(self):
        for shard in self.shards:
            shard.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _make_torch_dataset():
    import torch

    # torch has no uint16/uint32 tensors (before 2.3): widen them losslessly.
    widen = {np.dtype("<u2"): np.int32, np.dtype("<u4"): np.int64}

    class TorchDataset(torch.utils.data.Dataset):
        """A map-style torch Dataset over a tile store: item i is {field: tensor, "meta": dict}.

        fields: the fields to return (default: all). transform: optional callable applied to the
        dict. normalize: as Store's (float32 x/y normalized like the C++ loader, plus x_valid and
        y_valid masks). Safe with DataLoader workers (each process opens its own file
        descriptors).
        """

        def __init__(self, path, fields=None, transform=None, normalize=False):
            self.store = Store(path, normalize=normalize)
            self.fields = fields
            self.transform = transform

        def __len__(self):
            return len(self.store)

        def __getitem__(self, index):
            sample = self.store[index]
            out = {"meta": sample.pop("meta")}
            for name, array in sample.items():
                base = name[:-len("_valid")] if name.endswith("_valid") else name
                if self.fields is not None and name not in self.fields and \
                        base not in self.fields:
                    continue
                if array.dtype in widen:
                    array = array.astype(widen[array.dtype])
                out[name] = torch.from_numpy(array)
            return self.transform(out) if self.transform else out

    return TorchDataset


def __getattr__(name):
    # TorchDataset is built on first use, so importing this module never imports torch.
    if name == "TorchDataset":
        try:
            cls = _make_torch_dataset()
        except ImportError as e:
            raise AttributeError("TorchDataset needs torch (apt-get install python3-torch)") from e
        globals()["TorchDataset"] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
