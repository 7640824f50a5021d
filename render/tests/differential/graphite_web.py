#!/usr/bin/python3
"""The reference for the differential test: Debian's graphite-web 1.1.8 serving a whisper
directory on a free loopback port.

    /usr/bin/python3 graphite_web.py WHISPER_DIR WORK_DIR

Prints `READY <port>` on stdout once graphite-web answers, then serves until its stdin
closes (the test process exited, however it exited) or it gets SIGTERM.

How graphite-web is set up (see /work/shared/peers/graphite-web.sh for the deployed shape):
- a settings module generated in WORK_DIR (graphite.settings imports the module named by
  GRAPHITE_SETTINGS_MODULE), TIME_ZONE UTC, DEFAULT_XFILES_FACTOR 0, no memcached (Django's
  DummyCache: every request is computed), the SQLite tag database in WORK_DIR;
- CarbonLink pointed at a stub carbon-cache in this process that holds no points: graphite-web
  1.1.8 has no "disk only" switch, and with CARBONLINK_HOSTS = [] every fetch raises and logs
  a traceback (slow and noisy). An empty cache answer is what a deployed carbon-cache with
  nothing pending gives, so results are the files' own;
- served by the standard library's single-threaded WSGI server (gunicorn is not needed);
  graphite-web's own request handling is unchanged.
"""

import os
import pickle
import socket
import socketserver
import struct
import sys
import threading
import warnings


def write_settings(whisper_dir, work_dir, carbonlink_port):
    # GWDIFF_CLUSTER_SERVERS (comma-separated host:port) federates this node with others
    # (the federation test of bins/tests/integration/federation.rs); empty by default.
    cluster = [s for s in os.environ.get('GWDIFF_CLUSTER_SERVERS', '').split(',') if s]
    os.makedirs(os.path.join(work_dir, 'log'), exist_ok=True)
    with open(os.path.join(work_dir, 'gwdiff_settings.py'), 'w') as f:
        f.write(f"""
SECRET_KEY = 'graphite-rs differential test'
DEBUG = False
ALLOWED_HOSTS = ['127.0.0.1', 'localhost']
TIME_ZONE = 'UTC'
STORAGE_DIR = {work_dir!r}
WHISPER_DIR = {whisper_dir!r}
STANDARD_DIRS = [{whisper_dir!r}]
INDEX_FILE = {os.path.join(work_dir, 'index')!r}
LOG_DIR = {os.path.join(work_dir, 'log')!r}
LOG_RENDERING_PERFORMANCE = False
LOG_CACHE_PERFORMANCE = False
LOG_ROTATION = False
DEFAULT_XFILES_FACTOR = 0
DATABASES = {{'default': {{'NAME': {os.path.join(work_dir, 'graphite.db')!r},
                         'ENGINE': 'django.db.backends.sqlite3',
                         'USER': '', 'PASSWORD': '', 'HOST': '', 'PORT': ''}}}}
MEMCACHE_HOSTS = []
CARBONLINK_HOSTS = ['127.0.0.1:{carbonlink_port}:a']
CARBONLINK_TIMEOUT = 5.0
CLUSTER_SERVERS = {cluster!r}
FUNCTION_PLUGINS = []
TAGDB = 'graphite.tags.localdatabase.LocalDatabaseTagDB'
""")


class EmptyCache(socketserver.BaseRequestHandler):
    """carbon-cache's query port with an empty cache: every request on a connection gets
    `{'datapoints': []}` (or an empty metadata answer)."""

    def handle(self):
        conn = self.request
        while True:
            head = self._recv(4)
            if head is None:
                return
            body = self._recv(struct.unpack('!L', head)[0])
            if body is None:
                return
            request = pickle.loads(body)
            kind = request.get('type') if isinstance(request, dict) else None
            answer = {'datapoints': []} if kind == 'cache-query' else {'error': 'unsupported'}
            data = pickle.dumps(answer, protocol=2)
            conn.sendall(struct.pack('!L', len(data)) + data)

    def _recv(self, n):
        buf = b''
        while len(buf) < n:
            chunk = self.request.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf


class ThreadingTCP(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True


def exit_when_stdin_closes():
    try:
        while sys.stdin.buffer.read(4096):
            pass
    finally:
        os._exit(0)


def main():
    whisper_dir, work_dir = sys.argv[1], sys.argv[2]
    warnings.simplefilter('ignore')
    threading.Thread(target=exit_when_stdin_closes, daemon=True).start()

    cache = ThreadingTCP(('127.0.0.1', 0), EmptyCache)
    threading.Thread(target=cache.serve_forever, daemon=True).start()

    write_settings(whisper_dir, work_dir, cache.server_address[1])
    sys.path.insert(0, work_dir)
    os.environ['GRAPHITE_SETTINGS_MODULE'] = 'gwdiff_settings'
    os.environ['DJANGO_SETTINGS_MODULE'] = 'graphite.settings'

    import django
    django.setup()
    from django.core.management import call_command
    call_command('migrate', interactive=False, verbosity=0)

    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
    from graphite.wsgi import application

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args):
            pass

    server = make_server('127.0.0.1', 0, application, WSGIServer, Quiet)
    print(f'READY {server.server_address[1]}', flush=True)
    server.serve_forever()


if __name__ == '__main__':
    main()
