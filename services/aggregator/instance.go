package aggregator

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
)

// A process killed with SIGKILL never leaves its consumer group: the coordinator keeps its
// partitions until its session times out (SessionTimeout, at least the broker's 6 s), so a
// restarted aggregator waits that long before it can restore anything. kafka-go has no static
// membership (KIP-345), so Config.Instance gives the same effect for the common case of a crash
// and a restart on the same machine: every member's client id names its instance and the
// process that runs it (host, kernel boot, pid, process start time), and a process of the same
// instance on the same host and boot removes a predecessor whose process is gone (LeaveGroup on
// its behalf) before joining. A predecessor on another host or boot, or one still running, is
// left to its session: removing a live member could let it finish a write after its successor
// read the output tails, the one thing exactly-once effect assumes never happens (see the
// package doc).

// clientIDPrefix starts the client id of an aggregator that has an instance name.
const clientIDPrefix = "convmeter-aggregator"

// identity is what an aggregator process says of itself in its client id.
type identity struct {
	instance string
	host     string
	boot     string // the kernel's boot id: a process of another boot is gone
	pid      int
	start    uint64 // the process's start time in clock ticks after boot: tells a reused pid apart
}

// clientID is id as a Kafka client id: fields joined by '|' (no field holds one).
func (id identity) clientID() string {
	return strings.Join([]string{clientIDPrefix, id.instance, id.host, id.boot, strconv.Itoa(id.pid), strconv.FormatUint(id.start, 10)}, "|")
}

// parseClientID reads a client id clientID wrote; ok is false for any other.
func parseClientID(s string) (id identity, ok bool) {
	f := strings.Split(s, "|")
	if len(f) != 6 || f[0] != clientIDPrefix || f[1] == "" || f[2] == "" || f[3] == "" {
		return identity{}, false
	}
	pid, err1 := strconv.Atoi(f[4])
	start, err2 := strconv.ParseUint(f[5], 10, 64)
	if err1 != nil || err2 != nil || pid <= 0 {
		return identity{}, false
	}
	return identity{instance: f[1], host: f[2], boot: f[3], pid: pid, start: start}, true
}

// selfIdentity is this process's identity as instance, or false where the kernel does not say
// what it takes to prove a predecessor gone (no /proc: not Linux).
func selfIdentity(instance string) (identity, bool) {
	host, err := os.Hostname()
	if err != nil || host == "" || strings.Contains(host, "|") || strings.Contains(instance, "|") {
		return identity{}, false
	}
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return identity{}, false
	}
	pid := os.Getpid()
	start, ok := procStart(pid)
	if !ok {
		return identity{}, false
	}
	return identity{instance: instance, host: host, boot: strings.TrimSpace(string(boot)), pid: pid, start: start}, true
}

// procStart returns the start time of process pid in clock ticks after boot (field 22 of
// /proc/PID/stat), or false when there is no such process.
func procStart(pid int) (uint64, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	s := string(b)
	// The command name (field 2) is in parentheses and may hold spaces: fields after it are
	// counted from the last ')'.
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 { // f[0] is field 3 (state); field 22 is f[19]
		return 0, false
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	return start, err == nil
}

// gone reports whether the process that prev describes has certainly ended, as id (a process of
// the same instance) sees it: the same host name and the same kernel boot, and its pid runs
// nothing or a process that started at another time. A member of another boot is not proved
// gone: a host name is not a machine (a rescheduled pod keeps its name on another node, where
// the old one may still run). alive tells whether a process with a pid is running and when it
// started.
func (id identity) gone(prev identity, alive func(pid int) (uint64, bool)) bool {
	if prev.instance != id.instance || prev.host != id.host || prev.boot != id.boot || prev == id {
		return false
	}
	start, running := alive(prev.pid)
	return !running || start != prev.start
}

// removeDeadPredecessors removes from group every member of self's instance whose process has
// ended (see identity.gone), so the group hands its partitions over at once instead of after
// its session. Errors are returned for logging: the fallback is the session timeout.
func removeDeadPredecessors(ctx context.Context, client *kafka.Client, group string, self identity) ([]string, error) {
	res, err := client.DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: []string{group}})
	if err != nil {
		return nil, fmt.Errorf("describe group %s: %w", group, err)
	}
	var gone []kafka.LeaveGroupRequestMember
	var names []string
	for _, g := range res.Groups {
		if g.Error != nil || g.GroupID != group {
			continue
		}
		for _, m := range g.Members {
			prev, ok := parseClientID(m.ClientID)
			if ok && self.gone(prev, procStart) {
				gone = append(gone, kafka.LeaveGroupRequestMember{ID: m.MemberID})
				names = append(names, m.ClientID)
			}
		}
	}
	if len(gone) == 0 {
		return nil, nil
	}
	lres, err := client.LeaveGroup(ctx, &kafka.LeaveGroupRequest{GroupID: group, Members: gone})
	if err == nil {
		err = lres.Error
	}
	if err == nil {
		for _, m := range lres.Members {
			if m.Error != nil {
				err = fmt.Errorf("member %s: %w", m.ID, m.Error)
				break
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("remove %d dead members of instance %s from group %s: %w", len(gone), self.instance, group, err)
	}
	return names, nil
}

// instanceDialer is the dialer of the consumer group: with Config.Instance, one whose client id
// carries this process's identity, after removing the dead members of the instance from the
// group; otherwise nil (kafka-go's default).
func (a *aggregator) instanceDialer(ctx context.Context) *kafka.Dialer {
	if a.cfg.Instance == "" {
		return nil
	}
	self, ok := selfIdentity(a.cfg.Instance)
	if !ok {
		a.log.Warn("instance given but this system cannot prove a predecessor gone (no /proc); crashed members' partitions move after their session", "instance", a.cfg.Instance)
		return nil
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	removed, err := removeDeadPredecessors(rctx, a.client, a.cfg.Group, self)
	cancel()
	if err != nil {
		a.log.Warn("could not remove dead members of this instance from the group; their partitions move after their session", "group", a.cfg.Group, "instance", a.cfg.Instance, "err", err)
	}
	for _, id := range removed {
		a.log.Info("removed a dead member of this instance from the group", "group", a.cfg.Group, "instance", a.cfg.Instance, "client_id", id)
	}
	d := *kafka.DefaultDialer
	d.ClientID = self.clientID()
	return &d
}
