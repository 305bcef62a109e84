#!/usr/bin/env python3
"""Trainer benchmark: tilestage's ViT training against its PyTorch twin, like for like.

For each configuration (model preset, tile size, hence token count), in one run on the same
cores, alternating the contenders:
  - tilestage, 1 rank x THREADS threads (bench/trainer/trainer_bench): samples/s, achieved
    GFLOP/s against the sgemm rate measured in the same process, attention's share;
  - PyTorch (Debian python3-torch) on OpenBLAS (Debian's libopenblas0-pthread, chosen for the
    peer process only through LD_LIBRARY_PATH), the same model and objective
    (bench/trainer/torch_vit.py: the MAE with its decoder and masking), same threads, same
    global batch; the peer reports the BLAS it loaded, and its parameter and FLOP counts must
    equal tilestage's or the run stops;
  - both again data parallel over 2 ranks x THREADS/2 threads (mpirun; DDP over gloo),
    tilestage with each allreduce mode (overlap, blocking, and auto, the default, which tries
    both and keeps the faster: it must not lose to either);
  - with --reference-blas, for the first configuration, PyTorch on Debian's netlib reference BLAS
    as a second line;
  - for the first configuration, tilestage fed by the staging loader from a `tilestage synth`
    store: the data stall per step.
Prints the load average before and after and warns when other processes used the cores.
Measures; asserts nothing. Results also go to OUT/results.json.

  bench/trainer/run_trainer_bench.py [--build build/release] [--out /tmp/tilestage-trainer-bench]
      [--threads 2] [--configs tiny-64,small-256,tiny-1024] [--reference-blas]
"""
import argparse
import json
import os
import subprocess
import sys
import sysconfig

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from load_watch import LoadWatch  # noqa: E402

PRESETS = {"tiny": (192, 12, 3), "small": (384, 12, 6)}
# name: preset, tile side (3 channels, patch 8), global batch, timed steps
CONFIGS = {
    "tiny-64": ("tiny", 64, 32, 10),
    "small-256": ("small", 128, 16, 4),
    "tiny-1024": ("tiny", 256, 8, 3),
}
LIBDIR = "/usr/lib/" + (sysconfig.get_config_var("MULTIARCH") or "x86_64-linux-gnu")
OPENBLAS = LIBDIR + "/openblas-pthread"
REFERENCE_BLAS = LIBDIR + "/blas:" + LIBDIR + "/lapack"
MPIRUN = ["mpirun", "--allow-run-as-root", "--oversubscribe", "--bind-to", "none", "-np", "2"]


def last_json(cmd, env=None):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       env={**os.environ, **(env or {})})
    if r.returncode != 0:
        sys.exit(f"failed ({r.returncode}): {' '.join(cmd)}\n{r.stdout}")
    lines = [l for l in r.stdout.splitlines() if l.startswith("{")]
    return json.loads(lines[-1])


def blas_env(libdir, threads):
    return {"LD_LIBRARY_PATH": libdir, "OPENBLAS_NUM_THREADS": str(threads)}


def run_config(a, name):
    preset, size, batch, steps = CONFIGS[name]
    dim, depth, heads = PRESETS[preset]
    model = ["--objective", a.objective, "--dim", str(dim), "--depth", str(depth), "--heads",
             str(heads), "--patch", "8", "--size", str(size), "--channels", "3",
             "--batch", str(batch), "--steps", str(steps), "--warmup", "1"]
    half = max(1, a.threads // 2)
    trainer = os.path.join(a.build, "bench/trainer/trainer_bench")
    peer = ["/usr/bin/python3", os.path.join(HERE, "torch_vit.py"), "bench"] + model
    loader_fed = []
    first = name == a.configs.split(",")[0]
    if first:
        store = os.path.join(a.out, "store")
        subprocess.run(["rm", "-rf", store], check=True)
        subprocess.run([os.path.join(a.build, "tools/tilestage"), "synth", "--out", store,
                        "--samples", str(batch * (steps + 2)), "--shape", f"3,{size},{size}",
                        "--classes", "10", "--codec", "lz4"], check=True, stdout=subprocess.DEVNULL)
        loader_fed = ["--store", store]
    contenders = {
        "tilestage_1rank": lambda: last_json(
            [trainer, "--threads", str(a.threads), "--modes", "overlap"] + model + loader_fed),
        "pytorch_openblas_1rank": lambda: last_json(
            peer + ["--threads", str(a.threads)], blas_env(OPENBLAS, a.threads)),
        "tilestage_2ranks": lambda: last_json(
            MPIRUN + [trainer, "--threads", str(half), "--modes", "overlap,blocking,auto",
                      "--repeats", "2"] + model),
        "pytorch_openblas_2ranks": lambda: last_json(
            peer + ["--ranks", "2", "--threads", str(half)], blas_env(OPENBLAS, half)),
    }
    if a.reference_blas and first:
        contenders["pytorch_reference_1rank"] = lambda: last_json(
            peer + ["--threads", str(a.threads), "--steps", "1"],
            blas_env(REFERENCE_BLAS, a.threads))
    runs = {k: [] for k in contenders}
    for round_ in range(a.rounds):
        order = list(contenders) if round_ % 2 == 0 else list(reversed(contenders))
        for k in order:
            print(f"  {name}: {k} (round {round_ + 1})", flush=True)
            runs[k].append(contenders[k]())
    return {"name": name, "preset": preset, "tile": [3, size, size], "global_batch": batch,
            "runs": runs}


def samples_per_s(run):
    if run.get("peer") == "pytorch":
        return run["samples_per_s"]
    return max(run[m]["samples_per_s"] for m in ("overlap", "blocking", "auto") if m in run)


def best(runs, key=samples_per_s):
    return max(runs, key=key)


def check_like_for_like(result):
    ts = result["runs"]["tilestage_1rank"][0]
    for k, runs in result["runs"].items():
        if not k.startswith("pytorch"):
            continue
        pt = runs[0]
        if (pt["parameters"], pt["forward_flops_per_sample"]) != (
                ts["parameters"], ts["forward_flops_per_sample"]):
            sys.exit(f"{result['name']}: {k} is not the same model: {pt['parameters']} parameters "
                     f"and {pt['forward_flops_per_sample']:.0f} forward FLOPs per sample against "
                     f"tilestage's {ts['parameters']} and {ts['forward_flops_per_sample']:.0f}")
        want = "openblas" if "openblas" in k else "/blas/"
        if not any(want in lib for lib in pt["blas"]):
            sys.exit(f"{result['name']}: {k} did not load the BLAS it names ({want}): "
                     f"{pt['blas']}; install libopenblas0-pthread (tools/setup.sh --bench)")


def report(result, threads):
    r = result["runs"]
    ts1 = best(r["tilestage_1rank"])
    ts2 = best(r["tilestage_2ranks"], key=lambda j: j["auto"]["samples_per_s"])
    pt1 = best(r["pytorch_openblas_1rank"])
    pt2 = best(r["pytorch_openblas_2ranks"])
    half = max(1, threads // 2)
    o = ts1["overlap"]
    sgemm = ts1["sgemm_gflops_mlp_shape"]
    print(f"\n{result['name']}: {ts1['objective']} {result['preset']} "
          f"({ts1['model']['dim']}/{ts1['model']['depth']}/{ts1['model']['heads']}), tile "
          f"{'x'.join(map(str, result['tile']))}, {ts1['tokens']} tokens, "
          f"{ts1['parameters'] / 1e6:.2f}M parameters, {ts1['train_gflop_per_sample']:.2f} "
          f"GFLOP/sample (train), global batch {result['global_batch']}")
    rows = [(f"tilestage 1 rank x {threads} threads", o["samples_per_s"]),
            (f"PyTorch+OpenBLAS 1 rank x {threads} threads", pt1["samples_per_s"])]
    if "pytorch_reference_1rank" in r:
        rows.append((f"PyTorch+reference BLAS 1 rank x {threads} threads",
                     best(r["pytorch_reference_1rank"])["samples_per_s"]))
    for mode in ("overlap", "blocking", "auto"):
        label = f"tilestage 2 ranks x {half} thread(s), {mode}"
        if mode == "auto":
            label += f" (kept {ts2['auto']['mode_used']})"
        rows.append((label, ts2[mode]["samples_per_s"]))
    rows.append((f"PyTorch+OpenBLAS DDP 2 ranks x {half} thread(s)", pt2["samples_per_s"]))
    for label, v in rows:
        print(f"  {label:52s} {v:9.2f} samples/s")
    ratios = {
        "tilestage_over_pytorch_1rank": o["samples_per_s"] / pt1["samples_per_s"],
        "tilestage_over_pytorch_2ranks": ts2["auto"]["samples_per_s"] / pt2["samples_per_s"],
        "auto_over_blocking": ts2["auto"]["samples_per_s"] / ts2["blocking"]["samples_per_s"],
        "auto_over_overlap": ts2["auto"]["samples_per_s"] / ts2["overlap"]["samples_per_s"],
        "threads_over_ranks": o["samples_per_s"] / ts2["auto"]["samples_per_s"],
        "achieved_over_sgemm": o["achieved_gflops"] / sgemm,
    }
    targets = {"tilestage_over_pytorch_1rank": 1.5, "tilestage_over_pytorch_2ranks": 1.5,
               "auto_over_blocking": 1.0, "auto_over_overlap": 1.0, "threads_over_ranks": 0.9,
               "achieved_over_sgemm": 0.7}
    print(f"  achieved {o['achieved_gflops']:.1f} GFLOP/s against sgemm {sgemm:.1f} GFLOP/s at "
          f"{'x'.join(map(str, ts1['sgemm_shape']))} ({ts1['gemm_kernel']}); attention "
          f"(QK^T, softmax, PV) {100 * o['attention_share']:.1f}% of compute")
    if "loader_fed" in ts1:
        lf = ts1["loader_fed"]
        print(f"  loader-fed: {lf['samples_per_s']:.2f} samples/s, data stall "
              f"{100 * lf['stall_fraction']:.2f}% of the step")
    for k, v in ratios.items():
        mark = "ok" if v >= targets[k] else "BELOW TARGET"
        print(f"  {k:40s} {v:6.3f}  (target >= {targets[k]}) {mark}")
    result["ratios"] = ratios


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build", default="build/release")
    p.add_argument("--out", default="/tmp/tilestage-trainer-bench")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--configs", default=",".join(CONFIGS))
    p.add_argument("--objective", default="mae", choices=["mae", "classify"])
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--reference-blas", action="store_true")
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    watch = LoadWatch()
    results = [run_config(a, name) for name in a.configs.split(",")]
    load = watch.finish()
    for result in results:
        check_like_for_like(result)
        report(result, a.threads)
    print("\n" + load["text"])
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump({"configs": results, "load": load, "threads": a.threads}, f, indent=1)


if __name__ == "__main__":
    main()
