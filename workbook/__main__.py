"""Command line: python -m workbook {engine,bases,wheelhouse,setup,compose-env,doctor,run,bench,execute,clean}."""

import argparse
import sys

from . import WorkbookError


def cmd_engine(args):
    from . import engine
    c = engine.ensure()
    print(engine.describe(c))
    print("Compose:", " ".join(engine.compose_cmd()))


def cmd_bases(args):
    from . import bases, engine
    c = engine.ensure()
    for name in bases.BASES:
        print(bases.describe(bases.resolve(name, client=c, rebuild=args.rebuild)))


def cmd_wheelhouse(args):
    from . import wheelhouse
    print(wheelhouse.download(force=args.rebuild))


def cmd_setup(args):
    cmd_engine(args)
    cmd_bases(args)
    cmd_wheelhouse(args)


def cmd_compose_env(args):
    from . import bases
    print("# docker/compose variables for this machine (python -m workbook compose-env > .env)")
    for name, ref in bases.image_vars().items():
        print(f"{name}={ref}")


def cmd_doctor(args):
    from . import doctor
    checks = doctor.run_checks()
    print(doctor.as_text(checks))
    return 0 if doctor.all_ok(checks) else 1


def cmd_run(args):
    from . import notebooks
    return notebooks.run_all(args.paths or None)


# The lessons whose measurements are the benchmark (they write build/bench/*.json).
BENCH_NOTEBOOKS = ["notebooks/04_dockerfile_best_practices.ipynb", "notebooks/08_performance.ipynb"]
# The benchmark builds every image from scratch (timings are repeated 5 times, as under
# `make run`, or WORKBOOK_REPEATS times).
BENCH_PARAMETERS = {"cold": "all"}


def cmd_bench(args):
    from . import BUILD, ROOT, notebooks
    from . import bench
    code = notebooks.run_all([ROOT / p for p in BENCH_NOTEBOOKS], parameters=BENCH_PARAMETERS,
                             report_to=BUILD / "bench" / "report.md")
    if code == 0:
        bench.charts()
    for f in sorted((BUILD / "bench").glob("*.json")):
        print(f"  {f.relative_to(ROOT) if f.is_relative_to(ROOT) else f}")
    return code


def cmd_execute(args):
    from . import notebooks
    for path in args.paths:
        notebooks.execute_in_place(path)


def cmd_clean(args):
    from . import engine, resources
    removed = resources.cleanup(engine.client(), owner=None)
    print(resources.describe_removed(removed))


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m workbook", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    for name, fn, hlp in [
        ("engine", cmd_engine, "make sure a Docker engine and Compose v2 answer"),
        ("bases", cmd_bases, "resolve (or build offline) the base images"),
        ("wheelhouse", cmd_wheelhouse, "download the pinned wheels images install from"),
        ("setup", cmd_setup, "engine + bases + wheelhouse"),
        ("compose-env", cmd_compose_env, "print the base images for docker/compose/.env"),
        ("doctor", cmd_doctor, "check everything the notebooks need"),
        ("run", cmd_run, "execute notebooks with papermill into build/executed/"),
        ("bench", cmd_bench, "run the measuring lessons; figures into build/bench/"),
        ("execute", cmd_execute, "re-execute committed notebooks in place (maintainers)"),
        ("clean", cmd_clean, "remove every Docker resource labelled 'workbook'"),
    ]:
        sp = sub.add_parser(name, help=hlp)
        sp.set_defaults(fn=fn)
        if name in ("bases", "wheelhouse", "setup"):
            sp.add_argument("--rebuild", action="store_true", help="ignore what exists")
        if name in ("run", "execute"):
            sp.add_argument("paths", nargs="*")
    args = p.parse_args(argv)
    try:
        return args.fn(args) or 0
    except WorkbookError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
