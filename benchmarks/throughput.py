"""Training throughput of ``BoostMISClassifier.fit`` against a bare PyTorch loop.

What is measured
----------------
ours
    Wall time of the whole ``BoostMISClassifier(max_epochs=E, random_state=0,
    device=...).fit(X, y)`` call, validation and setup included.
bare
    Wall time of a plain PyTorch loop, setup included, with the same module class
    and sizes (``MLPClassifierModule``), the estimator's default hyper-parameters
    and augmentation strengths and the same steps (``ceil(n_unlabeled / (mu
    B))`` per epoch, ``E`` epochs).
    A step indexes ``B`` labeled and ``mu B`` unlabeled rows of device tensors
    (``torch.randperm`` orders), adds the weak noise, forwards the weak unlabeled
    view under ``no_grad`` (train mode), takes the softmax and the adaptive
    threshold mask (with its per-row confidence flags), forwards ``cat([labeled
    weak, unlabeled strong])`` (strong = feature dropout + noise), adds the two
    cross-entropies, runs backward and the SGD step (Nesterov momentum, weight
    decay on weights only, per-step cosine LR) and the EMA update
    (``torch._foreach_lerp_`` on parameters, buffers copied). It leaves out the
    estimator's bookkeeping: pseudo-label memory, history, callbacks.

The two are interleaved (ours, bare, ours, ...) for ``--repeats`` rounds after a
one-epoch warm-up of each; the table gives the median (min-max) of each.
``samples/s = steps * B * (1 + 2 mu) / time`` counts the forward samples of a
step: ``B`` labeled rows and ``mu B`` unlabeled rows twice (weak and strong
view), the last, shorter batch of an epoch as full. ``ratio = bare time / ours
time``; >= 0.8 means ``fit`` is at most 25% slower. Torch's default thread count
is kept unless ``--threads`` is given; on a shared machine (load average near
the core count) multi-threaded CPU timings are dominated by scheduling.
"""

import argparse
import copy
import datetime
import math
import os
import platform
import re
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import sklearn
import skorch
import torch
import torch.nn.functional as F
from _common import RESULTS, write_section

from sklearn_boostmis import BoostMISClassifier
from sklearn_boostmis.augment import default_augmentations
from sklearn_boostmis.modules import MLPClassifierModule as MLP
from sklearn_boostmis.modules import no_weight_decay_names, resolve_device

P = BoostMISClassifier().get_params()  # hyper-parameters shared by both runs
WEAK, STRONG = default_augmentations(ndim=2)  # the "auto" views of feature vectors
PRESETS = "5207:2048:500,1797:64:50"  # MESCC-sized; digits-sized (quickstart)


def make_data(n_samples, n_features, n_labeled, n_classes=2):
    """Gaussian blobs; all but ``n_labeled`` random rows get the label -1."""
    rng = np.random.RandomState(0)
    centers = rng.normal(size=(n_classes, n_features))
    y = rng.randint(n_classes, size=n_samples)
    X = (centers[y] + rng.normal(size=(n_samples, n_features))).astype(np.float32)
    y_partial = np.full(n_samples, -1)
    labeled = rng.permutation(n_samples)[:n_labeled]
    y_partial[labeled] = y[labeled]
    return X, y_partial


def run_ours(X, y, epochs, device):
    """``fit``; returns the number of training steps."""
    clf = BoostMISClassifier(max_epochs=epochs, random_state=0, device=device).fit(X, y)
    return sum(len(h["batches"]) for h in clf.history_)


def run_bare(X, y, epochs, device):
    """The same training steps in plain PyTorch; returns the number of steps."""
    torch.manual_seed(0)
    B, mu, decay = P["batch_size"], P["mu"], P["ema_decay"]
    alpha, settled = P["alpha"], P["alpha"] + P["beta"]
    lab = y != -1
    x_l_all = torch.as_tensor(X[lab], device=device)
    y_l_all = torch.as_tensor(y[lab], device=device)
    x_u_all = torch.as_tensor(X[~lab], device=device)
    n_l, n_u = len(x_l_all), len(x_u_all)
    scale = torch.cat([x_l_all, x_u_all]).std(dim=0, unbiased=False)
    weak_scale, strong_scale = WEAK.noise * scale, STRONG.noise * scale

    model = MLP(X.shape[1], int(y.max()) + 1).to(device).train()
    teacher = copy.deepcopy(model).requires_grad_(False).eval()
    exempt = no_weight_decay_names(model)
    named = list(model.named_parameters())
    groups = [{"params": [p for n, p in named if n not in exempt]},
              {"params": [p for n, p in named if n in exempt], "weight_decay": 0.0}]
    opt = torch.optim.SGD(groups, lr=P["lr"], momentum=P["momentum"],
                          nesterov=True, weight_decay=P["weight_decay"])
    t_params = list(teacher.parameters())
    s_params = [p.detach() for p in model.parameters()]
    buffers = list(zip(teacher.buffers(), model.buffers(), strict=True))

    total = epochs * math.ceil(n_u / (mu * B))
    lab_stream = torch.cat([torch.randperm(n_l, device=device)
                            for _ in range(math.ceil(total * B / n_l))])
    confident = torch.zeros(n_u, dtype=torch.bool, device=device)
    count_prev = torch.zeros((), device=device)
    t_max, settled_eps = max(1, epochs // 2), torch.tensor(settled, device=device)
    k = 0
    for epoch in range(epochs):
        for idx in torch.randperm(n_u, device=device).split(mu * B):
            for group in opt.param_groups:
                group["lr"] = P["lr"] * math.cos(7 * math.pi * k / (16 * total))
            il = lab_stream[k * B:(k + 1) * B]
            x_l, x_u = x_l_all[il], x_u_all[idx]
            x_l_weak = x_l + torch.randn_like(x_l) * weak_scale
            with torch.no_grad():
                logits_weak = model(x_u + torch.randn_like(x_u) * weak_scale)
                max_p, pseudo = F.softmax(logits_weak, dim=1).max(dim=1)
            if epoch >= t_max:
                eps = settled_eps
            else:
                ratio = confident.sum() / count_prev.clamp_min(1.0)
                eps = alpha * torch.where(count_prev > 0, ratio, 1.0).clamp(0.0, 1.0)
            mask = max_p >= eps
            confident[idx] = max_p >= settled
            strong = (x_u * (torch.rand_like(x_u) >= STRONG.dropout)
                      + torch.randn_like(x_u) * strong_scale)
            logits = model(torch.cat([x_l_weak, strong]))
            sup = F.cross_entropy(logits[:B], y_l_all[il])
            per_row = F.cross_entropy(logits[B:], pseudo, reduction="none")
            loss = sup + P["lambda_u"] * (per_row * mask).sum() / len(idx)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            k += 1
            with torch.no_grad():
                torch._foreach_lerp_(t_params, s_params,
                                     1.0 - min(decay, (1.0 + k) / (10.0 + k)))
                for t_buf, s_buf in buffers:
                    t_buf.copy_(s_buf)
        count_prev = confident.sum().float()
    float(loss.detach())  # a host read, like fit's transduction read-back
    return k


def bench(config, epochs, repeats, device):
    """Interleaved timings of both; returns one table row."""
    X, y = make_data(*config)
    run_ours(X, y, 1, device), run_bare(X, y, 1, device)  # warm-up
    times, steps = {run_ours: [], run_bare: []}, set()
    for _ in range(repeats):
        for fn in times:
            start = time.perf_counter()
            steps.add(fn(X, y, epochs, device))
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            times[fn].append(time.perf_counter() - start)
    assert len(steps) == 1, f"different step counts: {steps}"
    (n_steps,) = steps
    samples = n_steps * P["batch_size"] * (1 + 2 * P["mu"])
    t_ours, t_bare = (statistics.median(times[fn]) for fn in (run_ours, run_bare))
    span = {fn: f"{min(t):.3f}-{max(t):.3f}" for fn, t in times.items()}
    return [*config, n_steps,
            f"{t_ours:.3f} ({span[run_ours]})", f"{t_bare:.3f} ({span[run_bare]})",
            f"{samples / t_ours:,.0f}", f"{samples / t_bare:,.0f}",
            f"{n_steps / t_ours:.1f}", f"{n_steps / t_bare:.1f}",
            f"**{t_bare / t_ours:.2f}**"]


HEADER = ("n_samples|n_features|n_labeled|steps|ours s|bare s|ours samples/s|"
          "bare samples/s|ours steps/s|bare steps/s|ratio bare/ours").split("|")


def table(rows):
    lines = [HEADER, ["---:"] * len(HEADER), *rows]
    return "\n".join("| " + " | ".join(map(str, line)) + " |" for line in lines)


def machine(device):
    info = Path("/proc/cpuinfo")
    cpus = re.findall(r"model name\s*: (.*)", info.read_text() if info.exists() else "")
    name = (torch.cuda.get_device_name(device) if device.startswith("cuda")
            else (cpus or [platform.processor() or "CPU"])[0])
    return (f"{platform.platform()}, Python {platform.python_version()}, "
            f"nproc {os.cpu_count()}, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), skorch {skorch.__version__}, "
            f"scikit-learn {sklearn.__version__}; device: {device} ({name})")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-samples", type=int, help="default 5207 (MESCC train)")
    parser.add_argument("--n-features", type=int, help="default 2048")
    parser.add_argument("--n-labeled", type=int, help="default 500")
    parser.add_argument("--configs", default=PRESETS,
                        help="comma-separated n_samples:n_features:n_labeled, used "
                        f"unless an --n-* option is given (default {PRESETS})")
    parser.add_argument("--epochs", type=int, default=5, help="default 5")
    parser.add_argument("--repeats", type=int, default=3, help="default 3")
    parser.add_argument("--device", default="auto", help="default: CUDA if any")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument("--quick", action="store_true", help="1 epoch, 1 repeat")
    parser.add_argument("--write", action="store_true", help=f"update {RESULTS.name}")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.repeats = 1, 1
    if args.threads:
        torch.set_num_threads(args.threads)
    if any(v is not None for v in (args.n_samples, args.n_features, args.n_labeled)):
        configs = [(args.n_samples or 5207, args.n_features or 2048,
                    args.n_labeled or 500)]
    else:
        configs = [tuple(map(int, c.split(":"))) for c in args.configs.split(",")]
    device = resolve_device(args.device)

    load = os.getloadavg()[0]  # before the runs: other processes only
    rows = [bench(c, args.epochs, args.repeats, device) for c in configs]
    busy = load > 0.5 * os.cpu_count() and device == "cpu"
    text = "\n".join([
        "## Training throughput: `fit` against a bare PyTorch loop", "",
        f"Command: `python {' '.join(['benchmarks/throughput.py', *argv])}`  ",
        f"Machine: {machine(device)}  ",
        f"Date: {datetime.date.today().isoformat()}; load average at start "
        f"{load:.1f}" + (" (**shared machine: CPU timings noisy**)" if busy else ""),
        "", f"{args.epochs} epochs, B={P['batch_size']}, mu={P['mu']}, 2 classes, "
        "`MLPClassifierModule` (hidden 256), times in s: median (min-max) of "
        f"{args.repeats} interleaved runs, setup included. samples/s = steps x "
        "B(1 + 2 mu) / time (labeled, weak unlabeled and strong unlabeled forward "
        "samples); ratio = bare time / ours time (>= 0.8: `fit` at most 25% slower). "
        "The module docstring of `benchmarks/throughput.py` says what the bare "
        "loop does.", "", table(rows)])
    print(text)
    if args.write:
        write_section("throughput", text)
        print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()
