"""The gateway's configuration renderer: what compose runs (`python -m gateway render`) gives a
configuration nginx accepts, bad edge settings stop it with a clear message, and the template
and the renderer cannot drift apart."""

from __future__ import annotations

import subprocess
import sys

import pytest

from database.build import ROOT
from gateway.config import TEMPLATE, EdgeSettings, render
from ops.launch import nginx_binary

RENDER = ["--postgrest", "127.0.0.1:3000", "--postgrest-admin", "127.0.0.1:3001", "--auth", "127.0.0.1:8000",
          "--listen", "127.0.0.1:8080"]


def render_cli(tmp_path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway", "render", "--out", str(tmp_path / "kitsu.conf"),
                           "--cache-dir", str(tmp_path / "cache"), "--access-log", str(tmp_path / "access.log"),
                           *RENDER], cwd=ROOT, env={"PATH": "/usr/bin:/bin", **env}, capture_output=True, text=True)


def test_the_rendered_configuration_is_accepted_by_nginx(tmp_path):
    result = render_cli(tmp_path, {"CORS_ALLOWED_ORIGINS": "https://a.example, http://localhost:5173",
                                   "GATEWAY_MAX_BODY": "2m", "GATEWAY_HSTS": "1", "GATEWAY_CACHE_SECONDS": "0"})
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "kitsu.conf").read_text()
    assert '"https://a.example" $http_origin;' in text and '"http://localhost:5173" $http_origin;' in text
    assert "client_max_body_size 2m;" in text and "proxy_no_cache $kitsu_signed_in 1;" in text
    main = tmp_path / "nginx.conf"
    main.write_text(f"pid {tmp_path}/nginx.pid;\nevents {{}}\nhttp {{\n"
                    + "".join(f"  {kind}_temp_path {tmp_path}/{kind};\n"
                              for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
                    + f"  include {tmp_path}/kitsu.conf;\n}}\n")
    binary = nginx_binary()
    assert binary, "nginx is not installed (Debian package nginx)"
    check = subprocess.run([binary, "-t", "-p", str(tmp_path), "-c", str(main), "-e", str(tmp_path / "error.log")],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


@pytest.mark.parametrize(("variable", "value", "message"), [
    ("CORS_ALLOWED_ORIGINS", "https://a.example/path", "is not an origin"),
    ("CORS_ALLOWED_ORIGINS", "*", "is not an origin"),
    ("GATEWAY_MAX_BODY", "lots", "is not an nginx size"),
    ("GATEWAY_CACHE_SECONDS", "-1", "gateway_cache_seconds"),
    ("GATEWAY_PORT", "http", "gateway_port"),
])
def test_bad_edge_settings_stop_the_renderer_with_a_clear_message(tmp_path, variable, value, message):
    result = render_cli(tmp_path, {variable: value})
    assert result.returncode != 0 and message in result.stderr
    assert not (tmp_path / "kitsu.conf").exists()


def test_blank_settings_mean_the_defaults(monkeypatch):
    for variable in ("GATEWAY_PORT", "GATEWAY_MAX_BODY", "GATEWAY_CACHE_SECONDS", "GATEWAY_HSTS"):
        monkeypatch.setenv(variable, "")
    edge = EdgeSettings()
    settings = (edge.gateway_port, edge.gateway_max_body, edge.gateway_cache_seconds, edge.gateway_hsts)
    assert settings == (8080, "1m", 5, False)


def test_a_placeholder_without_a_value_or_a_value_without_a_placeholder_fails():
    options = dict(listen="1", postgrest="2", postgrest_admin="3", auth="4", cache_dir="5", access_log="6")
    with pytest.raises(ValueError, match="GATEWAY_TYPO"):
        render(EdgeSettings(), template=TEMPLATE.read_text() + "# ${GATEWAY_TYPO}\n", **options)
    with pytest.raises(ValueError, match="CORS_ORIGIN_MAP"):
        render(EdgeSettings(), template=TEMPLATE.read_text().replace("${CORS_ORIGIN_MAP}", ""), **options)
