package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat: 100 on every Linux
// architecture Go supports (the kernel exports it as a constant whatever CONFIG_HZ is).
const clockTicks = 100

// cpuSeconds is the process's user plus system CPU time.
func cpuSeconds(pid int) (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	fields, err := statFields(data)
	if err != nil {
		return 0, err
	}
	// After the command: state is field 3, utime 14 and stime 15 (1-based), so 11 and 12 here.
	utime, err1 := strconv.ParseFloat(fields[11], 64)
	stime, err2 := strconv.ParseFloat(fields[12], 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected utime %q or stime %q", pid, fields[11], fields[12])
	}
	return (utime + stime) / clockTicks, nil
}

// statFields are the fields of /proc/PID/stat after "pid (comm)", which may hold spaces.
func statFields(data []byte) ([]string, error) {
	i := bytes.LastIndexByte(data, ')')
	if i < 0 || i+2 > len(data) {
		return nil, fmt.Errorf("malformed stat %q", data)
	}
	fields := strings.Fields(string(data[i+2:]))
	if len(fields) < 13 {
		return nil, fmt.Errorf("short stat %q", data)
	}
	return fields, nil
}

// memKiB returns VmRSS and VmHWM from /proc/PID/status.
func memKiB(pid int) (rss, hwm int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := s.Text()
		var target *int64
		switch {
		case strings.HasPrefix(line, "VmRSS:"):
			target = &rss
		case strings.HasPrefix(line, "VmHWM:"):
			target = &hwm
		default:
			continue
		}
		fields := strings.Fields(line)
		if len(fields) >= 2 {
			*target, _ = strconv.ParseInt(fields[1], 10, 64)
		}
	}
	return rss, hwm, s.Err()
}

// childrenRunning returns the PIDs of this process's children whose executable is exe.
func childrenRunning(exe string) []int {
	want, err := filepath.EvalSymlinks(exe)
	if err != nil {
		want = exe
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		path, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		if err != nil || (path != want && path != exe) {
			continue
		}
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		fields, err := statFields(data)
		if err != nil {
			continue
		}
		if ppid, _ := strconv.Atoi(fields[1]); ppid == self {
			out = append(out, pid)
		}
	}
	return out
}

// rssSampler reads a process's VmRSS every 100 ms and keeps the peak since the last reset.
type rssSampler struct {
	pid  int
	mu   sync.Mutex
	last int64
	peak int64
	stop chan struct{}
	done chan struct{}
}

func newRSSSampler(pid int) *rssSampler {
	s := &rssSampler{pid: pid, stop: make(chan struct{}), done: make(chan struct{})}
	go s.run()
	return s
}

func (s *rssSampler) run() {
	defer close(s.done)
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		s.sample()
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
	}
}

func (s *rssSampler) sample() {
	rss, _, err := memKiB(s.pid)
	if err != nil || rss == 0 {
		return
	}
	s.mu.Lock()
	s.last = rss
	if rss > s.peak {
		s.peak = rss
	}
	s.mu.Unlock()
}

// current is the latest sample in KiB.
func (s *rssSampler) current() int64 {
	s.sample()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// peakKiB is the largest sample since the sampler started or was reset.
func (s *rssSampler) peakKiB() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak
}

// average samples RSS every 100 ms for d and returns the mean, smoothing out a GC cycle.
func (s *rssSampler) average(d time.Duration) int64 {
	var sum, n int64
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if v := s.current(); v > 0 {
			sum += v
			n++
		}
	}
	if n == 0 {
		return s.current()
	}
	return sum / n
}

func (s *rssSampler) close() {
	close(s.stop)
	<-s.done
}

func mib(kib int64) float64 { return float64(kib) / 1024 }
