"""Command line: python -m workbook {engine,bases,wheelhouse,setup,compose-env,doctor,run,bench,execute,labs,bundle,load,instructors,audit,clean}."""

import argparse
import sys

from . import WorkbookError

# Each command imports the modules it needs when it runs (no import cycle asks for it): a
# command should not pay for the others', and nbformat alone (notebooks, labs) takes seconds.


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
    from . import engine, stacks, wheelhouse
    print(wheelhouse.download(force=args.rebuild))
    cpu = wheelhouse.arch(engine.client())
    for stack in stacks.STACKS.values():  # lesson 11's stacks have sets of their own: fetched here, not mid-lesson
        stacks.download(stack, cpu)


def cmd_ladder(args):
    from . import engine, service
    client = engine.client()
    print(f"Building the image ladder ({len(service.LADDER)} images the lessons and tests share): "
          "about 3 min the first time, seconds afterwards", flush=True)
    for variant in service.LADDER:
        print(f"  {service.tag(variant):<28}", end=" ", flush=True)
        service.build(client, variant, log="summary")


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
BENCH_NOTEBOOKS = ["notebooks/04_dockerfile_best_practices.ipynb", "notebooks/08_performance.ipynb",
                   "notebooks/11_serving_stacks.ipynb"]
# The benchmark builds every image from scratch (timings are repeated 5 times, as under
# `make run`, or WORKBOOK_REPEATS times), and lesson 11's scoreboard puts 10 s of load on each
# image (its committed run: 2 s).
BENCH_PARAMETERS = {"cold": "all", "load_seconds": 10}


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


def cmd_labs(args):
    from . import ROOT, labs
    if args.check:
        stale = labs.stale()
        for path in stale:
            print(f"out of date: {path.relative_to(ROOT)}")
        return 1 if stale else 0
    for path in labs.generate():
        print(f"wrote {path.relative_to(ROOT)}")


def cmd_bundle(args):
    from . import bases, bundle, engine, images, service
    c = engine.ensure()
    for key in bases.BASES:
        bases.resolve(key, client=c)
    # Missing images are built; existing ones are bundled as they are (`make run` rebuilds them).
    for variant in service.VARIANTS:
        if not images.exists(c, service.tag(variant)):
            service.build(c, variant, log="none")
    if not images.exists(c, "workbook/ui:latest"):
        service.build_ui(c, log="none")
    out = args.out or bundle.default_path(c)
    print(f"Writing {out} ...", flush=True)
    print(bundle.describe(bundle.make(c, out), out))


def cmd_load(args):
    from . import bundle, engine
    c = engine.ensure()
    path = args.path or bundle.default_path(c)
    print(f"Verifying and loading {path} ...", flush=True)
    info = bundle.load(c, path)
    print(f"loaded {len(info['images'])} images and {info['wheels']} wheels; every sha256 and "
          "image id matches the bundle's manifest")


def cmd_instructors(args):
    from . import instructors
    print(instructors.update())
    print(f"updated {instructors.DOC.name}")


def cmd_audit(args):
    from . import audit, engine
    result = audit.audit(args.dockerfile, args.image, engine.client(), compose=args.compose,
                         run=not args.no_run)
    print(result.as_json() if args.json else result.text())
    return result.exit_code(args.fail_on)


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
        ("ladder", cmd_ladder, "build the image ladder the lessons and tests share"),
        ("compose-env", cmd_compose_env, "print the base images for docker/compose/.env"),
        ("doctor", cmd_doctor, "check everything the notebooks need"),
        ("run", cmd_run, "execute notebooks with papermill into build/executed/"),
        ("bench", cmd_bench, "run the measuring lessons; figures into build/bench/"),
        ("execute", cmd_execute, "re-execute committed notebooks in place (maintainers)"),
        ("labs", cmd_labs, "generate labs/ from solutions/ (--check: only compare)"),
        ("bundle", cmd_bundle, "write the classroom kit: images + wheelhouse in one tar"),
        ("load", cmd_load, "load and verify a classroom kit (no network needed)"),
        ("instructors", cmd_instructors, "rewrite INSTRUCTORS.md's timings from build/report.json"),
        ("audit", cmd_audit, "the tutorial's Best Practices Checklist on an image"),
        ("clean", cmd_clean, "remove every Docker resource labelled 'workbook'"),
    ]:
        sp = sub.add_parser(name, help=hlp)
        sp.set_defaults(fn=fn)
        if name in ("bases", "wheelhouse", "setup"):
            sp.add_argument("--rebuild", action="store_true", help="ignore what exists")
        if name == "labs":
            sp.add_argument("--check", action="store_true", help="exit 1 if labs/ is out of date")
        if name == "bundle":
            sp.add_argument("--out", help="where to write it (default build/bundle/workbook-bundle-ARCH.tar)")
        if name == "load":
            sp.add_argument("path", nargs="?", help="the bundle (default build/bundle/workbook-bundle-ARCH.tar)")
        if name in ("run", "execute"):
            sp.add_argument("paths", nargs="*")
        if name == "audit":
            sp.add_argument("image")
            sp.add_argument("--dockerfile", required=True, help="the Dockerfile it was built from")
            sp.add_argument("--compose", help="a compose file whose resource limits apply to it")
            sp.add_argument("--json", action="store_true", help="print JSON instead of a table")
            sp.add_argument("--fail-on", default="high",
                            choices=["info", "low", "medium", "high", "critical", "never"],
                            help="exit 1 when an item this severe or worse fails (default high)")
            sp.add_argument("--no-run", action="store_true",
                            help="judge without running the container")
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
