"""``redisai exporter`` (src/redisai/exporter.py): Prometheus metrics scraped from real servers, in-process and
through the console script, and the Grafana dashboard and README table that name them."""

import json
import queue
import re
import subprocess
import sys
import threading
import urllib.request
import uuid
from pathlib import Path

import model_fixtures as mf
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families
from server import ROOT, free_port, wait_for

from redisai import cli, exporter

CONSOLE_SCRIPT = Path(sys.executable).parent / "redisai"
if not CONSOLE_SCRIPT.exists():
    CONSOLE_SCRIPT = ROOT / ".venv" / "bin" / "redisai"
DASHBOARD = ROOT / "docs" / "grafana" / "redisai.json"


def scrape(url: str) -> dict:
    """{(sample name, frozenset of labels): value} of one /metrics scrape (also checks it parses)."""
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.status == 200
        text = response.read().decode()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: dict, name: str, **labels):
    """The one sample `name` whose labels include `labels`; None if there is none."""
    found = [v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= ls]
    assert len(found) <= 1, f"{name} {labels}: {len(found)} samples"
    return found[0] if found else None


def target(server) -> exporter.Target:
    return exporter.Target(f"127.0.0.1:{server.port}", {"host": "127.0.0.1", "port": server.port})


@pytest.fixture
def start_exporter():
    handles = []

    def start(targets, **kwargs):
        handle = exporter.start(targets, "127.0.0.1", 0, **kwargs)
        handles.append(handle)
        return handle

    yield start
    for handle in handles:
        handle.stop()


def store_and_run(client, key: str, runs: int) -> None:
    client.execute_command("AI.MODELSTORE", key, "ONNX", "CPU", "TAG", "v1", "BLOB", mf.onnx_mul())
    tensor = f"{key}:in"
    client.execute_command("AI.TENSORSET", tensor, "FLOAT", 2, "VALUES", 2, 3)
    for _ in range(runs):
        client.execute_command("AI.MODELEXECUTE", key, "INPUTS", 2, tensor, tensor, "OUTPUTS", 1, f"{key}:out")


def test_model_runs_queues_and_an_unreachable_server(server, start_exporter):
    client = server.client()
    key = f"exporter:{uuid.uuid4().hex}"
    runs = 7
    store_and_run(client, key, runs)
    live, dead = target(server), exporter.Target("unreachable", {"host": "127.0.0.1", "port": free_port()})
    handle = start_exporter([live, dead])
    mine = {"server": live.name, "key": key}

    samples = wait_for(lambda: (s := scrape(handle.url)) and value(s, "redisai_model_calls_total", **mine) == runs
                       and s, message=f"{runs} calls of {key}")
    assert value(samples, "redisai_up", server=live.name) == 1
    assert value(samples, "redisai_up", server=dead.name) == 0
    assert value(samples, "redisai_model_runs_total", **mine) == runs
    assert value(samples, "redisai_model_errors_total", **mine) == 0
    assert value(samples, "redisai_model_samples_total", **mine) == 2 * runs  # each input is a batch of 2
    assert value(samples, "redisai_model_batch_size_mean", **mine) == 2
    assert value(samples, "redisai_model_info", **mine, type="model", backend="ONNX", device="CPU", tag="v1") == 1
    assert value(samples, "redisai_model_memory_bytes", **mine) > 0
    p50 = value(samples, "redisai_model_duration_seconds", **mine, quantile="0.5")
    p99 = value(samples, "redisai_model_duration_seconds", **mine, quantile="0.99")
    assert 0 < p50 <= p99 < 60  # seconds, not µs
    assert 0 < value(samples, "redisai_model_duration_seconds_sum", **mine) < 60
    assert value(samples, "redisai_model_duration_seconds_count", **mine) == runs

    cpu = {"server": live.name, "device": "CPU"}
    for name in ("redisai_queue_length", "redisai_queue_waiting", "redisai_queue_running",
                 "redisai_queue_refused_total", "redisai_queue_started_newest_first_total",
                 "redisai_queue_packed_total"):
        assert value(samples, name, **cpu) is not None, name
    assert value(samples, "redisai_queue_started_total", **cpu) >= runs
    assert value(samples, "redisai_queue_wait_seconds", **cpu, quantile="0.5") is not None
    assert value(samples, "redisai_queue_wait_seconds", **cpu, quantile="0.99") is not None
    for name, labels in (("redisai_runs_refused_queue_full_total", {}), ("redisai_runs_timed_out_total", {}),
                         ("redisai_runs_skipped_total", {"reason": "client_gone"}),
                         ("redisai_runs_skipped_total", {"reason": "deadline"})):
        assert value(samples, name, server=live.name, **labels) is not None, name
    assert value(samples, "redisai_info", server=live.name, version="1.2.7") == 1
    assert value(samples, "redisai_backend_info", server=live.name, framework="onnxruntime") == 1
    assert value(samples, "redisai_backend_memory_limit_bytes", server=live.name) is not None
    assert value(samples, "redisai_models_truncated", server=live.name) == 0
    assert value(samples, "redisai_executors_running", server=live.name) >= 1
    assert value(samples, "redisai_executor_restarts_total", server=live.name, cause="crash") == 0
    assert value(samples, "redisai_executors_sandbox", server=live.name, layer="no_new_privs") in (0, 1)
    assert value(samples, "redisai_scrape_duration_seconds", server=dead.name) >= 0

    # The unreachable server gives only up and the scrape's duration; everything is a documented metric.
    assert {n for (n, ls) in samples if ("server", dead.name) in ls} == {"redisai_up",
                                                                        "redisai_scrape_duration_seconds"}
    assert {n for n, _ in samples} <= exporter.sample_names()
    assert all(("server", live.name) in ls or ("server", dead.name) in ls for _, ls in samples)


def test_truncation_and_reconnection(new_server, start_exporter):
    instance = new_server()
    client = instance.client()
    for i in range(3):
        client.execute_command("AI.MODELSTORE", f"m{i}", "ONNX", "CPU", "BLOB", mf.onnx_mul())
    client.execute_command("AI.SCRIPTSET", "s", "CPU", "SOURCE", "def f(a):\n    return a\n")
    handle = start_exporter([target(instance)], max_keys=2)

    samples = scrape(handle.url)
    assert value(samples, "redisai_models", type="model") == 3
    assert value(samples, "redisai_models", type="script") == 1
    assert value(samples, "redisai_models_truncated") == 1
    assert sorted(dict(ls)["key"] for (n, ls) in samples if n == "redisai_model_info") == ["m0", "m1"]

    instance.stop()
    wait_for(lambda: value(scrape(handle.url), "redisai_up") == 0, message="up 0 once the server is gone")
    instance.start()
    samples = wait_for(lambda: (s := scrape(handle.url)) and value(s, "redisai_up") == 1 and s,
                       message="up 1 once the server is back")
    assert value(samples, "redisai_models", type="model") is not None


def test_warmup_fields_when_present_and_absent():
    fields = exporter.parse_info("# ai_warmup\r\nai_RedisAI_version:1.2.7\r\nai_warmup_pending:2\r\n"
                                 "ai_warmup_done:5\r\nai_warmup_failed:1\r\nai_warmup_skipped:0\r\n"
                                 "ai_queue_GPU:0_length:4\r\nai_queue_GPU:0_bthread_n2_used_cpu_total:1.5\r\n")
    samples = exporter._Samples("s")
    exporter.info_samples(samples, fields)
    assert samples.by_name["redisai_warmup_pending"] == [(("s",), 2)]
    warmups = {labels[1]: v for labels, v in samples.by_name["redisai_warmups_total"]}
    assert warmups == {"done": 5, "failed": 1, "skipped": 0}
    assert samples.by_name["redisai_queue_length"] == [(("s", "GPU:0"), 4)]
    assert samples.by_name["redisai_queue_worker_cpu_seconds_total"] == [(("s", "GPU:0", "2"), 1.5)]

    absent = exporter._Samples("s")
    exporter.info_samples(absent, exporter.parse_info("ai_RedisAI_version:1.2.7\r\n"))
    assert "redisai_warmup_pending" not in absent.by_name and "redisai_warmups_total" not in absent.by_name


def test_executor_fields():
    fields = exporter.parse_info("ai_executors_sandbox:on\r\nai_executors_seccomp:1\r\nai_executors_landlock_abi:0\r\n"
                                 "ai_executors_no_new_privs:1\r\nai_executors_memory_bound:rlimit_data\r\n"
                                 "ai_executors_running:2\r\nai_executors_rss:1000\r\n"
                                 "ai_executors_restarts_crash:3\r\nai_executors_restarts_deadline:1\r\n"
                                 "ai_executors_quarantined:1\r\n")
    samples = exporter._Samples("s")
    exporter.info_samples(samples, fields)
    layers = {labels[1]: v for labels, v in samples.by_name["redisai_executors_sandbox"]}
    assert layers == {"seccomp": 1, "landlock": 0, "no_new_privs": 1, "memory_bound": 1}
    restarts = {labels[1]: v for labels, v in samples.by_name["redisai_executor_restarts_total"]}
    assert restarts == {"crash": 3, "deadline": 1}
    assert samples.by_name["redisai_executors_running"] == [(("s",), 2)]
    assert samples.by_name["redisai_executors_rss_bytes"] == [(("s",), 1000)]
    assert samples.by_name["redisai_executors_quarantined_total"] == [(("s",), 1)]


def _stderr_lines(process: subprocess.Popen) -> "queue.Queue[str]":
    lines: queue.Queue[str] = queue.Queue()

    def read():
        for line in process.stderr:
            lines.put(line)
        lines.put("")

    threading.Thread(target=read, daemon=True).start()
    return lines


def test_console_script(server):
    client = server.client()
    key = f"exporter:cli:{uuid.uuid4().hex}"
    store_and_run(client, key, 3)
    address = f"redis://127.0.0.1:{server.port}"
    process = subprocess.Popen([str(CONSOLE_SCRIPT), "exporter", "--listen", "127.0.0.1:0", address],
                               stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        lines = _stderr_lines(process)
        line = lines.get(timeout=120)
        match = re.search(r"serving (http://\S+/metrics) for ", line)
        assert match, line
        samples = scrape(match[1])
        label = f"127.0.0.1:{server.port}"  # host:port, not the address as given
        assert value(samples, "redisai_up", server=label) == 1
        assert value(samples, "redisai_model_calls_total", server=label, key=key) == 3
        assert process.poll() is None
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_cli_addresses_take_the_connection_flags():
    args = cli.build_parser().parse_args(["-a", "secret", "--user", "ops", "exporter", "redis://h1:7000",
                                          "h2:7001", "rediss://u:p@h3:7002/0", "unix:///tmp/r.sock", "h4"])
    targets = [cli._exporter_target(args, address) for address in args.servers]
    assert [t.name for t in targets] == ["h1:7000", "h2:7001", "h3:7002", "/tmp/r.sock", "h4:6379"]
    one, two, three, four, five = (t.kwargs for t in targets)
    assert (one["host"], one["port"], one["password"], one["username"]) == ("h1", 7000, "secret", "ops")
    assert (two["host"], two["port"], two["password"]) == ("h2", 7001, "secret")
    assert (three["host"], three["password"], three["username"], three.get("ssl")) == ("h3", "p", "u", True)
    assert four["unix_socket_path"] == "/tmp/r.sock"
    assert (five["host"], five["port"]) == ("h4", 6379)
    args = cli.build_parser().parse_args(["-p", "7005", "exporter"])
    assert args.servers == [] and args.listen == "127.0.0.1:9597" and args.max_keys == 500
    assert exporter.parse_listen(":9597") == ("0.0.0.0", 9597)
    assert exporter.parse_listen("[::1]:0") == ("::1", 0)
    with pytest.raises(ValueError):
        exporter.parse_listen("9597")
    assert cli.main(["exporter", "--listen", "nowhere"]) == 2
    assert cli.main(["exporter", "h:notaport"]) == 2


def _exprs(node):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "expr":
                yield v
            else:
                yield from _exprs(v)
    elif isinstance(node, list):
        for item in node:
            yield from _exprs(item)


def test_dashboard_names_only_exported_metrics():
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    exprs = list(_exprs(dashboard["panels"]))
    assert len(exprs) >= len(dashboard["panels"])
    named = {name for expr in exprs for name in re.findall(r"\bredisai_\w+", expr)}
    assert named and named <= exporter.sample_names(), named - exporter.sample_names()
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert all(re.search(r"\bredisai_\w+", t["expr"]) for t in panel["targets"]), panel["title"]
    titles = " | ".join(p["title"].lower() for p in dashboard["panels"])
    for word in ("queue depth", "queue wait", "refused", "run time", "runs per second", "batch size", "warm-up",
                 "memory"):
        assert word in titles, word


def test_readme_documents_every_metric():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Monitoring", 1)[1].split("\n## ", 1)[0]
    table = set(re.findall(r"^\| `(redisai_\w+)` \|", section, re.MULTILINE))
    assert table == exporter.family_names()
    types = dict(re.findall(r"^\| `(redisai_\w+)` \| (\w+) \|", section, re.MULTILINE))
    assert types == {name: kind for name, (kind, _, _) in exporter.METRICS.items()}


def secured(instance, password: str) -> None:
    """Sets requirepass now and takes it away at the end of the test (the fixture stops the server
    without one)."""
    instance.client().config_set("requirepass", password)
    stop = instance.stop

    def stop_without_password(*args, **kwargs):
        if instance.alive():
            redis.Redis(port=instance.port, password=password).config_set("requirepass", "")
        stop(*args, **kwargs)

    instance.stop = stop_without_password


def _families(text: str, parser=text_string_to_metric_families) -> dict:
    families = {}
    for family in parser(text):
        assert family.name not in families, f"{family.name} twice: two families collapsed into one name"
        families[family.name] = family
    return families


def _check_families(families: dict, counter_suffixes=("_total",)) -> None:
    """Every family has the type the exporter declares, and only samples of its kind: a counter's `_total`, a
    gauge's own name, a summary's quantiles (each with a `quantile` label) and `_sum` and `_count`."""
    declared = {name.removesuffix("_total") if kind == "counter" else name: (kind, labels)
                for name, (kind, labels, _) in exporter.METRICS.items()}
    assert set(families) <= set(declared), set(families) - set(declared)
    for name, family in families.items():
        kind, labels = declared[name]
        assert family.type == kind, (name, family.type)
        assert family.samples, name
        for sample in family.samples:
            allowed = {"counter": {name + s for s in counter_suffixes}, "gauge": {name},
                       "summary": {name, name + "_sum", name + "_count"}}[kind]
            assert sample.name in allowed, (name, sample.name)
            expected = {"server", *labels} | ({"quantile"} if kind == "summary" and sample.name == name else set())
            assert set(sample.labels) == expected, (sample.name, sample.labels)
            assert sample.name in exporter.sample_names() or kind == "counter" and sample.name.endswith("_created")


def test_whole_output_follows_prometheus_conventions(server, start_exporter):
    """The whole /metrics text, parsed by prometheus_client (text format 0.0.4 and OpenMetrics): one family per
    name, each of the declared type, run times a summary with quantiles, _sum and _count."""
    from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families

    client = server.client()
    key = f"exporter:conventions:{uuid.uuid4().hex}"
    store_and_run(client, key, 3)
    client.execute_command("AI.SCRIPTSET", f"{key}:script", "CPU", "SOURCE", "def f(a):\n    return a\n")
    handle = start_exporter([f"127.0.0.1:{server.port}"])
    with urllib.request.urlopen(handle.url, timeout=30) as response:
        families = _families(response.read().decode())
    _check_families(families)
    duration = families["redisai_model_duration_seconds"]
    mine = [s for s in duration.samples if s.labels.get("key") == key]
    assert sorted(s.name for s in mine) == ["redisai_model_duration_seconds"] * 3 + [
        "redisai_model_duration_seconds_count", "redisai_model_duration_seconds_sum"]
    assert {s.labels.get("quantile") for s in mine} == {"0.5", "0.95", "0.99", None}
    assert next(s.value for s in mine if s.name.endswith("_count")) == 3
    assert families["redisai_queue_wait_seconds"].type == "summary"
    assert families["redisai_model_calls"].type == "counter"

    request = urllib.request.Request(handle.url, headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.headers["Content-Type"].startswith("application/openmetrics-text")
        strict = _families(response.read().decode(), openmetrics_families)
    _check_families(strict)
    assert set(strict) == set(families)


def test_start_takes_the_cli_s_addresses(new_server, start_exporter, tmp_path):
    """exporter.start() as the README shows it: address strings, as the command line takes them, or Targets."""
    socket = tmp_path / "redis.sock"
    instance = new_server(config=("--unixsocket", str(socket)))
    port = instance.port
    secured(instance, "s3cret")
    handle = start_exporter([f"127.0.0.1:{port}", f"url=redis://:s3cret@127.0.0.1:{port}/0",
                             f"sock=unix://:s3cret@{socket}",
                             exporter.Target("target", {"host": "127.0.0.1", "port": port, "password": "s3cret"})])
    samples = scrape(handle.url)
    assert value(samples, "redisai_up", server=f"127.0.0.1:{port}") == 0  # no password: refused
    assert value(samples, "redisai_up", server="url") == 1
    assert value(samples, "redisai_up", server="sock") == 1
    assert value(samples, "redisai_up", server="target") == 1

    assert exporter.target("h:7000").kwargs == {"host": "h", "port": 7000}
    assert exporter.target("h").kwargs == {"host": "h", "port": 6379}
    assert exporter.target("[::1]:7000").name == "[::1]:7000"
    assert exporter.target("[::1]").kwargs == {"host": "::1", "port": 6379}
    secure = exporter.target("rediss://ops:pw@h3:7002/2")
    assert (secure.name, secure.kwargs["ssl"], secure.kwargs["username"], secure.kwargs["db"]) == ("h3:7002", True,
                                                                                                  "ops", 2)
    assert exporter.target("redis://:pw@h:1", {"password": "flag"}).kwargs["password"] == "pw"
    assert exporter.target("redis://h:1", {"password": "flag"}).kwargs["password"] == "flag"
    assert exporter.target(exporter.Target("redis://:pw@h:1", {})).name == "redis://h:1"
    for bad in ("h:notaport", "http://h:1", ""):
        with pytest.raises(ValueError):
            exporter.target(bad)
    with pytest.raises(ValueError, match="two servers labelled h:1"):
        exporter.start(["h:1", "redis://h:1"])


def test_no_password_reaches_metrics_or_logs(new_server):
    """`redisai exporter redis://:secret@...`: the server label is host:port (or the name given), in the scrape
    and in the banner and log lines on stderr, for a server that answers and one that refuses the password."""
    instance = new_server()
    secured(instance, "s3cretpw")
    good = f"redis://:s3cretpw@127.0.0.1:{instance.port}"
    wrong = f"wrong=redis://default:wr0ngpw@127.0.0.1:{instance.port}"
    process = subprocess.Popen([str(CONSOLE_SCRIPT), "exporter", "--listen", "127.0.0.1:0", good, wrong,
                                "-a", "fl4gpw"], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        lines = _stderr_lines(process)
        banner = lines.get(timeout=120)
        match = re.search(r"serving (http://\S+/metrics) for (.*)", banner)
        assert match, banner
        assert match[2] == f"127.0.0.1:{instance.port}, wrong"
        with urllib.request.urlopen(match[1], timeout=30) as response:
            text = response.read().decode()
        samples = {(s.name, frozenset(s.labels.items())): s.value
                   for family in text_string_to_metric_families(text) for s in family.samples}
        assert value(samples, "redisai_up", server=f"127.0.0.1:{instance.port}") == 1
        assert value(samples, "redisai_up", server="wrong") == 0
        wait_for(lambda: process.poll() is None, message="still serving")
    finally:
        process.terminate()
        process.wait(timeout=30)
    logged = banner + "".join(iter(lambda: lines.get(timeout=30), ""))
    assert "wrong: down" in logged  # the refused password was logged, by label
    for secret in ("s3cretpw", "wr0ngpw", "fl4gpw"):
        assert secret not in text and secret not in logged, secret
