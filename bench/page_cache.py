"""The page cache state a benchmark sets before timing a command: evict() drops files' pages
(posix_fadvise DONTNEED; clean pages only, so write and sync first) so that the next read comes
from the device; warm() reads them whole so that it comes from memory.
"""
import os


def evict(paths):
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def warm(paths):
    for path in paths:
        with open(path, "rb") as f:
            while f.read(16 << 20):
                pass
