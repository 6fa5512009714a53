"""Examples/sec against batch size, tinygan and PyTorch: runs train_step.py per batch size, plots.

    .venv/bin/python benchmarks/plot_batch_sizes.py --threads 2 --repeats 5
    .venv/bin/python benchmarks/plot_batch_sizes.py --from-json benchmarks/speed_vs_batch.json

Each batch size is measured by its own ``benchmarks/train_step.py --json`` process
(interleaved pairs, median), so one size cannot warm or pollute the next. The raw
results are saved in benchmarks/speed_vs_batch.json (``--json-out``) and ``--from-json`` redraws the
figure from them without measuring again. One file pair per kind of machine: name them
(``--json-out``, ``--out``) after the machine, never over another kind's. The title
names the CPU and the BLAS kernel the figures come from. Matplotlib runs with the Agg backend.
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch-sizes", default="8,16,32,64,128")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "img", "speed_vs_batch.png"))
    ap.add_argument("--json-out", default=os.path.join(HERE, "speed_vs_batch.json"),
                    help="where to save the raw results")
    ap.add_argument("--from-json", default=None, help="redraw from saved results instead of measuring")
    return ap.parse_args(argv)


def measure(batch_size, threads, repeats):
    cmd = [sys.executable, os.path.join(HERE, "train_step.py"), "--json", "--no-memory",
           "--batch-size", str(batch_size), "--threads", str(threads), "--repeats", str(repeats)]
    print("running:", " ".join(cmd[1:]), flush=True)
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(res.stdout)


def plot(results, out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bs = [r["batch_size"] for r in results]
    tg = [r["tinygan_stats"]["examples_per_sec"] for r in results]
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    ax.plot(bs, tg, "o-", color="tab:orange", label=f"tinygan (NumPy {results[0]['numpy']})")
    if all("torch_stats" in r for r in results):
        pt = [r["torch_stats"]["examples_per_sec"] for r in results]
        ax.plot(bs, pt, "s--", color="tab:blue", label=f"PyTorch {results[0]['torch']} (CPU)")
        for b, y, y_pt, r in zip(bs, tg, pt, results):           # the label on the free side of the point
            ax.annotate(f"×{r['ratio_median']:.2f}", (b, y), textcoords="offset points",
                        xytext=(0, 8) if y >= y_pt else (0, -14), ha="center", fontsize=8, color="tab:orange")
    ax.set_xscale("log", base=2)
    ax.set_xticks(bs)
    ax.set_xticklabels([str(b) for b in bs])
    ax.set_ylim(0, 1.15 * ax.get_ylim()[1])            # room above the top point for its ratio
    ax.set_xlabel("batch size")
    ax.set_ylabel("examples / second (median)")
    r0 = results[0]
    loads = sorted(r["load_average"][0] for r in results if "load_average" in r)
    load = f", load average {loads[len(loads) // 2]:.1f}" if loads else ""
    m = r0.get("machine", {})
    loops = f"; compiled loops {m['loops']}" if m.get("loops") else ""
    where = (f"{m['cpu']}, {m['cores']} cores; OpenBLAS {m.get('blas', {}).get('version', '')} "
             f"{m.get('blas', {}).get('kernel', '')}{loops}\n") if m else ""
    ax.set_title(f"DCGAN {r0['image_size']}×{r0['image_size']} training step, {r0['threads']} threads, CPU{load}\n"
                 f"{where}(×: tinygan / PyTorch, median of interleaved pairs)", fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    fig.savefig(out)
    print(f"wrote {out}")


def main(argv=None):
    args = parse_args(argv)
    if args.from_json:
        with open(args.from_json) as f:
            results = json.load(f)
    else:
        results = [measure(int(b), args.threads, args.repeats) for b in args.batch_sizes.split(",")]
        with open(args.json_out, "w") as f:
            json.dump(results, f, indent=1)
        print(f"wrote {args.json_out}")
    for r in results:
        line = f"batch {r['batch_size']:>4}: tinygan {r['tinygan_stats']['examples_per_sec']:6.1f} ex/s"
        if "torch_stats" in r:
            line += (f", PyTorch {r['torch_stats']['examples_per_sec']:6.1f} ex/s, ratio {r['ratio_median']:.2f} "
                     f"({r['ratio_min']:.2f}–{r['ratio_max']:.2f}), load {r.get('load_average', [0])[0]:.1f}")
        print(line)
    plot(results, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
