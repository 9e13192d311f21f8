#!/bin/bash
# CPU per request of `dccgw serve` in cluster mode next to embedded mode: the same
# `dccgw-load run` (the steady-state mix at RATE/s for DUR s) against each, alternated twice, the
# gateway's utime + stime read from /proc before and after each run. Needs PostgreSQL's
# binaries (a throwaway server is made under $WORK/pg, run as the `postgres` user) and builds
# of dccgw and dccgw-load in $BIN. Run from the repository's root:
#   BIN=target/release RATE=50 DUR=20 load-tests/cluster-vs-embedded.sh
set -u
BIN=${BIN:-target/debug}; RATE=${RATE:-50}; DUR=${DUR:-20}
WORK=${WORK:-/tmp/dccgw-cluster-vs-embedded}; W=$WORK/load
SCENARIO=load-tests/scenarios/steady-state.toml
export DCCGW_LOG=warn
mkdir -p $WORK
[ -e $W/dccgw.toml ] || $BIN/dccgw-load prepare --scenario $SCENARIO --workdir $W > /dev/null
sed -i 's/127.0.0.1:9445/127.0.0.1:19445/' $W/commshub.toml
$BIN/dccgw commshub --config $W/commshub.toml > $WORK/hub.log 2>&1 &
HUB=$!
PGB=$(ls -d /usr/lib/postgresql/*/bin | tail -1)
PGD=$WORK/pg
if [ ! -d $PGD ]; then
  mkdir -p $PGD && chown postgres $PGD
  su postgres -c "$PGB/initdb -D $PGD -A trust -U postgres" > $WORK/initdb.log 2>&1
fi
su postgres -c "$PGB/pg_ctl -D $PGD -o '-p 15432 -k $PGD -c listen_addresses=127.0.0.1' -l $PGD/log -w start" > /dev/null
cp $W/dccgw.toml $W/dccgw-cluster.toml
printf '\n[cluster]\npostgres_url = "postgresql://postgres@127.0.0.1:15432/postgres"\nnats_url = "nats://127.0.0.1:4222"\ninstance = "load-1"\n' >> $W/dccgw-cluster.toml
[ -e $WORK/inited ] || { $BIN/dccgw cluster init --config $W/dccgw-cluster.toml > $WORK/init.log 2>&1 && touch $WORK/inited; }
cpu() { awk '{print $14+$15}' /proc/$1/stat; }
one() { # name config state-dir
  DCCGW_LISTEN__ADDR=127.0.0.1:18443 DCCGW_LISTEN__ADMIN_ADDR=127.0.0.1:19090 \
  DCCGW_ROUTING__HUB_ADDR=127.0.0.1:19445 DCCGW_STATE__DIR=$3 \
    $BIN/dccgw serve --config $2 > $WORK/$1.log 2>&1 &
  local gw=$!
  for _ in $(seq 1 600); do curl -sf http://127.0.0.1:19090/readyz > /dev/null && break; sleep 0.2; done
  sleep 1
  local c0; c0=$(cpu $gw)
  $BIN/dccgw-load run --scenario $SCENARIO --workdir $W --target 127.0.0.1:18443 \
    --rate $RATE --duration-s $DUR --results $WORK/results > $WORK/$1-run.txt 2>&1
  local c1; c1=$(cpu $gw)
  kill $gw; wait $gw 2> /dev/null
  echo "$1: $((c1 - c0)) CPU ticks of $(getconf CLK_TCK)/s; answers: $(grep -m1 'gateway scenario:' $WORK/$1-run.txt)"
}
for round in 1 2; do
  one embedded-$round $W/dccgw.toml $W/state-embedded-$round
  one cluster-$round $W/dccgw-cluster.toml $W/state-cluster-$round
done
kill $HUB
su postgres -c "$PGB/pg_ctl -D $PGD -m fast -w stop" > /dev/null
