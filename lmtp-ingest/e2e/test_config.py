"""Config file, environment overrides and logging."""

from __future__ import annotations

import json

import pytest

from palisade_e2e import Lmtp, free_port


def test_env_overrides_listen_and_hostname(make_daemon):
    port = free_port()
    d = make_daemon(start=False, env={"PALISADE_LMTP__LISTEN": f"127.0.0.1:{port}",
                                      "PALISADE_LMTP__HOSTNAME": "env.e2e.example"})
    config_port = d.port
    d.port = port  # the env override must win over the config file's listen
    d.start()
    with Lmtp(port) as c:
        assert c.greeting.lines[0].startswith("env.e2e.example"), c.greeting
    try:
        with Lmtp(config_port, timeout=2):
            raise AssertionError("the config file's listen address is served despite the env override")
    except OSError:
        pass


@pytest.mark.embedded_only
def test_env_override_data_dir(make_daemon, tmp_path):
    other = tmp_path / "env-data"
    d = make_daemon(start=False, env={"PALISADE_DATA_DIR": str(other)})
    d.start()
    d.add_user("alice", "alice@example.test")
    assert (other / "palisade.sqlite3").is_file(), "PALISADE_DATA_DIR not honoured"
    assert not (d.data_dir / "palisade.sqlite3").exists()


def test_json_logs_on_stderr(make_daemon):
    d = make_daemon(users={"alice": ["alice@example.test"]}, log={"format": "json"})
    with d.session() as c:
        c.cmd("FOO")
        c.cmd("QUIT")
    d.terminate(60)
    text = d.stderr_path.read_text(errors="replace")
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("===== e2e:")]
    assert lines, "daemon logged nothing at all"
    bad = []
    for ln in lines:
        try:
            assert isinstance(json.loads(ln), dict)
        except (ValueError, AssertionError):
            bad.append(ln)
    assert not bad, f"log.format=json but stderr has non-JSON lines: {bad[:5]}"
    assert (d.dir / "daemon-stdout.log").read_text() == "", "logs must go to stderr, not stdout"


def test_default_log_format_is_json(make_daemon):
    d = make_daemon()  # no [log] section: the default is format = "json"
    d.terminate(60)
    lines = [ln for ln in d.stderr_path.read_text(errors="replace").splitlines()
             if ln.strip() and not ln.startswith("===== e2e:")]
    assert lines, "daemon logged nothing at all"
    bad = []
    for ln in lines:
        try:
            assert isinstance(json.loads(ln), dict)
        except (ValueError, AssertionError):
            bad.append(ln)
    assert not bad, f"default log format must be JSON, stderr has: {bad[:3]}"


def test_text_logs(make_daemon):
    d = make_daemon(log={"format": "text"})
    d.terminate(60)
    lines = [ln for ln in d.stderr_path.read_text(errors="replace").splitlines()
             if ln.strip() and not ln.startswith("===== e2e:")]
    assert lines, "daemon logged nothing at all"
    for ln in lines:
        try:
            json.loads(ln)
        except ValueError:
            continue
        raise AssertionError(f"log.format=text but got JSON: {ln}")


def test_bad_config_fails_fast(make_daemon):
    d = make_daemon(start=False)
    d.config_path.write_text("[lmtp]\nlisten = 12\nmax_recipients = \"many\"\n")
    import subprocess

    from palisade_e2e import DAEMON_BIN
    r = subprocess.run([str(DAEMON_BIN), "--config", str(d.config_path)], capture_output=True, timeout=60,
                       env=d.env)
    assert r.returncode != 0 and r.stderr.strip(), "an invalid config must make the daemon exit non-zero"
