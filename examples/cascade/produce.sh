#!/bin/sh
# Feeds the compose cascade with raw orders keyed by order id, like the
# cascade generator of `worker dev`: about one order in 50 is sent twice (a
# producer retry: stage 1 drops the repeat), one in 50 has qty 0 (filtered
# out) and one in 200 is not JSON (sent to cascade-orders-dlq).
#
#   produce.sh          send RATE events a second (default 20) to TOPIC
#                       (default cascade-orders) at BROKERS (default
#                       kafka:9092), with the Kafka image's console producer,
#                       until stopped
#   produce.sh -n 100   print 100 events as key|value lines and exit
#
# Only POSIX sh and awk: it runs in the apache/kafka image (busybox) and on
# any Unix; deploy/compose_test.go runs the -n form through both stages.
set -eu

RATE=${RATE:-20}
TOPIC=${TOPIC:-cascade-orders}
BROKERS=${BROKERS:-kafka:9092}

# generate COUNT RATE: COUNT events (0: forever), RATE a second (0: no pause).
generate() {
	awk -v count="$1" -v rate="$2" '
	function now(   cmd, t) {
		cmd = "date -u +%Y-%m-%dT%H:%M:%SZ"
		cmd | getline t
		close(cmd)
		return t
	}
	BEGIN {
		srand()
		run = sprintf("%x", int(rand() * 2147483647))  # order ids stay unique across restarts
		ncountries = split("de fr es pl pt no it nl", countries, " ")
		pause = rate > 0 ? sprintf("sleep %.3f", 1 / rate) : ""
		for (i = 1; count == 0 || i <= count; i++) {
			id = sprintf("o-%s-%d", run, i)
			r = rand()
			if (r < 0.005) {
				print id "|{\"order_id\": \"" id
			} else if (last != "" && r < 0.025) {
				print lastkey "|" last
			} else {
				qty = rand() < 0.02 ? 0 : 1 + int(rand() * 4)
				last = sprintf("{\"order_id\":\"%s\",\"customer\":\"c-%03d\",\"country\":\"%s\",\"qty\":%d,\"unit_cents\":%d,\"ts\":\"%s\"}",
					id, int(rand() * rand() * 200), countries[1 + int(rand() * ncountries)], qty, 199 + int(rand() * 9800), now())
				lastkey = id
				print id "|" last
			}
			fflush()
			if (pause != "") system(pause)
		}
	}'
}

if [ "${1:-}" = "-n" ]; then
	generate "${2:?-n needs a count}" 0
	exit 0
fi

echo "producing $RATE orders a second to $TOPIC at $BROKERS" >&2
generate 0 "$RATE" | /opt/kafka/bin/kafka-console-producer.sh \
	--bootstrap-server "$BROKERS" --topic "$TOPIC" \
	--property parse.key=true --property key.separator='|'
