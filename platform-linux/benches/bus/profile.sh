#!/usr/bin/env bash
# Profiles the hot paths the bus benchmark exercises (docs/performance.md).
#
#   platform-linux/benches/bus/profile.sh [OUT_DIR]
#
# 1. Syscalls and context switches per notification, per thread, for every
#    system, from kernel tracepoints (`perf record -e raw_syscalls:sys_enter
#    -e sched:sched_switch`; far less intrusive than strace, which slows
#    every syscall enough to change how much the server batches).
# 2. Instructions per notification in notifysvc (valgrind callgrind on the
#    server during a throughput run, compact and JSON clients), and in the
#    client library (callgrind on the benchmark process).
#
# Needs perf and valgrind (`apt-get install -y linux-perf valgrind`).
# Everything runs pinned to one CPU, with the --quick counts (20,000
# notifications one way; 2,200 round trips).
set -euo pipefail
cd "$(dirname "$0")/../../.."
out=${1:-target/bench/profile}
mkdir -p "$out"
cargo bench -p nfy-linux --bench bus --no-run >/dev/null 2>&1
bus=$(ls -t target/release/deps/bus-* | grep -v '\.d$' | head -1)

count_syscalls() { # perf.data, items
  python3 - "$1" "$2" <<'EOF'
import collections, re, subprocess, sys
names = {0: 'read', 1: 'write', 7: 'poll', 44: 'sendto', 45: 'recvfrom',
         202: 'futex', 232: 'epoll_wait', 230: 'clock_nanosleep'}
data, n = sys.argv[1], float(sys.argv[2])
out = subprocess.run(['perf', 'script', '-i', data, '-F', 'comm,tid,event,trace'],
                     capture_output=True, text=True).stdout
calls, switches = collections.Counter(), collections.Counter()
def role(comm):
    comm = re.sub(r'-\d+$', '', comm.strip())
    return 'bench main (A)' if comm.startswith('bus-') else comm
for line in out.splitlines():
    m = re.match(r'\s*(.+?)\s+(\d+)\s+(\S+):\s*(.*)', line)
    if not m:
        continue
    comm, _, event, trace = m.groups()
    if event.startswith('raw_syscalls'):
        nr = int(re.search(r'NR (\d+)', trace).group(1))
        calls[(role(comm), names.get(nr, 'nr%d' % nr))] += 1
    elif event.startswith('sched:sched_switch'):
        switches[role(re.search(r'prev_comm=(.*?) prev_pid', trace).group(1))] += 1
threads = collections.defaultdict(list)
for (comm, name), v in calls.items():
    if v / n >= 0.01:
        threads[comm].append((name, v))
total_calls = sum(v for lst in threads.values() for _, v in lst) / n
for comm in sorted(threads, key=lambda c: -sum(v for _, v in threads[c])):
    items = sorted(threads[comm], key=lambda x: -x[1])
    print('  %-20s %s | switches %.2f' % (
        comm, ', '.join('%s %.2f' % (s, v / n) for s, v in items), switches[comm] / n))
print('  total: %.2f syscalls, %.2f context switches' % (
    total_calls, sum(switches.values()) / n))
EOF
}

echo "== syscalls and context switches per notification (throughput) / per round trip (rtt)"
for work in throughput rtt; do
  for sys in floor compact json raw-unix; do
    data="$out/perf-$work-$sys.data"
    perf record -q -e raw_syscalls:sys_enter -e sched:sched_switch -c 1 -o "$data" -- \
      "$bus" --quick --pinned --only "$work" --systems "$sys" >"$out/perf-$work-$sys.txt" 2>&1
    if [ "$work" = throughput ]; then n=20000; else n=2200; fi
    if [ "$work" = throughput ]; then row='^throughput +k msgs/s'; else row='^rtt +p50'; fi
    echo "-- $work $sys (under tracing: $(grep -E "$row" "$out/perf-$work-$sys.txt" | head -1 | tr -s ' '))"
    count_syscalls "$data" "$n"
  done
done

per_item() { # callgrind output, items, function-name regexes...
  python3 - "$@" <<'EOF'
import re, subprocess, sys
data, n, wanted = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
out = subprocess.run(['callgrind_annotate', '--inclusive=yes', data],
                     capture_output=True, text=True).stdout
best = {}
for line in out.splitlines():
    m = re.match(r'\s*([\d,]+) \([ \d.]+%\)\s+(\S+?):(.+?)(?: \[.*\])?$', line)
    if not m:
        continue
    ir, fn = int(m.group(1).replace(',', '')), m.group(3).strip()
    for w in wanted:
        if re.search(w, fn):
            best[w] = max(best.get(w, 0), ir)
total = re.search(r'([\d,]+) \([ \d.]+%\)\s+PROGRAM TOTALS', out)
print('  %-44s %12s %9s' % ('function (inclusive)', 'Ir', 'Ir/item'))
if total:
    t = int(total.group(1).replace(',', ''))
    print('  %-44s %12d %9.0f' % ('whole process (start-up included)', t, t / n))
for w in wanted:
    if w in best:
        print('  %-44s %12d %9.0f' % (w.strip('^$'), best[w], best[w] / n))
EOF
}

echo "== notifysvc instructions (callgrind), throughput, 20,000 notifications"
for sys in compact raw-unix; do
  "$bus" --quick --pinned --only throughput --systems "$sys" \
    --wrap "valgrind --tool=callgrind --callgrind-out-file=$out/callgrind-server-$sys.out" \
    >/dev/null 2>&1
  echo "-- $sys"
  per_item "$out/callgrind-server-$sys.out" 20000 'EventLoop::read_conn$' \
    'FrameDecoder<B>::feed$' 'Broker<_,_,_,_>::handle_frame$' 'compact::decode$' \
    'json::decode$' 'scan::validate_str$' 'Broker<_,_,_,_>::deliver$' 'Outbox>::send$' \
    'EventLoop::flush_dirty$' '__memcpy_avx_unaligned_erms$' '__memset_avx2_unaligned_erms$'
done

echo "== client library instructions (callgrind on the benchmark), compact throughput"
valgrind --tool=callgrind --callgrind-out-file="$out/callgrind-client.out" \
  "$bus" --quick --pinned --only throughput --systems compact >/dev/null 2>&1
per_item "$out/callgrind-client.out" 20000 'conn::Inner::notify$' 'conn::encode_into$' \
  'RawJson::new$' 'Inner::run_receiver$' 'Inner::on_message$' 'compact::decode$' \
  'scan::validate_str$' 'ClientState<T>::route$' 'Pool::submit$' 'Pool::run_worker$' \
  '^malloc$' '^free$'
echo "outputs in $out"
