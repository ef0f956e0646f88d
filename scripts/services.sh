#!/usr/bin/env bash
# Starts and stops the real services eddy's integration tests run against:
# Apache Kafka (single-node KRaft, jars from Maven Central), Redis and
# MariaDB (Debian packages), a schema registry (Apicurio Registry, built
# from Maven Central), all on loopback; and a Python with Confluent's
# client and serializers (confluent-kafka, from PyPI) for the tests that
# check eddy's wire format against them.
#
#   scripts/services.sh up      start what is not running (idempotent)
#   scripts/services.sh down    stop what `up` started, by pid file
#   scripts/services.sh status  show what answers and what is ours
#
# Everything (pid files, logs, data, the Kafka classpath) lives under
# $EDDY_SERVICES_DIR (default /tmp/eddy-services), never in the repo.
# A port that already answers but is not ours is used as it is.
#
# Environment:
#   EDDY_SERVICES_DIR    state directory (default /tmp/eddy-services)
#   KAFKA_VERSION        org.apache.kafka:kafka_2.13 version (default 3.9.2)
#   EDDY_KAFKA_TIMEOUT   seconds to wait for the broker (default 180)
#   EDDY_KAFKA_PORT, EDDY_KAFKA_CONTROLLER_PORT
#                        broker and controller ports (default 9092, 9093),
#                        e.g. to try another KAFKA_VERSION beside the usual
#                        broker with its own EDDY_SERVICES_DIR
#   EDDY_KAFKA_SASL_PORT, EDDY_KAFKA_SSL_PORT
#                        the broker's secure listeners (default 9094, 9095):
#                        SASL_SSL (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 over
#                        TLS) and SSL (a client certificate required); the
#                        certificates are made at start in
#                        $EDDY_SERVICES_DIR/kafka/tls (see package
#                        integration/kafka/secure for users and files)
#   EDDY_REDIS_PORT, EDDY_MYSQL_PORT
#                        Redis and MariaDB ports (default 6379, 3306); point
#                        the tests at them with EDDY_REDIS_ADDR and
#                        EDDY_MYSQL_DSN
#   EDDY_REGISTRY_PORT   the registry's port (default 8081; its Confluent API
#                        at /apis/ccompat/v7); point the tests at another
#                        registry with EDDY_REGISTRY_URL
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
D=${EDDY_SERVICES_DIR:-/tmp/eddy-services}
KAFKA_VERSION=${KAFKA_VERSION:-3.9.2}
KAFKA_TIMEOUT=${EDDY_KAFKA_TIMEOUT:-180}

KAFKA_PORT=${EDDY_KAFKA_PORT:-9092}
KAFKA_CONTROLLER_PORT=${EDDY_KAFKA_CONTROLLER_PORT:-9093}
KAFKA_SASL_PORT=${EDDY_KAFKA_SASL_PORT:-9094}
KAFKA_SSL_PORT=${EDDY_KAFKA_SSL_PORT:-9095}
REDIS_PORT=${EDDY_REDIS_PORT:-6379}
MYSQL_PORT=${EDDY_MYSQL_PORT:-3306}
REGISTRY_PORT=${EDDY_REGISTRY_PORT:-8081}
CONFLUENT_KAFKA_VERSION=2.16.1

log() { printf 'services: %s\n' "$*"; }
die() { printf 'services: error: %s\n' "$*" >&2; exit 1; }

# answers HOST PORT: true when something accepts a TCP connection.
answers() { timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; }

# alive PIDFILE PATTERN: true when the pid file names a live process whose
# command line contains PATTERN (guards against a recycled pid).
alive() {
	local pid
	[[ -s $1 ]] || return 1
	pid=$(<"$1")
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	[[ -r /proc/$pid/cmdline ]] || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$2"
}

# spawn PIDFILE LOGFILE CMD...: runs CMD in its own session, detached from
# the caller (make, CI, a terminal), and records its pid. The wrapper shell
# writes its own pid and then execs CMD, so the pid is the daemon's.
spawn() {
	local pidfile=$1 logfile=$2
	shift 2
	# shellcheck disable=SC2016 # $$ and $@ expand in the inner shell
	setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" >>"$logfile" 2>&1 </dev/null 9>&- &
	local i
	for i in $(seq 50); do
		[[ -s $pidfile ]] && return 0
		sleep 0.1
	done
	die "could not start $1 (no pid file $pidfile)"
}

# wait_port NAME HOST PORT PIDFILE PATTERN LOG SECONDS
wait_port() {
	local name=$1 host=$2 port=$3 pidfile=$4 pattern=$5 logfile=$6 secs=$7 i
	for ((i = 0; i < secs * 4; i++)); do
		answers "$host" "$port" && return 0
		if ! alive "$pidfile" "$pattern"; then
			tail -n 40 "$logfile" >&2 || true
			die "$name exited before answering on $host:$port (log: $logfile)"
		fi
		sleep 0.25
	done
	tail -n 40 "$logfile" >&2 || true
	die "$name did not answer on $host:$port within ${secs}s (log: $logfile)"
}

# stop NAME PIDFILE PATTERN: TERM, wait, then KILL the process of a pid file.
stop() {
	local name=$1 pidfile=$2 pattern=$3 pid i
	if ! alive "$pidfile" "$pattern"; then
		[[ -e $pidfile ]] && rm -f "$pidfile"
		log "$name: not running (nothing of ours to stop)"
		return 0
	fi
	pid=$(<"$pidfile")
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 240; i++)); do
		[[ -d /proc/$pid ]] || break
		sleep 0.25
	done
	if [[ -d /proc/$pid ]]; then
		log "$name: pid $pid did not stop within 60s, killing it"
		kill -KILL "$pid" 2>/dev/null || true
		sleep 0.5
	fi
	rm -f "$pidfile"
	log "$name: stopped (pid $pid)"
}

as_root() {
	if [[ $(id -u) -eq 0 ]]; then
		"$@"
	elif command -v sudo >/dev/null; then
		sudo "$@"
	else
		die "need root to run: $*"
	fi
}

apt_updated=
apt_install() {
	log "installing Debian packages: $*"
	if [[ -z $apt_updated ]]; then
		as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
		apt_updated=1
	fi
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

need_java() {
	command -v java >/dev/null || die "java (17+) is needed for Kafka: apt-get install -y openjdk-17-jre-headless"
	command -v mvn >/dev/null || die "maven is needed to fetch Kafka's jars: apt-get install -y maven"
	command -v go >/dev/null || die "go is needed for the Kafka probe"
}

# ---------------------------------------------------------------- Kafka

kafka_up() {
	local dir=$D/kafka
	local pidfile=$dir/kafka.pid logfile=$dir/kafka.log
	mkdir -p "$dir"
	if alive "$pidfile" kafka.Kafka; then
		local running
		running=$(cat "$dir/version" 2>/dev/null || echo '?')
		log "kafka: already running, ours (pid $(<"$pidfile"), version $running)"
		[[ $running == "$KAFKA_VERSION" ]] ||
			log "kafka: note: KAFKA_VERSION=$KAFKA_VERSION asked for; run \`make services-down\` first to switch"
		if grep -q '^listeners=.*SASL_SSL://' "$dir/server.properties" 2>/dev/null; then
			kafka_probe 30 secure
		else
			kafka_probe 30
			log "kafka: warning: this broker was started without the SASL_SSL and SSL listeners" \
				"(by an older services.sh); the security tests need them: \`make services-down && make services\`"
		fi
		return 0
	fi
	rm -f "$pidfile"
	if answers 127.0.0.1 "$KAFKA_PORT"; then
		log "kafka: 127.0.0.1:$KAFKA_PORT answers but is not ours; using it as it is" \
			"(the security tests need its SASL_SSL listener on :$KAFKA_SASL_PORT and SSL on :$KAFKA_SSL_PORT)"
		kafka_probe 60
		return 0
	fi
	local port
	for port in "$KAFKA_CONTROLLER_PORT" "$KAFKA_SASL_PORT" "$KAFKA_SSL_PORT"; do
		answers 127.0.0.1 "$port" &&
			die "kafka: port 127.0.0.1:$port (controller, SASL_SSL or SSL listener) is taken by something else"
	done
	need_java

	local major=${KAFKA_VERSION%%.*}
	local lib=$D/kafka-lib/$KAFKA_VERSION
	if [[ ! -e $lib/.complete ]]; then
		local profile=kafka3
		[[ $major -ge 4 ]] && profile=kafka4
		log "kafka: resolving org.apache.kafka:kafka_2.13:$KAFKA_VERSION from Maven Central (first run: ~100 MB into ~/.m2)"
		rm -rf "$lib" "$lib.tmp"
		mkdir -p "$lib.tmp"
		if ! mvn -B -q -f "$ROOT/integration/kafka/pom.xml" -P "$profile" \
			-Dkafka.version="$KAFKA_VERSION" -DincludeScope=runtime \
			-DoutputDirectory="$lib.tmp" dependency:copy-dependencies >"$D/kafka-mvn.log" 2>&1; then
			tail -n 30 "$D/kafka-mvn.log" >&2
			die "kafka: maven could not resolve kafka_2.13:$KAFKA_VERSION (log: $D/kafka-mvn.log)"
		fi
		mv "$lib.tmp" "$lib"
		touch "$lib/.complete"
	fi

	# Throw-away data: a fresh, freshly formatted log dir on every start,
	# and fresh certificates for the SASL_SSL and SSL listeners.
	local data=$dir/data tlsdir=$dir/tls
	rm -rf "$data" "$tlsdir"
	mkdir -p "$data"
	build_tools
	"$D/bin/tlsgen" -dir "$tlsdir" || die "kafka: generating the test certificates in $tlsdir failed"
	sed -e "s#@LOG_DIRS@#$data#" -e "s#@TLS_DIR@#$tlsdir#g" -e "s#@PORT@#$KAFKA_PORT#g" \
		-e "s#@CONTROLLER_PORT@#$KAFKA_CONTROLLER_PORT#g" \
		-e "s#@SASL_PORT@#$KAFKA_SASL_PORT#g" -e "s#@SSL_PORT@#$KAFKA_SSL_PORT#g" \
		"$ROOT/integration/kafka/server.properties" >"$dir/server.properties"
	local logopt
	if [[ $major -ge 4 ]]; then
		cp "$ROOT/integration/kafka/log4j2.properties" "$dir/"
		logopt=-Dlog4j2.configurationFile=file:$dir/log4j2.properties
	else
		cp "$ROOT/integration/kafka/log4j.properties" "$dir/"
		logopt=-Dlog4j.configuration=file:$dir/log4j.properties
	fi
	local java=(java -Xmx512m -Xms128m -XX:+UseG1GC -Djava.awt.headless=true "$logopt" -cp "$lib/*")

	# A cluster id is 16 random bytes in URL-safe base64 without padding.
	local cid
	cid=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
	# --cluster-id=: a random id that starts with "-" would be taken for an option after -t.
	# The SCRAM users of the SASL_SSL listener go into the metadata log at
	# format time (KIP-900, Kafka 3.5+). Keep them in step with
	# integration/kafka/secure (listeners.go); the probe logs in with those.
	local scram=(
		--add-scram 'SCRAM-SHA-256=[name=eddy_scram256,password=scram256-Secret-8b27d3]'
		--add-scram 'SCRAM-SHA-512=[name=eddy_scram512,password=scram512-Secret-e05c6f]'
	)
	# Kafka 4 moved StorageTool from kafka.tools to org.apache.kafka.tools.
	local tool ok=
	for tool in kafka.tools.StorageTool org.apache.kafka.tools.StorageTool; do
		if "${java[@]}" "$tool" format --cluster-id="$cid" -c "$dir/server.properties" "${scram[@]}" >"$dir/format.log" 2>&1; then
			ok=1
			break
		fi
		grep -qE 'ClassNotFoundException|Could not find or load main class' "$dir/format.log" || break
	done
	if [[ -z $ok ]]; then
		cat "$dir/format.log" >&2
		die "kafka: formatting the log dir failed (log: $dir/format.log)"
	fi

	log "kafka: starting $KAFKA_VERSION on 127.0.0.1:$KAFKA_PORT (controller :$KAFKA_CONTROLLER_PORT," \
		"SASL_SSL :$KAFKA_SASL_PORT, SSL :$KAFKA_SSL_PORT), log $logfile"
	echo "$KAFKA_VERSION" >"$dir/version"
	: >"$logfile"
	spawn "$pidfile" "$logfile" "${java[@]}" kafka.Kafka "$dir/server.properties"
	wait_port kafka 127.0.0.1 "$KAFKA_PORT" "$pidfile" kafka.Kafka "$logfile" "$KAFKA_TIMEOUT"
	kafka_probe "$KAFKA_TIMEOUT" secure
}

# build_tools: the probe and the certificate generator, into $D/bin (Go's
# build cache makes this quick when nothing changed).
build_tools() {
	mkdir -p "$D/bin"
	(cd "$ROOT" && go build -o "$D/bin/" ./integration/kafka/probe ./integration/kafka/tlsgen) ||
		die "kafka: building integration/kafka/probe and tlsgen failed"
}

# kafka_probe SECONDS [secure]: waits until the broker answers a metadata
# request; with "secure", also until each SASL mechanism's test user logs
# in on the SASL_SSL listener and the test client certificate is accepted
# on the SSL listener.
kafka_probe() {
	build_tools
	local args=(-brokers "127.0.0.1:$KAFKA_PORT" -timeout "${1}s")
	if [[ ${2:-} == secure ]]; then
		args+=(-sasl-brokers "127.0.0.1:$KAFKA_SASL_PORT" -ssl-brokers "127.0.0.1:$KAFKA_SSL_PORT" -tls-dir "$D/kafka/tls")
	fi
	if ! "$D/bin/probe" "${args[@]}"; then
		[[ -f $D/kafka/kafka.log ]] && tail -n 40 "$D/kafka/kafka.log" >&2
		die "kafka: no answer from the broker's listeners (log: $D/kafka/kafka.log)"
	fi
}

# ---------------------------------------------------------------- Redis

redis_up() {
	local dir=$D/redis
	local pidfile=$dir/redis.pid logfile=$dir/redis.log
	mkdir -p "$dir"
	if alive "$pidfile" redis-server; then
		log "redis: already running, ours (pid $(<"$pidfile"))"
		return 0
	fi
	rm -f "$pidfile"
	if answers 127.0.0.1 "$REDIS_PORT"; then
		log "redis: 127.0.0.1:$REDIS_PORT answers but is not ours; using it as it is"
		return 0
	fi
	command -v redis-server >/dev/null || apt_install redis-server
	# Persistence as the README recommends for durable state (AOF, fsync
	# every second), so that make bench measures what the guarantees cost.
	log "redis: starting on 127.0.0.1:$REDIS_PORT (appendonly yes, appendfsync everysec), log $logfile"
	spawn "$pidfile" "$logfile" redis-server --bind 127.0.0.1 --port "$REDIS_PORT" \
		--save "" --appendonly yes --appendfsync everysec --daemonize no --dir "$dir" --logfile ""
	wait_port redis 127.0.0.1 "$REDIS_PORT" "$pidfile" redis-server "$logfile" 30
}

# ---------------------------------------------------------------- MariaDB

mariadbd_bin() {
	command -v mariadbd 2>/dev/null || { [[ -x /usr/sbin/mariadbd ]] && echo /usr/sbin/mariadbd; }
}

mysql_up() {
	local dir=$D/mariadb
	local pidfile=$dir/mariadb.pid logfile=$dir/mariadb.log sock=$dir/mysqld.sock
	mkdir -p "$dir"
	if alive "$pidfile" mariadbd; then
		log "mariadb: already running, ours (pid $(<"$pidfile"))"
		mysql_check
		return 0
	fi
	rm -f "$pidfile"
	if answers 127.0.0.1 "$MYSQL_PORT"; then
		log "mariadb: 127.0.0.1:$MYSQL_PORT answers but is not ours; using it as it is"
		mysql_check
		return 0
	fi
	[[ -n $(mariadbd_bin) ]] || apt_install mariadb-server
	local bin
	bin=$(mariadbd_bin) || die "mariadb: mariadbd not found after installing mariadb-server"

	# Our own data dir and socket: independent of the package's
	# /var/lib/mysql and /run/mysqld, removed with $EDDY_SERVICES_DIR.
	local user=()
	if [[ $(id -u) -eq 0 ]]; then
		user=(--user=mysql)
		chown -R mysql: "$dir"
	fi
	if [[ ! -d $dir/data/mysql ]]; then
		log "mariadb: initialising data dir $dir/data"
		rm -rf "$dir/data"
		if ! mariadb-install-db --no-defaults "${user[@]}" --datadir="$dir/data" \
			--auth-root-authentication-method=socket --skip-test-db >"$dir/install.log" 2>&1; then
			tail -n 30 "$dir/install.log" >&2
			die "mariadb: mariadb-install-db failed (log: $dir/install.log)"
		fi
	fi
	log "mariadb: starting on 127.0.0.1:$MYSQL_PORT, log $logfile"
	spawn "$pidfile" "$logfile" "$bin" --no-defaults "${user[@]}" --datadir="$dir/data" \
		--socket="$sock" --pid-file="$dir/mariadbd.pid" --bind-address=127.0.0.1 \
		--port="$MYSQL_PORT" --skip-name-resolve \
		--innodb-buffer-pool-size=128M --innodb-flush-log-at-trx-commit=2 \
		--max-connections=500
	wait_port mariadb 127.0.0.1 "$MYSQL_PORT" "$pidfile" mariadbd "$logfile" 60
	# root logs in over the unix socket only; it creates the test user.
	mariadb --no-defaults --socket="$sock" -uroot -e "
		CREATE DATABASE IF NOT EXISTS eddy;
		CREATE USER IF NOT EXISTS 'eddy'@'127.0.0.1' IDENTIFIED BY 'eddy';
		GRANT ALL ON *.* TO 'eddy'@'127.0.0.1';
		CREATE USER IF NOT EXISTS 'eddy'@'localhost' IDENTIFIED BY 'eddy';
		GRANT ALL ON *.* TO 'eddy'@'localhost';" ||
		die "mariadb: creating database and user eddy failed (log: $logfile)"
	mysql_check
}

# mysql_check: the user eddy/eddy logs in over TCP and sees database eddy.
mysql_check() {
	command -v mariadb >/dev/null || { log "mariadb: no client to check the login with; skipped"; return 0; }
	local i
	for ((i = 0; i < 20; i++)); do
		if mariadb --no-defaults --protocol=tcp -h127.0.0.1 -P"$MYSQL_PORT" -ueddy -peddy eddy -e 'SELECT 1' >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.5
	done
	mariadb --no-defaults --protocol=tcp -h127.0.0.1 -P"$MYSQL_PORT" -ueddy -peddy eddy -e 'SELECT 1' >&2 || true
	die "mariadb: user eddy/eddy cannot use database eddy on 127.0.0.1:$MYSQL_PORT"
}

# ---------------------------------------------------------------- main

# ---------------------------------------------------------------- registry

# registry_up builds Apicurio Registry 2.4.2.Final once (scripts/registry:
# the app's jar re-augmented by Quarkus; see its pom.xml for what Maven
# Central lacks and how it is got around) and runs it in memory on
# loopback. It is rebuilt only when scripts/registry changes.
registry_up() {
	local dir=$D/registry
	local pidfile=$dir/registry.pid logfile=$dir/registry.log
	mkdir -p "$dir"
	if alive "$pidfile" eddy-test-registry; then
		log "registry: already running, ours (pid $(<"$pidfile"))"
		return 0
	fi
	rm -f "$pidfile"
	if answers 127.0.0.1 "$REGISTRY_PORT"; then
		log "registry: 127.0.0.1:$REGISTRY_PORT answers but is not ours; using it as it is"
		return 0
	fi
	need_java
	command -v curl >/dev/null || apt_install curl
	local sum
	sum=$(cat "$ROOT"/scripts/registry/pom.xml "$ROOT"/scripts/registry/config-index-deployment.pom \
		"$ROOT"/scripts/registry/src/main/resources/application.properties | sha256sum | cut -c1-16)
	local build=$dir/build
	if [[ $(cat "$build/.complete" 2>/dev/null) != "$sum" ]]; then
		log "registry: building Apicurio Registry 2.4.2.Final from Maven Central (first run: ~230 MB into ~/.m2, ~1 min)"
		rm -rf "$build"
		mkdir -p "$build"
		cp -r "$ROOT"/scripts/registry/. "$build/"
		local dep=io.apicurio:apicurio-common-app-components-config-index-deployment
		if ! { mvn -B -q dependency:copy -Dartifact="$dep:0.1.10.Final" -DoutputDirectory="$build/dep" &&
			mvn -B -q install:install-file -DpomFile="$build/config-index-deployment.pom" \
				-Dfile="$build/dep/apicurio-common-app-components-config-index-deployment-0.1.10.Final.jar" &&
			mvn -B -q -f "$build/pom.xml" package -DskipTests; } >"$dir/build.log" 2>&1; then
			tail -n 30 "$dir/build.log" >&2
			die "registry: the Maven build failed (log: $dir/build.log)"
		fi
		echo "$sum" >"$build/.complete"
	fi
	local jar
	jar=$(ls "$build"/target/*-runner.jar)
	log "registry: starting Apicurio Registry on 127.0.0.1:$REGISTRY_PORT (in memory), log $logfile"
	spawn "$pidfile" "$logfile" java -Xmx256m -XX:+UseSerialGC -Dquarkus.http.host=127.0.0.1 \
		-Dquarkus.http.port="$REGISTRY_PORT" -jar "$jar"
	local i
	for ((i = 0; i < 240; i++)); do
		if [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$REGISTRY_PORT/apis/ccompat/v7/subjects") == 200 ]]; then
			return 0
		fi
		if ! alive "$pidfile" eddy-test-registry; then
			tail -n 40 "$logfile" >&2 || true
			die "registry exited before answering (log: $logfile)"
		fi
		sleep 0.25
	done
	tail -n 40 "$logfile" >&2 || true
	die "registry did not answer within 60s (log: $logfile)"
}

# py_up makes a Python venv with Confluent's client and serializers
# (integration/confluent/confluent.py uses it), once.
py_up() {
	local py=$D/py/bin/python
	if [[ -x $py ]] && "$py" -c "import confluent_kafka, fastavro, grpc_tools; assert confluent_kafka.__version__ == '$CONFLUENT_KAFKA_VERSION'" 2>/dev/null; then
		log "python: $D/py has confluent-kafka $CONFLUENT_KAFKA_VERSION"
		return 0
	fi
	command -v python3 >/dev/null || apt_install python3 python3-venv
	python3 -m venv --help >/dev/null 2>&1 || apt_install python3-venv
	log "python: installing confluent-kafka $CONFLUENT_KAFKA_VERSION (avro, protobuf, schemaregistry) and grpcio-tools into $D/py"
	rm -rf "$D/py"
	if ! { python3 -m venv "$D/py" &&
		"$D/py/bin/pip" install -q --disable-pip-version-check \
			"confluent-kafka[avro,protobuf,schemaregistry]==$CONFLUENT_KAFKA_VERSION" grpcio-tools; } >"$D/pip.log" 2>&1; then
		tail -n 30 "$D/pip.log" >&2
		die "python: pip failed (log: $D/pip.log)"
	fi
}

up() {
	local t0=$SECONDS
	redis_up
	mysql_up
	kafka_up
	registry_up
	py_up
	log "ready in $((SECONDS - t0))s: kafka 127.0.0.1:$KAFKA_PORT (SASL_SSL :$KAFKA_SASL_PORT, SSL :$KAFKA_SSL_PORT), redis 127.0.0.1:$REDIS_PORT, mariadb eddy:eddy@tcp(127.0.0.1:$MYSQL_PORT)/eddy, registry http://127.0.0.1:$REGISTRY_PORT/apis/ccompat/v7, python $D/py (state in $D)"
}

down() {
	stop registry "$D/registry/registry.pid" eddy-test-registry
	stop kafka "$D/kafka/kafka.pid" kafka.Kafka
	stop mariadb "$D/mariadb/mariadb.pid" mariadbd
	stop redis "$D/redis/redis.pid" redis-server
}

status() {
	local name port pidfile pattern
	while read -r name port pidfile pattern; do
		if alive "$D/$pidfile" "$pattern" && [[ $name == kafka-* ]] && ! answers 127.0.0.1 "$port"; then
			echo "$name: down (broker pid $(<"$D/$pidfile") has no listener on 127.0.0.1:$port)"
		elif alive "$D/$pidfile" "$pattern"; then
			echo "$name: ours, pid $(<"$D/$pidfile"), 127.0.0.1:$port"
		elif answers 127.0.0.1 "$port"; then
			echo "$name: 127.0.0.1:$port answers, not ours"
		else
			echo "$name: down"
		fi
	done <<EOF
kafka $KAFKA_PORT kafka/kafka.pid kafka.Kafka
kafka-sasl_ssl $KAFKA_SASL_PORT kafka/kafka.pid kafka.Kafka
kafka-ssl $KAFKA_SSL_PORT kafka/kafka.pid kafka.Kafka
redis $REDIS_PORT redis/redis.pid redis-server
mariadb $MYSQL_PORT mariadb/mariadb.pid mariadbd
registry $REGISTRY_PORT registry/registry.pid eddy-test-registry
EOF
}

cmd=${1:-}
case $cmd in
up | down)
	mkdir -p "$D"
	# One `up` or `down` at a time: never start a second copy.
	# The lock fd is closed in every daemon we spawn (see spawn).
	exec 9>"$D/.lock"
	flock -w 900 9 || die "another services.sh has held $D/.lock for 15 minutes"
	$cmd
	;;
status) status ;;
*)
	echo "usage: $0 up|down|status" >&2
	exit 2
	;;
esac
