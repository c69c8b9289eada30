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


SERVICES = {"api": {"containers": 3, "health": {"healthy": 3}, "networks": ["p_backend"], "ports": []},
            "nginx": {"containers": 1, "health": {"healthy": 1}, "networks": ["p_backend", "p_frontend"],
                      "ports": [("127.0.0.1", 8080, "80/tcp")]}}


def test_compose_stack_draws_services_networks_and_published_ports():
    fig = pictures.compose_stack(SERVICES, {"p_backend": True, "p_frontend": False}, "a stack")
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert "api ×3\n3 healthy" in texts and "nginx ×1\n1 healthy" in texts
    assert "backend\n(internal)" in texts and "frontend\n(bridge)" in texts  # without the project's prefix
    assert texts.count("127.0.0.1:8080\n→ 80/tcp") == 1  # only nginx is published
    dots = [line for line in fig.axes[0].lines if line.get_marker() == "o"]
    assert len(dots) == 3  # api on one network, nginx on two


def test_rollout_puts_each_answer_on_its_version_s_row_and_failures_apart():
    timeline = [(0.1, "1"), (0.2, "1"), (0.3, None), (0.4, "2"), (0.5, "1"), (0.6, "2")]
    fig = pictures.rollout(timeline, [(0.25, "docker service update")], "update")
    ax = fig.axes[0]
    points = {tuple(line.get_ydata())[0] if len(line.get_ydata()) else None: list(line.get_xdata())
              for line in ax.lines if line.get_linestyle() == "None"}
    assert points == {0: [0.1, 0.2, 0.5], 1: [0.4, 0.6], 2: [0.3]}
    assert [t.get_text() for t in ax.get_yticklabels()] == ["model v1", "model v2", "failed"]
    assert "6 requests, 1 failed" in ax.get_title() and " docker service update" in [t.get_text() for t in ax.texts]


def test_run_path_boxes_and_timed_calls():
    parts = {"client": "docker-py 7", "daemon": "dockerd 20.10", "runtime": "runc 1.1",
             "registry": "unreachable", "pull": "not needed", "via": "HTTP"}
    fig = pictures.run_path(parts, [("create", 0.03), ("start", 0.09)], "one run")
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert {"client\ndocker-py 7", "daemon\ndockerd 20.10", "runtime\nrunc 1.1", "registry\nunreachable"} <= set(texts)
    assert "create: 30 ms (25%)\nstart: 90 ms (75%)" in texts and "not needed" in texts
