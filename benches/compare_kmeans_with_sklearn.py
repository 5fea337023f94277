#!/usr/bin/env python3
"""civica's segment step against scikit-learn's KMeans on the same data.

Usage (from the repository root, after `cargo build`):

    python3 benches/compare_kmeans_with_sklearn.py --civica "$CARGO_TARGET_DIR/debug/civica"

For each n (default 100,000 and 1,000,000 rows; d = 8, k = 8) it writes
seeded Gaussian blobs to Parquet, then times, best of `--repeat` runs:

  - civica: the fit (`fit_seconds` of `segment_quality`: k-means alone) and the whole
    segment step (from the run summary: reading and sorting the features,
    the fit, assignment with the second nearest segment, silhouette on a
    3,000-row sample, Davies-Bouldin, profiles), with `n_init: 1`,
    `tolerance: 1e-4`, `scaling: none`, in float32 and float64;
  - scikit-learn `KMeans(n_clusters=8, n_init=1, init=<same centroids>,
    tol=1e-4, algorithm="lloyd")` `.fit` on the same matrix in float32 and
    float64 (the fit alone: no I/O, no silhouette);
  - the same job as civica's step written with pyarrow, NumPy and
    scikit-learn (read, fit, distances, sampled silhouette, Davies-Bouldin,
    per-segment means).

Both start from the same centroids (scikit-learn's `kmeans_plusplus` on the
data, given to civica as `init` and to scikit-learn as `init=array`) and
use the same relative tolerance, so they run the same Lloyd iterations;
the iteration counts are printed to show it. `--scale` adds a 5,000,000 × 12 run and prints
civica's peak memory (`/usr/bin/time -v`). Both tools use every core.
"""

import argparse
import os
import re
import subprocess
import sys
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def blobs(n, d, k, seed):
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-10, 10, size=(k, d))
    labels = rng.integers(0, k, size=n)
    # Overlapping groups, so that Lloyd needs tens of iterations, as on
    # real citizens, rather than the two of well-separated blobs.
    return centres[labels] + rng.normal(0, 4.0, size=(n, d))


def write_parquet(path, x):
    columns = {"id": np.arange(1, len(x) + 1, dtype=np.int64)}
    for j in range(x.shape[1]):
        columns[f"f{j}"] = x[:, j]
    pq.write_table(pa.table(columns), path)


def civica_pipeline(workdir, data, d, precision, init=None):
    features = ", ".join(f"f{j}" for j in range(d))
    path = os.path.join(workdir, f"segment_{precision}.yaml")
    with open(path, "w") as f:
        f.write(
            "name: bench\n"
            f"sources:\n  points:\n    path: {data}\n    format: {{ type: parquet }}\n"
            "segment:\n  from: points\n  id: id\n"
            f"  features: [{features}]\n  scaling: none\n"
            "  model: { type: kmeans, k: 8, n_init: 1, tolerance: 1.0e-4, seed: 7, "
            f"precision: {precision}"
            + ("" if init is None else ", init: " + repr([list(map(float, c)) for c in init]))
            + " }\n"
            "outputs:\n"
            f"  - {{ table: segment_quality, path: {workdir}/out/quality_{precision}/ }}\n"
        )
    return path


def time_civica(civica, pipeline, quality, measure_memory=False):
    """(whole segment step s, fit s, iterations, peak RSS KiB or None)."""
    cmd = [civica, "run", pipeline]
    if measure_memory:
        cmd = ["/usr/bin/time", "-v"] + cmd
    # The step's time in milliseconds, from the log line civica writes at
    # the end of each step (the summary table rounds to 10 ms).
    env = dict(os.environ, CIVICA_LOG="civica=info", NO_COLOR="1")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    line = next(l for l in out.stderr.splitlines()
                if "step finished" in l and 'kind="segment"' in l)
    step = int(re.search(r"elapsed_ms=(\d+)", line).group(1)) / 1000
    row = pq.read_table(quality).to_pylist()[0]
    rss = None
    if measure_memory:
        rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", out.stderr).group(1))
    return step, row["fit_seconds"], row["iterations"], rss


def time_sklearn(x, init):
    from sklearn.cluster import KMeans

    started = time.perf_counter()
    model = KMeans(n_clusters=8, n_init=1, init=init.astype(x.dtype), tol=1e-4,
                   algorithm="lloyd").fit(x)
    return time.perf_counter() - started, model.n_iter_


def time_sklearn_step(data, init, dtype):
    """The same job as civica's segment step, written the usual Python way:
    read the Parquet, order by id, fit, distances to every centroid (for the
    runner-up and margin), silhouette on a 3,000-row sample, Davies-Bouldin,
    per-segment means of every feature. Writes nothing, as the step does not."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import davies_bouldin_score, silhouette_score

    started = time.perf_counter()
    table = pq.read_table(data)
    ids = table.column("id").to_numpy()
    order = np.argsort(ids, kind="stable")
    x = np.column_stack([table.column(f"f{j}").to_numpy()[order] for j in range(8)]).astype(dtype)
    model = KMeans(n_clusters=8, n_init=1, init=init.astype(dtype), tol=1e-4,
                   algorithm="lloyd").fit(x)
    distances = model.transform(x)
    nearest_two = np.argsort(distances, axis=1)[:, :2]
    margin = distances[np.arange(len(x)), nearest_two[:, 1]] - distances[np.arange(len(x)), nearest_two[:, 0]]
    labels = model.labels_
    silhouette_score(x, labels, sample_size=3000, random_state=7)
    davies_bouldin_score(x, labels)
    sizes = np.bincount(labels, minlength=8)
    [np.bincount(labels, weights=x[:, j], minlength=8) / sizes for j in range(8)]
    assert len(margin) == len(x)
    return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--civica", default=os.path.join(
        os.environ.get("CARGO_TARGET_DIR", "target"), "debug", "civica"))
    parser.add_argument("--workdir", default="/tmp/civica-kmeans-bench")
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--scale", action="store_true",
                        help="also segment 5,000,000 x 12 and report peak memory")
    args = parser.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    import sklearn
    print(f"scikit-learn {sklearn.__version__}, {os.cpu_count()} cores")
    print(f"{'n':>9} {'precision':>9} {'step s':>7} {'fit s':>7} {'it':>4} {'sklearn fit s':>13}"
          f" {'it':>4} {'fit ratio':>9} {'sklearn step s':>14} {'step ratio':>10}"
          f" {'step/sk fit':>11}")
    for n in [int(s) for s in args.sizes.split(",")]:
        x = blobs(n, 8, 8, seed=n)
        data = os.path.join(args.workdir, f"points_{n}.parquet")
        if not os.path.exists(data):
            write_parquet(data, x)
        from sklearn.cluster import kmeans_plusplus
        init, _ = kmeans_plusplus(x, 8, random_state=0)
        for precision, dtype in [("float32", np.float32), ("float64", np.float64)]:
            pipeline = civica_pipeline(args.workdir, data, 8, precision, init)
            quality = os.path.join(args.workdir, "out", f"quality_{precision}", "part-00000.parquet")
            ours = [time_civica(args.civica, pipeline, quality)[:3] for _ in range(args.repeat)]
            step = min(o[0] for o in ours)
            fit = min(o[1] for o in ours)
            iterations = ours[0][2]
            xs = np.ascontiguousarray(x, dtype=dtype)
            theirs = min(time_sklearn(xs, init) for _ in range(args.repeat))
            their_step = min(time_sklearn_step(data, init, dtype) for _ in range(args.repeat))
            print(f"{n:>9} {precision:>9} {step:>7.3f} {fit:>7.3f} {iterations:>4} {theirs[0]:>13.3f}"
                  f" {theirs[1]:>4} {theirs[0] / fit:>8.2f}x {their_step:>14.3f}"
                  f" {their_step / step:>9.2f}x {theirs[0] / step:>10.2f}x", flush=True)
    print("ratios > 1: civica faster. fit ratio: scikit-learn's KMeans.fit / civica's fit")
    print("(fit_seconds of segment_quality). step ratio: the same job in Python (read the")
    print("Parquet, fit, distances for the runner-up, silhouette on 3,000 rows,")
    print("Davies-Bouldin, per-segment means) / civica's whole segment step. step/sk fit:")
    print("scikit-learn's fit alone / civica's whole step, reading included.")
    if args.scale:
        n, d = 5_000_000, 12
        data = os.path.join(args.workdir, f"points_{n}x{d}.parquet")
        if not os.path.exists(data):
            write_parquet(data, blobs(n, d, 8, seed=5))
        pipeline = civica_pipeline(args.workdir, data, d, "float32")
        quality = os.path.join(args.workdir, "out", "quality_float32", "part-00000.parquet")
        step, fit, iterations, rss = time_civica(args.civica, pipeline, quality, measure_memory=True)
        print(f"5,000,000 x 12 float32: segment step {step:.1f} s (fit {fit:.1f} s, {iterations}"
              f" iterations), peak RSS of the whole run {rss / 1024:.0f} MiB")


if __name__ == "__main__":
    sys.exit(main())
