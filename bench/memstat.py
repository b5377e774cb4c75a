#!/usr/bin/env python3
"""bench/memstat.py - memory of running sandboxes, by cgroup.

memstat.py snap FILE                 /proc/meminfo (and /proc/slabinfo) now -> FILE (json)
memstat.py delta BEFORE N            system and slab-cache deltas per instance since BEFORE
memstat.py pids PID...               RSS/PSS of the given processes (json line)
memstat.py report PREFIX N BEFORE [SUPERVISOR_PID SUP_BEFORE_JSON]
    Every process in the pids cgroups /sys/fs/cgroup/pids/nx_sandbox/PREFIX*
    (one cgroup per deployment): Rss and Pss from smaps_rollup, split into
    the app (anything but bwrap and nx-init), nx-init and bwrap; their CPU
    time so far; the cgroups' own memory.usage_in_bytes (v1, kernel memory
    included); and the system-wide /proc/meminfo deltas against BEFORE, per
    instance (N).
"""
import glob
import json
import os
import sys

KEYS = ['MemAvailable', 'MemFree', 'Slab', 'SReclaimable', 'SUnreclaim', 'KernelStack',
        'PageTables', 'Percpu', 'VmallocUsed', 'Shmem', 'Cached']


def meminfo():
    """/proc/meminfo in kB, plus each slab cache's size in kB as
    'slab:NAME' (from /proc/slabinfo, when readable: root only)."""
    out = {}
    for line in open('/proc/meminfo'):
        k, v = line.split(':', 1)
        out[k] = int(v.split()[0])
    try:
        for line in open('/proc/slabinfo'):
            f = line.split()
            if line.startswith(('slabinfo', '#')) or len(f) < 6:
                continue
            # name active_objs num_objs objsize objperslab pagesperslab : ...
            num_slabs = int(f[f.index('slabdata') + 2])
            out['slab:' + f[0]] = num_slabs * int(f[5]) * 4
    except (OSError, ValueError, IndexError):
        pass
    return out


def slab_top(before, now, n, count=12):
    """The slab caches that grew most, per instance, as 'name=kB'; with
    MEMSTAT_SLAB set, every cache's delta per instance goes there (json)."""
    d = []
    for k, v in now.items():
        if k.startswith('slab:'):
            d.append(((v - before.get(k, 0)) / max(n, 1), k[5:]))
    d.sort(reverse=True)
    if os.environ.get('MEMSTAT_SLAB'):
        json.dump({name: kb for kb, name in d}, open(os.environ['MEMSTAT_SLAB'], 'w'), indent=0)
    return ' '.join(f'{name}={kb:.1f}' for kb, name in d[:count] if kb >= 0.5)


def rollup(pid):
    try:
        r = {}
        for line in open(f'/proc/{pid}/smaps_rollup'):
            parts = line.split()
            if parts[0] in ('Rss:', 'Pss:'):
                r[parts[0][:-1]] = int(parts[1])
        comm = open(f'/proc/{pid}/comm').read().strip()
        stat = open(f'/proc/{pid}/stat').read().rsplit(')', 1)[1].split()
        cpu = (int(stat[11]) + int(stat[12])) / os.sysconf('SC_CLK_TCK')  # utime + stime, s
        return comm, r.get('Rss', 0), r.get('Pss', 0), cpu
    except OSError:
        return None


def main():
    cmd = sys.argv[1]
    if cmd == 'snap':
        json.dump(meminfo(), open(sys.argv[2], 'w'))
        return
    if cmd == 'delta':
        before, n, now = json.load(open(sys.argv[2])), int(sys.argv[3]), meminfo()
        d = {k: (now.get(k, 0) - before.get(k, 0)) / max(n, 1) for k in KEYS}
        print('per-instance kB, system deltas: ' + ' '.join(f'd{k}={v:.0f}' for k, v in d.items()))
        print('per-instance kB, kernel (Slab+KernelStack+PageTables+Percpu+VmallocUsed) = '
              f"{d['Slab'] + d['KernelStack'] + d['PageTables'] + d['Percpu'] + d['VmallocUsed']:.0f}")
        print('per-instance kB, slab caches that grew most: ' + slab_top(before, now, n))
        return
    if cmd == 'pids':
        rss = pss = 0
        for p in sys.argv[2:]:
            r = rollup(p)
            if r:
                rss += r[1]
                pss += r[2]
        print(json.dumps({'rss': rss, 'pss': pss}))
        return
    prefix, n, before = sys.argv[2], int(sys.argv[3]), json.load(open(sys.argv[4]))
    groups = sorted(glob.glob(f'/sys/fs/cgroup/pids/nx_sandbox/{prefix}*'))
    cls = {'app': [0, 0, 0, 0.0], 'nx-init': [0, 0, 0, 0.0], 'bwrap': [0, 0, 0, 0.0]}
    unreadable = 0
    usage = kmem = 0
    for g in groups:
        for p in open(f'{g}/cgroup.procs').read().split():
            r = rollup(p)
            if not r:
                unreadable += 1
                continue
            c = r[0] if r[0] in ('bwrap', 'nx-init') else 'app'
            cls[c][0] += 1
            cls[c][1] += r[1]
            cls[c][2] += r[2]
            cls[c][3] += r[3]
        mg = g.replace('/pids/', '/memory/')
        for f, acc in (('memory.usage_in_bytes', 'u'), ('memory.kmem.usage_in_bytes', 'k')):
            try:
                v = int(open(f'{mg}/{f}').read())
            except OSError:
                continue
            if acc == 'u':
                usage += v
            else:
                kmem += v
    now = meminfo()
    procs = sum(c[0] for c in cls.values())
    print(f'cgroups={len(groups)} procs={procs} unreadable={unreadable} '
          + ' '.join(f'{k}:procs={v[0]}' for k, v in cls.items()))
    per = lambda x: x / max(n, 1)
    print('per-instance kB (PSS; RSS in brackets): '
          + ' '.join(f'{k}={per(v[2]):.0f}[{per(v[1]):.0f}]' for k, v in cls.items())
          + f' beyond-app-pss={per(cls["nx-init"][2] + cls["bwrap"][2]):.0f}')
    print(f'per-instance kB, memory cgroup: usage={per(usage) / 1024:.0f} kmem={per(kmem) / 1024:.0f}')
    print('CPU time so far (utime+stime of the live processes), s total / ms per instance: '
          + ' '.join(f'{k}={v[3]:.1f}/{per(v[3]) * 1e3:.1f}' for k, v in cls.items()))
    d = {k: per(now.get(k, 0) - before.get(k, 0)) for k in KEYS}
    print('per-instance kB, system deltas: ' + ' '.join(f'd{k}={v:.0f}' for k, v in d.items()))
    top = slab_top(before, now, n)
    if top:
        print('per-instance kB, slab caches that grew most: ' + top)
    kern = d['Slab'] + d['KernelStack'] + d['PageTables'] + d['Percpu'] + d['VmallocUsed']
    print(f'per-instance kB, kernel (Slab+KernelStack+PageTables+Percpu+VmallocUsed) = {kern:.0f}; '
          f'beyond the app = nx-init+bwrap PSS + kernel = {per(cls["nx-init"][2] + cls["bwrap"][2]) + kern:.0f}')
    if len(sys.argv) > 6:
        sup_pid, sup_before = sys.argv[5], json.loads(sys.argv[6])
        r = rollup(sup_pid)
        if r:
            print(f'supervisor (pid {sup_pid}) RSS {sup_before["rss"]} -> {r[1]} kB, PSS {sup_before["pss"]} -> {r[2]} kB '
                  f'({per((r[2] - sup_before["pss"])):.1f} kB PSS per deployment)')
    json.dump({'cgroups': len(groups), 'procs': procs, 'cls': cls, 'usage': usage, 'kmem': kmem, 'd': d},
              open(os.environ.get('MEMSTAT_JSON', '/dev/null'), 'w'))


if __name__ == '__main__':
    main()
