"""``make test-ui``: Marquez's real web UI, built from its source, browsing a local lineage-intake stack through
``lineage-intake ui-proxy``, driven page by page in headless Debian chromium (issue 14).

Not part of ``make test``: it needs Node.js 18+ with npm (the UI's build, ~10 minutes the first time, then cached)
and Debian's ``chromium`` (``apt-get install chromium``; playwright's own browser download is not used). Steps:

1. Marquez's ``web/`` folder: ``MARQUEZ_WEB`` (a checkout's ``web/``), else Marquez ``MARQUEZ_REF`` (0.51.1) from
   ``MARQUEZ_GIT`` (a local git dir, read with ``git archive``; default: a shallow clone of GitHub), cached under
   ``~/.cache/lineage-intake/ui-check``; ``npm ci`` and ``npm run build`` when ``dist/bundle.js`` is missing.
2. A local stack on a free port, seeded with ``make demo``'s events, a dbt run family and a run whose output has
   tags, columnLineage and lifecycleStateChange facets; ``ui-proxy`` and the UI's own server
   (``node setupProxy.js``, what Marquez's image runs) on free ports, all on 127.0.0.1.
3. ``tests/ui/drive.mjs`` visits every page (``PAGES``); it fails on any /api/ answer that is not 2xx, a failed
   request, a console error or page error (except ``KNOWN_UPSTREAM``: the UI's own missing icons and Google
   fonts when offline), a call a page must make and did not, or a page showing 1970 or missing ``SHOWN`` text.

Everything started is stopped by its pid. Screenshots and the JSON report go to ``--out`` (default: a temp dir).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from lineage_intake_tools.local.front import free_port

from tests.helpers.local_stack import RunningStack, start_stack, stop_stack
from tests.helpers.stack_client import CLI
from tests.helpers.ui_seed import COLUMN_LINEAGE, DATASET_TAGS, LIFECYCLE_CREATE, dbt_run, send_merged, ui_fields_run

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lineage-intake" / "ui-check"
MARQUEZ_GITHUB = "https://github.com/MarquezProject/marquez"
DEFAULT_REF = "0.51.1"
JOB, DATASET = "etl_delivery_7_days", "public.delivery_7_days"  # from the demo: default jobs, food_delivery data
#: Not lineage-intake's doing, and not a request to /api/: Marquez's production build does not copy the icons
#: its index.html names, and the fonts come from Google (unreachable offline).
KNOWN_UPSTREAM = (
    re.compile(r"^https?://[^/]+/img/(favicon\.png|icon\.svg)$"),
    re.compile(r"^https://fonts\.(googleapis|gstatic)\.com/"),
)


def pages(suffix: str) -> list[dict[str, Any]]:
    """Every page of the UI with the /api/v1 calls it must make; drawers open by the URL's ``tableLevelNode``."""
    job_node, ds_node = f"job:default:{JOB}", f"dataset:food_delivery:{DATASET}"
    job_lineage, ds_lineage = f"/lineage/job/default/{JOB}", f"/lineage/dataset/food_delivery/{DATASET}"
    dbt_job = f"dbt-run-jaffle_shop_{suffix}"
    ds_api, ui_api = (
        f"/api/v1/namespaces/food_delivery/datasets/{DATASET}",
        "/api/v1/namespaces/default/datasets/public.ui_fields",
    )
    ui_drawer = "/lineage/dataset/default/public.ui_fields?tableLevelNode=dataset:default:public.ui_fields"
    return [
        {"name": "dashboard", "path": "/", "expect": [
            "/api/v1/namespaces", "/api/v1/stats/lineage-events?period=DAY", "/api/v1/stats/jobs?",
            "/api/v1/stats/datasets?", "/api/v1/stats/sources?", "/api/v1/jobs?"]},
        {"name": "dashboard-week", "path": "/?timeframe=week", "expect": [
            "/api/v1/stats/lineage-events?period=WEEK", "/api/v1/stats/jobs?period=WEEK"]},
        {"name": "jobs", "path": "/jobs", "expect": ["/api/v1/namespaces/default/jobs?"]},
        {"name": "datasets", "path": "/datasets", "expect": ["/api/v1/namespaces/default/datasets?"]},
        {"name": "events", "path": "/events", "expect": ["/api/v1/events/lineage?"]},
        {"name": "lineage-job", "path": job_lineage, "expect": [f"/api/v1/lineage?nodeId={job_node}"]},
        {"name": "lineage-dataset", "path": ds_lineage, "expect": [f"/api/v1/lineage?nodeId={ds_node}"]},
        {"name": "lineage-dbt-parent", "path": f"/lineage/job/default/{dbt_job}?tableLevelNode=job:default:{dbt_job}",
         "expect": [f"/api/v1/namespaces/default/jobs/{dbt_job}"]},
        {"name": "job-drawer", "path": f"{job_lineage}?tableLevelNode={job_node}",
         "expect": [f"/api/v1/namespaces/default/jobs/{JOB}", "/api/v1/jobs/runs/"]},
        {"name": "job-drawer-history", "path": f"{job_lineage}?tableLevelNode={job_node}",
         "expect": [f"/api/v1/namespaces/default/jobs/{JOB}"],
         "actions": [{"click": "RUN HISTORY", "expect": [f"/api/v1/namespaces/default/jobs/{JOB}/runs?"]}]},
        {"name": "dataset-drawer", "path": f"{ds_lineage}?tableLevelNode={ds_node}",
         "expect": [f"/api/v1/namespaces/food_delivery/datasets/{DATASET}"]},
        {"name": "dataset-drawer-versions", "path": f"{ds_lineage}?tableLevelNode={ds_node}",
         "expect": [f"/api/v1/namespaces/food_delivery/datasets/{DATASET}"],
         "actions": [{"click": "VERSION HISTORY", "expect": [f"{ds_api}/versions?"]}]},
        {"name": "ui-fields-versions", "path": ui_drawer,
         "expect": ["/api/v1/namespaces/default/datasets/public.ui_fields"],
         "actions": [{"click": "VERSION HISTORY", "expect": [f"{ui_api}/versions?"]}]},
        {"name": "column-lineage", "path": f"/datasets/column-level/food_delivery/{DATASET}",
         "expect": [f"/api/v1/column-lineage?nodeId={ds_node}"]},
        {"name": "column-lineage-ui-fields", "path": "/datasets/column-level/default/public.ui_fields",
         "expect": ["/api/v1/column-lineage?nodeId=dataset:default:public.ui_fields"]},
        {"name": "search", "path": "/", "expect": ["/api/v1/namespaces"],
         "actions": [{"fill": "delivery", "selector": "#searchBar", "expect": ["/api/v1/search?q=delivery"]}]},
    ]  # fmt: skip


#: Text each page must show: what the seed put there, read by the UI from our answers.
SHOWN = {
    "jobs": [JOB],
    "datasets": ["public.ui_fields", "VIEW"],  # the row's columnLineage link
    "dataset-drawer": ["public.delivery_7_days", "PASSING"],  # its dataQualityAssertions
    "ui-fields-versions": ["CREATE", "pii", "domain:sales"],  # lifecycleState, dataset tags
    "job-drawer-history": ["COMPLETED"],
    "column-lineage-ui-fields": ["total", "order_id"],
    "search": [JOB, DATASET.split(".", 1)[1]],
    "events": ["ui_fields_job"],  # the page opens on today: the demo's events are from 2020
}


def run(command: list[str], cwd: Path) -> None:
    print("$", " ".join(command), f"(in {cwd})", flush=True)
    subprocess.run(command, cwd=cwd, check=True)


def marquez_web() -> Path:
    """Marquez's ``web/`` folder, fetched and built once (README "make test-ui")."""
    given = os.environ.get("MARQUEZ_WEB")
    ref = os.environ.get("MARQUEZ_REF", DEFAULT_REF)
    web = Path(given) if given else CACHE / f"marquez-{ref}" / "web"
    if not web.exists():
        source = os.environ.get("MARQUEZ_GIT", MARQUEZ_GITHUB)
        target = web.parent
        target.mkdir(parents=True, exist_ok=True)
        if Path(source).is_dir():  # web/docs holds a large gif the UI does not need (absent from partial mirrors)
            archive = subprocess.run(
                ["git", "-C", source, "archive", ref, "--", "web", ":(exclude)web/docs"],
                check=True,
                capture_output=True,
            )
            subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
        else:
            with tempfile.TemporaryDirectory() as tmp:
                run(["git", "clone", "--depth", "1", "--branch", ref, source, tmp], cwd=ROOT)
                shutil.copytree(Path(tmp) / "web", web)
    if not (web / "dist" / "bundle.js").exists():
        run(["npm", "ci", "--no-audit", "--no-fund"], cwd=web)
        run(["npm", "run", "build"], cwd=web)
    return web


def driver() -> Path:
    """playwright-core (tests/ui/package-lock.json) and drive.mjs in the cache; reinstalled when the lock changes."""
    home = CACHE / "driver"
    home.mkdir(parents=True, exist_ok=True)
    lock = (HERE / "package-lock.json").read_bytes()
    stale = not (home / "node_modules" / "playwright-core").exists() or (
        not (home / "package-lock.json").exists() or (home / "package-lock.json").read_bytes() != lock
    )
    for name in ("package.json", "package-lock.json", "drive.mjs"):
        shutil.copyfile(HERE / name, home / name)
    if stale:
        run(["npm", "ci", "--no-audit", "--no-fund"], cwd=home)
    return home / "drive.mjs"


@contextmanager
def process(
    command: list[str], cwd: Path, log: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """A child process logging to ``log``, stopped by its pid (SIGTERM, then SIGKILL) on exit."""
    with log.open("wb") as out:
        child = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        yield child
    finally:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def wait_listening(port: int, child: subprocess.Popen[bytes], log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise SystemExit(f"{log.name} exited:\n{log.read_text(errors='replace')}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise SystemExit(f"nothing listens on {port} after {timeout}s:\n{log.read_text(errors='replace')}")


def seed(stack: RunningStack) -> str:
    """``make demo``, a dbt run family and the UI-fields run (dataset tags, columnLineage, lifecycle)."""
    demo = subprocess.run(
        [sys.executable, "-m", "lineage_intake_tools.local.demo", "--env-file", str(stack.env_file)],
        cwd=ROOT, capture_output=True, text=True, env=stack.cli_env(),
    )  # fmt: skip
    if demo.returncode != 0:
        raise SystemExit(f"make demo failed:\n{demo.stdout}\n{demo.stderr}")
    suffix = uuid.uuid4().hex[:6]
    send_merged(stack, dbt_run(stack, suffix), ("COMPLETED", "FAILED"))
    facets = {"tags": DATASET_TAGS, "columnLineage": COLUMN_LINEAGE, "lifecycleStateChange": LIFECYCLE_CREATE}
    when = datetime.now(UTC) - timedelta(minutes=10)
    send_merged(stack, ui_fields_run(stack.namespace, "ui_fields_job", "default", str(uuid.uuid4()), when, facets))
    return suffix


def known_upstream(url: str | None) -> bool:
    return bool(url) and any(p.search(str(url)) for p in KNOWN_UPSTREAM)


def problems(report: dict[str, Any]) -> list[str]:
    """Everything that fails the check, one line each."""
    found = []
    for r in report["requests"]:
        api = r["path"].startswith("/api/")
        if api and not 200 <= r["status"] < 300 and r.get("failure") != "net::ERR_ABORTED":
            found.append(f"{r['page']}: {r['method']} {r['path']} -> {r['status']} {r.get('failure') or ''}")
        elif not api and not known_upstream(r["url"]) and (r["status"] >= 400 or r.get("failure")):
            found.append(f"{r['page']}: {r['method']} {r['url']} -> {r['status']} {r.get('failure') or ''}")
    for c in report["console"]:
        if not known_upstream(c.get("url")):
            found.append(f"{c['page']}: console error: {c['text']} ({c.get('url')})")
    found += [f"{e['page']}: page error: {e['text']}" for e in report["pageErrors"]]
    found += [f"{m['page']}: never called {m['missing']}" for m in report["missing"]]
    for visit in report["visits"]:
        if "1970" in visit["text"]:
            found.append(f"{visit['name']}: shows a 1970 date (a time the API did not know)")
        for text in SHOWN.get(visit["name"], []):
            if text not in visit["text"]:
                found.append(f"{visit['name']}: does not show {text!r}")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, help="screenshots and report.json (default: a new temp dir)")
    parser.add_argument("--chromium", default=os.environ.get("CHROMIUM", "/usr/bin/chromium"))
    args = parser.parse_args(argv)
    for tool in ("node", "npm", "git", args.chromium):
        if not shutil.which(tool):
            print(f"make test-ui needs {tool} (Node.js 18+ with npm; Debian: apt-get install chromium)")
            return 2
    out = args.out or Path(tempfile.mkdtemp(prefix="lineage-intake-ui-"))
    out.mkdir(parents=True, exist_ok=True)
    web, drive = marquez_web(), driver()
    with ExitStack() as stack_exit:
        stack = start_stack(out / "stack")
        stack_exit.callback(stop_stack, stack)
        suffix = seed(stack)
        proxy_port, web_port = free_port(), free_port()
        proxy_log, web_log = out / "ui-proxy.log", out / "marquez-web.log"
        proxy = stack_exit.enter_context(
            process([str(CLI), "ui-proxy", "--port", str(proxy_port), "--env-file", str(stack.env_file)], ROOT,
                    proxy_log, stack.cli_env())
        )  # fmt: skip
        wait_listening(proxy_port, proxy, proxy_log)
        web_env = {
            **os.environ,
            "MARQUEZ_HOST": "127.0.0.1",
            "MARQUEZ_PORT": str(proxy_port),
            "WEB_PORT": str(web_port),
        }
        server = stack_exit.enter_context(process(["node", "setupProxy.js"], web, web_log, web_env))
        wait_listening(web_port, server, web_log)
        print(f"Marquez web UI on http://127.0.0.1:{web_port} -> ui-proxy :{proxy_port} -> {stack.url}", flush=True)
        answer = subprocess.run(
            ["node", str(drive), f"http://127.0.0.1:{web_port}", str(out), json.dumps(pages(suffix)), args.chromium],
            cwd=drive.parent, capture_output=True, text=True, timeout=1800,
        )  # fmt: skip
        if answer.returncode != 0:
            print(answer.stdout[-4000:], answer.stderr[-4000:])
            return 1
        report = json.loads(answer.stdout)
        (out / "report.json").write_text(json.dumps(report, indent=1))
        if stack.read_token in proxy_log.read_text(errors="replace"):
            print("FAIL: the read token appears in the ui-proxy log")
            return 1
    api_calls = [r for r in report["requests"] if r["path"].startswith("/api/")]
    print(f"{len(report['visits'])} pages, {len(api_calls)} /api/v1 requests; screenshots and report.json in {out}")
    for r in api_calls:
        print(f"  {r['status']} {r['method']} {r['path'][:150]}  [{r['page']}]")
    found = problems(report)
    for line in found:
        print("FAIL:", line)
    print("make test-ui: OK" if not found else f"make test-ui: {len(found)} problem(s)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
