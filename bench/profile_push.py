#!/usr/bin/env python3
"""bench/profile_push.py - where push->ready time goes, from kernel tracepoints.

Reads `perf script -F comm,pid,tid,time,event,trace` output of a
`perf record -k mono -a` session that saw nxbench push samples (their raw
lines give each sample's t0 and seen on the same CLOCK_MONOTONIC axis) and
bare `sbx cold` bwrap runs, and prints the median / p90 of each phase.

Usage: profile_push.py PERF_TXT NXBENCH_RAW [NXBENCH_RAW...]

Events used: sched_process_exec / _fork / _exit and sys_exit_listen (about
+3 ms on a 42 ms start here); optionally sys_enter_unshare and
sys_enter_write (fd 3, small: nx-init's "ready\\n" on its status pipe),
which cost far more (about +20 ms: every syscall on the host then takes the
traced path), so the scripts do not record them.
"""
import bisect
import re
import statistics
import sys
from collections import defaultdict

LINE = re.compile(r'^\s*(?P<comm>.+?)\s+(?P<pid>\d+)/(?P<tid>\d+)\s+(?P<time>\d+\.\d+):\s+'
                  r'(?P<event>[\w:]+):\s*(?P<trace>.*)$')


def parse(path):
    ev = []
    with open(path, errors='replace') as f:
        for line in f:
            m = LINE.match(line)
            if not m:
                continue
            t = float(m['time']) * 1e6  # us, CLOCK_MONOTONIC
            e = m['event'].split(':')[-1]
            tr = m['trace']
            d = {'t': t, 'comm': m['comm'].strip(), 'pid': int(m['pid']), 'e': e}
            if e == 'sched_process_exec':
                d['file'] = re.search(r'filename=(\S+)', tr).group(1)
            elif e == 'sched_process_fork':
                d['child'] = int(re.search(r'child_pid=(\d+)', tr).group(1))
            elif e == 'sys_enter_write':
                mm = re.search(r'count: (0x[0-9a-f]+)', tr)
                d['count'] = int(mm.group(1), 16) if mm else -1
            ev.append(d)
    ev.sort(key=lambda d: d['t'])
    TIMES[:] = [d['t'] for d in ev]
    return ev


TIMES = []


def first(ev, lo, hi, pred):
    """the first event in [lo, hi] that pred accepts"""
    for i in range(bisect.bisect_left(TIMES, lo), len(ev)):
        d = ev[i]
        if d['t'] > hi:
            return None
        if pred(d):
            return d
    return None


def stats(v):
    if not v:
        return 'n=0'
    s = sorted(v)
    p90 = s[min(len(s) - 1, int(0.9 * len(s) + 0.999999) - 1)]
    return f'median={statistics.median(s):7.2f} p90={p90:7.2f} n={len(s)}'


def nx_samples(ev, raws):
    phases = defaultdict(list)
    names = []

    def add(name, a, b):
        if a is None or b is None:
            return
        if name not in names:
            names.append(name)
        phases[name].append((b - a) / 1e3)

    for raw in raws:
        for line in open(raw):
            f = line.split('\t')
            if len(f) < 8:
                continue
            mode = f[0]
            total, call, launched, supready = map(float, f[1:5])
            t0, seen = float(f[6]), float(f[7])
            p = lambda n: f'{mode}: {n}'
            sp = first(ev, t0, seen, lambda d: d['e'] == 'sched_process_exec' and d['file'].endswith('/nx-spawn'))
            if not sp:
                continue
            S = sp['pid']
            hf = first(ev, sp['t'], seen, lambda d: d['e'] == 'sched_process_fork' and d['pid'] == S)
            un = first(ev, sp['t'], seen, lambda d: d['e'] == 'sys_enter_unshare' and d['pid'] == S)
            um = first(ev, sp['t'], seen, lambda d: d['e'] == 'sched_process_exec' and d['file'].endswith('/newuidmap'))
            gm = first(ev, sp['t'], seen, lambda d: d['e'] == 'sched_process_exec' and d['file'].endswith('/newgidmap'))
            umx = um and first(ev, um['t'], seen, lambda d: d['e'] == 'sched_process_exit' and d['pid'] == um['pid'])
            gmx = gm and first(ev, gm['t'], seen, lambda d: d['e'] == 'sched_process_exit' and d['pid'] == gm['pid'])
            hx = hf and first(ev, hf['t'], seen, lambda d: d['e'] == 'sched_process_exit' and d['pid'] == hf['child'])
            bw = first(ev, sp['t'], seen, lambda d: d['e'] == 'sched_process_exec' and d['pid'] == S and d['file'].endswith('/bwrap'))
            ini = first(ev, sp['t'], seen, lambda d: d['e'] == 'sched_process_exec' and d['file'] == '/nx/nx-init')
            app = first(ev, sp['t'], seen, lambda d: d['e'] == 'sched_process_exec' and d['file'].startswith('/app/'))
            lis = app and first(ev, app['t'], seen, lambda d: d['e'] == 'sys_exit_listen' and d['pid'] == app['pid'])
            rdy = ini and lis and first(ev, lis['t'], seen, lambda d: d['e'] == 'sys_enter_write' and d['pid'] == ini['pid'] and d['count'] == 6)
            call_t, started_t, ready_t = t0 + call * 1e3, t0 + launched * 1e3, t0 + supready * 1e3
            t = lambda d: d['t'] if d else None
            add(p('total (t0 -> poller sees ready)'), t0, seen)
            add(p(' 1 SQL call (t0 -> call returned)'), t0, call_t)
            add(p(' 2 call returned -> nx-spawn exec (wake, converge pass, launch)'), call_t, t(sp))
            add(p(' 3 nx-spawn exec -> mapping helper forked (fds, signals, 3 v1 cgroup joins)'), t(sp), t(hf))
            add(p(' 4 helper forked -> ids mapped (unshare USER|NS, newuidmap || newgidmap)'), t(hf), t(hx))
            add(p('    4a newuidmap exec -> exit'), t(um), t(umx))
            add(p('    4b newgidmap exec -> exit'), t(gm), t(gmx))
            if un:
                add(p('    4c unshare entered -> both helpers exited'), t(un), max(t(umx) or 0, t(gmx) or 0) or None)
            add(p(' 5 ids mapped -> bwrap exec (stage mounts, rlimits, seccomp compile)'), t(hx), t(bw))
            add(p(' 6 bwrap exec -> nx-init exec (bwrap: namespaces, mounts, seccomp)'), t(bw), t(ini))
            add(p(' 7 nx-init exec -> app exec (init.sock, fork, exec)'), t(ini), t(app))
            add(p(' 8 app exec -> app listen()'), t(app), t(lis))
            if rdy:  # only when the (costly) write tracepoint was recorded
                add(p(' 9 app listen() -> nx-init writes "ready" (probe every 2 ms)'), t(lis), t(rdy))
                add(p('10 "ready" written -> supervisor ready_at'), t(rdy), ready_t)
            else:
                add(p(' 9 app listen() -> supervisor ready_at (nx-init probe every 2 ms, status pipe)'), t(lis), ready_t)
            add(p('10 ready_at -> poller sees it (runtime row flush + 1 ms poll)'), ready_t, seen)
            add(p('   nx-spawn exec -> started_at (launch returned; may precede the exec event)'), t(sp), started_t)
            add(p('   nx-spawn exec -> app listen() (all of the launch)'), t(sp), t(lis))
    return names, phases


def bare_samples(ev):
    """sbx cold runs: sbx forks X, X execs bwrap, ... srv execs, listens, writes its byte."""
    names, phases = [], defaultdict(list)

    def add(name, a, b):
        if a is None or b is None:
            return
        if name not in names:
            names.append(name)
        phases[name].append((b - a) / 1e3)

    for fk in ev:
        if fk['e'] != 'sched_process_fork' or fk['comm'] != 'sbx':
            continue
        X = fk['child']
        hi = fk['t'] + 2e6
        bw = first(ev, fk['t'], hi, lambda d: d['e'] == 'sched_process_exec' and d['pid'] == X)
        if not bw or not bw['file'].endswith('/bwrap'):
            continue
        app = first(ev, bw['t'], hi, lambda d: d['e'] == 'sched_process_exec' and d['file'].startswith('/app/'))
        lis = app and first(ev, app['t'], hi, lambda d: d['e'] == 'sys_exit_listen' and d['pid'] == app['pid'])
        wr = lis and first(ev, lis['t'], hi, lambda d: d['e'] == 'sys_enter_write' and d['pid'] == app['pid'])
        t = lambda d: d['t'] if d else None
        add('bare: total (sbx fork -> app listen(); its byte follows at once)', fk['t'], t(lis))
        add('bare:  a sbx fork -> bwrap exec', fk['t'], t(bw))
        add('bare:  b bwrap exec -> app exec', t(bw), t(app))
        add('bare:  c app exec -> app listen()', t(app), t(lis))
        if wr:
            add('bare:  d app listen() -> byte written', t(lis), t(wr))
    return names, phases


def main():
    ev = parse(sys.argv[1])
    for names, phases in (nx_samples(ev, sys.argv[2:]), bare_samples(ev)):
        for n in names:
            print(f'{n:<84} {stats(phases[n])}')


if __name__ == '__main__':
    main()
