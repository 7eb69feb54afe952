"""Plot of the reweighting statistics over training, from a Trainer's log_history."""
from __future__ import annotations

from pathlib import Path


def plot_reweighting(log_history: list[dict], path: str | Path) -> Path | None:
    """Three panels over optimizer steps: weight entropy / ESS (1 = uniform), N*max w and N*min w
    (1 = uniform), median loss of up- vs down-weighted samples (with the unweighted mean loss).
    Returns the PNG path, or None when nothing was logged."""
    rows = [row for row in log_history if "reweight/weight_entropy" in row and "step" in row]
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [row["step"] for row in rows]

    def series(key):
        return [row.get(f"reweight/{key}", float("nan")) for row in rows]

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    axes[0].plot(steps, series("weight_entropy"), label="entropy H(w)/log N")
    axes[0].plot(steps, series("ess"), label="ESS / N")
    axes[0].set_ylim(0, 1.05)
    axes[0].set_title("weight spread (1 = uniform)")
    axes[1].plot(steps, series("weight_max"), label="N · max w")
    axes[1].plot(steps, series("weight_min"), label="N · min w")
    axes[1].axhline(1.0, color="grey", lw=0.8, ls="--")
    axes[1].set_title("extreme weights (1 = uniform)")
    axes[2].plot(steps, series("loss_up_q50"), label="median loss, up-weighted")
    axes[2].plot(steps, series("loss_down_q50"), label="median loss, down-weighted")
    axes[2].plot(steps, series("loss_mean"), label="mean loss (unweighted)", color="grey", lw=0.8)
    axes[2].set_title("which samples get the weight")
    for ax in axes:
        ax.set_xlabel("step")
        ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
