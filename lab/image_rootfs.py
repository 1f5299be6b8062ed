"""Root filesystems of the offline lab images, assembled from the host's Debian packages (lab.images packs them).

* busybox (busybox-static): /bin/busybox with one symlink per applet, as the docker image has it; also the
  base layer under nginx, python and pause, so those have a shell for `exec`.
* nginx (nginx): Debian's /usr/sbin/nginx and the shared libraries ldd names, a config that runs in the
  foreground as the docker image does (`nginx -g 'daemon off;'`, port 80, Debian's default index page,
  logs to stdout/stderr, workers as user nginx).
* python (python3): the interpreter, its standard library (no tests, no __pycache__, no static libpython)
  and every library its extension modules need; `python3` and `python` on PATH.

The base layer links /usr/bin, /sbin and /usr/sbin to /bin, so upper layers put programs in /bin (the
paths nginx and python are known by, /usr/sbin/nginx and /usr/bin/python3, still work).
Every file gets one fixed mtime, so that rebuilding from the same packages gives the same layers.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

BUSYBOX_BIN = "/bin/busybox"
NGINX_BIN = "/usr/sbin/nginx"
PYTHON_BIN = "/usr/bin/python3"
INDEX_PAGE = "hello from pybernetes busybox\n"
NGINX_HTML = Path("/usr/share/nginx/html/index.html")
FIXED_MTIME = 946684800  # 2000-01-01: layers from the same packages are byte-identical

# Users the images run as: the docker nginx image's workers are `nginx` (101).
PASSWD = ("root:x:0:0:root:/root:/bin/sh\n"
          "www-data:x:33:33:www-data:/var/www:/bin/false\n"
          "nginx:x:101:101:nginx user:/nonexistent:/bin/false\n"
          "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
GROUP = "root:x:0:\nwww-data:x:33:\nnginx:x:101:\nnogroup:x:65534:\n"

NGINX_CONF = """\
user nginx;
worker_processes auto;
error_log /dev/stderr notice;
pid /run/nginx.pid;

events {
    worker_connections 1024;
}

http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    log_format main '$remote_addr - $remote_user [$time_local] "$request" '
                    '$status $body_bytes_sent "$http_referer" "$http_user_agent"';
    access_log /dev/stdout main;
    sendfile on;
    keepalive_timeout 65;
    include /etc/nginx/conf.d/*.conf;
}
"""

NGINX_DEFAULT_SITE = """\
server {
    listen 80;
    listen [::]:80;
    server_name localhost;
    location / {
        root /usr/share/nginx/html;
        index index.html index.htm;
    }
    error_page 500 502 503 504 /50x.html;
    location = /50x.html {
        root /usr/share/nginx/html;
    }
}
"""

# Parts of the standard library an image never needs (tests, IDLE, Tk, the 25 MB static libpython).
_PY_SKIP = {"test", "idlelib", "tkinter", "turtledemo", "ensurepip", "__pycache__", "lib2to3",
            "config-3.11-x86_64-linux-gnu", "site-packages", "dist-packages"}


def busybox(rootfs: Path) -> None:
    """The base: busybox and its applets, /etc users, /tmp, and the busybox httpd page in /www."""
    _require(BUSYBOX_BIN, "busybox-static")
    bindir = rootfs / "bin"
    bindir.mkdir(parents=True, exist_ok=True)
    shutil.copy2(BUSYBOX_BIN, bindir / "busybox")
    applets = subprocess.run([BUSYBOX_BIN, "--list"], check=True, capture_output=True, text=True).stdout
    for name in sorted(applets.split()):
        if name != "busybox" and not (bindir / name).exists():
            (bindir / name).symlink_to("busybox")
    # /usr/bin and /sbin as links keep absolute paths like /usr/bin/env or /sbin/ip working.
    (rootfs / "usr").mkdir(exist_ok=True)
    for link in ("usr/bin", "sbin", "usr/sbin"):
        p = rootfs / link
        if not p.exists():
            p.symlink_to("/bin")
    for d in ("etc", "tmp", "proc", "sys", "dev", "root", "www", "var/run", "var/tmp", "home"):
        (rootfs / d).mkdir(parents=True, exist_ok=True)
    os.chmod(rootfs / "tmp", 0o1777)
    os.chmod(rootfs / "var/tmp", 0o1777)
    (rootfs / "etc/passwd").write_text(PASSWD)
    (rootfs / "etc/group").write_text(GROUP)
    (rootfs / "etc/nsswitch.conf").write_text("passwd: files\ngroup: files\nhosts: files dns\n")
    (rootfs / "www/index.html").write_text(INDEX_PAGE)


def shared_libraries(binaries: list[Path]) -> list[Path]:
    """The shared libraries (and the dynamic loader) `binaries` need, by ldd, sorted."""
    found: set[Path] = set()
    for b in binaries:
        out = subprocess.run(["ldd", str(b)], capture_output=True, text=True).stdout
        for m in re.finditer(r"(?:=>\s*)?(/\S+)\s+\(0x", out):
            found.add(Path(m.group(1)))
    return sorted(found)


def _copy_libs(rootfs: Path, libs: list[Path]) -> None:
    """Each library at its own path (resolved, plus the name ldd printed as a link when it differs)."""
    for lib in libs:
        real = lib.resolve()
        dest = rootfs / str(real).lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        if not dest.exists():
            shutil.copy2(real, dest)
        alias = rootfs / str(lib).lstrip("/")
        if alias != dest and not alias.exists() and not alias.is_symlink():
            alias.parent.mkdir(parents=True, exist_ok=True)
            alias.symlink_to(real)


def _require(path: str, package: str) -> None:
    if not os.path.exists(path):
        raise RuntimeError(f"{path} not found: the lab images need Debian's {package} package "
                           f"(apt-get install {package}; see deploy/install-deps.sh)")


def nginx(rootfs: Path) -> None:
    """The nginx layer (on top of busybox)."""
    _require(NGINX_BIN, "nginx")
    (rootfs / "bin").mkdir(parents=True, exist_ok=True)
    shutil.copy2(NGINX_BIN, rootfs / "bin/nginx")
    _copy_libs(rootfs, shared_libraries([Path(NGINX_BIN)]))
    etc = rootfs / "etc/nginx"
    (etc / "conf.d").mkdir(parents=True, exist_ok=True)
    shutil.copy2("/etc/nginx/mime.types", etc / "mime.types")
    (etc / "nginx.conf").write_text(NGINX_CONF)
    (etc / "conf.d/default.conf").write_text(NGINX_DEFAULT_SITE)
    html = rootfs / "usr/share/nginx/html"
    html.mkdir(parents=True, exist_ok=True)
    if NGINX_HTML.exists():
        shutil.copy2(NGINX_HTML, html / "index.html")
    else:
        (html / "index.html").write_text("<h1>Welcome to nginx!</h1>\n")
    (html / "50x.html").write_text("<h1>An error occurred.</h1>\n")
    for d in ("var/lib/nginx", "var/cache/nginx", "var/lock", "run", "var/log/nginx"):
        (rootfs / d).mkdir(parents=True, exist_ok=True)
    # As in the docker image: the log files are the container's stdout and stderr.
    (rootfs / "var/log/nginx/access.log").symlink_to("/dev/stdout")
    (rootfs / "var/log/nginx/error.log").symlink_to("/dev/stderr")


def python(rootfs: Path) -> None:
    """The python layer (on top of busybox): /bin/python3.X, its stdlib under /usr/lib, the libraries."""
    real = Path(PYTHON_BIN).resolve()  # /usr/bin/python3.11
    bindir = rootfs / "bin"
    bindir.mkdir(parents=True, exist_ok=True)
    shutil.copy2(real, bindir / real.name)
    for name in ("python3", "python"):
        (bindir / name).symlink_to(real.name)
    # The docker python image's interpreter is /usr/local/bin/python; some manifests name that path.
    local = rootfs / "usr/local/bin"
    local.mkdir(parents=True, exist_ok=True)
    for name in ("python3", "python"):
        (local / name).symlink_to(f"/bin/{real.name}")
    stdlib = Path("/usr/lib") / real.name
    dest = rootfs / "usr/lib" / real.name
    shutil.copytree(stdlib, dest, symlinks=True, ignore=lambda d, names: [n for n in names if n in _PY_SKIP])
    _copy_libs(rootfs, shared_libraries([real, *sorted((stdlib / "lib-dynload").glob("*.so"))]))
    certs = Path("/etc/ssl/certs/ca-certificates.crt")
    if certs.exists():
        (rootfs / "etc/ssl/certs").mkdir(parents=True, exist_ok=True)
        shutil.copy2(certs, rootfs / "etc/ssl/certs/ca-certificates.crt")


def fix_mtimes(rootfs: Path) -> None:
    """One mtime for every entry (links themselves included), for reproducible layers."""
    for dirpath, dirnames, filenames in os.walk(rootfs, topdown=False):
        for name in (*filenames, *dirnames):
            os.utime(os.path.join(dirpath, name), (FIXED_MTIME, FIXED_MTIME), follow_symlinks=False)
    os.utime(rootfs, (FIXED_MTIME, FIXED_MTIME))
