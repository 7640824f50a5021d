#!/usr/bin/python3
"""Writes cases.json: the graphs the image golden tests draw (series, per-series options,
request parameters). The values are computed once here and stored, so the Rust test and
graphite-web (golden.py) read exactly the same numbers."""
import json
import math

T0 = 1699999200  # 2023-11-14 22:00:00 UTC, a Tuesday


def series(name, values, start=T0, step=60, **options):
    return {"name": name, "start": start, "step": step,
            "values": [None if v is None else round(v, 3) for v in values],
            "options": options}


n = 60
a = series("servers.web01.cpu.user", [10 + 5 * math.sin(i / 5) for i in range(n)])
b = series("servers.web02.cpu.user", [12 + 4 * math.cos(i / 7) if i % 17 else None for i in range(n)])
cases = [
    {"name": "basic", "params": "title=CPU+usage&vtitle=percent", "series": [a, b]},
    {"name": "stacked", "params": "areaMode=stacked&title=Requests&width=400&height=300",
     "series": [
         series("web01.requests", [20 + 10 * math.sin(i / 6) for i in range(n)]),
         series("web02.requests", [15 + 5 * math.cos(i / 4) if not 30 <= i < 34 else None for i in range(n)]),
         series("web03.requests", [10 + (i % 10) for i in range(n)]),
     ]},
    {"name": "second_y_axis",
     "params": "vtitle=load&vtitleRight=bytes&lineMode=staircase&width=420",
     "series": [
         series("servers.web01.load", [1 + 0.5 * math.sin(i / 3) for i in range(30)], step=120),
         series("servers.web01.net.bytes", [2000 + 900 * math.cos(i / 5) for i in range(30)], step=120,
                secondYAxis="True"),
     ]},
    {"name": "log_binary", "params": "logBase=10&yUnitSystem=binary&lineWidth=2&title=Growth",
     "series": [series("queue.size", [2 ** (i / 3) for i in range(n)])]},
    {"name": "week_dark",
     "params": "width=500&height=220&colorList=%23ff8080,green,%2380c0ff&bgcolor=black&fgcolor=white"
               "&majorGridLineColor=%23606060&minorGridLineColor=%23303030&yUnitSystem=si",
     "series": [
         series("site.visits", [50000 + 30000 * math.sin(i * 2 * math.pi / 24) for i in range(168)], step=3600),
         series("site.signups", [8000 + 3000 * math.cos(i * 2 * math.pi / 24) for i in range(168)], step=3600),
     ]},
    {"name": "options_mix", "params": "areaMode=all&areaAlpha=0.3&yMin=0&yMax=30&minorY=3&lineMode=connected",
     "series": [
         series("a.area", [5 + (i % 7) if i % 11 else None for i in range(n)]),
         series("b.line", [20 + 3 * math.sin(i / 4) for i in range(n)], color="orange", dashed="3.0",
                lineWidth="3.0"),
         series("deploys", [1 if i in (12, 40) else 0 for i in range(n)], drawAsInfinite="True",
                color="red"),
     ]},
    {"name": "graph_only", "params": "graphOnly=true&width=200&height=80&lineWidth=1.5",
     "series": [a]},
    {"name": "no_data", "params": "title=Nothing", "series": []},
    {"name": "right_axis", "params": "yAxisSide=right&title=Right+side&lineMode=connected&hideLegend=true",
     "series": [b, a]},
    {"name": "first_staircase",
     "params": "areaMode=first&lineMode=staircase&drawNullAsZero=true&yStep=5&minorY=2&height=200",
     "series": [
         series("q.depth", [(i * 7) % 23 if i % 9 else None for i in range(40)], step=300),
         series("q.limit", [20 for i in range(40)], step=300),
     ]},
    {"name": "stacked_second_axis", "params": "areaMode=stacked&yMinRight=0&width=400",
     "series": [
         series("a.x", [5 + (i % 5) for i in range(n)]),
         series("a.y", [3 + (i % 3) for i in range(n)]),
         series("b.z", [100 + 10 * math.sin(i / 9) for i in range(n)], secondYAxis="True"),
     ]},
    {"name": "big_font_berlin",
     "params": "fontSize=14&title=Big&hideGrid=true&tz=Europe/Berlin&width=450&height=300&yUnitSystem=msec",
     "series": [series("latency.p99", [3600000 * (2 + math.sin(i / 10)) for i in range(72)], start=T0 - 86400 * 9,
                       step=10800)]},

    {"name": "pie", "params": "title=Share", "pie": [["web01", 10], ["web02", 20], ["web03", 5], ["web04", 1]]},
    {"name": "pie_rotated", "params": "pieLabels=rotated&valueLabels=number&hideLegend=true&width=250&height=250",
     "pie": [["a", 7.5], ["b", 12], ["c", 30], ["d", 3.25]]},
]
with open("cases.json", "w") as f:
    json.dump(cases, f, indent=1)
    f.write("\n")
