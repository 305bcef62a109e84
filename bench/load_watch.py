"""What else ran on the machine while a benchmark measured: the load average before and after,
and the CPU time other processes used meanwhile (all CPU time /proc/stat counts as busy, less
this process's and its waited-for children's, which os.times() reports). A benchmark prints
both and warns when the others used more than a tenth of a core on average, because on a
2-core machine that alone moves its ratios.

Usage:
    watch = LoadWatch()
    ... run the contenders as subprocesses ...
    summary = watch.finish()   # {"load_average_before", ..., "others_cores", "warning"}
    print(summary["text"])
"""
import os

BUSY_FIELDS = (0, 1, 2, 5, 6, 7)  # user nice system irq softirq steal
WARN_CORES = 0.10


def _busy_seconds():
    with open("/proc/stat") as stat:
        fields = stat.readline().split()[1:]
    return sum(int(fields[i]) for i in BUSY_FIELDS) / os.sysconf("SC_CLK_TCK")


def _own_seconds():
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system, t.elapsed


class LoadWatch:
    def __init__(self):
        self.load_before = os.getloadavg()
        self.busy_before = _busy_seconds()
        self.own_before, self.wall_before = _own_seconds()

    def finish(self):
        load_after = os.getloadavg()
        busy = _busy_seconds() - self.busy_before
        own, wall = _own_seconds()
        own -= self.own_before
        wall -= self.wall_before
        others = max(0.0, busy - own)
        others_cores = others / wall if wall > 0 else 0.0
        text = ("load average before {:.2f} {:.2f} {:.2f}, after {:.2f} {:.2f} {:.2f}; other "
                "processes used {:.1f} CPU s in {:.0f} s ({:.2f} cores)").format(
                    *self.load_before, *load_after, others, wall, others_cores)
        warning = None
        if others_cores > WARN_CORES:
            warning = (f"WARNING: other processes used {others_cores:.2f} cores on average while "
                       f"this benchmark ran ({os.cpu_count()} cores): its figures and ratios are "
                       f"not those of a quiet machine")
            text += "\n" + warning
        return {"load_average_before": self.load_before, "load_average_after": load_after,
                "others_cpu_s": others, "wall_s": wall, "others_cores": others_cores,
                "warning": warning, "text": text}
