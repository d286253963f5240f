#!/usr/bin/env bash
# Local backing services for convmeter tests: a single-node KRaft Kafka broker
# (jars fetched from Maven Central with Maven) and a Redis server (Debian
# package). No Docker needed.
#
#   scripts/services.sh up       start both (idempotent), print env on stdout
#   scripts/services.sh down     stop both and delete the state dir
#   scripts/services.sh env      print `export ...` lines for eval
#   scripts/services.sh status   show what is running (exit 1 if not all up)
#   scripts/services.sh run-class CLASS [ARGS...]
#                                run a Kafka CLI class with the cached jars, e.g.
#                                run-class org.apache.kafka.tools.TopicCommand \
#                                  --bootstrap-server 127.0.0.1:19092 --list
#
# Only the env lines go to stdout; all progress goes to stderr, so
#   eval "$(scripts/services.sh up)"
# works.
set -euo pipefail

KAFKA_VERSION=3.9.1            # kafka-go needs a 3.9.x broker
SCALA_BINARY_VERSION=2.13
SLF4J_VERSION=1.7.36           # what the Kafka 3.9 distribution ships
RELOAD4J_VERSION=1.2.25
DEPENDENCY_PLUGIN_VERSION=3.6.1

HOST=127.0.0.1
CACHE_DIR=${CONVMETER_CACHE:-${HOME:-/root}/.cache/convmeter}
STATE_DIR=${CONVMETER_STATE:-/tmp/convmeter-services}
KAFKA_PORT=${CONVMETER_KAFKA_PORT:-19092}
KAFKA_CONTROLLER_PORT=${CONVMETER_KAFKA_CONTROLLER_PORT:-19093}
REDIS_PORT=${CONVMETER_REDIS_PORT:-16379}
KAFKA_HEAP_OPTS=${CONVMETER_KAFKA_HEAP_OPTS:--Xms256m -Xmx1g}
START_TIMEOUT=${CONVMETER_SERVICES_TIMEOUT:-90}

KAFKA_HOME=$CACHE_DIR/kafka-$KAFKA_VERSION
KAFKA_LIBS=$KAFKA_HOME/libs
KAFKA_STATE=$STATE_DIR/kafka
REDIS_STATE=$STATE_DIR/redis
KAFKA_PIDFILE=$STATE_DIR/kafka.pid
REDIS_PIDFILE=$STATE_DIR/redis.pid
STATE_MARKER=$STATE_DIR/.convmeter-services
ENV_FILE=$STATE_DIR/env

log() { printf '[services] %s\n' "$*" >&2; }
UP_HINT=
die() {
	log "ERROR: $*"
	[[ -z $UP_HINT ]] || log "$UP_HINT"
	exit 1
}

# ---------------------------------------------------------------- helpers

pid_alive() { # pidfile
	local pid
	[[ -s $1 ]] || return 1
	pid=$(<"$1")
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	kill -0 "$pid" 2>/dev/null
}

port_open() { # port
	(exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null
}

apt_install() { # package...
	local sudo=()
	if [[ $(id -u) -ne 0 ]]; then
		command -v sudo >/dev/null 2>&1 || die "need root or sudo to apt-get install $*"
		sudo=(sudo -n)
	fi
	command -v apt-get >/dev/null 2>&1 || die "apt-get not available; install $* by hand"
	local apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -y -q)
	log "apt-get install $*"
	if ! "${apt[@]}" install --no-install-recommends "$@" >&2; then
		log "install failed; running apt-get update and retrying"
		"${apt[@]}" update >&2
		"${apt[@]}" install --no-install-recommends "$@" >&2
	fi
}

ensure_tools() {
	local missing=()
	command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
	command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
	command -v kcat >/dev/null 2>&1 || missing+=(kcat)
	if ((${#missing[@]})); then apt_install "${missing[@]}"; fi
	command -v java >/dev/null 2>&1 || die "java not found (need a JRE >= 11, e.g. apt-get install openjdk-17-jre-headless)"
}

with_lock() { # run "$@" holding a lock next to the state dir (if flock exists)
	local lock=${STATE_DIR%/}.lock
	if command -v flock >/dev/null 2>&1; then
		mkdir -p "$(dirname "$lock")"
		exec 9>"$lock"
		flock -w 300 9 || die "timed out waiting for lock $lock"
	fi
	"$@"
}

# ---------------------------------------------------------------- kafka jars

fetch_kafka_jars() {
	if [[ -f $KAFKA_LIBS/.complete ]]; then return 0; fi
	command -v mvn >/dev/null 2>&1 || die "mvn not found (apt-get install maven)"
	log "fetching Kafka $KAFKA_VERSION jars from Maven Central into $KAFKA_LIBS"
	mkdir -p "$KAFKA_HOME"
	cat >"$KAFKA_HOME/pom.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0"
         xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
         xsi:schemaLocation="http://maven.apache.org/POM/4.0.0 https://maven.apache.org/xsd/maven-4.0.0.xsd">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.convmeter</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>$KAFKA_VERSION</version>
  <packaging>pom</packaging>
  <dependencies>
    <!-- the broker (kafka.Kafka, kafka.tools.StorageTool); its pom pulls in
         kafka-clients, -server, -server-common, -metadata, -raft, -storage,
         -group-coordinator, -transaction-coordinator, scala, jackson, ... -->
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_$SCALA_BINARY_VERSION</artifactId>
      <version>$KAFKA_VERSION</version>
    </dependency>
    <!-- CLI classes (org.apache.kafka.tools.TopicCommand etc.), minus Connect -->
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka-tools</artifactId>
      <version>$KAFKA_VERSION</version>
      <exclusions>
        <exclusion><groupId>org.apache.kafka</groupId><artifactId>connect-runtime</artifactId></exclusion>
        <exclusion><groupId>com.fasterxml.jackson.jaxrs</groupId><artifactId>jackson-jaxrs-json-provider</artifactId></exclusion>
      </exclusions>
    </dependency>
    <!-- logging backend, as in the Kafka distribution -->
    <dependency>
      <groupId>org.slf4j</groupId>
      <artifactId>slf4j-reload4j</artifactId>
      <version>$SLF4J_VERSION</version>
    </dependency>
    <dependency>
      <groupId>ch.qos.reload4j</groupId>
      <artifactId>reload4j</artifactId>
      <version>$RELOAD4J_VERSION</version>
    </dependency>
  </dependencies>
  <build>
    <plugins>
      <plugin>
        <groupId>org.apache.maven.plugins</groupId>
        <artifactId>maven-dependency-plugin</artifactId>
        <version>$DEPENDENCY_PLUGIN_VERSION</version>
      </plugin>
    </plugins>
  </build>
</project>
EOF
	rm -rf "$KAFKA_LIBS.tmp"
	local mvn_args=(-B -ntp -Dstyle.color=never -f "$KAFKA_HOME/pom.xml" -Dmaven.repo.local="$CACHE_DIR/m2")
	if ! mvn "${mvn_args[@]}" dependency:copy-dependencies \
		-DincludeScope=runtime -DoutputDirectory="$KAFKA_LIBS.tmp" \
		</dev/null >"$KAFKA_HOME/mvn.log" 2>&1; then
		rm -rf "$KAFKA_LIBS.tmp"
		tail -n 60 "$KAFKA_HOME/mvn.log" >&2 || true
		die "mvn dependency:copy-dependencies failed (full log: $KAFKA_HOME/mvn.log)"
	fi
	[[ -n $(compgen -G "$KAFKA_LIBS.tmp/kafka_$SCALA_BINARY_VERSION-$KAFKA_VERSION.jar") ]] ||
		die "Maven finished but kafka_$SCALA_BINARY_VERSION-$KAFKA_VERSION.jar is missing"
	touch "$KAFKA_LIBS.tmp/.complete"
	rm -rf "$KAFKA_LIBS"
	mv "$KAFKA_LIBS.tmp" "$KAFKA_LIBS"
	log "cached $(find "$KAFKA_LIBS" -name '*.jar' | wc -l) jars"
}

kafka_jvm_args() { # log4j-config-file -> sets JVM_ARGS
	local heap
	read -r -a heap <<<"$KAFKA_HEAP_OPTS"
	JVM_ARGS=("${heap[@]}" -XX:+UseG1GC -XX:MaxGCPauseMillis=20
		-XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent
		-Djava.awt.headless=true
		-Dlog4j.configuration="file:$1"
		-Dkafka.logs.dir="$KAFKA_STATE/logs"
		-cp "$KAFKA_LIBS/*")
}

kafka_tool() { # main-class args...   (Kafka CLI classes, logging WARN to stderr)
	local cfg=$KAFKA_HOME/tools-log4j.properties
	if [[ ! -f $cfg ]]; then
		cat >"$cfg" <<'EOF2'
log4j.rootLogger=WARN, stderr
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.Target=System.err
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n
EOF2
	fi
	kafka_jvm_args "$cfg"
	java "${JVM_ARGS[@]}" "$@"
}

# ---------------------------------------------------------------- kafka

kafka_ready() {
	local out
	out=$(kcat -L -b "$HOST:$KAFKA_PORT" -m 5 2>/dev/null) || return 1
	grep -q "broker 1 at $HOST:$KAFKA_PORT" <<<"$out"
}

kafka_tail_logs() {
	local f
	for f in "$KAFKA_STATE/kafka.out" "$KAFKA_STATE/logs/server.log"; do
		[[ -f $f ]] || continue
		log "---- last lines of $f ----"
		tail -n 60 "$f" >&2 || true
	done
}

write_kafka_config() {
	mkdir -p "$KAFKA_STATE/data" "$KAFKA_STATE/logs"
	cat >"$KAFKA_STATE/server.properties" <<EOF
# generated by scripts/services.sh -- single-node KRaft, combined roles
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://$HOST:$KAFKA_PORT,CONTROLLER://$HOST:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$HOST:$KAFKA_PORT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$KAFKA_STATE/data
metadata.log.dir=$KAFKA_STATE/data

num.partitions=1
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=true
delete.topic.enable=true

offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
group.initial.rebalance.delay.ms=0

# keep everything for the lifetime of a test run
log.retention.ms=-1
log.retention.bytes=-1

num.network.threads=2
num.io.threads=4
EOF
	cat >"$KAFKA_STATE/log4j.properties" <<EOF
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=$KAFKA_STATE/logs/server.log
log4j.appender.file.Append=true
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka=INFO
log4j.logger.org.apache.kafka=INFO
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.request.logger=WARN
EOF
}

start_kafka() {
	if pid_alive "$KAFKA_PIDFILE"; then
		if kafka_ready; then
			log "kafka already running (pid $(<"$KAFKA_PIDFILE")) on $HOST:$KAFKA_PORT"
			return 0
		fi
		log "kafka pid $(<"$KAFKA_PIDFILE") alive but not answering yet; waiting"
	else
		rm -f "$KAFKA_PIDFILE"
		local p
		for p in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
			port_open "$p" && die "port $HOST:$p is already in use by another process (set CONVMETER_KAFKA_PORT / CONVMETER_KAFKA_CONTROLLER_PORT)"
		done
		fetch_kafka_jars
		write_kafka_config
		if [[ ! -f $KAFKA_STATE/data/meta.properties ]]; then
			local cluster_id
			cluster_id=$(kafka_tool kafka.tools.StorageTool random-uuid 2>>"$KAFKA_STATE/kafka.out") ||
				{ kafka_tail_logs; die "StorageTool random-uuid failed: $cluster_id"; }
			log "formatting kafka storage (cluster id $cluster_id)"
			kafka_tool kafka.tools.StorageTool format -t "$cluster_id" \
				-c "$KAFKA_STATE/server.properties" >>"$KAFKA_STATE/kafka.out" 2>&1 ||
				{ kafka_tail_logs; die "StorageTool format failed"; }
		fi
		log "starting kafka $KAFKA_VERSION on $HOST:$KAFKA_PORT (controller $KAFKA_CONTROLLER_PORT)"
		# setsid: detach from the caller's process group so Ctrl-C in the
		# calling shell does not kill the broker; `down` stops it by PID.
		# 9>&- : do not leak the state lock fd into the long-running broker.
		kafka_jvm_args "$KAFKA_STATE/log4j.properties"
		setsid java "${JVM_ARGS[@]}" kafka.Kafka "$KAFKA_STATE/server.properties" \
			</dev/null >>"$KAFKA_STATE/kafka.out" 2>&1 9>&- &
		echo $! >"$KAFKA_PIDFILE"
	fi
	local deadline=$((SECONDS + START_TIMEOUT))
	until kafka_ready; do
		if ! pid_alive "$KAFKA_PIDFILE"; then
			kafka_tail_logs
			die "kafka exited during startup"
		fi
		if ((SECONDS >= deadline)); then
			kafka_tail_logs
			die "kafka did not answer a metadata request on $HOST:$KAFKA_PORT within ${START_TIMEOUT}s"
		fi
		sleep 1
	done
	log "kafka ready (pid $(<"$KAFKA_PIDFILE"))"
}

# ---------------------------------------------------------------- redis

redis_ready() {
	[[ $(redis-cli -h "$HOST" -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]]
}

start_redis() {
	if pid_alive "$REDIS_PIDFILE"; then
		if redis_ready; then
			log "redis already running (pid $(<"$REDIS_PIDFILE")) on $HOST:$REDIS_PORT"
			return 0
		fi
		log "redis pid $(<"$REDIS_PIDFILE") alive but not answering yet; waiting"
	else
		rm -f "$REDIS_PIDFILE"
		port_open "$REDIS_PORT" && die "port $HOST:$REDIS_PORT is already in use by another process (set CONVMETER_REDIS_PORT)"
		mkdir -p "$REDIS_STATE"
		log "starting redis on $HOST:$REDIS_PORT"
		# rdbcompression no: see README (Production deploy); the AOF rewrite's LZF doubled its CPU.
		redis-server --bind "$HOST" --port "$REDIS_PORT" --protected-mode yes \
			--dir "$REDIS_STATE" --appendonly yes --save '' --rdbcompression no \
			--daemonize yes --pidfile "$REDIS_PIDFILE" \
			--logfile "$REDIS_STATE/redis.log" </dev/null >&2 9>&- ||
			die "redis-server failed to start (see $REDIS_STATE/redis.log)"
	fi
	local deadline=$((SECONDS + 30))
	until redis_ready; do
		if ((SECONDS >= deadline)); then
			tail -n 40 "$REDIS_STATE/redis.log" >&2 || true
			die "redis did not answer PING on $HOST:$REDIS_PORT within 30s"
		fi
		sleep 0.2
	done
	log "redis ready (pid $(<"$REDIS_PIDFILE"))"
}

# ---------------------------------------------------------------- stop

stop_pidfile() { # name pidfile grace-seconds
	local name=$1 pidfile=$2 grace=$3 pid i
	if ! pid_alive "$pidfile"; then
		rm -f "$pidfile"
		return 0
	fi
	pid=$(<"$pidfile")
	log "stopping $name (pid $pid)"
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < grace * 5; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.2
	done
	if kill -0 "$pid" 2>/dev/null; then
		log "$name did not exit after ${grace}s; sending KILL"
		kill -KILL "$pid" 2>/dev/null || true
		for ((i = 0; i < 50; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
	fi
	rm -f "$pidfile"
}

# ---------------------------------------------------------------- commands

print_env() {
	if [[ -f $ENV_FILE ]]; then
		cat "$ENV_FILE"
	else
		printf 'export CONVMETER_KAFKA_BROKERS=%s:%s\n' "$HOST" "$KAFKA_PORT"
		printf 'export CONVMETER_REDIS_URL=redis://%s:%s/0\n' "$HOST" "$REDIS_PORT"
	fi
}

do_up() {
	UP_HINT="partial state may remain in $STATE_DIR; run '$0 down' to clean up"
	ensure_tools
	mkdir -p "$STATE_DIR"
	touch "$STATE_MARKER"
	start_redis
	start_kafka
	rm -f "$ENV_FILE"
	print_env >"$ENV_FILE.tmp" && mv "$ENV_FILE.tmp" "$ENV_FILE"
	log "all services up (state in $STATE_DIR)"
}

do_down() {
	if [[ ! -d $STATE_DIR ]]; then
		log "nothing to stop ($STATE_DIR does not exist)"
		return 0
	fi
	stop_pidfile kafka "$KAFKA_PIDFILE" 30
	stop_pidfile redis "$REDIS_PIDFILE" 10
	if [[ -f $STATE_MARKER ]]; then
		case $STATE_DIR in
		/ | "$HOME" | "") die "refusing to remove $STATE_DIR" ;;
		esac
		rm -rf "$STATE_DIR"
		log "removed $STATE_DIR"
	else
		log "not removing $STATE_DIR (no $STATE_MARKER marker)"
	fi
}

do_status() {
	local rc=0
	if pid_alive "$KAFKA_PIDFILE" && command -v kcat >/dev/null 2>&1 && kafka_ready; then
		echo "kafka: running pid=$(<"$KAFKA_PIDFILE") addr=$HOST:$KAFKA_PORT version=$KAFKA_VERSION"
	elif pid_alive "$KAFKA_PIDFILE"; then
		echo "kafka: pid=$(<"$KAFKA_PIDFILE") alive but not answering on $HOST:$KAFKA_PORT"
		rc=1
	else
		echo "kafka: stopped"
		rc=1
	fi
	if pid_alive "$REDIS_PIDFILE" && command -v redis-cli >/dev/null 2>&1 && redis_ready; then
		echo "redis: running pid=$(<"$REDIS_PIDFILE") addr=$HOST:$REDIS_PORT"
	elif pid_alive "$REDIS_PIDFILE"; then
		echo "redis: pid=$(<"$REDIS_PIDFILE") alive but not answering on $HOST:$REDIS_PORT"
		rc=1
	else
		echo "redis: stopped"
		rc=1
	fi
	echo "state: $STATE_DIR"
	echo "cache: $CACHE_DIR"
	return "$rc"
}

usage() {
	sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

cmd=${1:-}
case $cmd in
up)
	with_lock do_up
	print_env
	;;
down) with_lock do_down ;;
env) print_env ;;
status) do_status ;;
run-class)
	shift
	[[ $# -ge 1 ]] || usage
	fetch_kafka_jars
	kafka_tool "$@"
	;;
*) usage ;;
esac
