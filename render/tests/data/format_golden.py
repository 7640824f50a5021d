"""Golden outputs of graphite-web 1.1.8's render formats for render/src/format.rs's tests.

Run with Debian's graphite-web installed: /usr/bin/python3 format_golden.py > format_golden.txt
Each line: <case> <content type> <body as hex>.
"""
import os, sys, math
os.environ['DJANGO_SETTINGS_MODULE'] = 'graphite.settings'
import warnings; warnings.filterwarnings('ignore')
import django; django.setup()
from graphite.render import views
from graphite.render.datalib import TimeSeries
import pytz, binascii

def mk():
    a = TimeSeries('servers.web01.cpu.user', 1795288200, 1795288500, 60, [21.0, 16.0, 11.0, 6.0, None])
    b = TimeSeries('disk.used;datacenter=dc1;rack=a1', 1795288200, 1795288500, 60, [1.5, float('nan'), float('inf'), float('-inf'), 0.1])
    b.pathExpression = "seriesByTag('name=disk.used')"
    c = TimeSeries('x,"q"', 1795288200, 1795288500, 60, [1e-05, 1e16, -0.0, 123456789.125, None])
    # /render's series carry the request's xFilesFactor, a float (float(DEFAULT_XFILES_FACTOR)).
    for s in (a, b, c):
        s.xFilesFactor = 0.0
    return [a, b, c]

def out(name, resp):
    body = resp.content
    sys.stdout.write("%s %s %s\n" % (name, resp['Content-Type'], binascii.hexlify(body).decode()))

ro = {'tzinfo': pytz.utc}
out('json', views.renderViewJson(dict(ro), mk()))
out('json_pretty', views.renderViewJson(dict(ro, pretty=True), mk()))
out('json_nonull', views.renderViewJson(dict(ro, noNullPoints=True), mk()))
out('json_mdp2', views.renderViewJson(dict(ro, maxDataPoints=2), mk()[:1]))
out('json_mdp1', views.renderViewJson(dict(ro, maxDataPoints=1), mk()))
out('json_jsonp', views.renderViewJson(dict(ro, jsonp='cb'), mk()[:1]))
out('csv', views.renderViewCsv(dict(ro), mk()))
out('csv_tz', views.renderViewCsv(dict(ro, tzinfo=pytz.timezone('Europe/Paris')), mk()[:1]))
out('raw', views.renderViewRaw(dict(ro), mk()))
out('dygraph', views.renderViewDygraph(dict(ro), mk()))
out('rickshaw', views.renderViewRickshaw(dict(ro), mk()))
out('rickshaw_pretty', views.renderViewRickshaw(dict(ro, pretty=True), mk()[:1]))
out('msgpack', views.renderViewMsgPack(dict(ro), mk()))
out('empty_json', views.renderViewJson(dict(ro), []))
out('empty_dygraph', views.renderViewDygraph(dict(ro), []))
s = mk()
s[0].consolidate(2)
s[0].consolidationFunc = 'sum'
s[0].xFilesFactor = 0.5
out('raw_vpp', views.renderViewRaw(dict(ro), s[:1]))
