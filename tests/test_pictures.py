"""Pictures drawn from the engine's own data (workbook.pictures)."""

import matplotlib

matplotlib.use("Agg")

from workbook import pictures  # noqa: E402


def test_layer_stack_draws_each_layer_as_wide_as_its_size():
    fig = pictures.layer_stack([("FROM base", 100_000_000), ("RUN pip install", 50_000_000),
                                ("COPY app.py", 2_000)], "three layers")
    ax = fig.axes[0]
    assert [round(p.get_width()) for p in ax.patches] == [100_000_000, 50_000_000, 2_000]
    assert [round(p.get_x()) for p in ax.patches] == [0, 100_000_000, 150_000_000]  # one bar, in order
    texts = [t.get_text() for t in ax.texts]
    assert texts == ["1\n100.0 MB", "2\n50.0 MB"]  # the sliver is too thin for a label
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["1. FROM base (100.0 MB)", "2. RUN pip install (50.0 MB)", "3. COPY app.py (2 kB)"]
    assert "150.0 MB on disk" in ax.get_title()


def test_layer_stack_of_a_real_image(client, production):
    history = [h for h in reversed(production.history()) if h["Size"]]
    fig = pictures.layer_stack([(h["CreatedBy"][-40:], h["Size"]) for h in history], "production")
    ax = fig.axes[0]
    assert len(ax.patches) == len(history)
    assert abs(sum(p.get_width() for p in ax.patches) - production.attrs["Size"]) <= 0.01 * production.attrs["Size"]
