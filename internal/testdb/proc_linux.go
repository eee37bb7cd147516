//go:build linux

package testdb

import "syscall"

// processAttr runs a server as the OS user runAs (nil keeps this process's user), in its own
// process group, and has the kernel send it deathSignal when the test binary dies without
// stopping it.
func processAttr(runAs *osUser, deathSignal syscall.Signal) *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{Setpgid: true, Pdeathsig: deathSignal}
	if runAs != nil {
		attr.Credential = &syscall.Credential{Uid: runAs.uid, Gid: runAs.gid, Groups: []uint32{}}
	}
	return attr
}

// processGone reports whether no process has the id.
func processGone(pid int) bool {
	return syscall.Kill(pid, 0) == syscall.ESRCH
}
