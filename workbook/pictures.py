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


def stack_parts(client, project):
    """What a running Compose project is, as Docker reports it: its services and its networks."""
    services, networks = {}, {}
    for c in client.containers.list(filters={"label": f"com.docker.compose.project={project}"}):
        svc = services.setdefault(c.labels["com.docker.compose.service"],
                                  {"containers": 0, "health": {}, "networks": set(), "ports": set()})
        svc["containers"] += 1
        status = (c.attrs["State"].get("Health") or {}).get("Status", c.status)
        svc["health"][status] = svc["health"].get(status, 0) + 1
        for name in c.attrs["NetworkSettings"]["Networks"]:
            svc["networks"].add(name)
            if name not in networks:
                networks[name] = bool(client.networks.get(name).attrs.get("Internal"))
        for inside, bound in (c.attrs["NetworkSettings"]["Ports"] or {}).items():
            svc["ports"] |= {(b["HostIp"], int(b["HostPort"]), inside) for b in bound or []}
    return ({k: dict(v, networks=sorted(v["networks"]), ports=sorted(v["ports"])) for k, v in sorted(services.items())},
            dict(sorted(networks.items())))


def compose_stack(services, networks, title):
    """Services as boxes, networks as lanes they join, and the ports published from the host."""
    lanes = {name: 3.2 + 1.6 * i for i, name in enumerate(networks)}
    fig, ax = plt.subplots(figsize=(3.2 + 1.6 * len(networks) + 0.6, 0.9 * len(services) + 1.4))
    top = len(services)
    ax.axvline(0, color="0.6", lw=6, alpha=0.4)
    ax.text(0, top + 0.15, "host\n127.0.0.1", ha="center", va="bottom", fontsize=9)
    for name, internal in networks.items():
        ax.axvline(lanes[name], color="#4c72b0", lw=6, alpha=0.35)
        short = name.split("_", 1)[-1]  # Compose names a network PROJECT_NAME: the title says PROJECT
        ax.text(lanes[name], top + 0.15, short + ("\n(internal)" if internal else "\n(bridge)"),
                ha="center", va="bottom", fontsize=9)
    for row, (name, svc) in enumerate(services.items()):
        y = top - 1 - row
        health = ", ".join(f"{n} {status}" for status, n in sorted(svc["health"].items()))
        ax.add_patch(plt.Rectangle((1.0, y - 0.3), 1.5, 0.6, facecolor="#dde8f5", edgecolor="#4c72b0"))
        ax.text(1.75, y, f"{name} ×{svc['containers']}\n{health}", ha="center", va="center", fontsize=8)
        for net in svc["networks"]:
            ax.plot([2.5, lanes[net]], [y, y], color="#4c72b0", lw=1)
            ax.plot(lanes[net], y, "o", color="#4c72b0")
        for host_ip, host_port, inside in svc["ports"]:
            ax.annotate("", xy=(1.0, y), xytext=(0, y), arrowprops={"arrowstyle": "->", "color": "#c44e52"})
            ax.text(0.5, y + 0.08, f"{host_ip}:{host_port}\n→ {inside}", ha="center", va="bottom",
                    fontsize=7, color="#c44e52")
    ax.set_xlim(-0.6, max(lanes.values(), default=2.6) + 0.8)
    ax.set_ylim(-0.7, top + 0.9)
    ax.axis("off")
    ax.set_title(title)
    return fig


def rollout(timeline, marks, title):
    """Which model version answered each request over time, failures marked: a rolling update seen from outside."""
    versions = sorted({v for _, v in timeline if v is not None})
    rows = {v: i for i, v in enumerate(versions)}
    rows[None] = len(versions)
    fig, ax = plt.subplots(figsize=(10, 0.5 * len(rows) + 1.2))
    for v, y in rows.items():
        ts = [t for t, got in timeline if got == v]
        ax.plot(ts, [y] * len(ts), "x" if v is None else "|", color="#c44e52" if v is None else plt.cm.tab10(y),
                markersize=8, linestyle="none")
    for t, what in marks:
        ax.axvline(t, color="0.4", linestyle="--", lw=1)
        ax.text(t, len(rows) - 0.4, f" {what}", fontsize=8, va="bottom", rotation=0)
    ax.set_yticks(list(rows.values()), [f"model v{v}" if v is not None else "failed" for v in rows])
    ax.set_ylim(-0.6, len(rows) + 0.2)
    ax.set_xlabel("seconds since the traffic started")
    failed = sum(1 for _, v in timeline if v is None)
    ax.set_title(f"{title}: {len(timeline)} requests, {failed} failed")
    return fig


def run_path(parts, steps, title):
    """One `docker run`: client, daemon, runtime and registry as boxes, each API call with its time."""
    fig, ax = plt.subplots(figsize=(10, 3.4))
    boxes = {"client": (0.5, 1.0), "daemon": (4.0, 1.0), "runtime": (7.5, 1.0), "registry": (4.0, 2.6)}
    for name, (x, y) in boxes.items():
        ax.add_patch(plt.Rectangle((x - 1.1, y - 0.4), 2.2, 0.8, facecolor="#dde8f5", edgecolor="#4c72b0"))
        ax.text(x, y, f"{name}\n{parts[name]}", ha="center", va="center", fontsize=8)
    ax.annotate("", xy=(2.9, 1.0), xytext=(1.6, 1.0), arrowprops={"arrowstyle": "->"})
    ax.text(2.25, 1.1, parts["via"], ha="center", va="bottom", fontsize=7)
    ax.annotate("", xy=(6.4, 1.0), xytext=(5.1, 1.0), arrowprops={"arrowstyle": "->"})
    ax.annotate("", xy=(4.0, 2.2), xytext=(4.0, 1.4), arrowprops={"arrowstyle": "->", "linestyle": "--"})
    ax.text(4.1, 1.8, parts["pull"], fontsize=7, va="center")
    ax.text(5.75, 0.8, "creates the\ncontainer's process", ha="center", va="top", fontsize=7)
    total = sum(s for _, s in steps) or 1
    lines = [f"{what}: {s * 1000:.0f} ms ({s / total:.0%})" for what, s in steps]
    ax.text(2.25, 0.45, "\n".join(lines), ha="center", va="top", fontsize=7, family="monospace")
    ax.set_xlim(-0.8, 8.8)
    ax.set_ylim(-0.6, 3.2)
    ax.axis("off")
    ax.set_title(title)
    return fig
