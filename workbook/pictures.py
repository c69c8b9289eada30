"""Pictures of the learner's own engine, drawn with matplotlib from what Docker reports."""

import matplotlib.pyplot as plt

LABELLED = 0.03  # a layer under this share of the image gets no text (it would not fit)


def _mb(n):
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.0f} kB"


def layer_stack(parts, title):
    """One bar of an image's layers, oldest first, each as wide as its bytes; a legend names them all."""
    total = sum(size for _, size in parts) or 1
    fig, ax = plt.subplots(figsize=(10, 1.3))  # the legend goes below, outside the axes
    left, colours = 0, plt.cm.tab20.colors
    for i, (label, size) in enumerate(parts):
        ax.barh(0, size, left=left, color=colours[i % len(colours)], edgecolor="white")
        if size / total >= LABELLED:
            ax.text(left + size / 2, 0, f"{i + 1}\n{_mb(size)}", ha="center", va="center", fontsize=8)
        left += size
    ax.set_xlim(0, total)
    ax.set_yticks([])
    ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda x, _: f"{x / 1e6:.0f} MB"))
    ax.set_title(f"{title}: {_mb(total)} on disk, each layer as wide as what it adds")
    legend = [f"{i + 1}. {label} ({_mb(size)})" for i, (label, size) in enumerate(parts)]
    ax.legend([plt.Rectangle((0, 0), 1, 1, color=colours[i % len(colours)]) for i in range(len(parts))],
              legend, loc="upper left", bbox_to_anchor=(0, -0.45), fontsize=8, frameon=False, ncol=1)
    return fig
